"""What a person reads to name the clusters a model found (the paper's Table 4): per discovered code its
size, majority label and purity per label, the most typical sentences and sentences generated from it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from demvae.data.batching import EncodedSplit
from demvae.data.types import Corpus
from demvae.evaluation.codes import SplitCodes, format_code, label_scores
from demvae.evaluation.tables import format_table
from demvae.training.run_folder import LoadedRun


@dataclass
class CodeSummary:
    code: tuple[int, ...]
    """The value of every discrete variable."""
    size: int
    """Members in the split (examples whose joint argmax code this is)."""
    share: float
    """``size`` over the split's size."""
    majority: dict[str, tuple[str, float]]
    """Label -> (the members' commonest class name, its share among the labelled members = purity)."""
    typical: list[str]
    """The members with the highest ``q(code|x)``, most typical first (each text once)."""
    generated: list[str]
    """Sentences generated from the prior for this code (greedy decoding)."""

    @property
    def name(self) -> str:
        return format_code(self.code)


@torch.no_grad()
def summarize_codes(run: LoadedRun, corpus: Corpus, split_name: str, codes: SplitCodes, split: EncodedSplit,
                    top: int = 5, n_generated: int = 3, max_codes: int = 30, seed: int = 0) -> list[CodeSummary]:
    """The ``max_codes`` largest codes of the split, largest first (ties: smaller code id first)."""
    examples = corpus.splits[split_name]
    joint, conf = codes.joint, codes.confidence
    values, first, sizes = np.unique(joint, return_index=True, return_counts=True)
    order = np.argsort(-sizes, kind="stable")[:max_codes]
    per_variable = codes.codes[first[order]]  # [C, M]
    generated: list[list[str]] = [[] for _ in order]
    if n_generated:  # one batched decoder call for every code
        run.model.eval()
        torch.manual_seed(seed)
        rows = torch.as_tensor(np.repeat(per_variable, n_generated, axis=0), dtype=torch.long)
        ids = run.model.sample_prior(len(rows), codes=rows).tolist()
        for i, row in enumerate(ids):
            generated[i // n_generated].append(" ".join(run.vocab.decode(row)))
    labels = {name: y.numpy() for name, y in split.labels.items()}
    out = []
    for value, code, sentences in zip(values[order], per_variable, generated):
        members = np.nonzero(joint == value)[0]
        majority = {}
        for name, y in labels.items():
            known = y[members][y[members] >= 0]
            if len(known):
                cls, count = Counter(known.tolist()).most_common(1)[0]
                names = corpus.label_names.get(name, [])
                majority[name] = (names[cls] if cls < len(names) else str(cls), count / len(known))
        ranked = (" ".join(examples[i].tokens) for i in members[np.argsort(-conf[members], kind="stable")])
        typical = list(dict.fromkeys(ranked))[:top]  # a corpus may repeat a sentence: show it once
        out.append(CodeSummary(tuple(int(c) for c in code), len(members), len(members) / len(joint), majority,
                               typical, sentences))
    return out


def cluster_report(run: LoadedRun, corpus: Corpus, split_name: str, codes: SplitCodes, split: EncodedSplit,
                   top: int = 5, n_generated: int = 3, max_clusters: int = 30) -> str:
    """The code summaries as text, after the codes' homogeneity etc. with every gold label."""
    n_codes = len(np.unique(codes.joint))
    lines = [f"{n_codes} codes used on {split_name} ({len(codes.joint)} examples); "
             f"showing the {min(max_clusters, n_codes)} largest", ""]
    scores = label_scores(codes, split)
    if scores:
        rows = [{"label": k, **v} for k, v in scores.items()]
        lines += [format_table(rows, ["label", "homogeneity", "completeness", "v_measure", "nmi"],
                               title="codes vs gold labels"), ""]
    for s in summarize_codes(run, corpus, split_name, codes, split, top, n_generated, max_clusters):
        head = f"code {s.name}  size {s.size} ({s.share:.1%})"
        head += "".join(f" | {name}: {cls} ({purity:.0%})" for name, (cls, purity) in s.majority.items())
        lines += [head, *(f"    {t}" for t in s.typical), *(f"  > {g}" for g in s.generated), ""]
    return "\n".join(lines)
