"""Corpus BLEU-4 for reconstruction and dialogue responses.

Two implementations, both reported as a number in [0, 100]:

* :func:`multi_bleu` -- the paper-compatible score, computed exactly as Moses
  ``multi-bleu.perl`` with one reference per sentence::

      p_n  = sum_s sum_g min(count_hyp_s(g), count_ref_s(g)) / sum_s max(len(hyp_s) - n + 1, 0)
      BLEU = 100 * BP * exp(mean_{n=1..4} log p_n)          (0 if any p_n == 0)
      BP   = exp(1 - r / c) if c < r else 1                  (c, r: total hyp / ref tokens)

  Tokens are whitespace-separated and matched case-sensitively; no smoothing.

* :func:`sacre_bleu` -- sacreBLEU with its default settings (13a tokenizer,
  exponential smoothing), returned with its signature for reproducibility.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

__all__ = ["multi_bleu", "sacre_bleu", "MAX_ORDER"]

MAX_ORDER = 4


def _tokens(sentence: Sequence[str] | str) -> list[str]:
    if isinstance(sentence, str):
        return sentence.split()
    return list(sentence)


def _ngram_counts(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def multi_bleu(
    hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> float:
    """Corpus BLEU-4 x 100 as Moses ``multi-bleu.perl`` (one reference per hypothesis).

    ``hypotheses[i]`` and ``references[i]`` are token lists (a plain string is
    split on whitespace). Clipped n-gram matches and n-gram totals are summed
    over the corpus for n = 1..4; the score is 0 when any precision is 0
    (no smoothing), otherwise ``100 * BP * exp(mean log p_n)`` with brevity
    penalty ``BP = exp(1 - r/c)`` when the total hypothesis length c is below the
    total reference length r. Empty hypotheses are allowed (0 tokens).
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            f"multi_bleu: {len(hypotheses)} hypotheses but {len(references)} references"
        )
    correct = [0] * MAX_ORDER
    total = [0] * MAX_ORDER
    hyp_len = 0
    ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        h = _tokens(hyp)
        r = _tokens(ref)
        hyp_len += len(h)
        ref_len += len(r)
        for n in range(1, MAX_ORDER + 1):
            if len(h) < n:
                break
            h_counts = _ngram_counts(h, n)
            r_counts = _ngram_counts(r, n)
            total[n - 1] += len(h) - n + 1
            correct[n - 1] += sum(min(c, r_counts[g]) for g, c in h_counts.items())
    if any(c == 0 for c in correct):  # also covers total == 0
        return 0.0
    log_prec = sum(math.log(c / t) for c, t in zip(correct, total)) / MAX_ORDER
    brevity = math.exp(1.0 - ref_len / hyp_len) if hyp_len < ref_len else 1.0
    return 100.0 * brevity * math.exp(log_prec)


def sacre_bleu(hypotheses: Sequence[Sequence[str] | str],
               references: Sequence[Sequence[str] | str]) -> tuple[float, str]:
    """Corpus BLEU x 100 via sacreBLEU's defaults; returns ``(score, signature)``.

    Uses ``sacrebleu.metrics.BLEU()`` (13a tokenizer, case-sensitive, ``exp``
    smoothing, BLEU-4) on detokenised sentence strings. It differs from
    :func:`multi_bleu` through its own tokenisation (13a splits punctuation) and
    smoothing (a corpus with a zero n-gram precision does not score 0), so the
    two numbers are not interchangeable; report the signature with the score.
    Token lists are accepted and joined with single spaces.
    """
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(
            f"sacre_bleu: {len(hypotheses)} hypotheses but {len(references)} references"
        )
    hyps = [h if isinstance(h, str) else " ".join(h) for h in hypotheses]
    refs = [r if isinstance(r, str) else " ".join(r) for r in references]
    metric = BLEU(force=True)  # our text is tokenised on purpose; skip sacreBLEU's warning about it
    result = metric.corpus_score(hyps, [refs])
    return float(result.score), str(metric.get_signature())
