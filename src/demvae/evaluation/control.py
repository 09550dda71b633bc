r"""``control``: does generation follow its code?

For every joint code ``c`` (the per-variable argmax of ``q(c|x)``, merged as in :mod:`.clustering`)
that holds at least ``min_share`` of the split, N sentences are generated from ``c`` by a generation
procedure (:mod:`demvae.models.generation`; default ``rerank-t0-p0.9``: z the mean of the code's aggregate
posterior, words from the top-0.9 nucleus, the best of 4 such sentences by the model's q(c|x)) and scored:

* **code recovery**: the share of generated sentences that, encoded again, get exactly ``c``; for a
  procedure that keeps the candidates the model's own encoder prefers (``rerank``) this is circular, and the
  **unfiltered recovery**, the same share among the candidates it chooses from, is reported beside it;
* **per-variable recovery**: for each variable c_g alone, the share whose value of c_g comes back (of the
  kept sentences and of the unfiltered candidates): which variables generation follows;
* **reconstruction recovery**: the share of the code's own members whose greedy reconstruction from the
  posterior mean encodes back to their code. Decoding from a sentence's own z is the easiest case, so this
  bounds what any procedure that writes from z can recover without filtering;
* per gold label (e.g. ``intent``), **agreement**: the share of generated sentences that a text
  classifier (TF-IDF + logistic regression, fitted on the gold *train* split only) gives the code's
  majority label among its split members;
* the **ceiling** of that agreement: the code's purity, the share of its members with the majority label
  (a generator that writes sentences exactly like the code's members agrees this often);
* **chance**: the largest label's share of the split (what a generator that ignores the code reaches at
  best);
* **distinct**: the share of distinct sentences among a code's N (1/N: the procedure always writes the same
  sentence, as decoding the component's mean greedily does);
* **distinct-2**: the distinct word bigrams over all word bigrams of a code's N sentences (Li et al., 2016;
  no boundary tokens; 0 when no sentence has two words): sentences that differ by one word share most bigrams,
  so this counts how much of the text is new, where the distinct share counts whole sentences.

Averages are weighted by code size (labelled members, for a label's scores). Every sentence is decoded
in a few batched decoder calls; the result is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits
from torch import Tensor

from demvae.data.batching import EncodedSplit
from demvae.data.types import Example
from demvae.data.vocab import Vocab
from demvae.errors import ConfigError
from demvae.evaluation.clustering import majority
from demvae.evaluation.codes import encode_codes, format_code
from demvae.evaluation.generation import references
from demvae.evaluation.tables import format_table
from demvae.models import TextVAE
from demvae.models.generation import DEFAULT, CodeStats, Procedure, generate_from_codes, uses_stats

__all__ = [
    "CodeSampler",
    "procedure_sampler",
    "ControlOptions",
    "LabelControl",
    "CodeControl",
    "ControlResult",
    "text_classifier",
    "control_scores",
    "control_table",
    "control_code_table",
    "distinct_share",
    "distinct_2",
]

CodeSampler = Callable[[TextVAE, Tensor], Tensor]
"""A custom generation procedure: ``(model, codes [n, M] long) -> token ids [n, L]`` (``</s>`` then
``<pad>``), one sentence per row of ``codes``. It draws from torch's global random state (seeded by the
caller)."""


def procedure_sampler(procedure: Procedure, stats: CodeStats | None) -> CodeSampler:
    """A library procedure (:mod:`demvae.models.generation`) as a :data:`CodeSampler`."""
    def sampler(model: TextVAE, codes: Tensor) -> Tensor:
        return generate_from_codes(model, codes, procedure, stats)

    sampler.__name__ = procedure.label
    return sampler


def text_classifier() -> Any:
    """A fresh gold-label classifier on whitespace tokens: TF-IDF of uni- and bigrams + logistic regression."""
    return make_pipeline(
        TfidfVectorizer(token_pattern=r"\S+", lowercase=False, ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(max_iter=2000),
    )


def distinct_share(sentences: Sequence[Sequence[str]]) -> float:
    """The share of distinct sentences (token sequences) among ``sentences``."""
    return len({tuple(s) for s in sentences}) / len(sentences)


def distinct_2(sentences: Sequence[Sequence[str]]) -> float:
    """Distinct word bigrams over all word bigrams of ``sentences`` (0 when none has two words)."""
    bigrams = [pair for s in sentences for pair in zip(s, s[1:])]
    return len(set(bigrams)) / len(bigrams) if bigrams else 0.0


@dataclass
class ControlOptions:
    n_per_code: int = 20
    """Sentences generated per code."""
    min_share: float = 0.01
    """Score the codes holding at least this share of the split."""
    procedure: Procedure | str | CodeSampler = DEFAULT
    """A :class:`~demvae.models.generation.Procedure`, a procedure's name (at its default temperature) or a
    :data:`CodeSampler`."""
    stats: CodeStats | None = None
    """The codes' aggregate posterior statistics (needed by the ``aggregate`` procedure)."""
    seed: int = 0
    batch_size: int = 1000
    """Sentences per decoder call."""


