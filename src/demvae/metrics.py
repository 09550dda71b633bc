"""Every reported quantity, declared once: its key (the name in ``metrics-<split>.json``, ``metrics.jsonl`` and a
table row), printed title, ``demvae eval`` group, which way is better and the convention that says how it is
computed. The CLI's table, results.md, the report, the reproduction tables and the training's summaries read it.

A family (a key ending in ``_``) stands for one metric per gold label, its members named by the label
(``homog_`` -> ``homog_act``, ``homog_emotion``). :data:`METRICS` is in table order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["Convention", "CONVENTIONS", "Metric", "METRICS", "METRIC_GROUPS", "metric", "title", "heading",
           "sort_key", "groups", "conventions", "conventions_markdown", "flat_row", "table_columns"]

Direction = Literal["higher", "lower"]
HIGHER: Final = "higher"
LOWER: Final = "lower"

METRIC_GROUPS = ("posterior", "nll", "bleu", "prior", "clusters", "control", "responses")
"""``demvae eval``'s groups (``--metrics``), in the order they run."""


@dataclass(frozen=True)
class Convention:
    title: str
    """The convention's name, e.g. ``KL(c)``."""
    text: str
    """One sentence or two, Markdown inline code allowed."""


CONVENTIONS: tuple[Convention, ...] = (
    Convention("β", "as the paper: objective = ELBO + β·L_d (the original code's flag is 1 − β)."),
    Convention("NLL", "importance-sampled upper bound in nats per sentence, the `</s>` prediction "
               "included; proposal = the model's posterior (c marginalised exactly for the mixture prior); "
               "logsumexp in float64. RNN-LM: exact."),
    Convention("PPL", "exp(IS NLL summed over sentences / predicted tokens, `</s>` included); "
               "`is_ppl_words` in the metrics file leaves `</s>` out of the denominator."),
    Convention("BLEU", "corpus BLEU-4 ×100 of greedy reconstructions from the posterior mean, computed "
               "like Moses multi-bleu.perl (unsmoothed, whitespace tokens); sacreBLEU's score is in each run's "
               "metrics file."),
    Convention("rPPL", "the library's GRU language model (fixed recipe, "
               "`demvae.evaluation.rppl.RPPL_RECIPE`) trained on the prior samples (greedy decoding for latent "
               "models, as the paper) and measured on the real test split, with the evaluated model's vocabulary. "
               "The paper used an external AWD-LSTM, so absolute values differ."),
    Convention("rPPL real", "the same LM recipe and budget trained on as many real train sentences "
               "(a seeded draw) as the prior samples: the rPPL that perfect samples would get at this budget, so a "
               "model's rPPL is read against it (a collapsed model's samples stay far above it)."),
    Convention("wKL", "KL(P_gen ‖ P_train) of unigram frequencies; the column is our add-α-smoothed "
               "variant (generated-only words count); the original's variant (which skips them) is `wkl_paper` in "
               "each run's metrics file."),
    Convention("KL(c)", "Σ over variables of KL(q(c|x) ‖ U)."),
    Convention("KL(z)", "exact KL for the mixture (average-prior KL + dispersion)."),
    Convention("Var", "Σ over parameters of the q(c|x)-weighted variance of the prior's natural "
               "parameters."),
    Convention("MI", "I(x; c) per variable averaged over variables, from the split's aggregate "
               "posterior."),
    Convention("Homogeneity", "joint argmax code as one cluster id vs the gold label (scikit-learn)."),
    Convention("V-measure", "the same clusters against the same labels (scikit-learn)."),
    Convention("Baseline", "baseline (TF-IDF k-means): k-means on the sentences' TF-IDF + LSA "
               "vectors (100 dimensions, L2-normalised; `demvae.evaluation.baseline`) fitted on the train split, with "
               "as many clusters as the model's K^M joint codes (at most 1,000 and one per 10 train sentences), "
               "scored like the codes; `baseline_clusters` is that number."),
    Convention("Accuracy", "argmax of each supervised variable's q(v|x) against its label; "
               "`majority_<label>` is the accuracy of always answering the commonest class."),
    Convention("Code recovery",
               "`control` group: N sentences (default 20) generated from every code holding >= 1 % of the split "
               "by the generation procedure named in `control_procedure` (default `rerank-t0-p0.9`: z the mean of the "
               "code's aggregate posterior on train, words sampled from the top-0.9 nucleus, the best of 4 by q(c|x); "
               "`prior`: the paper's p(z|c), greedy decoding); the share that, encoded again, get exactly their "
               "code; weighted by code size. `rerank` keeps the candidate the model's own q(c|x) prefers, so its "
               "recovery is circular: `control_recovery_unfiltered` is that of the candidates it chooses from "
               "(the same as `control_recovery` for the other procedures). `control_recovery_reconstruction`: the "
               "share of the scored codes' members whose greedy reconstruction from the posterior mean encodes "
               "back to their code, the decoder's own round trip (an upper reference for unfiltered recovery); "
               "the metrics file also has the recovery of each variable alone (`variable_recovery`)."),
    Convention("Variety",
               "`control` group: per code, the share of distinct sentences among its N (`control_distinct`) and "
               "distinct-2, the distinct word bigrams over all word bigrams of its N sentences "
               "(`control_distinct_2`); weighted by code size."),
    Convention("Control agreement",
               "the share of those sentences that a TF-IDF + logistic-regression classifier fitted on the gold "
               "*train* split gives the code's majority label among its split members; ceiling = the codes' "
               "purity (members with the majority label), chance = the largest label's share; weighted by the "
               "codes' labelled members."),
    Convention("Embedding", "average / extrema / greedy cosine ×100 of reconstructions against "
               "references (pairs with an empty side skipped); look-up as the vector file spells words."),
    Convention("Response BLEU",
               "corpus BLEU-4 ×100 of a dialog model's generated responses against the true ones, computed like "
               "Moses multi-bleu.perl (unsmoothed, whitespace tokens, case-sensitive), hypothesis and reference "
               "**both starting with the speaker token** (`<usr>`/`<sys>`) as the original counts them, which adds "
               "an almost always matching unigram to every pair; references rebuilt from token ids (`<unk>`, "
               "truncation). `response_sacrebleu` is sacreBLEU on the same tokens; the `_words` variants leave the "
               "speaker token out."),
    Convention("Response embedding",
               "Average / Extrema / Greedy cosine ×100 of generated against true responses (special tokens and "
               "words without a vector dropped, pairs with an empty side skipped); by default GloVe 6B 50-d "
               "uncased vectors filtered to SMD, looked up lower-cased: a stand-in for the paper's GloVe 840B "
               "300-d (`response_embedding_vectors` in the metrics file names the vectors used)."),
)
"""How each reported metric is computed, in the order results.md and the report list them."""


