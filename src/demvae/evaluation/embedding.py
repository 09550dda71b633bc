"""Word-embedding similarity of responses (Average, Extrema, Greedy), as for SMD.

Per (hypothesis, reference) pair, after dropping tokens that start with ``<`` or
end with ``>`` (speaker/special tokens) and tokens without a vector, with
H, R the hypothesis / reference word vectors:

* Average = cos(mean(H), mean(R))
* Extrema = cos(ext(H), ext(R)); ext takes, per dimension, the value with the
  largest magnitude, keeping its sign (max if max > |min|, else min)
* Greedy  = ½ (mean_{r in R} max_{h in H} cos(r, h) + mean_{h in H} max_{r in R} cos(h, r))

Pairs with an empty side are skipped; each score is averaged over the remaining
pairs and multiplied by 100, the scale the paper reports. A zero vector has
cosine 0 with everything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from demvae.errors import DataError

__all__ = ["load_word_vectors", "embedding_scores", "filter_tokens"]


def load_word_vectors(
    path: str | os.PathLike,
    vocabulary: set[str] | None = None,
    lowercase: bool = False,
) -> dict[str, np.ndarray]:
    """Read GloVe text vectors (``word v1 ... vd`` per line) into ``{word: float32 array}``.

    The dimension is fixed by the first vector line; a word2vec-style header
    ``<count> <dim>`` on line 1 is skipped. Words containing spaces (present in
    GloVe 840B) are kept: the last d fields are the vector. With ``lowercase``
    keys are lowercased and the first occurrence wins (GloVe is frequency
    ordered). With ``vocabulary`` only those (possibly lowercased) keys are kept.
    A malformed line raises :class:`DataError` naming ``file:line``.
    """
    path = os.fspath(path)
    vectors: dict[str, np.ndarray] = {}
    dim: int | None = None
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot open word-vector file ({exc.strerror})", path) from exc
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(f"not valid UTF-8 ({exc.reason})", path, lineno) from None
            if not line.strip():
                continue
            parts = line.rstrip().split(" ")
            if dim is None:
                if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header: "<count> <dim>"
                dim = len(parts) - 1
                if dim < 1:
                    raise DataError("expected 'word v1 ... vd', found a single field", path, lineno)
            if len(parts) < dim + 1:
                raise DataError(
                    f"expected a word and {dim} values, found {len(parts)} fields", path, lineno
                )
            word = " ".join(parts[:-dim])
            if lowercase:
                word = word.lower()
            if vocabulary is not None and word not in vocabulary:
                continue
            if word in vectors:
                continue
            try:
                vec = np.array(parts[-dim:], dtype=np.float32)
            except ValueError:
                raise DataError("non-numeric vector value", path, lineno) from None
            vectors[word] = vec
    if dim is None:
        raise DataError("word-vector file is empty", path)
    return vectors


def filter_tokens(tokens: Sequence[str] | str, vectors: dict[str, np.ndarray]) -> list[str]:
    """Drop special tokens (starting with ``<`` or ending with ``>``) and words without a vector."""
    if isinstance(tokens, str):
        tokens = tokens.split()
    return [t for t in tokens if not (t.startswith("<") or t.endswith(">")) and t in vectors]


def _unit_rows(mat: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(mat, axis=-1, keepdims=True)
    return np.divide(mat, norms, out=np.zeros_like(mat), where=norms > 0)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def _extrema(mat: np.ndarray) -> np.ndarray:
    hi = mat.max(axis=0)
    lo = mat.min(axis=0)
    return np.where(hi > np.abs(lo), hi, lo)


def embedding_scores(
    hypotheses: Iterable[Sequence[str] | str],
    references: Iterable[Sequence[str] | str],
    vectors: dict[str, np.ndarray],
) -> dict[str, float]:
    """Average, Extrema and Greedy embedding scores x 100, averaged over pairs.

    Returns ``dict(average, extrema, greedy, n_pairs)``; ``n_pairs`` counts the
    pairs scored (both sides non-empty after filtering). With no scorable pair
    the three scores are NaN.
    """
    hyps = list(hypotheses)
    refs = list(references)
    if len(hyps) != len(refs):
        raise ValueError(f"embedding_scores: {len(hyps)} hypotheses but {len(refs)} references")
    sums = np.zeros(3)
    n = 0
    for hyp, ref in zip(hyps, refs):
        h_tok = filter_tokens(hyp, vectors)
        r_tok = filter_tokens(ref, vectors)
        if not h_tok or not r_tok:
            continue
        H = np.stack([vectors[t] for t in h_tok]).astype(np.float64)
        R = np.stack([vectors[t] for t in r_tok]).astype(np.float64)
        average = _cos(H.mean(axis=0), R.mean(axis=0))
        extrema = _cos(_extrema(H), _extrema(R))
        sim = _unit_rows(R) @ _unit_rows(H).T  # [len(R), len(H)]
        greedy = 0.5 * (sim.max(axis=1).mean() + sim.max(axis=0).mean())
        sums += (average, extrema, greedy)
        n += 1
    if n == 0:
        avg, ext, gre = (float("nan"),) * 3
    else:
        avg, ext, gre = (100.0 * sums / n).tolist()
    return {"average": avg, "extrema": ext, "greedy": gre, "n_pairs": n}