@dataclass
class LabelControl:
    """One gold label's scores, weighted by the codes' labelled members."""

    agreement: float
    ceiling: float
    chance: float
    classifier_accuracy: float
    """The classifier's accuracy on the scored split's own gold labels (held out unless the split is train)."""


@dataclass
class CodeControl:
    code: tuple[int, ...]
    """The value of every discrete variable."""
    size: int
    """Members in the split."""
    recovery: float
    distinct: float
    distinct_2: float
    majority: dict[str, int] = field(default_factory=dict)
    """Label -> the members' majority class (labels the code has members for)."""
    agreement: dict[str, float] = field(default_factory=dict)
    ceiling: dict[str, float] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    """The first few generated sentences."""


@dataclass
class ControlResult:
    procedure: str
    n_per_code: int
    coverage: float
    """Share of the split inside the scored codes."""
    recovery: float
    """Code recovery, weighted by code size."""
    unfiltered_recovery: float
    """For a procedure that filters candidates by the model's own q(c|x) (``rerank``), whose recovery is then
    circular: the recovery of the candidates it chooses from (``nucleus`` sentences); else ``recovery``."""
    distinct: float
    """Share of distinct sentences among each code's N, weighted by code size."""
    distinct_2: float
    """Distinct bigrams over all bigrams of each code's N sentences, weighted by code size."""
    variable_recovery: list[float]
    """Per variable c_g: the share of generated sentences whose c_g, encoded again, is their code's."""
    unfiltered_variable_recovery: list[float]
    """The same for the unfiltered candidates (= ``variable_recovery`` for a procedure that does not filter)."""
    reconstruction_recovery: float
    """The share of the scored codes' members whose greedy reconstruction (posterior mean) encodes back to
    their code: the decoder's own round trip, an upper reference for unfiltered recovery."""
    labels: dict[str, LabelControl]
    """Per gold label (empty for an unlabelled corpus)."""
    codes: list[CodeControl]
    """Per scored code, largest first."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resolve(opts: ControlOptions, model: TextVAE) -> tuple[str, CodeSampler, CodeSampler | None]:
    """(name, sampler, the sampler of its unfiltered candidates for a procedure that filters them)."""
    procedure = opts.procedure
    if callable(procedure) and not isinstance(procedure, Procedure):
        return getattr(procedure, "__name__", type(procedure).__name__), procedure, None
    if isinstance(procedure, str):
        procedure = Procedure.named(procedure)
    if uses_stats(model, procedure) and opts.stats is None:
        raise ConfigError(f"the {procedure.name} procedure needs the codes' statistics (ControlOptions.stats; "
                          "demvae.training.run_folder.load_code_stats)")
    unfiltered = procedure.unfiltered
    return (procedure.label, procedure_sampler(procedure, opts.stats),
            None if unfiltered is None else procedure_sampler(unfiltered, opts.stats))


@torch.no_grad()
def _generate(model: TextVAE, vocab: Vocab, sampler: CodeSampler, codes: np.ndarray, batch_size: int,
              seed: int) -> list[list[str]]:
    """One sentence per row of ``codes`` [R, G], in row order."""
    model.eval()
    torch.manual_seed(seed)
    rows = torch.as_tensor(codes, dtype=torch.long, device=model.device)
    out: list[list[str]] = []
    for chunk in torch.split(rows, batch_size):
        out.extend(vocab.decode(ids) for ids in sampler(model, chunk).cpu().tolist())
    return out


def _matches(model: TextVAE, vocab: Vocab, sentences: list[list[str]], source: np.ndarray,
             max_len: int | None) -> np.ndarray:
    """[R, M] bool: which variables of each sentence's code, encoded again, equal its row of ``source``."""
    encoded = EncodedSplit.from_examples([Example(tuple(w)) for w in sentences], vocab, max_len)
    codes = encode_codes(model, encoded)
    assert codes is not None  # control_scores: the model has a discrete code
    # per-variable codes compared (joint ids are ranks within one split, not comparable across splits)
    return codes.codes == source