@dataclass(frozen=True)
class Metric:
    key: str
    """Its name in the files and a table row; a family's ends in ``_`` (the prefix of its members' keys)."""
    title: str
    """The printed name (a family member's: followed by its label)."""
    group: str | None
    """The :data:`METRIC_GROUPS` member a table runs for it (``codes_used``: ``clusters``, though ``posterior`` writes
    it too); None: no group writes it (a dialog run's stage-2 validation, a reproduction's β)."""
    direction: Direction | None = None
    """Which way is better; None: neither (a diagnostic, a count, a reference value)."""
    convention: Convention | None = None
    source: str = ""
    """Where a table row finds it in a metrics file when it is not a number at the top level: the keys down to it,
    ``*`` standing for a family member's label (``homogeneity.*.v_measure`` -> ``v_measure_act``)."""
    column: bool = False
    """A column of ``demvae eval``'s printed table (all of them are in the metrics file and the report)."""

    @property
    def family(self) -> bool:
        return self.key.endswith("_")

    def read(self, results: Mapping[str, Any]) -> dict[str, Any]:
        """Its table-row entries from a metrics file's ``results`` (one per label for a family; none where the file
        lacks it, or where the metric is a top-level number: those are copied as they are)."""
        found: dict[str, Any] = {}

        def walk(node: Any, path: tuple[str, ...], label: str) -> None:
            if not path:
                found[self.key + label] = node
            elif path[0] == "*":
                for name, child in node.items():
                    walk(child, path[1:], name)
            elif isinstance(node, Mapping) and path[0] in node:
                walk(node[path[0]], path[1:], label)

        if self.source:
            walk(results, tuple(self.source.split(".")), "")
        return found


_CONVENTION = {c.title: c for c in CONVENTIONS}


def _m(key: str, title: str, group: str | None, direction: Direction | None = None, convention: str | None = None,
       at: str = "", column: bool = False) -> Metric:
    return Metric(key, title, group, direction, _CONVENTION[convention] if convention else None, at, column)


