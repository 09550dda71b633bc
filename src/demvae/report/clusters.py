"""What a person reads to name the clusters a model found (the paper's Table 4)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from demvae.data.types import Corpus
from demvae.evaluation.codes import SplitCodes, format_code, label_scores
from demvae.evaluation.tables import format_table
from demvae.training.run_folder import LoadedRun


def cluster_report(run: LoadedRun, corpus: Corpus, split_name: str, codes: SplitCodes, split,
                   top: int = 5, n_generated: int = 3, max_clusters: int = 30) -> str:
    """Per discovered code: size, majority label and purity per label, the most typical sentences
    (highest ``q(code|x)``) and a few sentences generated from the prior for that code."""
    examples = corpus.splits[split_name]
    joint, conf, per_var = codes.joint, codes.confidence, codes.codes
    sizes = Counter(joint.tolist())
    lines = [f"{len(sizes)} codes used on {split_name} ({len(joint)} examples); "
             f"showing the {min(max_clusters, len(sizes))} largest", ""]
    scores = label_scores(codes, split)
    if scores:
        rows = [{"label": k, **v} for k, v in scores.items()]
        lines += [format_table(rows, ["label", "homogeneity", "completeness", "v_measure", "nmi"],
                               title="codes vs gold labels"), ""]
    for cluster, size in sizes.most_common(max_clusters):
        members = np.nonzero(joint == cluster)[0]
        code = per_var[members[0]]
        head = f"code {format_code(code)}  size {size} ({size / len(joint):.1%})"
        for name, labels in split.labels.items():
            y = labels.numpy()[members]
            y = y[y >= 0]
            if len(y):
                value, count = Counter(y.tolist()).most_common(1)[0]
                names = corpus.label_names.get(name, [])
                shown = names[value] if value < len(names) else str(value)
                head += f" | {name}: {shown} ({count / len(y):.0%})"
        lines.append(head)
        for i in members[np.argsort(-conf[members])][:top]:
            lines.append(f"    {' '.join(examples[i].tokens)}")
        if n_generated:
            codes_t = torch.as_tensor(np.tile(code, (n_generated, 1)), dtype=torch.long)
            torch.manual_seed(int(cluster) % (2**31))
            for ids in run.model.sample_prior(n_generated, codes=codes_t).tolist():
                lines.append(f"  > {' '.join(run.vocab.decode(ids))}")
        lines.append("")
    return "\n".join(lines)
