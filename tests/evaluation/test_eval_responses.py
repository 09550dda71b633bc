"""SMD response metrics: BLEU with and without the speaker token, embedding metrics with case-sensitive or
lower-cased look-up, and vector coverage."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from demvae.evaluation.bleu import multi_bleu
from demvae.evaluation.embedding import embedding_scores
from demvae.evaluation.responses import (
    SMD_VECTORS,
    load_response_vectors,
    response_bleu,
    response_embedding_scores,
    strip_speaker,
    vector_coverage,
)

DATA = Path(os.environ.get("DEMVAE_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))

HYPS = [["<sys>", "there", "is", "a", "Chevron", "nearby", "."], ["<usr>", "thanks", "!"],
        ["<sys>", "what", "time", "is", "the", "address", "?"]]
REFS = [["<sys>", "there", "is", "a", "Safeway", "4", "miles", "away", "."], ["<usr>", "thank", "you", "!"],
        ["<sys>", "what", "time", "is", "the", "appointment", "?"]]


def test_strip_speaker():
    assert strip_speaker(["<sys>", "ok"]) == ["ok"] and strip_speaker(["<usr>"]) == []
    assert strip_speaker(["ok", "<sys>"]) == ["ok", "<sys>"] and strip_speaker([]) == []


def test_bleu_counts_the_speaker_token_as_the_original():
    scores = response_bleu(HYPS, REFS)
    assert scores["bleu"] == multi_bleu(HYPS, REFS)
    assert scores["bleu_words"] == multi_bleu([h[1:] for h in HYPS], [r[1:] for r in REFS])
    # the shared speaker token adds matching unigrams and bigrams: the original's number is higher
    assert scores["bleu"] > scores["bleu_words"] > 0
    assert scores["sacrebleu"] > scores["sacrebleu_words"] > 0 and "13a" in scores["sacrebleu_signature"]


def test_bleu_by_hand_with_the_speaker_token():
    """One pair worked out: '<sys> a b c d' vs '<sys> a b c e' matches 4/5 unigrams, 3/4 bigrams, 2/3 trigrams and
    1/2 4-grams (equal lengths: no brevity penalty); without the speaker token no 4-gram matches, so BLEU is 0."""
    hyp, ref = ["<sys>", "a", "b", "c", "d"], ["<sys>", "a", "b", "c", "e"]
    expected = 100 * math.exp((math.log(4 / 5) + math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2)) / 4)
    assert response_bleu([hyp], [ref])["bleu"] == pytest.approx(expected)
    assert response_bleu([hyp], [ref])["bleu_words"] == 0.0  # without it no 4-gram matches


@pytest.fixture
def vectors_file(tmp_path):
    rng = np.random.default_rng(0)
    words = ["there", "is", "a", "chevron", "nearby", "safeway", "miles", "away", "thanks", "thank", "you", "what"]
    lines = [w + " " + " ".join(f"{x:.6f}" for x in rng.normal(size=4)) for w in words]
    path = tmp_path / "vectors.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_case_sensitive_lookup_misses_capitalised_words(vectors_file):
    vocab = {w for s in HYPS + REFS for w in s}
    cased = load_response_vectors(vectors_file, vocab)
    lower = load_response_vectors(vectors_file, vocab, lowercase=True)
    assert "Chevron" not in cased and "chevron" not in cased and "chevron" in lower
    got = response_embedding_scores(HYPS, REFS, cased)
    # the case-sensitive score is the plain score with the capitalised words gone
    drop = [[[w for w in s if w == w.lower()] for s in side] for side in (HYPS, REFS)]
    assert got == embedding_scores(*drop, cased)
    low = response_embedding_scores(HYPS, REFS, lower, lowercase=True)
    assert low == embedding_scores([[w.lower() for w in s] for s in HYPS], [[w.lower() for w in s] for s in REFS],
                                   lower)
    assert low["average"] != got["average"] and got["n_pairs"] == low["n_pairs"] == 3


def test_vector_coverage(vectors_file):
    vocab = {w for s in REFS for w in s}
    cased = load_response_vectors(vectors_file, vocab)
    cov = vector_coverage(REFS, cased)
    # words: there is a Safeway 4 miles away . | thank you ! | what time is the appointment ?
    assert cov["tokens"] == 17 and cov["types"] == 16
    assert cov["tokens_found"] == 9 and cov["types_found"] == 8  # there is a miles away thank you what is
    low = vector_coverage(REFS, load_response_vectors(vectors_file, vocab, lowercase=True), lowercase=True)
    assert low["tokens_found"] == 10 and low["types_found"] == 9  # + safeway


@pytest.mark.skipif(not (DATA / SMD_VECTORS).is_file() or not (DATA / "stanford").is_dir(),
                    reason=f"SMD or its vectors not in {DATA}")
def test_real_smd_vector_coverage():
    """The numbers quoted for the stand-in vectors: SMD test references, rebuilt from their ids."""
    from demvae.data import Vocab, load_corpus

    path = DATA / SMD_VECTORS
    corpus = load_corpus("smd", data_dir=DATA)
    vocab = Vocab.build((ex.tokens for ex in corpus.splits["train"]), specials=corpus.specials)
    refs = [vocab.decode(vocab.encode(ex.tokens)) for ex in corpus.splits["test"]]
    cased = vector_coverage(refs, load_response_vectors(path, vocab.tokens))
    lower = vector_coverage(refs, load_response_vectors(path, vocab.tokens, lowercase=True), lowercase=True)
    assert cased["tokens"] == lower["tokens"] == 14813
    assert cased["tokens_found"] == 12204 and lower["tokens_found"] == 14749
