"""How each reported metric is computed: the one source of the conventions that ``results.md`` and the
HTML report print next to the numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Convention", "CONVENTIONS", "convention_for", "conventions_markdown"]


@dataclass(frozen=True)
class Convention:
    title: str
    """The metric's printed name, e.g. ``KL(c)``."""
    columns: tuple[str, ...]
    """The result keys it documents (:func:`demvae.evaluation.run.flat_row` names); a key ending in ``_``
    is a prefix (``homog_`` covers ``homog_act``, ``homog_emotion``, ...)."""
    text: str
    """One sentence or two, Markdown inline code allowed."""

    def covers(self, column: str) -> bool:
        return any(column == c or (c.endswith("_") and column.startswith(c)) for c in self.columns)


CONVENTIONS: tuple[Convention, ...] = (
    Convention("β", ("beta",), "as the paper: objective = ELBO + β·L_d (the original code's flag is 1 − β)."),
    Convention("NLL", ("nll",), "importance-sampled upper bound in nats per sentence, the `</s>` prediction "
               "included; proposal = the model's posterior (c marginalised exactly for the mixture prior); "
               "logsumexp in float64. RNN-LM: exact."),
    Convention("PPL", ("is_ppl",), "exp(IS NLL summed over sentences / predicted tokens, `</s>` included); "
               "`is_ppl_words` in the metrics file leaves `</s>` out of the denominator."),
    Convention("BLEU", ("bleu",), "corpus BLEU-4 ×100 of greedy reconstructions from the posterior mean, computed "
               "like Moses multi-bleu.perl (unsmoothed, whitespace tokens); sacreBLEU's score is in each run's "
               "metrics file."),
    Convention("rPPL", ("rppl",), "the library's GRU language model (fixed recipe, "
               "`demvae.evaluation.rppl.RPPL_RECIPE`) trained on the prior samples (greedy decoding for latent "
               "models, as the paper) and measured on the real test split, with the evaluated model's vocabulary. "
               "The paper used an external AWD-LSTM, so absolute values differ."),
    Convention("rPPL real", ("rppl_real",), "the same LM recipe and budget trained on as many real train sentences "
               "(a seeded draw) as the prior samples: the rPPL that perfect samples would get at this budget, so a "
               "model's rPPL is read against it (a collapsed model's samples stay far above it)."),
    Convention("wKL", ("wkl",), "KL(P_gen ‖ P_train) of unigram frequencies; the column is our add-α-smoothed "
               "variant (generated-only words count); the original's variant (which skips them) is `wkl_paper` in "
               "each run's metrics file."),
    Convention("KL(c)", ("kl_c",), "Σ over variables of KL(q(c|x) ‖ U)."),
    Convention("KL(z)", ("kl_z",), "exact KL for the mixture (average-prior KL + dispersion)."),
    Convention("Var", ("param_var",), "Σ over parameters of the q(c|x)-weighted variance of the prior's natural "
               "parameters."),
    Convention("MI", ("mutual_info",), "I(x; c) per variable averaged over variables, from the split's aggregate "
               "posterior."),
    Convention("Homogeneity", ("homog_",), "joint argmax code as one cluster id vs the gold label (scikit-learn)."),
    Convention("V-measure", ("v_measure_",), "the same clusters against the same labels (scikit-learn)."),
    Convention("Baseline", ("baseline_",), "baseline (TF-IDF k-means): k-means on the sentences' TF-IDF + LSA "
               "vectors (100 dimensions, L2-normalised; `demvae.evaluation.baseline`) fitted on the train split, with "
               "as many clusters as the model's K^M joint codes (at most 1,000 and one per 10 train sentences), "
               "scored like the codes; `baseline_clusters` is that number."),
    Convention("Accuracy", ("acc_", "majority_"), "argmax of each supervised variable's q(v|x) against its label; "
               "`majority_<label>` is the accuracy of always answering the commonest class."),
    Convention("Code recovery", ("control_recovery", "control_recovery_unfiltered", "control_recovery_reconstruction"),
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
    Convention("Variety", ("control_distinct", "control_distinct_2"),
               "`control` group: per code, the share of distinct sentences among its N (`control_distinct`) and "
               "distinct-2, the distinct word bigrams over all word bigrams of its N sentences "
               "(`control_distinct_2`); weighted by code size."),
    Convention("Control agreement", ("control_agree_", "control_ceiling_", "control_chance_"),
               "the share of those sentences that a TF-IDF + logistic-regression classifier fitted on the gold "
               "*train* split gives the code's majority label among its split members; ceiling = the codes' "
               "purity (members with the majority label), chance = the largest label's share; weighted by the "
               "codes' labelled members."),
    Convention("Embedding", ("emb_",), "average / extrema / greedy cosine ×100 of reconstructions against "
               "references (pairs with an empty side skipped); look-up as the vector file spells words."),
    Convention("Response BLEU", ("response_bleu", "response_sacrebleu", "response_bleu_words",
                                 "response_sacrebleu_words"),
               "corpus BLEU-4 ×100 of a dialog model's generated responses against the true ones, computed like "
               "Moses multi-bleu.perl (unsmoothed, whitespace tokens, case-sensitive), hypothesis and reference "
               "**both starting with the speaker token** (`<usr>`/`<sys>`) as the original counts them, which adds "
               "an almost always matching unigram to every pair; references rebuilt from token ids (`<unk>`, "
               "truncation). `response_sacrebleu` is sacreBLEU on the same tokens; the `_words` variants leave the "
               "speaker token out."),
    Convention("Response embedding", ("response_embedding_",),
               "Average / Extrema / Greedy cosine ×100 of generated against true responses (special tokens and "
               "words without a vector dropped, pairs with an empty side skipped); by default GloVe 6B 50-d "
               "uncased vectors filtered to SMD, looked up lower-cased: a stand-in for the paper's GloVe 840B "
               "300-d (`response_embedding_vectors` in the metrics file names the vectors used)."),
)


def convention_for(column: str) -> Convention | None:
    """The convention documenting a result key, if one does."""
    return next((c for c in CONVENTIONS if c.covers(column)), None)


def conventions_markdown(columns: Sequence[str] | None = None) -> str:
    """The ``## Conventions`` section of ``results.md``: of the given result keys (None: every convention)."""
    shown = [c for c in CONVENTIONS if columns is None or any(c.covers(col) for col in columns)]
    return "\n".join(["## Conventions", *(f"- {c.title}: {c.text}" for c in shown)]) + "\n"
