import math
import random

import pytest

from demvae.evaluation.wkl import SMOOTHING_ALPHA, word_kl


def _corpus(seed, n, vocab):
    rng = random.Random(seed)
    return [[f"w{rng.randint(0, vocab - 1)}" for _ in range(rng.randint(1, 8))] for _ in range(n)]


def _freqs(corpus):
    counts, total = {}, 0
    for s in corpus:
        for w in s:
            counts[w] = counts.get(w, 0) + 1
            total += 1
    return counts, total


def _brute_paper(gen, ref):
    gc, gn = _freqs(gen)
    rc, rn = _freqs(ref)
    kl = 0.0
    for w in gc:
        if w in rc:
            p, q = gc[w] / gn, rc[w] / rn
            kl += p * math.log(p / q)
    return kl


def _brute_smoothed(gen, ref, alpha):
    gc, gn = _freqs(gen)
    rc, rn = _freqs(ref)
    vocab = sorted(set(gc) | set(rc))
    kl = 0.0
    for w in vocab:
        p = (gc.get(w, 0) + alpha) / (gn + alpha * len(vocab))
        q = (rc.get(w, 0) + alpha) / (rn + alpha * len(vocab))
        kl += p * math.log(p / q)
    return kl


@pytest.mark.parametrize("seed", range(5))
def test_against_brute_force(seed):
    gen = _corpus(seed, 30, 15)  # the two corpora have partly different vocabularies
    ref = [[w.replace("w1", "v1") for w in s] for s in _corpus(seed + 100, 50, 20)]
    assert word_kl(gen, ref, variant="paper") == pytest.approx(_brute_paper(gen, ref), rel=1e-12)
    assert word_kl(gen, ref) == pytest.approx(_brute_smoothed(gen, ref, SMOOTHING_ALPHA), rel=1e-12)
    assert word_kl(gen, ref, alpha=0.5) == pytest.approx(_brute_smoothed(gen, ref, 0.5), rel=1e-12)
    assert word_kl(gen, ref) > 0


def test_identical_corpora_give_zero():
    c = _corpus(1, 40, 10)
    assert word_kl(c, c) == pytest.approx(0.0, abs=1e-12)
    assert word_kl(c, c, variant="paper") == pytest.approx(0.0, abs=1e-12)
    # the same unigram distribution at a different corpus size is also 0 in the paper variant
    assert word_kl(c, c + c, variant="paper") == pytest.approx(0.0, abs=1e-12)


def test_smoothed_is_nonnegative():
    for seed in range(20):
        gen, ref = _corpus(seed, 5, 6), _corpus(seed + 50, 7, 9)
        assert word_kl(gen, ref) >= 0.0


def test_paper_variant_skips_generated_only_words_smoothed_penalises_them():
    ref = [["a", "b"], ["a", "b"]]
    gen_ok = [["a", "b"]]
    gen_new = [["a", "b", "zzz", "zzz"]]
    # paper: only a and b count, each with P_gen = 1/4 vs P_ref = 1/2
    assert word_kl(gen_new, ref, variant="paper") == pytest.approx(2 * 0.25 * math.log(0.5))
    assert word_kl(gen_new, ref, variant="paper") < 0  # the original can go negative
    assert word_kl(gen_new, ref) > 1.0
    assert word_kl(gen_ok, ref) == pytest.approx(0.0, abs=1e-12)


def test_strings_are_split_and_bad_input_rejected():
    assert word_kl(["a b", "b c"], [["a", "b"], ["b", "c"]]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        word_kl([["a"]], [["a"]], variant="other")
    with pytest.raises(ValueError):
        word_kl([], [["a"]])
