"""IS-NLL bookkeeping, in float64: length sorting, decoder row bounds and ``max_memory`` change no number."""

from __future__ import annotations

import pytest
import torch

from demvae.config import ModelConfig
from demvae.data.batching import BucketBatchSampler, EncodedSplit
from demvae.errors import ConfigError
from demvae.evaluation.likelihood import log_likelihoods, rows_within
from demvae.models import build_model

VOCAB, BOS, EOS = 15, 2, 3
LENGTHS = [9, 3, 6, 12, 4, 7, 5, 10]  # with <s>/</s>; distinct, in no order


def _split(lengths=LENGTHS, seed=0) -> EncodedSplit:
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(4, VOCAB, (n,), generator=g)
        ids[i, 0], ids[i, n - 1] = BOS, EOS
    return EncodedSplit(ids, torch.tensor(lengths), {})


def _model(recurrence="auto", latent="gm"):
    torch.manual_seed(0)
    cfg = ModelConfig(latent=latent, embed_dim=12, hidden_size=12, n_variables=2, n_values=3, n_units=2,
                      dropout=0.0)
    model = build_model(cfg, VOCAB, BOS, EOS).double().eval()
    model.decoder.recurrence = recurrence
    return model


def _estimate(model, split, **kw):
    torch.manual_seed(5)
    return log_likelihoods(model, split, n_samples=20, **kw)


@pytest.mark.parametrize("latent", ["gm", "discrete"])
def test_row_bounds_and_max_memory_change_no_number(latent):
    model, split = _model(latent=latent), _split()
    ref = _estimate(model, split, sentences_per_batch=3, rows_per_step=10_000)
    row = model.decoder.eval_bytes(1, 11) - model.decoder.eval_bytes(0, 11)
    budgets = [dict(rows_per_step=r) for r in (1, 7, 20, 41)] + [
        dict(max_memory=model.decoder.eval_bytes(r, 11) + row // 2) for r in (1, 13, 60)]
    for kw in budgets:  # rows below the samples of one sentence split its samples over decoder calls
        got = _estimate(model, split, sentences_per_batch=3, **kw)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-10, msg=str(kw))


def test_sorted_packed_decoder_equals_padded_nn_gru():
    """The shared recurrence (sentences sorted by length, no step on padding) and ``nn.GRU`` over the
    padded, unsorted batch give the same importance weights."""
    split = _split()
    shared = _estimate(_model("shared"), split, sentences_per_batch=len(LENGTHS))
    padded = _estimate(_model("gru"), split, sentences_per_batch=len(LENGTHS))
    torch.testing.assert_close(shared, padded, rtol=0, atol=1e-10)


def test_sentences_are_sorted_before_batching():
    """Batches hold sentences of neighbouring lengths whatever the split's order: a shuffled split gets
    the same batches, hence the same draws, and every estimate lands at its sentence's index."""
    model, split = _model(), _split()
    perm = torch.randperm(len(LENGTHS), generator=torch.Generator().manual_seed(1))
    shuffled = EncodedSplit(split.ids[perm], split.lengths[perm], {})
    ref = _estimate(model, split, sentences_per_batch=3)
    torch.testing.assert_close(_estimate(model, shuffled, sentences_per_batch=3), ref[perm], rtol=0, atol=1e-10)
    batches = BucketBatchSampler(split.lengths, 3, shuffle=False).batches()
    assert [sorted(split.lengths[b].tolist()) for b in batches] == [[3, 4, 5], [6, 7, 9], [10, 12]]


@pytest.mark.parametrize("recurrence", ["shared", "gru"])
def test_rows_within_is_the_largest_fitting_row_count(recurrence):
    model = _model(recurrence)
    dec = model.decoder
    for budget in (dec.eval_bytes(1, 30), 10 * 2**20, 123_456_789):
        rows = rows_within(model, budget, 30)
        assert dec.eval_bytes(rows, 30) <= budget < dec.eval_bytes(rows + 1, 30)
    with pytest.raises(ConfigError, match="max_memory"):
        rows_within(model, dec.eval_bytes(1, 30) - 1, 30)


def test_eval_bytes_grows_with_rows_and_steps_and_favours_the_shared_recurrence():
    shared, padded = _model("shared").decoder, _model("gru").decoder
    assert shared.eval_bytes(10, 20) > shared.eval_bytes(10, 10) > shared.eval_bytes(5, 10)
    per_row = [d.eval_bytes(1, 38) - d.eval_bytes(0, 38) for d in (shared, padded)]
    assert per_row[0] < per_row[1]


@pytest.mark.parametrize("recurrence", ["shared", "gru"])
@pytest.mark.parametrize("chunk_rows", [7, 20, 10_000])
def test_log_weights_equal_an_unsorted_sentence_by_sentence_reference(recurrence, chunk_rows):
    """``log_weights`` (one encoder pass, samples drawn at once, decoder calls in length order and at most
    ``chunk_rows`` rows) against the same draws decoded one sentence at a time in the batch's order with
    ``nn.GRU``: the same weights to 1e-10 (hence the same IS-NLL to far better than 1e-6 nats)."""
    model, n = _model(recurrence), 20
    batch = _split().full()
    torch.manual_seed(5)
    got = model.log_weights(batch, n, chunk_rows=chunk_rows)

    model.decoder.recurrence = "gru"
    torch.manual_seed(5)
    with torch.no_grad():
        h = model.encode(batch)
        draws = [block.importance_sample(h, n) for block in model.latents]
        log_ratio = sum(lr for _, lr in draws)
        ref = torch.stack([
            model.decoder.log_likelihood(
                batch.tokens[i:i + 1], batch.host_lengths[i:i + 1],
                *model.decoder_inputs([f[i] for f, _ in draws]), n)
            for i in range(batch.size)]) + log_ratio
    torch.testing.assert_close(got, ref.double(), rtol=0, atol=1e-10)
