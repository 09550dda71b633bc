"""A lexical clustering baseline for the codes' homogeneity: do the codes beat plain clustering of the words?

k-means on TF-IDF + LSA sentence vectors (scikit-learn): TF-IDF of whitespace tokens (sublinear tf), reduced
to :data:`LSA_DIMS` dimensions by a truncated SVD and L2-normalised (so k-means compares directions, as
cosine similarity), fitted on the *train* split; every sentence of the scored split goes to its nearest
centre, and the clusters are scored against the gold labels like the codes
(:func:`demvae.evaluation.clustering.cluster_scores`). As many clusters as the model has joint codes (K^M),
capped (:func:`baseline_clusters`). Deterministic for a seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from demvae.data.batching import EncodedSplit
from demvae.data.vocab import Vocab
from demvae.evaluation.clustering import cluster_scores
from demvae.evaluation.generation import references

__all__ = ["LABEL", "LSA_DIMS", "MAX_CLUSTERS", "Baseline", "baseline_clusters", "lexical_clusters",
           "baseline_scores",
           "split_baseline"]

LABEL = "baseline (TF-IDF k-means)"
"""The baseline's row name in the tables."""
LSA_DIMS = 100
MAX_CLUSTERS = 1000
"""Beyond this many joint codes (e.g. DVAE's 8^30) a model's codes are near-unique per sentence, where
homogeneity says little; k-means' time grows with the clusters."""
TRAIN_PER_CLUSTER = 10
"""At least this many train sentences per cluster, so that a centre is fitted on more than one sentence."""


@dataclass(frozen=True)
class Baseline:
    n_clusters: int
    scores: dict[str, dict[str, float]]
    """Label -> homogeneity, completeness, V-measure, NMI of the baseline's clusters."""

    def to_dict(self) -> dict:
        return {"method": LABEL, "n_clusters": self.n_clusters, "lsa_dims": LSA_DIMS, "homogeneity": self.scores}


def baseline_clusters(code_shape: tuple[int, int], n_train: int) -> int:
    """The number of clusters for a model of M variables × K values: K^M, at most :data:`MAX_CLUSTERS` and one
    per :data:`TRAIN_PER_CLUSTER` train sentences (at least 1)."""
    m, k = code_shape
    cap = min(MAX_CLUSTERS, max(1, n_train // TRAIN_PER_CLUSTER))
    return min(k ** m, cap)  # Python integers: 8^30 does not overflow


def lexical_clusters(train: Sequence[str], texts: Sequence[str], n_clusters: int, seed: int = 0,
                     dims: int = LSA_DIMS) -> np.ndarray:
    """The cluster of every sentence of ``texts`` [N] (whitespace-tokenised strings) by k-means with
    ``n_clusters`` centres on TF-IDF + LSA vectors, everything fitted on ``train``."""
    if not 1 <= n_clusters <= len(train):
        raise ValueError(f"need 1 <= n_clusters <= {len(train)} train sentences, got {n_clusters}")
    tfidf = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True)
    # one thread: k-means and the SVD fit in seconds, and OpenMP threads on busy cores make them much slower
    with threadpool_limits(limits=1):
        x_train = tfidf.fit_transform(train)
        x = tfidf.transform(texts)
        n_dims = min(dims, x_train.shape[1] - 1)
        if n_dims >= 1:  # LSA; a vocabulary of one word keeps its one dimension
            svd = TruncatedSVD(n_components=n_dims, random_state=seed).fit(x_train)
            x_train, x = svd.transform(x_train), svd.transform(x)
        x_train, x = normalize(x_train), normalize(x)
        with warnings.catch_warnings():  # fewer distinct sentences than clusters: some centres coincide
            warnings.simplefilter("ignore", ConvergenceWarning)
            kmeans = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed).fit(x_train)
        return kmeans.predict(x).astype(np.int64)


def baseline_scores(train: Sequence[str], texts: Sequence[str], labels: Mapping[str, np.ndarray],
                    code_shape: tuple[int, int], seed: int = 0) -> Baseline | None:
    """The baseline's scores against every label of ``texts`` (-1: unlabelled); None if no label has a
    labelled sentence or there is nothing to fit on."""
    labelled = {name: y for name, y in labels.items() if (np.asarray(y) >= 0).any()}
    if not labelled or not train:
        return None
    n = baseline_clusters(code_shape, len(train))
    found = lexical_clusters(train, texts, n, seed)
    scores = {}
    for name, y in labelled.items():
        y = np.asarray(y)
        keep = y >= 0
        scores[name] = cluster_scores(y[keep], found[keep])
    return Baseline(n, scores)


def split_baseline(train: EncodedSplit, split: EncodedSplit, vocab: Vocab, code_shape: tuple[int, int],
                   seed: int = 0) -> Baseline | None:
    """:func:`baseline_scores` of encoded splits: the sentences as the model sees them (truncated, OOV as
    ``<unk>``), so that the baseline reads what the model's encoder reads."""
    texts = [" ".join(w) for w in references(split, vocab)]
    train_texts = [" ".join(w) for w in references(train, vocab)]
    labels = {name: y.numpy() for name, y in split.labels.items()}
    return baseline_scores(train_texts, texts, labels, code_shape, seed)