METRICS: tuple[Metric, ...] = (
    _m("rppl", "rPPL", "prior", LOWER, "rPPL", column=True),
    _m("rppl_real", "rPPL real", "prior", None, "rPPL real"),
    _m("bleu", "BLEU", "bleu", HIGHER, "BLEU", column=True),
    _m("sacrebleu", "sacreBLEU", "bleu", HIGHER, "BLEU"),
    _m("wkl", "wKL", "prior", LOWER, "wKL", column=True),
    _m("wkl_paper", "wKL (original)", "prior", LOWER, "wKL"),
    _m("nll", "NLL", "nll", LOWER, "NLL", column=True),
    _m("is_ppl", "PPL", "nll", LOWER, "PPL", column=True),
    _m("is_ppl_words", "PPL words", "nll", LOWER, "PPL"),
    _m("ppl", "rec PPL", "posterior", LOWER),
    _m("neg_elbo", "−ELBO", "posterior", LOWER),
    _m("rec", "Reconstruction", "posterior", LOWER),
    _m("kl_z", "KL(z)", "posterior", None, "KL(z)", column=True),
    _m("kl_z_avg", "KL(z) to the average prior", "posterior"),
    _m("dispersion", "Dispersion", "posterior"),
    _m("kl_c", "KL(c)", "posterior", None, "KL(c)", column=True),
    _m("param_var", "Var", "posterior", None, "Var", column=True),
    _m("mutual_info", "MI", "posterior", None, "MI", column=True),
    _m("mutual_info_sum", "MI summed", "posterior"),
    _m("components_used", "Components used", "posterior"),
    _m("codes_used", "Codes used", "clusters"),
    _m("supervision", "Supervision CE", "posterior", LOWER),
    _m("loss", "Loss", "posterior", LOWER),
    _m("kl_weight", "KL weight w(t)", None),
    _m("homog_", "Homogeneity", "clusters", HIGHER, "Homogeneity", "homogeneity.*.homogeneity", column=True),
    _m("v_measure_", "V-measure", "clusters", HIGHER, "V-measure", "homogeneity.*.v_measure"),
    _m("baseline_clusters", "Baseline clusters", "clusters", None, "Baseline", "baseline.n_clusters"),
    _m("baseline_homog_", "Baseline homogeneity", "clusters", HIGHER, "Baseline", "baseline.homogeneity.*.homogeneity"),
    _m("baseline_v_measure_", "Baseline V-measure", "clusters", HIGHER, "Baseline", "baseline.homogeneity.*.v_measure"),
    _m("control_recovery", "Code recovery", "control", HIGHER, "Code recovery", "control.recovery", column=True),
    _m("control_recovery_unfiltered", "Unfiltered recovery", "control", HIGHER, "Code recovery",
       "control.unfiltered_recovery", column=True),
    _m("control_recovery_reconstruction", "Reconstruction recovery", "control", None, "Code recovery",
       "control.reconstruction_recovery", column=True),
    _m("control_distinct", "Distinct", "control", HIGHER, "Variety", "control.distinct", column=True),
    _m("control_distinct_2", "Distinct-2", "control", HIGHER, "Variety", "control.distinct_2", column=True),
    _m("control_agree_", "Agreement", "control", HIGHER, "Control agreement", "control.labels.*.agreement",
       column=True),
    _m("control_ceiling_", "Ceiling", "control", None, "Control agreement", "control.labels.*.ceiling", column=True),
    _m("control_chance_", "Chance", "control", None, "Control agreement", "control.labels.*.chance", column=True),
    _m("acc_", "Accuracy", "clusters", HIGHER, "Accuracy", "accuracy.*.accuracy", column=True),
    _m("majority_", "Majority", "clusters", None, "Accuracy", "accuracy.*.majority", column=True),
    *(_m(f"emb_{name}", f"Embedding {name}", "bleu", HIGHER, "Embedding", f"embedding.{name}", column=True)
      for name in ("average", "extrema", "greedy")),
    _m("emb_n_pairs", "Embedding pairs", "bleu", None, "Embedding", "embedding.n_pairs", column=True),
    _m("response_bleu", "Response BLEU", "responses", HIGHER, "Response BLEU", column=True),
    _m("response_bleu_words", "Response BLEU words", "responses", HIGHER, "Response BLEU", column=True),
    _m("response_sacrebleu", "Response sacreBLEU", "responses", HIGHER, "Response BLEU"),
    _m("response_sacrebleu_words", "Response sacreBLEU words", "responses", HIGHER, "Response BLEU"),
    *(_m(f"response_embedding_{name}", f"Response embedding {name}", "responses", HIGHER, "Response embedding",
         column=True) for name in ("average", "extrema", "greedy")),
    _m("response_embedding_n_pairs", "Response embedding pairs", "responses", None, "Response embedding"),
    _m("is_nll_se", "NLL standard error", "nll"),
    _m("is_n_sentences", "IS sentences", "nll"),
    _m("rppl_nll", "rPPL LM NLL", "prior", LOWER, "rPPL"),
    _m("rppl_train_sentences", "rPPL LM train sentences", "prior", None, "rPPL"),
    _m("rppl_real_nll", "rPPL real LM NLL", "prior", None, "rPPL real"),
    _m("rppl_real_train_sentences", "rPPL real LM train sentences", "prior", None, "rPPL real"),
    _m("policy", "Policy CE", None, LOWER),
    _m("attribute", "Attribute CE", None, LOWER),
    _m("policy_error", "Policy error", None, LOWER),
    _m("attribute_error", "Attribute error", None, LOWER),
    _m("nll_policy", "NLL + policy CE", None, LOWER),
    _m("errors", "Policy + attribute error", None, LOWER),
    _m("beta", "β", None, None, "β"),
)
"""Every metric, in table order."""