@torch.no_grad()
def _reconstruction_matches(model: TextVAE, vocab: Vocab, split: EncodedSplit, members: np.ndarray,
                            codes: np.ndarray, batch_size: int) -> np.ndarray:
    """[R] bool: for the split's sentences ``members``, whether their greedy reconstruction encodes back to
    their code (``codes`` [R, M])."""
    model.eval()
    out: list[list[str]] = []
    for start in range(0, len(members), batch_size):
        batch = split.batch(members[start:start + batch_size].tolist()).to(model.device)
        out.extend(vocab.decode(ids) for ids in model.reconstruct(batch).cpu().tolist())
    return np.all(_matches(model, vocab, out, codes, split.max_len), axis=1)


def control_scores(
    model: TextVAE,
    vocab: Vocab,
    split: EncodedSplit,
    train: EncodedSplit,
    opts: ControlOptions | None = None,
    classifier: Callable[[], Any] = text_classifier,
) -> ControlResult:
    """Generate ``opts.n_per_code`` sentences from every code holding ``opts.min_share`` of ``split`` and
    score them (module docstring). ``train`` only fits the label classifiers (``classifier()`` makes one:
    any scikit-learn estimator on lists of strings)."""
    opts = opts or ControlOptions()
    name, sampler, unfiltered = _resolve(opts, model)
    if opts.n_per_code < 1 or not 0 < opts.min_share <= 1:
        raise ConfigError(f"control needs n_per_code >= 1 and 0 < min_share <= 1, got {opts.n_per_code}, "
                          f"{opts.min_share}")
    found = encode_codes(model, split)
    if found is None:
        raise ConfigError("the control metrics need a model with a discrete code")
    joint, per_variable = found.joint, found.codes
    values, first, sizes = np.unique(joint, return_index=True, return_counts=True)
    chosen = np.nonzero(sizes >= opts.min_share * len(split))[0]
    chosen = chosen[np.argsort(-sizes[chosen], kind="stable")]  # largest first, ties by code id
    n = opts.n_per_code
    if chosen.size == 0:  # every code is rarer than min_share
        nan = float("nan")
        return ControlResult(name, n, 0.0, nan, nan, nan, nan, [], [], nan, {}, [])
    source = np.repeat(per_variable[first[chosen]], n, axis=0)  # [C·n, M] the code each sentence comes from
    generated = _generate(model, vocab, sampler, source, opts.batch_size, opts.seed)
    matches = _matches(model, vocab, generated, source, split.max_len)  # [C·n, M]
    matches_unfiltered = matches if unfiltered is None else _matches(
        model, vocab, _generate(model, vocab, unfiltered, source, opts.batch_size, opts.seed), source,
        split.max_len)
    recovered = matches.all(1).reshape(-1, n).mean(1)  # [C]
    recovered_unfiltered = matches_unfiltered.all(1).reshape(-1, n).mean(1)
    per_sentence = np.repeat(sizes[chosen], n)  # the weight of each generated sentence: its code's size

    members = [np.nonzero(joint == values[c])[0] for c in chosen]
    members_all = np.concatenate(members)
    round_trip = _reconstruction_matches(model, vocab, split, members_all, per_variable[members_all],
                                         opts.batch_size)

    texts = [" ".join(w) for w in generated]
    split_texts = np.array([" ".join(w) for w in references(split, vocab)], dtype=object)
    train_texts = np.array([" ".join(w) for w in references(train, vocab)], dtype=object)
    rows = [CodeControl(tuple(int(v) for v in per_variable[first[c]]), int(sizes[c]), float(r),
                        distinct=distinct_share(generated[i * n: (i + 1) * n]),
                        distinct_2=distinct_2(generated[i * n: (i + 1) * n]), samples=texts[i * n: i * n + 3])
            for i, (c, r) in enumerate(zip(chosen, recovered))]
    labels: dict[str, LabelControl] = {}
    for label, y_tensor in split.labels.items():
        y, y_train = y_tensor.numpy(), train.labels[label].numpy()
        if not (y >= 0).any() or not (y_train >= 0).any():
            continue
        # one thread: the fit takes a second, and OpenMP threads competing for busy cores make it 5-10x slower
        with threadpool_limits(limits=1):
            model_y = classifier().fit(list(train_texts[y_train >= 0]), y_train[y_train >= 0])
            accuracy = float(np.mean(model_y.predict(list(split_texts[y >= 0])) == y[y >= 0]))
            predicted = np.asarray(model_y.predict(texts)).reshape(-1, n)  # [C, n]
        weights, agree, ceil = [], [], []
        for row, idx, pred in zip(rows, members, predicted):
            gold = y[idx][y[idx] >= 0]
            if gold.size == 0:
                continue
            row.majority[label], row.ceiling[label] = majority(gold)
            row.agreement[label] = float(np.mean(pred == row.majority[label]))
            weights.append(gold.size)
            agree.append(row.agreement[label])
            ceil.append(row.ceiling[label])
        if not weights:
            continue
        labels[label] = LabelControl(
            agreement=float(np.average(agree, weights=weights)),
            ceiling=float(np.average(ceil, weights=weights)),
            chance=majority(y[y >= 0])[1],
            classifier_accuracy=accuracy,
        )
    return ControlResult(
        procedure=name,
        n_per_code=n,
        coverage=float(sizes[chosen].sum() / len(split)),
        recovery=float(np.average(recovered, weights=sizes[chosen])),
        unfiltered_recovery=float(np.average(recovered_unfiltered, weights=sizes[chosen])),
        distinct=float(np.average([row.distinct for row in rows], weights=sizes[chosen])),
        distinct_2=float(np.average([row.distinct_2 for row in rows], weights=sizes[chosen])),
        variable_recovery=np.average(matches, axis=0, weights=per_sentence).tolist(),
        unfiltered_variable_recovery=np.average(matches_unfiltered, axis=0, weights=per_sentence).tolist(),
        reconstruction_recovery=float(round_trip.mean()),
        labels=labels,
        codes=rows,
    )


