import math
import random

import pytest
from sacrebleu.metrics import BLEU

from demvae.evaluation.bleu import multi_bleu, sacre_bleu


def _random_corpus(seed, n=60, vocab=12):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    hyps, refs = [], []
    for _ in range(n):
        ref = [rng.choice(words) for _ in range(rng.randint(1, 15))]
        # hypotheses: noisy copies of the reference, sometimes empty or short
        hyp = [w if rng.random() < 0.7 else rng.choice(words) for w in ref]
        if rng.random() < 0.3:
            hyp = hyp[: rng.randint(0, len(hyp))]
        elif rng.random() < 0.2:
            hyp += [rng.choice(words) for _ in range(rng.randint(1, 4))]
        hyps.append(hyp)
        refs.append(ref)
    return hyps, refs


@pytest.mark.parametrize("seed", range(8))
def test_matches_unsmoothed_sacrebleu_without_tokenisation(seed):
    hyps, refs = _random_corpus(seed)
    ours = multi_bleu(hyps, refs)
    ref_score = BLEU(tokenize="none", smooth_method="none", force=True).corpus_score(
        [" ".join(h) for h in hyps], [[" ".join(r) for r in refs]]
    ).score
    assert ours > 0
    assert ours == pytest.approx(ref_score, abs=1e-6)


def test_perfect_match_is_100():
    refs = [["a", "b", "c", "d", "e"], ["x", "y", "z", "w"]]
    assert multi_bleu(refs, refs) == pytest.approx(100.0)


def test_empty_hypotheses_score_zero():
    refs = [["a", "b", "c", "d"], ["e", "f", "g", "h"]]
    assert multi_bleu([[], []], refs) == 0.0
    assert multi_bleu([], []) == 0.0


def test_empty_hypothesis_counts_zero_tokens_but_adds_reference_length():
    refs = [["a", "b", "c", "d"], ["e", "f", "g", "h"]]
    # second hypothesis empty: precisions all 1, c = 4, r = 8
    assert multi_bleu([["a", "b", "c", "d"], []], refs) == pytest.approx(100 * math.exp(1 - 8 / 4))


def test_brevity_penalty():
    ref = ["a", "b", "c", "d", "e", "f", "g", "h"]
    hyp = ref[:5]  # all n-grams match, c = 5 < r = 8
    assert multi_bleu([hyp], [ref]) == pytest.approx(100 * math.exp(1 - 8 / 5))
    # a longer hypothesis gets no bonus: BP = 1
    longer = ref + ["a"]
    p = [8 / 9, 7 / 8, 6 / 7, 5 / 6]
    assert multi_bleu([longer], [ref]) == pytest.approx(100 * math.prod(p) ** 0.25)


def test_hand_computed_example():
    hyps = [["the", "cat", "sat", "on", "the", "mat"], "a b c d".split()]
    refs = [["the", "cat", "is", "on", "the", "mat"], "a b c d e".split()]
    # 1-grams 5+4 of 6+4, 2-grams 3+3 of 5+3, 3-grams 1+2 of 4+2, 4-grams 0+1 of 3+1; c = 10, r = 11
    expected = 100 * math.exp(1 - 11 / 10) * (9 / 10 * 6 / 8 * 3 / 6 * 1 / 4) ** 0.25
    assert multi_bleu(hyps, refs) == pytest.approx(expected, rel=1e-12)


def test_clipping_and_zero_precision():
    assert multi_bleu([["the"] * 4], [["the", "cat"]]) == 0.0  # no bigram match -> 0 unsmoothed
    hyp = ["the", "the", "a", "b", "c", "d"]
    ref = ["the", "x", "a", "b", "c", "d"]
    # unigram matches clipped to 1 "the": 5/6
    p = [5 / 6, 3 / 5, 2 / 4, 1 / 3]
    assert multi_bleu([hyp], [ref]) == pytest.approx(100 * math.prod(p) ** 0.25)


def test_case_sensitive():
    assert multi_bleu([["A", "b", "c", "d"]], [["a", "b", "c", "d"]]) == 0.0


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        multi_bleu([["a"]], [])


def test_sacre_bleu_returns_score_and_signature():
    hyps = ["the cat sat on the mat .", "hello world"]
    refs = ["the cat sat on the mat .", "hello there world"]
    score, sig = sacre_bleu(hyps, refs)
    assert 0 < score < 100
    assert "tok:13a" in sig and "smooth:exp" in sig
    assert sacre_bleu(refs, refs)[0] == pytest.approx(100.0)
