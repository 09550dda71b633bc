"""Clustering and accuracy scores for discrete latent codes (DailyDialog act/emotion).

The code of an utterance is the per-variable argmax of q(c_i|x), i = 1..M, each in
{0..K-1}. The paper merges the M codes into one cluster id (at most K^M clusters, as many as
there are distinct codes in the split)
and scores it against the gold labels with

* homogeneity  h = 1 - H(C|K) / H(C)   (each cluster holds one class; C: gold class, K: cluster)
* completeness c = 1 - H(K|C) / H(K)   (each class sits in one cluster)
* V-measure    2hc / (h + c)
* NMI          I(C; K) / mean(H(C), H(K))  (scikit-learn's default arithmetic mean)

all computed by scikit-learn (natural log; a zero entropy counts as score 1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics

__all__ = ["joint_code", "cluster_scores", "accuracy", "per_variable_homogeneity"]


def _codes_2d(codes: ArrayLike) -> np.ndarray:
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"codes must have shape [N, M], got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(arr == np.round(arr)):
            raise ValueError("codes must be integers")
        arr = arr.astype(np.int64)
    return arr.astype(np.int64, copy=False)


def joint_code(codes: ArrayLike, k: int | None = None) -> np.ndarray:
    """Merge per-variable codes ``[N, M]`` into one cluster id per row.

    Equal rows get equal ids and different rows different ids: the id is the rank of the row among
    the distinct rows, in lexicographic order (the first variable most significant, as a mixed-radix
    number would order them). No K^M arithmetic, so M = 30 variables of K = 8 values (2^90 codes)
    cannot overflow. ``k``, if given, checks that every code lies in 0..k-1.
    """
    arr = _codes_2d(codes)
    if k is not None and arr.size and (arr.min() < 0 or arr.max() >= k):
        raise ValueError(f"codes must lie in 0..{k - 1}, got range {arr.min()}..{arr.max()}")
    _, ids = np.unique(arr, axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def cluster_scores(labels_true: ArrayLike, labels_pred: ArrayLike) -> dict[str, float]:
    """Homogeneity, completeness, V-measure and NMI of a clustering (scikit-learn).

    ``labels_true`` may be any hashable labels (e.g. act or emotion strings).
    """
    labels_true = np.asarray(labels_true)
    labels_pred = np.asarray(labels_pred)
    if labels_true.shape != labels_pred.shape or labels_true.ndim != 1:
        raise ValueError(
            f"labels must be 1-d and of equal length, got {labels_true.shape} and {labels_pred.shape}"
        )
    h, c, v = metrics.homogeneity_completeness_v_measure(labels_true, labels_pred)
    return {
        "homogeneity": float(h),
        "completeness": float(c),
        "v_measure": float(v),
        "nmi": float(metrics.normalized_mutual_info_score(labels_true, labels_pred)),
    }


def majority(labels: np.ndarray) -> tuple[int, float]:
    """The commonest class of non-empty, non-negative ``labels`` (the smallest id among ties) and its share."""
    counts = np.bincount(labels)
    return int(counts.argmax()), float(counts.max() / labels.size)


def accuracy(pred: ArrayLike, true: ArrayLike) -> dict[str, float]:
    """``accuracy = mean(pred == true)``; ``majority`` = share of the most frequent true class.

    The majority share is the accuracy of always predicting the commonest class,
    the baseline the paper's supervised ACC should be read against.
    """
    pred = np.asarray(pred)
    true = np.asarray(true)
    if pred.shape != true.shape or true.ndim != 1 or true.size == 0:
        raise ValueError(f"pred and true must be non-empty 1-d of equal length, got {pred.shape}, {true.shape}")
    _, counts = np.unique(true, return_counts=True)
    return {
        "accuracy": float(np.mean(pred == true)),
        "majority": float(counts.max() / true.size),
    }


def per_variable_homogeneity(codes: ArrayLike, labels: ArrayLike) -> list[float]:
    """Homogeneity of each latent variable's code ``codes[:, i]`` alone against ``labels``."""
    arr = _codes_2d(codes)
    labels = np.asarray(labels)
    if labels.shape != (arr.shape[0],):
        raise ValueError(f"labels must have shape ({arr.shape[0]},), got {labels.shape}")
    return [float(metrics.homogeneity_score(labels, arr[:, i])) for i in range(arr.shape[1])]
