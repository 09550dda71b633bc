r"""Two hand-written forward/backward pairs for the decoder's hot spots (CPU training and IS-NLL).

* :func:`shared_input_gru` — a GRU over sentences whose S posterior replicas share the tokens: the
  token part of the input projection, ``emb(w) W_e + b_ih``, is computed once per token [B, T, 3H] and
  the latent part, ``u W_u``, once per row [B·S, 3H]; only the recurrence runs per replica. Rows are
  sorted by length (longest first), so step t runs only the rows still inside their sentence, and the
  output is *packed*: the hidden states of the real positions, step after step.
* :func:`linear_cross_entropy` — ``−log softmax(h Wᵀ + b)[target]`` per row, ``chunk`` rows at a
  time, so the [rows × V] logits never exist in full, neither in the forward nor in the backward pass
  (each chunk's logits are held transposed, [V × chunk]).

Both follow ``torch.autocast``: under it their matrix products run in the autocast dtype, the gate
arithmetic, the recurrent state, the softmax and the returned values stay in the input dtype (fp32).
GRU equations (PyTorch's ``nn.GRU``, whose parameters these functions take)::

    r = σ(x_r + h W_hr + b_hr)    z = σ(x_z + h W_hz + b_hz)
    n = tanh(x_n + r ⊙ (h W_hn + b_hn))    h' = n + z ⊙ (h − n)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd import Function


def _compute_dtype(ref: Tensor) -> torch.dtype:
    """The dtype matrix products take here: autocast's where it is on, else ``ref``'s."""
    kind = ref.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else ref.dtype


def _mm(a: Tensor, b: Tensor, dtype: torch.dtype) -> Tensor:
    """``a @ b`` with the product in ``dtype`` and the result in ``a``'s dtype."""
    if a.dtype == dtype:
        return a @ b.to(dtype)
    return (a.to(dtype) @ b.to(dtype)).to(a.dtype)


# --- GRU with a shared input projection -----------------------------------------------------------


