"""What a person reads to name the clusters a model found (the paper's Table 4).

For a sentence model the generated lines are prior samples for the code; for a dialog model (stage-1 codes of
the responses) they are the dialog model's responses, with the code fixed, to the contexts of the cluster's most
typical members: what the code makes the system say where those responses were said.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from demvae.data.dialog import DialogSplit
from demvae.data.types import Corpus
from demvae.data.vocab import Vocab
from demvae.evaluation.codes import SplitCodes, label_scores
from demvae.evaluation.tables import format_table
from demvae.models import DialogModel, TextVAE
from demvae.training.run_folder import LoadedRun


def _code_string(code: np.ndarray) -> str:
    return "-".join(str(int(c)) for c in code)


def _prior_samples(model: TextVAE, vocab: Vocab, code: np.ndarray, n: int) -> list[str]:
    codes = torch.as_tensor(np.tile(code, (n, 1)), dtype=torch.long)
    return [" ".join(vocab.decode(ids)) for ids in model.sample_prior(n, codes=codes).tolist()]


def _responses(model: DialogModel, vocab: Vocab, split: DialogSplit, code: np.ndarray,
               members: np.ndarray) -> list[str]:
    """Responses with ``code`` (z = the component's mean, greedy) to the members' contexts, each followed by the
    context's last turn."""
    batch = split.batch(members.tolist()).to(model.device)
    codes = torch.as_tensor(np.tile(code, (len(members), 1)), dtype=torch.long)
    ids = model.respond(batch, codes=codes, z_choice="mean").ids.cpu().tolist()
    last = [batch.context[i, int(batch.n_turns[i]) - 1].tolist() for i in range(len(members))]
    return [f"{' '.join(vocab.decode(r))}    [after: {' '.join(vocab.decode(c))}]" for r, c in zip(ids, last)]


def cluster_report(run: LoadedRun, corpus: Corpus, split_name: str, codes: SplitCodes, split,
                   top: int = 5, n_generated: int = 3, max_clusters: int = 30) -> str:
    """Per discovered code: size, majority label and purity per label, the most typical sentences
    (highest ``q(code|x)``) and a few generated ones: prior samples for that code (a sentence model)
    or the dialog model's responses with that code to the typical members' contexts (a dialog model)."""
    examples = corpus.splits[split_name]
    position = split.example_index.numpy() if isinstance(split, DialogSplit) else np.arange(len(split))
    joint, conf, per_var = codes.joint, codes.confidence, codes.codes
    sizes = Counter(joint.tolist())
    lines = [f"{len(sizes)} codes used on {split_name} ({len(joint)} examples); "
             f"showing the {min(max_clusters, len(sizes))} largest", ""]
    scores = label_scores(codes, split)
    if scores:
        rows = [{"label": k, **v} for k, v in scores.items()]
        lines += [format_table(rows, ["label", "homogeneity", "completeness", "v_measure", "nmi"],
                               title="codes vs gold labels"), ""]
    if run.is_dialog and n_generated:
        lines += ["> lines: the dialog model's response with the code (z = its mean, greedy decoding) to the "
                  "context of a typical member, [after] the context's last turn", ""]
    for cluster, size in sizes.most_common(max_clusters):
        members = np.nonzero(joint == cluster)[0]
        code = per_var[members[0]]
        head = f"code {_code_string(code)}  size {size} ({size / len(joint):.1%})"
        for name, labels in split.labels.items():
            y = labels.numpy()[members]
            y = y[y >= 0]
            if len(y):
                value, count = Counter(y.tolist()).most_common(1)[0]
                names = corpus.label_names.get(name, [])
                shown = names[value] if value < len(names) else str(value)
                head += f" | {name}: {shown} ({count / len(y):.0%})"
        lines.append(head)
        typical = members[np.argsort(-conf[members], kind="stable")]
        for i in typical[:top]:
            lines.append(f"    {' '.join(examples[position[i]].tokens)}")
        if n_generated:
            torch.manual_seed(int(cluster) % (2**31))
            if run.is_dialog:
                generated = _responses(run.model, run.vocab, split, code, typical[:n_generated])
            else:
                generated = _prior_samples(run.model, run.vocab, code, n_generated)
            lines += [f"  > {g}" for g in generated]
        lines.append("")
    return "\n".join(lines)
