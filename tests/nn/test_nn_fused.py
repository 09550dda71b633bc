"""The hand-written decoder paths against the plain autograd ones (``nn.GRU`` on repeated inputs, full
logits + ``F.cross_entropy``), in float64: the same log-likelihoods and the same gradients to 1e-10."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

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


def _loss_and_grads(decoder, tokens, lengths, init, latent_input, replicas, weights):
    """Per-row log-likelihoods and the gradients of Σ weights · log-likelihood (params, init, input)."""
    leaves = [p for p in decoder.parameters()] + [t for t in (init, latent_input) if t is not None]
    for t in leaves:
        t.grad = None
    ll = decoder.log_likelihood(tokens, lengths, init, latent_input, replicas)
    (ll * weights).sum().backward()
    grads = [torch.zeros_like(t) if t.grad is None else t.grad.clone() for t in leaves]
    return ll.detach(), grads


CASES = list(itertools.product([True, False], [(0, 0), (F_DIM, 0), (F_DIM, F_DIM)], [1, 3]))


@pytest.mark.parametrize("tie,dims,replicas", CASES)
@pytest.mark.parametrize("recurrence,output", [("shared", "plain"), ("gru", "fused"), ("shared", "fused")])
@pytest.mark.parametrize("uniform", [True, False])
def test_paths_match_plain_autograd(tie, dims, replicas, recurrence, output, uniform):
    init_dim, input_dim = dims
    tokens, lengths = _tokens(LENGTHS)
    rows = len(LENGTHS) * replicas
    g = torch.Generator().manual_seed(2)
    init = torch.randn(rows, F_DIM, generator=g, dtype=torch.float64, requires_grad=True) if init_dim else None
    latent = torch.randn(rows, F_DIM, generator=g, dtype=torch.float64, requires_grad=True) if input_dim else None
    # a uniform upstream gradient takes the fused output's eager branch, a ragged one its recomputation
    weights = torch.full((rows,), 0.3, dtype=torch.float64) if uniform else torch.rand(rows, generator=g).double()

    ref = _decoder(tie, init_dim, input_dim, recurrence="gru", output="plain")
    new = _decoder(tie, init_dim, input_dim, recurrence=recurrence, output=output, chunk_rows=7)
    new.load_state_dict(ref.state_dict())  # same parameter names and shapes on every path
    ll_ref, grads_ref = _loss_and_grads(ref, tokens, lengths, init, latent, replicas, weights)
    ll_new, grads_new = _loss_and_grads(new, tokens, lengths, init, latent, replicas, weights)

    assert ll_new.shape == (rows,)
    torch.testing.assert_close(ll_new, ll_ref, rtol=0, atol=1e-10)
    assert all(gr.abs().sum() > 0 for gr in grads_ref[:3])  # embedding, W_ih, W_hh get gradients
    for a, b in zip(grads_new, grads_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_no_grad_paths_match():
    tokens, lengths = _tokens(LENGTHS)
    feats = torch.randn(len(LENGTHS) * 4, F_DIM, dtype=torch.float64)
    ref = _decoder(True, F_DIM, F_DIM, recurrence="gru", output="plain")
    new = _decoder(True, F_DIM, F_DIM, recurrence="shared", output="fused", chunk_rows=3)
    new.load_state_dict(ref.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(new.log_likelihood(tokens, lengths, feats, feats, 4),
                                   ref.log_likelihood(tokens, lengths, feats, feats, 4), rtol=0, atol=1e-10)


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
    dec = LatentDecoder(nn.Embedding(V, H), H, F_DIM, F_DIM, dropout=0.0, recurrence="shared", output="fused")
    feats = torch.randn(len(LENGTHS) * 2, F_DIM)
    ref = dec.log_likelihood(tokens, lengths, feats, feats, 2).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ll = dec.log_likelihood(tokens, lengths, feats, feats, 2)
    assert ll.dtype == torch.float32
    torch.testing.assert_close(ll.detach(), ref, rtol=0.02, atol=0.05)
    ll.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in dec.parameters())
