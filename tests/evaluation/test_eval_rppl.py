"""The rPPL anchor: the LM recipe trained on real sentences scores far lower than on a collapsed model's
samples (one sentence over and over), at the same budget and on the same test split."""

from __future__ import annotations

from demvae.config import DataConfig
from demvae.data.prepare import prepare
from demvae.evaluation.generation import references
from demvae.evaluation.rppl import real_data_anchor, reverse_perplexity


def test_real_sentences_anchor_below_collapsed_samples():
    data = prepare(DataConfig(corpus="builtin", options={"n_train": 800, "n_valid": 50, "n_test": 100}))
    train = references(data.splits["train"], data.vocab)
    test = data.splits["test"]
    anchor = real_data_anchor(train, 400, test, data.vocab, max_steps=30, device="cpu", seed=0)
    collapsed = reverse_perplexity([train[0]] * 400, test, data.vocab, max_steps=30, device="cpu", seed=0)
    assert anchor["rppl_real_train_sentences"] == collapsed["rppl_train_sentences"]  # the same LM budget
    assert anchor["rppl_real"] < 0.25 * collapsed["rppl"], (anchor, collapsed)
    again = real_data_anchor(train, 400, test, data.vocab, max_steps=30, device="cpu", seed=0)
    assert again["rppl_real"] == anchor["rppl_real"]  # seeded: the same draw and the same LM
