"""Dialog response metrics (SMD, the paper's Table 3): BLEU as the original counts it, and the embedding metrics.

Responses are token lists as the decoder writes them: the speaker token (``<usr>``/``<sys>``) first, then the words;
references are rebuilt from their ids (so they hold ``<unk>`` and truncations, as the original's do).

* **BLEU.** The original scores hypothesis and reference *both starting with the speaker token*, which adds an
  almost always matching unigram (and the bigram after it) to every pair; :func:`response_bleu` reports that number
  (``bleu``, multi-bleu, the paper's; ``sacrebleu`` with its signature) and the same scores on the words alone
  (``bleu_words``, ``sacrebleu_words``), so the inflation is visible.
* **Embedding metrics.** Average / Extrema / Greedy of :mod:`demvae.evaluation.embedding` (special tokens and
  words without a vector are dropped). The original looks words up *case-sensitively* in cased 840B 300-d GloVe
  vectors; the vectors shipped here (``glove/glove.6B.50d.smd.txt``: GloVe 6B, 50-d, uncased, filtered to SMD) are a
  stand-in, and with them a case-sensitive look-up finds no capitalised word. ``lowercase=True`` looks every word up
  lower-cased instead; :func:`vector_coverage` measures what each choice finds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from demvae.data.corpora.smd import SPEAKERS
from demvae.evaluation.bleu import multi_bleu, sacre_bleu
from demvae.evaluation.embedding import embedding_scores, filter_tokens, load_word_vectors

SMD_VECTORS = Path("glove") / "glove.6B.50d.smd.txt"
"""The word vectors of the SMD embedding metrics, relative to the data folder."""
VECTORS_LABEL = "GloVe 6B 50-d uncased (a stand-in for the paper's GloVe 840B 300-d)"

_SPEAKER_TOKENS = frozenset(SPEAKERS.values())

__all__ = [
    "SMD_VECTORS",
    "VECTORS_LABEL",
    "strip_speaker",
    "response_bleu",
    "load_response_vectors",
    "response_embedding_scores",
    "vector_coverage",
]


def strip_speaker(tokens: Sequence[str]) -> list[str]:
    """The words of a response: ``tokens`` without a leading ``<usr>``/``<sys>``."""
    tokens = list(tokens)
    return tokens[1:] if tokens and tokens[0] in _SPEAKER_TOKENS else tokens


def response_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict:
    """Corpus BLEU ×100 of responses: ``bleu`` / ``sacrebleu`` with the speaker token kept on both sides (the
    original's convention; ``bleu`` is the paper's multi-bleu number), ``bleu_words`` / ``sacrebleu_words`` on the
    words alone, and ``sacrebleu_signature``."""
    hyps, refs = [list(h) for h in hypotheses], [list(r) for r in references]
    words = [strip_speaker(h) for h in hyps], [strip_speaker(r) for r in refs]
    sacre, signature = sacre_bleu(hyps, refs)
    return {
        "bleu": multi_bleu(hyps, refs),
        "sacrebleu": sacre,
        "bleu_words": multi_bleu(*words),
        "sacrebleu_words": sacre_bleu(*words)[0],
        "sacrebleu_signature": signature,
    }


def load_response_vectors(
    path: str | os.PathLike, vocabulary: Iterable[str], lowercase: bool = False
) -> dict[str, np.ndarray]:
    """The vectors of ``vocabulary``'s words (lower-cased with ``lowercase``) from a GloVe text file."""
    words = {w.lower() for w in vocabulary} if lowercase else set(vocabulary)
    return load_word_vectors(path, vocabulary=words, lowercase=lowercase)


def _cased(sentences: Iterable[Sequence[str] | str], lowercase: bool) -> list[list[str]]:
    out = [s.split() if isinstance(s, str) else list(s) for s in sentences]
    return [[w.lower() for w in s] for s in out] if lowercase else out


def response_embedding_scores(
    hypotheses: Iterable[Sequence[str] | str],
    references: Iterable[Sequence[str] | str],
    vectors: dict[str, np.ndarray],
    lowercase: bool = False,
) -> dict[str, float]:
    """Average / Extrema / Greedy ×100 (and ``n_pairs``), looking words up as written (the original) or, with
    ``lowercase``, lower-cased (``vectors`` must then have lower-case keys, as :func:`load_response_vectors` gives)."""
    return embedding_scores(_cased(hypotheses, lowercase), _cased(references, lowercase), vectors)


def vector_coverage(
    sentences: Iterable[Sequence[str] | str], vectors: dict[str, np.ndarray], lowercase: bool = False
) -> dict[str, int]:
    """How many word tokens and types (special tokens excluded) find a vector: ``tokens``, ``tokens_found``,
    ``types``, ``types_found``."""
    words = [w for s in _cased(sentences, lowercase) for w in s if not (w.startswith("<") or w.endswith(">"))]
    found = filter_tokens(words, vectors)
    return {"tokens": len(words), "tokens_found": len(found), "types": len(set(words)), "types_found": len(set(found))}