def control_table(results: Mapping[str, ControlResult], title: str | None = None, floatfmt: str = ".2f") -> str:
    """One column per result (e.g. per model or procedure), one row per measure (weighted by code size)."""
    names = list(results)
    measures: list[tuple[str, Callable[[ControlResult], Any]]] = [
        ("codes scored (share of the split)", lambda r: f"{len(r.codes)} ({r.coverage:.0%})"),
        ("code recovery", lambda r: r.recovery),
        ("code recovery of the unfiltered candidates", lambda r: r.unfiltered_recovery),
        ("distinct sentences per code (share)", lambda r: r.distinct),
        ("distinct-2 (distinct bigrams / bigrams)", lambda r: r.distinct_2),
        ("recovery per variable", lambda r: " ".join(f"{v:.2f}" for v in r.variable_recovery)),
        ("recovery per variable, unfiltered", lambda r: " ".join(f"{v:.2f}" for v in r.unfiltered_variable_recovery)),
        ("reconstruction recovery (members' round trip)", lambda r: r.reconstruction_recovery),
    ]
    labels = list(dict.fromkeys(k for r in results.values() for k in r.labels))
    for label in labels:
        def get(attr: str, label: str = label) -> Callable[[ControlResult], Any]:
            return lambda r: getattr(r.labels[label], attr) if label in r.labels else None

        measures += [
            (f"{label} agreement", get("agreement")),
            (f"{label} ceiling (code purity)", get("ceiling")),
            (f"{label} chance (largest class)", get("chance")),
            (f"{label} classifier accuracy", get("classifier_accuracy")),
        ]
    rows = [{"measure": m, **{name: fn(results[name]) for name in names}} for m, fn in measures]
    return format_table(rows, ["measure", *names], title=title, floatfmt=floatfmt)


def control_code_table(result: ControlResult, label_names: Mapping[str, list[str]] | None = None,
                       floatfmt: str = ".2f") -> str:
    """One row per scored code: size, recovery, distinct, distinct-2 and, per label, the majority class,
    agreement and ceiling."""
    label_names = label_names or {}
    labels = list(dict.fromkeys(k for row in result.codes for k in row.majority))
    rows = []
    for code in result.codes:
        row: dict[str, Any] = {"code": format_code(code.code), "size": code.size, "recovery": code.recovery,
                               "distinct": code.distinct, "distinct-2": code.distinct_2}
        for label in labels:
            if label in code.majority:
                names = label_names.get(label, [])
                value = code.majority[label]
                row[label] = names[value] if value < len(names) else value
                row[f"{label} agreement"] = code.agreement[label]
                row[f"{label} ceiling"] = code.ceiling[label]
        rows.append(row)
    columns = ["code", "size", "recovery", "distinct", "distinct-2"]
    for label in labels:
        columns += [label, f"{label} agreement", f"{label} ceiling"]
    return format_table(rows, columns, floatfmt=floatfmt)
