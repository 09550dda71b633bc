"""What a person reads to name the clusters a model found (the paper's Table 4): per discovered code its
size, majority label and purity per label, the most typical sentences and sentences generated from it.

For a sentence model the generated sentences come from the code by a generation procedure (default
``aggregate``: z from the code's aggregate posterior on train, :mod:`demvae.models.generation`), greedy
decoding, and the report names the procedure; for a dialog model (the
stage-1 codes of the responses) they are the dialog model's responses, with the code fixed (z = its
component's mean, greedy decoding), to the contexts of the code's most typical members: what the code
makes the system say where those responses were said, each followed by the context's last turn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import torch

from demvae.data.batching import EncodedSplit
from demvae.data.dialog import DialogSplit
from demvae.data.prepare import PreparedData
from demvae.data.types import Corpus
from demvae.evaluation.baseline import split_baseline
from demvae.evaluation.clustering import majority
from demvae.evaluation.codes import SplitCodes, format_code, label_scores
from demvae.evaluation.tables import format_table
from demvae.models import DialogModel, TextVAE
from demvae.models.generation import DEFAULT, Procedure, generate_from_codes
from demvae.training.run_folder import LoadedRun, load_code_stats


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
    """Sentences generated from this code by the generation procedure; for a dialog model,
    responses with this code to the contexts of the most typical members (see the module's docstring)."""

    @property
    def name(self) -> str:
        return format_code(self.code)


def _code_samples(run: LoadedRun, split: EncodedSplit, per_variable: np.ndarray, ranked: list[np.ndarray], n: int,
                  procedure: Procedure, data: PreparedData | None) -> list[list[str]]:
    """``n`` samples for every code [C, M] by ``procedure``, in one batched decoder call."""
    model, vocab = cast(TextVAE, run.model), run.vocab
    stats = load_code_stats(run, data) if procedure.needs_stats else None
    rows = torch.as_tensor(np.repeat(per_variable, n, axis=0), dtype=torch.long)
    ids = generate_from_codes(model, rows, procedure, stats).tolist()
    return [[" ".join(vocab.decode(r)) for r in ids[i * n:(i + 1) * n]] for i in range(len(per_variable))]


def _responses(run: LoadedRun, split: DialogSplit, per_variable: np.ndarray, ranked: list[np.ndarray], n: int,
               procedure: Procedure, data: PreparedData | None) -> list[list[str]]:
    """For every code [C, M], the dialog model's responses with it to the contexts of its ``n`` most typical
    members (``ranked``; one batched call), each followed by the context's last turn."""
    model, vocab, typical = cast(DialogModel, run.model), run.vocab, [r[:n] for r in ranked]
    members = np.concatenate(typical).tolist()
    codes = torch.as_tensor(np.repeat(per_variable, [len(t) for t in typical], axis=0), dtype=torch.long)
    batch = split.batch(members)
    ids = model.respond(batch.to(model.device), codes=codes, z_choice="mean").ids.cpu().tolist()
    last = [vocab.decode(batch.context[i, int(batch.n_turns[i]) - 1].tolist()) for i in range(len(members))]
    lines = [f"{' '.join(vocab.decode(r))}    [after: {' '.join(c)}]" for r, c in zip(ids, last)]
    bounds = np.cumsum([0] + [len(t) for t in typical])
    return [lines[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


class Lines(NamedTuple):
    generate: Callable[..., list[list[str]]]  # (run, split, codes [C, M], members ranked, n, procedure, data)
    describe: Callable[[Procedure], str]


LINES = {
    "sentence": Lines(_code_samples, lambda procedure: "generated from the code, " + (
        "words sampled" if procedure.samples_words else "greedy decoding") + f"; {procedure.describe()}"),
    "dialog": Lines(_responses, lambda procedure: "the dialog model's response with the code (z = its mean, greedy "
               "decoding) to the context of a typical member, [after] the context's last turn"),
}
"""Each kind of run's lines under a code (:attr:`~demvae.training.run_folder.RunFolder.kind`), and what they
are: a sentence model's are generated from the code; a dialog model's are its responses (module's docstring)."""


@torch.no_grad()
def summarize_codes(run: LoadedRun, corpus: Corpus, split_name: str, codes: SplitCodes, split: EncodedSplit,
                    top: int = 5, n_generated: int = 3, max_codes: int = 30, seed: int = 0,
                    procedure: Procedure = DEFAULT, data: PreparedData | None = None) -> list[CodeSummary]:
    """The ``max_codes`` largest codes of the split, largest first (ties: smaller code id first). ``data``: the
    run's prepared corpus (with its own ``max_examples``), for the codes' statistics if they are not cached."""
    examples = corpus.splits[split_name]
    # a dialog split may hold a subset of the corpus's turns (dialog.speakers): its examples by position
    position = split.example_index.numpy() if isinstance(split, DialogSplit) else np.arange(len(split))
    joint, conf = codes.joint, codes.confidence
    values, first, sizes = np.unique(joint, return_index=True, return_counts=True)
    order = np.argsort(-sizes, kind="stable")[:max_codes]
    per_variable = codes.codes[first[order]]  # [C, M]
    ranked = []  # each code's members, most typical (highest q(code|x)) first
    for value in values[order]:
        members = np.nonzero(joint == value)[0]
        ranked.append(members[np.argsort(-conf[members], kind="stable")])
    generated: list[list[str]] = [[] for _ in order]
    if n_generated:
        run.model.eval()
        torch.manual_seed(seed)
        generated = LINES[run.folder.kind].generate(run, split, per_variable, ranked, n_generated, procedure, data)
    labels = {name: y.numpy() for name, y in split.labels.items()}
    out = []
    for members, code, sentences in zip(ranked, per_variable, generated):
        majorities = {}
        for name, y in labels.items():
            known = y[members][y[members] >= 0]
            if len(known):
                cls, share = majority(known)  # a tie goes to the smaller class id
                names = corpus.label_names.get(name, [])
                majorities[name] = (names[cls] if cls < len(names) else str(cls), share)
        texts = (" ".join(examples[position[i]].tokens) for i in members)
        typical = list(dict.fromkeys(texts))[:top]  # a corpus may repeat a sentence: show it once
        out.append(CodeSummary(tuple(int(c) for c in code), len(members), len(members) / len(joint), majorities,
                               typical, sentences))
    return out


def cluster_report(run: LoadedRun, corpus: Corpus, split_name: str, codes: SplitCodes, split: EncodedSplit,
                   top: int = 5, n_generated: int = 3, max_clusters: int = 30, procedure: Procedure = DEFAULT,
                   data: PreparedData | None = None, train: EncodedSplit | None = None, seed: int = 0) -> str:
    """The code summaries as text, after the codes' homogeneity etc. with every gold label, and with ``train``
    the lexical baseline's beside them (:mod:`demvae.evaluation.baseline`)."""
    n_codes = len(np.unique(codes.joint))
    lines = [f"{n_codes} codes used on {split_name} ({len(codes.joint)} examples); "
             f"showing the {min(max_clusters, n_codes)} largest", ""]
    scores = label_scores(codes, split)
    if scores:
        rows = [{"clusters": "codes", "label": k, **v} for k, v in scores.items()]
        shape = run.model.code_shape()
        assert shape is not None  # the model has codes
        baseline = split_baseline(train, split, run.vocab, shape, seed) if train is not None else None
        if baseline is not None:
            rows += [{"clusters": "baseline", "label": k, **v} for k, v in baseline.scores.items()]
        lines += [format_table(rows, ["clusters", "label", "homogeneity", "completeness", "v_measure", "nmi"],
                               title="codes vs gold labels"), ""]
        if baseline is not None:
            lines += [f"> baseline: k-means with {baseline.n_clusters} clusters on TF-IDF + LSA vectors of the "
                      "sentences, fitted on train (how far plain clustering of the words gets)", ""]
    if n_generated:
        lines += [f"> lines: {LINES[run.folder.kind].describe(procedure)}", ""]
    for s in summarize_codes(run, corpus, split_name, codes, split, top, n_generated, max_clusters,
                             procedure=procedure, data=data):
        head = f"code {s.name}  size {s.size} ({s.share:.1%})"
        head += "".join(f" | {name}: {cls} ({purity:.0%})" for name, (cls, purity) in s.majority.items())
        lines += [head, *(f"    {t}" for t in s.typical), *(f"  > {g}" for g in s.generated), ""]
    return "\n".join(lines)
