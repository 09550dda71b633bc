"""Word-level KL divergence (wKL) between generated text and a reference corpus.

Direction: ``KL(P_gen || P_ref)`` over unigram relative frequencies, in nats.

* ``variant="paper"`` reproduces the original ``scripts/test_wKL.py``::

      wKL = sum_{w in V_gen ∩ V_ref} P_gen(w) * log(P_gen(w) / P_ref(w)),
      P(w) = count(w) / (total token count of that corpus)

  Words that occur only in the generated text are silently skipped, so the
  value can understate the divergence (and can even be negative).

* ``variant="smoothed"`` (default) is a proper KL divergence over the union
  vocabulary V = V_gen ∪ V_ref with add-alpha smoothing of both corpora::

      P(w) = (count(w) + alpha) / (N + alpha * |V|),   alpha = SMOOTHING_ALPHA = 0.01

  Generated-only words are penalised (as if seen alpha times in the
  reference) instead of dropped; the value is >= 0 and 0 for identical corpora.
  With alpha = 0.01 the frequencies of words seen in both corpora change by a
  relative ~alpha*|V|/N (1e-4 on PTB), so on samples whose words all occur in the
  reference the two variants agree to about that precision.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = ["word_kl", "SMOOTHING_ALPHA", "VARIANTS"]

SMOOTHING_ALPHA = 0.01
VARIANTS = ("smoothed", "paper")


def _count(corpus: Iterable[Sequence[str]]) -> Counter:
    counts: Counter = Counter()
    for sentence in corpus:
        counts.update(sentence.split() if isinstance(sentence, str) else sentence)
    return counts


def word_kl(
    generated: Iterable[Sequence[str]],
    reference: Iterable[Sequence[str]],
    variant: str = "smoothed",
    alpha: float = SMOOTHING_ALPHA,
) -> float:
    """Unigram ``KL(P_gen || P_ref)`` in nats (see the module docstring for both variants).

    ``generated`` and ``reference`` are iterables of token lists (a plain string
    is split on whitespace). ``alpha`` is only used by ``variant="smoothed"``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"word_kl: unknown variant {variant!r}; choose one of {VARIANTS}")
    gen = _count(generated)
    ref = _count(reference)
    n_gen = sum(gen.values())
    n_ref = sum(ref.values())
    if n_gen == 0 or n_ref == 0:
        raise ValueError("word_kl: the generated and reference corpora must both be non-empty")

    if variant == "paper":
        kl = 0.0
        for w, c in gen.items():
            r = ref.get(w, 0)
            if r:
                p = c / n_gen
                kl += p * math.log(p / (r / n_ref))
        return kl

    if alpha <= 0:
        raise ValueError(f"word_kl: alpha must be > 0, got {alpha}")
    vocab = gen.keys() | ref.keys()
    z_gen = n_gen + alpha * len(vocab)
    z_ref = n_ref + alpha * len(vocab)
    kl = 0.0
    for w in vocab:
        p = (gen.get(w, 0) + alpha) / z_gen
        q = (ref.get(w, 0) + alpha) / z_ref
        kl += p * math.log(p / q)
    return max(kl, 0.0)  # clamp float round-off of a true 0
