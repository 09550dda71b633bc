"""The hand-written decoder paths against plain autograd (``nn.GRU`` on every replica's repeated inputs, full
logits + ``F.cross_entropy``, written out here as the reference), in float64: the same log-likelihoods and the
same gradients to 1e-10, for the sentence decoder (both recurrences) and the dialog's attention decoder."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from demvae.nn.attention_decoder import AttentionDecoder
from demvae.nn.decoders import LatentDecoder
from demvae.nn.fused import linear_cross_entropy, shared_input_gru

V, H, F_DIM = 23, 8, 5
LENGTHS = [7, 2, 5, 7, 3]  # with <s> and </s>: ragged, two rows of the longest, one with a single target


def _tokens(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(4, V, (n,), generator=g)
        tokens[i, 0], tokens[i, n - 1] = 2, 3
    return tokens, torch.tensor(lengths)


def _decoder(tie, init_dim, input_dim, **paths):
    torch.manual_seed(1)
    emb = nn.Embedding(V, H, padding_idx=0)
    return LatentDecoder(emb, H, init_dim, input_dim, dropout=0.0, tie_output=tie, **paths).double()


def plain_log_likelihood(dec: LatentDecoder, tokens, lengths, init, latent_input, replicas):
    """The unfused formula: ``nn.GRU`` over each replica's own copy of the padded inputs, the full [rows, T, V]
    logits, ``F.cross_entropy``, padding masked out."""
    emb = dec.embedding(tokens[:, :-1]).repeat_interleave(replicas, 0)
    if latent_input is not None:
        emb = torch.cat((emb, latent_input.unsqueeze(1).expand(-1, emb.shape[1], -1)), -1)
    h0 = dec.init(init).unsqueeze(0) if init is not None else emb.new_zeros(1, emb.shape[0], H)
    hidden, _ = dec.rnn(emb, h0)
    logits = hidden @ dec.embedding.weight.t() if dec.out is None else dec.out(hidden)
    targets = tokens[:, 1:].repeat_interleave(replicas, 0)
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # [rows, T − 1]
    real = torch.arange(targets.shape[1]) < (lengths.repeat_interleave(replicas) - 1).unsqueeze(1)
    return -(nll * real).sum(1)


def _loss_and_grads(decoder, tokens, lengths, init, latent_input, replicas, weights, fn=None):
    """Per-row log-likelihoods and the gradients of Σ weights · log-likelihood (params, init, input)."""
    leaves = [p for p in decoder.parameters()] + [t for t in (init, latent_input) if t is not None]
    for t in leaves:
        t.grad = None
    ll = (fn or type(decoder).log_likelihood)(decoder, tokens, lengths, init, latent_input, replicas)
    (ll * weights).sum().backward()
    grads = [torch.zeros_like(t) if t.grad is None else t.grad.clone() for t in leaves]
    return ll.detach(), grads


CASES = list(itertools.product([True, False], [(0, 0), (F_DIM, 0), (F_DIM, F_DIM)], [1, 3]))


@pytest.mark.parametrize("tie,dims,replicas", CASES)
@pytest.mark.parametrize("recurrence", ["gru", "shared"])
@pytest.mark.parametrize("uniform", [True, False])
def test_paths_match_plain_autograd(tie, dims, replicas, recurrence, uniform):
    init_dim, input_dim = dims
    tokens, lengths = _tokens(LENGTHS)
    rows = len(LENGTHS) * replicas
    g = torch.Generator().manual_seed(2)
    init = torch.randn(rows, F_DIM, generator=g, dtype=torch.float64, requires_grad=True) if init_dim else None
    latent = torch.randn(rows, F_DIM, generator=g, dtype=torch.float64, requires_grad=True) if input_dim else None
    # a uniform upstream gradient takes the fused output's eager branch, a ragged one its recomputation
    weights = torch.full((rows,), 0.3, dtype=torch.float64) if uniform else torch.rand(rows, generator=g).double()

    dec = _decoder(tie, init_dim, input_dim, recurrence=recurrence, chunk_rows=7)
    ll_ref, grads_ref = _loss_and_grads(dec, tokens, lengths, init, latent, replicas, weights, plain_log_likelihood)
    ll_new, grads_new = _loss_and_grads(dec, tokens, lengths, init, latent, replicas, weights)

    assert ll_new.shape == (rows,)
    torch.testing.assert_close(ll_new, ll_ref, rtol=0, atol=1e-10)
    assert all(gr.abs().sum() > 0 for gr in grads_ref[:3])  # embedding, W_ih, W_hh get gradients
    for a, b in zip(grads_new, grads_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("recurrence", ["gru", "shared"])
def test_no_grad_paths_match(recurrence):
    tokens, lengths = _tokens(LENGTHS)
    feats = torch.randn(len(LENGTHS) * 4, F_DIM, dtype=torch.float64)
    dec = _decoder(True, F_DIM, F_DIM, recurrence=recurrence, chunk_rows=3)
    with torch.no_grad():
        torch.testing.assert_close(dec.log_likelihood(tokens, lengths, feats, feats, 4),
                                   plain_log_likelihood(dec, tokens, lengths, feats, feats, 4), rtol=0, atol=1e-10)


@pytest.mark.parametrize("grad", [True, False])
def test_auto_recurrence_is_nn_gru_with_gradients_and_the_scan_without(grad, monkeypatch):
    import demvae.nn.decoders as decoders

    calls = []
    monkeypatch.setattr(decoders, "shared_input_gru", lambda *a, **k: calls.append(1) or shared_input_gru(*a, **k))
    tokens, lengths = _tokens(LENGTHS)
    feats = torch.randn(len(LENGTHS) * 4, F_DIM, dtype=torch.float64)
    dec = _decoder(True, F_DIM, F_DIM, recurrence="auto", chunk_rows=3)
    with torch.set_grad_enabled(grad):
        ll = dec.log_likelihood(tokens, lengths, feats, feats, 4)
    assert len(calls) == (0 if grad else 1)
    with torch.no_grad():
        torch.testing.assert_close(ll.detach(), plain_log_likelihood(dec, tokens, lengths, feats, feats, 4),
                                   rtol=0, atol=1e-10)


def test_shared_input_projection_equals_per_sample_projection_in_a_training_step():
    """A step of the DGM-VAE objective's decoder part: S = 20 posterior samples per sentence, the input
    projection once per token (shared) against once per sample (``nn.GRU`` on repeated inputs)."""
    tokens, lengths = _tokens(LENGTHS, seed=4)
    rows = len(LENGTHS) * 20
    g = torch.Generator().manual_seed(6)
    z = torch.randn(rows, F_DIM, generator=g, dtype=torch.float64, requires_grad=True)
    weights = torch.full((rows,), -1.0 / rows, dtype=torch.float64)  # rec = −mean log p(x | z_s)
    shared = _decoder(True, F_DIM, F_DIM, recurrence="shared")
    per_sample = _decoder(True, F_DIM, F_DIM, recurrence="gru")
    ll_s, grads_s = _loss_and_grads(shared, tokens, lengths, z, z, 20, weights)
    ll_p, grads_p = _loss_and_grads(per_sample, tokens, lengths, z, z, 20, weights)
    torch.testing.assert_close(ll_s, ll_p, rtol=0, atol=1e-10)
    for a, b in zip(grads_s, grads_p):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("uniform", [True, False])
def test_attention_decoder_fused_output_matches_plain_autograd(uniform):
    """The dialog decoder's output layer is fused too: same NLL and gradients as full logits."""
    torch.manual_seed(3)
    dec = AttentionDecoder(nn.Embedding(V, H), hidden_size=H, memory_size=4, attn_size=3, dropout=0.0).double()
    tokens, lengths = _tokens(LENGTHS)
    g = torch.Generator().manual_seed(8)
    init = torch.randn(len(LENGTHS), H, generator=g, dtype=torch.float64, requires_grad=True)
    memory = torch.randn(len(LENGTHS), 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    weights = torch.full((len(LENGTHS),), 0.7, dtype=torch.float64) if uniform else torch.rand(5, generator=g).double()

    def plain(d, tokens, lengths, init, memory, mask):
        nll = F.cross_entropy(d.out(d.outputs(tokens, init, memory, mask)).transpose(1, 2), tokens[:, 1:],
                              reduction="none")
        return -(nll * (torch.arange(tokens.shape[1] - 1) < (lengths - 1).unsqueeze(1))).sum(1)

    leaves = [*dec.parameters(), init, memory]
    results = []
    for fn in (plain, type(dec).log_likelihood):
        ll = fn(dec, tokens, lengths, init, memory, mask)
        results.append((ll.detach(), torch.autograd.grad((ll * weights).sum(), leaves, allow_unused=True)))
    (ll_ref, grads_ref), (ll_new, grads_new) = results
    torch.testing.assert_close(ll_new, ll_ref, rtol=0, atol=1e-10)
    for a, b in zip(grads_new, grads_ref):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_shared_input_gru_equals_nn_gru_on_a_packed_sequence():
    """Direct check of the kernel: packed output = ``nn.GRU`` over each replica's concatenated inputs."""
    torch.manual_seed(0)
    b, t, e, f, reps = 3, 4, 6, 2, 2
    gru = nn.GRU(e + f, H, batch_first=True).double()
    emb = torch.randn(b, t, e, dtype=torch.float64)
    u = torch.randn(b * reps, f, dtype=torch.float64)
    h0 = torch.randn(b * reps, H, dtype=torch.float64)
    steps = [4, 3, 1]  # sorted longest first
    x_tok = F.linear(emb, gru.weight_ih_l0[:, :e], gru.bias_ih_l0)
    x_row = F.linear(u, gru.weight_ih_l0[:, e:])
    sizes = [sum(s > k for s in steps) for k in range(t)]
    out = shared_input_gru(x_tok, x_row, h0, gru.weight_hh_l0, gru.bias_hh_l0, sizes, reps)
    full = torch.cat((emb.repeat_interleave(reps, 0), u.unsqueeze(1).expand(-1, t, -1)), -1)
    ref, _ = gru(full, h0.unsqueeze(0))  # [B·S, T, H]
    expected = torch.cat([ref[: sizes[k] * reps, k] for k in range(t)])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="non-increasing"):
        shared_input_gru(x_tok, x_row, h0, gru.weight_hh_l0, gru.bias_hh_l0, [1, 3, 3, 0], reps)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_linear_cross_entropy_matches_cross_entropy(bias, chunk):
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(11, H, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(V, H, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(V, generator=g, dtype=torch.float64, requires_grad=True) if bias else None
    target = torch.randint(0, V, (11,), generator=g)
    upstream = torch.randn(11, generator=g, dtype=torch.float64)
    leaves = [t for t in (hidden, weight, b) if t is not None]
    ref = F.cross_entropy(F.linear(hidden, weight, b), target, reduction="none")
    grads_ref = torch.autograd.grad((ref * upstream).sum(), leaves)
    got = linear_cross_entropy(hidden, weight, b, target, chunk)
    grads = torch.autograd.grad((got * upstream).sum(), leaves)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    for a, r in zip(grads, grads_ref):
        torch.testing.assert_close(a, r, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="chunk"):
        linear_cross_entropy(hidden, weight, b, target, 0)


def test_bf16_autocast_runs_both_paths_close_to_fp32():
    """Under CPU bf16 autocast the fused paths give float32 values near the fp32 ones, and gradients."""
    tokens, lengths = _tokens(LENGTHS)
    torch.manual_seed(1)
    dec = LatentDecoder(nn.Embedding(V, H), H, F_DIM, F_DIM, dropout=0.0, recurrence="shared")
    feats = torch.randn(len(LENGTHS) * 2, F_DIM)
    ref = dec.log_likelihood(tokens, lengths, feats, feats, 2).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ll = dec.log_likelihood(tokens, lengths, feats, feats, 2)
    assert ll.dtype == torch.float32
    torch.testing.assert_close(ll.detach(), ref, rtol=0.02, atol=0.05)
    ll.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in dec.parameters())