_BY_KEY = {m.key: m for m in METRICS}
_ORDER = {m.key: i for i, m in enumerate(METRICS)}
_ARROW: dict[Direction | None, str] = {HIGHER: " ↑", LOWER: " ↓", None: ""}
_FAMILIES = sorted((m for m in METRICS if m.family), key=lambda m: -len(m.key))  # the longest prefix wins


def metric(key: str) -> Metric | None:
    """The metric a result key names (a family member's family: ``homog_act`` -> ``homog_``); None if undeclared."""
    return _BY_KEY.get(key) or next((m for m in _FAMILIES if key.startswith(m.key)), None)


def title(key: str) -> str:
    """A key's printed name: ``rppl`` -> ``rPPL``, ``homog_act`` -> ``Homogeneity act``; an undeclared key as is."""
    m = metric(key)
    if m is None:
        return key
    return f"{m.title} {key[len(m.key):]}" if m.family and key != m.key else m.title


def heading(key: str) -> str:
    """A table's column header: the title and which way is better (``BLEU ↑``, ``rPPL ↓``)."""
    m = metric(key)
    return title(key) + _ARROW[m.direction if m else None]


def sort_key(key: str) -> tuple[int, str]:
    """Table order: the declared metrics in :data:`METRICS`' order (a family's members by label), then the rest."""
    m = metric(key)
    return (_ORDER[m.key] if m else len(METRICS), key)


def groups(keys: Iterable[str]) -> tuple[str, ...]:
    """The ``demvae eval`` groups that measure ``keys``, in the order they run."""
    needed = {m.group for m in map(metric, keys) if m is not None}
    return tuple(g for g in METRIC_GROUPS if g in needed)


def conventions(keys: Iterable[str]) -> list[Convention]:
    """The conventions that document ``keys``, in :data:`CONVENTIONS`' order."""
    found = {m.convention for m in map(metric, keys) if m is not None}
    return [c for c in CONVENTIONS if c in found]


def conventions_markdown(keys: Sequence[str] | None = None) -> str:
    """The ``## Conventions`` section of ``results.md``: of the given result keys (None: every convention)."""
    shown = CONVENTIONS if keys is None else conventions(keys)
    return "\n".join(["## Conventions", *(f"- {c.title}: {c.text}" for c in shown)]) + "\n"


def flat_row(results: Mapping[str, Any]) -> dict[str, Any]:
    """One table row of a metrics file's ``results``: its top-level numbers, the model, and the metrics it holds
    deeper (per label: ``homogeneity.act.homogeneity`` -> ``homog_act``; :attr:`Metric.source`)."""
    row: dict[str, Any] = {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    row["model"] = results.get("model")
    for m in METRICS:
        row.update(m.read(results))
    return row


def table_columns(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """``demvae eval``'s table: the :attr:`Metric.column` keys present in ``rows``, in table order after ``model``,
    and the legend (the conventions that document them)."""
    present = set().union(*(r.keys() for r in rows))
    columns = ["model", *sorted((k for k in present if (m := metric(k)) is not None and m.column), key=sort_key)]
    return columns, [f"{c.title}: {c.text}" for c in conventions(columns)]
