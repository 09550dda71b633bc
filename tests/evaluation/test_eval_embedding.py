import math

import numpy as np
import pytest

from demvae.errors import DataError
from demvae.evaluation.embedding import embedding_scores, load_word_vectors


def _cos(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return dot / (na * nb)


def _brute(hyps, refs, vectors):
    tot = [0.0, 0.0, 0.0]
    n = 0
    for hyp, ref in zip(hyps, refs):
        h = [vectors[w].tolist() for w in hyp if w in vectors and not w.startswith("<") and not w.endswith(">")]
        r = [vectors[w].tolist() for w in ref if w in vectors and not w.startswith("<") and not w.endswith(">")]
        if not h or not r:
            continue
        n += 1
        d = len(h[0])
        mean_h = [sum(v[i] for v in h) / len(h) for i in range(d)]
        mean_r = [sum(v[i] for v in r) / len(r) for i in range(d)]
        tot[0] += _cos(mean_h, mean_r)

        def ext(vs, d=d):
            out = []
            for i in range(d):
                col = [v[i] for v in vs]
                out.append(max(col) if max(col) > abs(min(col)) else min(col))
            return out

        tot[1] += _cos(ext(h), ext(r))
        g1 = sum(max(_cos(a, b) for b in h) for a in r) / len(r)
        g2 = sum(max(_cos(a, b) for b in r) for a in h) / len(h)
        tot[2] += 0.5 * (g1 + g2)
    return [100 * t / n for t in tot], n


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    return {f"w{i}": rng.normal(size=6) for i in range(20)}


def test_against_brute_force_loops(vectors):
    rng = np.random.default_rng(1)
    words = list(vectors) + ["oov", "<sys>", "<usr>", "</s>", "x>"]
    hyps, refs = [], []
    for _ in range(25):
        hyps.append([words[j] for j in rng.integers(0, len(words), size=rng.integers(0, 8))])
        refs.append([words[j] for j in rng.integers(0, len(words), size=rng.integers(1, 8))])
    hyps.append(["<sys>", "oov"])  # empty after filtering -> skipped
    refs.append(["w1", "w2"])
    (avg, ext, gre), n = _brute(hyps, refs, vectors)
    got = embedding_scores(hyps, refs, vectors)
    assert got["n_pairs"] == n and 0 < n < len(hyps)
    assert got["average"] == pytest.approx(avg, abs=1e-9)
    assert got["extrema"] == pytest.approx(ext, abs=1e-9)
    assert got["greedy"] == pytest.approx(gre, abs=1e-9)


def test_identical_sentences_score_100(vectors):
    sents = [["<sys>", "w1", "w2", "w3"], ["w4", "w4", "w5"], "w6 w7".split()]
    got = embedding_scores(sents, sents, vectors)
    assert got["n_pairs"] == 3
    for key in ("average", "extrema", "greedy"):
        assert got[key] == pytest.approx(100.0)
    # strings are split on whitespace
    assert embedding_scores(["w1 w2"], ["w1 w2"], vectors)["average"] == pytest.approx(100.0)


def test_no_scorable_pairs(vectors):
    got = embedding_scores([["oov"]], [["w1"]], vectors)
    assert got["n_pairs"] == 0 and math.isnan(got["average"])


def test_load_word_vectors(tmp_path):
    p = tmp_path / "glove.txt"
    p.write_text("the 0.1 0.2 0.3\nCat 1 2 3\n. . . 4 5 6\ncat 7 8 9\n\n", encoding="utf-8")
    v = load_word_vectors(p)
    assert set(v) == {"the", "Cat", ". . .", "cat"}
    assert v["Cat"].dtype == np.float32 and v["Cat"].tolist() == [1, 2, 3]
    low = load_word_vectors(p, lowercase=True)
    assert low["cat"].tolist() == [1, 2, 3]  # first occurrence wins
    assert set(load_word_vectors(p, vocabulary={"the", "dog"})) == {"the"}


def test_load_one_dimensional_vectors(tmp_path):
    p = tmp_path / "v1.txt"
    p.write_text("a 1.5\nb -2\n", encoding="utf-8")
    vectors = load_word_vectors(p)
    assert set(vectors) == {"a", "b"} and float(vectors["b"][0]) == -2.0


def test_load_word_vectors_word2vec_header(tmp_path):
    p = tmp_path / "w2v.txt"
    p.write_text("2 3\na 1 2 3\nb 4 5 6\n", encoding="utf-8")
    assert set(load_word_vectors(p)) == {"a", "b"}


@pytest.mark.parametrize(
    "text,line",
    [("a 1 2 3\nb 1 2\n", 2), ("a 1 2 3\nb 1 x 3\n", 2), ("a 1 2\nb 1 2\nc\n", 3),
     ("a 1 2 3\n1 2 3\n", 2),  # the word is missing: three numbers are not a word and three values
     ("word\n", 1)],
)
def test_load_word_vectors_malformed(tmp_path, text, line):
    p = tmp_path / "bad.txt"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=rf"bad\.txt:{line}: "):
        load_word_vectors(p)


def test_load_word_vectors_missing_or_empty(tmp_path):
    with pytest.raises(DataError, match="nope.txt"):
        load_word_vectors(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        load_word_vectors(empty)


def test_load_word_vectors_bad_encoding(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes(b"a 1 2\n\xe9t\xe9 3 4\n")
    with pytest.raises(DataError, match=r"latin\.txt:2: .*UTF-8"):
        load_word_vectors(p)


def test_zero_vectors_score_zero_not_nan():
    from demvae.evaluation.embedding import _cos, _unit_rows

    assert _cos(np.zeros(3), np.array([1.0, 2.0, 3.0])) == 0.0
    assert _cos(np.array([1.0, 0.0]), np.zeros(2)) == 0.0
    assert _cos(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == pytest.approx(1.0)
    rows = _unit_rows(np.array([[0.0, 0.0], [3.0, 4.0]]))
    np.testing.assert_allclose(rows, [[0.0, 0.0], [0.6, 0.8]])
