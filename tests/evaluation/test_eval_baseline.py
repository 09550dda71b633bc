"""The lexical clustering baseline (k-means on TF-IDF + LSA, fitted on train): it recovers two clearly
separated vocabularies, its scores are scikit-learn's on its own clusters, it is fitted on train only and
deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import homogeneity_score, v_measure_score

from demvae.evaluation.baseline import MAX_CLUSTERS, baseline_clusters, baseline_scores, lexical_clusters

WORDS = {0: "apple pear plum fig lime kiwi mango melon".split(), 1: "train bus car tram ship boat jet bike".split()}


def corpus(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``n`` sentences, each of 3-7 words from one of two disjoint vocabularies (its label)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    texts = [" ".join(rng.choice(WORDS[int(y)], size=rng.integers(3, 8))) for y in labels]
    return texts, labels


def test_two_separate_vocabularies_are_recovered():
    train, _ = corpus(200, 0)
    test, y = corpus(80, 1)
    found = lexical_clusters(train, test, n_clusters=2, seed=0)
    assert homogeneity_score(y, found) == pytest.approx(1.0) and v_measure_score(y, found) == pytest.approx(1.0)
    scores = baseline_scores(train, test, {"topic": y}, code_shape=(1, 2), seed=0)
    assert scores.n_clusters == 2 and scores.scores["topic"]["homogeneity"] == pytest.approx(1.0)


def test_scores_are_sklearns_on_its_own_clusters_and_unlabelled_sentences_are_left_out():
    train, _ = corpus(300, 2)
    test, y = corpus(100, 3)
    noisy = np.where(np.random.default_rng(4).random(100) < 0.3, 1 - y, y)  # labels that the words do not decide
    noisy[:10] = -1
    found = lexical_clusters(train, test, n_clusters=5, seed=7)
    got = baseline_scores(train, test, {"topic": noisy, "none": np.full(100, -1)}, code_shape=(1, 5), seed=7)
    assert set(got.scores) == {"topic"}  # a label without a labelled sentence is not scored
    assert got.scores["topic"]["homogeneity"] == pytest.approx(homogeneity_score(noisy[10:], found[10:]), abs=1e-12)
    assert got.scores["topic"]["v_measure"] == pytest.approx(v_measure_score(noisy[10:], found[10:]), abs=1e-12)
    assert 0 < got.scores["topic"]["homogeneity"] < 1
    assert baseline_scores(train, test, {"none": np.full(100, -1)}, (1, 5)) is None


def test_fitted_on_train_only_and_deterministic_for_a_seed():
    train, _ = corpus(300, 5)
    test, _ = corpus(60, 6)
    other, _ = corpus(40, 7)
    first = lexical_clusters(train, test, 6, seed=3)
    assert np.array_equal(first, lexical_clusters(train, test, 6, seed=3))
    # the scored sentences do not move the centres: each is assigned alone
    assert np.array_equal(first, lexical_clusters(train, test + other, 6, seed=3)[:60])
    assert set(np.unique(first)) <= set(range(6))


def test_as_many_clusters_as_joint_codes_capped():
    assert baseline_clusters((3, 5), 20_000) == 125  # DailyDialog's M = 3, K = 5
    assert baseline_clusters((1, 30), 20_000) == 30
    assert baseline_clusters((30, 8), 20_000) == MAX_CLUSTERS  # DVAE's 8^30 codes
    assert baseline_clusters((3, 5), 200) == 20  # one cluster per 10 train sentences
    assert baseline_clusters((3, 5), 4) == 1
    with pytest.raises(ValueError, match="n_clusters"):
        lexical_clusters(["a b", "c d"], ["a"], n_clusters=3)


def test_a_one_word_vocabulary_needs_no_lsa():
    found = lexical_clusters(["a", "a a", "a a a"], ["a", "a a"], n_clusters=1)
    assert found.tolist() == [0, 0]