def _gru_scan(
    x_tok: Tensor, x_row: Tensor | None, h0: Tensor, weight_hh: Tensor, bias_hh: Tensor,
    sizes: Sequence[int], replicas: int, dtype: torch.dtype, keep: bool,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Forward recurrence. x_tok [B, T, 3H], x_row [B·S, 3H] | None, h0 [B·S, H], all in the state
    dtype; ``sizes[t]`` sentences are active at step t (non-increasing). Returns the packed outputs
    [N, H] (N = S·Σ sizes) and, if ``keep``, what the backward needs: the gates r|z|n [N, 3H] and
    ``h W_hn + b_hn`` [N, H]."""
    hid = h0.shape[1]
    n_total = replicas * sum(sizes)
    out = h0.new_empty(n_total, hid)
    gates = h0.new_empty(n_total, 3 * hid) if keep else None
    gh_n = h0.new_empty(n_total, hid) if keep else None
    w_t, b = weight_hh.to(dtype).t(), bias_hh.to(dtype)
    h, off = h0, 0
    for t, nb in enumerate(sizes):
        n = nb * replicas
        hp = h[:n]
        gh = torch.addmm(b, hp.to(dtype), w_t).to(h0.dtype)  # [n, 3H]
        pre = h0.new_empty(n, 3 * hid) if gates is None else gates[off:off + n]
        x = x_tok[:nb, t].unsqueeze(1)  # [nb, 1, 3H], broadcast over the replicas
        if x_row is None:
            pre.view(nb, replicas, -1).copy_(x.expand(-1, replicas, -1))
        else:
            torch.add(x_row[:n].view(nb, replicas, -1), x, out=pre.view(nb, replicas, -1))
        rz = pre[:, : 2 * hid].add_(gh[:, : 2 * hid]).sigmoid_()
        r, z = rz[:, :hid], rz[:, hid:]
        new = pre[:, 2 * hid:].addcmul_(r, gh[:, 2 * hid:]).tanh_()
        h = torch.lerp(new, hp, z, out=out[off:off + n])  # n + z (h − n)
        if gh_n is not None:
            gh_n[off:off + n] = gh[:, 2 * hid:]
        off += n
    return out, gates, gh_n


class _SharedInputGRU(Function):
    @staticmethod
    def forward(ctx, x_tok, x_row, h0, weight_hh, bias_hh, sizes, replicas):
        dtype = _compute_dtype(h0)
        with torch.autocast(h0.device.type, enabled=False):
            x_tok = x_tok.to(h0.dtype)
            x_row = None if x_row is None else x_row.to(h0.dtype)
            out, gates, gh_n = _gru_scan(x_tok, x_row, h0, weight_hh, bias_hh, sizes, replicas, dtype, keep=True)
        ctx.save_for_backward(h0, weight_hh, out, gates, gh_n)
        ctx.sizes, ctx.replicas, ctx.dtype = list(sizes), replicas, dtype
        ctx.tok_shape, ctx.has_row = x_tok.shape, x_row is not None
        return out

    @staticmethod
    def backward(ctx, d_out):
        h0, weight_hh, out, gates, gh_n = ctx.saved_tensors
        with torch.autocast(h0.device.type, enabled=False):
            return _SharedInputGRU._grads(ctx, d_out.to(h0.dtype), h0, weight_hh, out, gates, gh_n)

    @staticmethod
    def _grads(ctx, d_out, h0, weight_hh, out, gates, gh_n):
        sizes, reps, hid = ctx.sizes, ctx.replicas, h0.shape[1]
        starts = [0]
        for nb in sizes:
            starts.append(starts[-1] + nb * reps)
        d_h = torch.zeros_like(h0)  # dL/dh of every row at the current step
        d_gh = torch.empty_like(gates)  # dL/d(h W_hh + b_hh) [N, 3H], packed
        d_tok = h0.new_zeros(ctx.tok_shape)
        w = weight_hh.to(ctx.dtype)
        d_row = torch.zeros_like(gates[: h0.shape[0]]) if ctx.has_row else None
        for t in range(len(sizes) - 1, -1, -1):
            nb, off = sizes[t], starts[t]
            n = nb * reps
            dh = d_h[:n].add_(d_out[off:off + n])
            hp = h0[:n] if t == 0 else out[starts[t - 1]:starts[t - 1] + n]
            r, z, new = gates[off:off + n].split(hid, 1)
            one_minus_z = 1 - z
            d_new = dh * one_minus_z * (1 - new * new)  # through tanh
            d_x = torch.cat((
                d_new * gh_n[off:off + n] * r * (1 - r),  # r
                dh * (hp - new) * z * one_minus_z,  # z
                d_new,  # n
            ), 1)  # dL/d(input projection) [n, 3H]
            dg = d_gh[off:off + n]
            dg[:, : 2 * hid] = d_x[:, : 2 * hid]
            torch.mul(d_new, r, out=dg[:, 2 * hid:])
            d_h[:n] = dh * z + _mm(dg, w, ctx.dtype)
            d_tok[:nb, t] = d_x.view(nb, reps, -1).sum(1)
            if d_row is not None:
                d_row[:n] += d_x
        h_prev = torch.cat([h0[: sizes[0] * reps]] + [
            out[starts[t - 1]:starts[t - 1] + sizes[t] * reps] for t in range(1, len(sizes))
        ])  # the state each packed position started from [N, H]
        d_w = _mm(d_gh.t(), h_prev, ctx.dtype)
        return d_tok, d_row, d_h, d_w.to(weight_hh.dtype), d_gh.sum(0).to(weight_hh.dtype), None, None


def shared_input_gru(
    x_tok: Tensor, x_row: Tensor | None, h0: Tensor, weight_hh: Tensor, bias_hh: Tensor,
    sizes: Sequence[int], replicas: int = 1,
) -> Tensor:
    """Packed GRU outputs [N, H] for sentences sorted longest first.

    ``x_tok`` [B, T, 3H]: the token part of the input projection (``b_ih`` included); ``x_row``
    [B·S, 3H] or None: the per-row part; ``h0`` [B·S, H]; row ``j·S + s`` is replica s of sentence j.
    ``sizes[t]`` (host ints, non-increasing) sentences take step t; the output holds, step after
    step, the new states of their ``sizes[t]·S`` rows (the layout of a ``PackedSequence``).
    """
    if list(sizes) != sorted(sizes, reverse=True):
        raise ValueError("sizes must be non-increasing (sentences sorted longest first)")
    if torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x_tok, x_row, h0, weight_hh, bias_hh)
    ):
        return _SharedInputGRU.apply(x_tok, x_row, h0, weight_hh, bias_hh, list(sizes), replicas)
    dtype = _compute_dtype(h0)
    with torch.autocast(h0.device.type, enabled=False):
        x_row = None if x_row is None else x_row.to(h0.dtype)
        out, _, _ = _gru_scan(x_tok.to(h0.dtype), x_row, h0, weight_hh, bias_hh, sizes, replicas, dtype, keep=False)
    return out


# --- output layer + cross-entropy, chunked ---------------------------------------------------------
#
# Each chunk's logits are made transposed, ``W hᵀ`` [V, c]: on the CPU (MKL) that product runs ~1.5×
# faster than ``h Wᵀ`` [c, V] (measured on this project's 2-core AVX2 machine: ~150 against ~100
# GFLOP/s), and the two backward products read the same [V, c] block as they are. The softmax takes one
# exp pass (max, exp, sum), and the NLL comes from that sum: no separate log-softmax pass.


def _chunk_softmax(
    h: Tensor, w: Tensor, b: Tensor | None, target: Tensor, dtype: torch.dtype,
) -> tuple[Tensor, Tensor]:
    """(−log softmax(h Wᵀ + b)[target] [c], softmax(h Wᵀ + b)ᵀ [V, c]), both in ``h``'s dtype, the product
    in ``dtype``."""
    logits = (w @ h.t().to(dtype)).to(h.dtype)  # [V, c]; w is already in dtype
    if b is not None:
        logits.add_(b.unsqueeze(1))
    cols = torch.arange(h.shape[0], device=h.device)
    top = logits.amax(0)  # [c]
    picked = logits[target, cols] - top
    p = logits.sub_(top).exp_()
    total = p.sum(0)
    return total.log() - picked, p.div_(total)


def _softmax_minus_onehot(p: Tensor, target: Tensor, scale: Tensor | None) -> Tensor:
    """``scale_i (softmax_i − onehot(target_i))`` = d (scale_i nll_i) / d logits_i, in place of ``p`` [V, c]."""
    p[target, torch.arange(p.shape[1], device=p.device)] -= 1
    return p if scale is None else p.mul_(scale.unsqueeze(0))


class _LinearCrossEntropy(Function):
    """Per chunk: the logits, their softmax and ``softmax − onehot``, whose products with W and h are
    the gradients for an upstream gradient that is the same for every row (the training loss is a mean
    over rows) — the same three products as autograd's. The backward pass scales them when that holds
    and otherwise recomputes each chunk's logits with the true per-row gradient."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, chunk):
        dtype = _compute_dtype(hidden)
        with torch.autocast(hidden.device.type, enabled=False):
            nll, d_h, d_w, d_b = _LinearCrossEntropy._pass(hidden, weight, bias, target, None, chunk, dtype)
        ctx.save_for_backward(hidden, weight, bias, target, d_h, d_w, d_b)
        ctx.chunk, ctx.dtype = chunk, dtype
        return nll

    @staticmethod
    def backward(ctx, g):
        hidden, weight, bias, target, d_h, d_w, d_b = ctx.saved_tensors
        if g.numel() and bool((g == g[0]).all()):  # one host read; no sync on the CPU
            d_h, d_w, d_b = (None if d is None else d * g[0] for d in (d_h, d_w, d_b))
        else:
            with torch.autocast(hidden.device.type, enabled=False):
                _, d_h, d_w, d_b = _LinearCrossEntropy._pass(
                    hidden, weight, bias, target, g.to(hidden.dtype), ctx.chunk, ctx.dtype)
        return d_h, d_w.to(weight.dtype), None if bias is None else d_b.to(bias.dtype), None, None

    @staticmethod
    def _pass(hidden, weight, bias, target, scale, chunk, dtype):
        """nll [N] and the gradients of Σ_i scale_i nll_i (scale None: all ones), chunk by chunk."""
        w = weight.to(dtype)
        b = None if bias is None else bias.to(hidden.dtype)
        nll = hidden.new_empty(hidden.shape[0])
        d_h = torch.empty_like(hidden)
        d_w = hidden.new_zeros(weight.shape)
        d_b = None if b is None else torch.zeros_like(b)
        for start in range(0, hidden.shape[0], chunk):
            sl = slice(start, start + chunk)
            h, t = hidden[sl], target[sl]
            nll[sl], p = _chunk_softmax(h, w, b, t, dtype)
            d = _softmax_minus_onehot(p, t, None if scale is None else scale[sl])  # [V, c]
            d_h[sl] = _mm(d.t(), w, dtype)
            d_w += _mm(d, h, dtype)
            if d_b is not None:
                d_b += d.sum(1)
        return nll, d_h, d_w, d_b


def linear_cross_entropy(hidden: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor,
                         chunk: int = 1024) -> Tensor:
    """``−log softmax(hidden Wᵀ + b)[target]`` per row [N] (hidden [N, H], W [V, H], b [V] or None),
    ``chunk`` rows of logits at a time."""
    if chunk < 1:
        raise ValueError("chunk must be >= 1")
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (hidden, weight, bias)):
        return _LinearCrossEntropy.apply(hidden, weight, bias, target, chunk)
    dtype = _compute_dtype(hidden)
    with torch.autocast(hidden.device.type, enabled=False):
        w = weight.to(dtype)
        b = None if bias is None else bias.to(hidden.dtype)
        parts = [_chunk_softmax(h, w, b, t, dtype)[0] for h, t in zip(hidden.split(chunk), target.split(chunk))]
        return torch.cat(parts) if parts else hidden.new_zeros(0)
