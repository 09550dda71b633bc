r"""Masked attention: a softmax that gives padding exactly zero weight, additive ('cat') attention and attention
pooling.

Masked positions get weight exactly 0 (their scores are set to the dtype's lowest value, whose exponential
underflows to 0 next to any real score), so adding padded positions never changes the weights of the real ones;
a row with no real position gets all-zero weights (and so a zero mixture) rather than NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """softmax over the last axis restricted to ``mask`` (bool, broadcastable to ``scores``); 0 elsewhere."""
    weights = torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=-1)
    return weights * mask.to(weights.dtype)


class AdditiveAttention(nn.Module):
    r"""'cat' attention (Bahdanau): ``score(q, k_t) = v · tanh(W_k k_t + W_q q)``, ``mix = Σ_t softmax_t(score) k_t``.

    ``W_k`` carries the bias; the keys' projection depends only on the memory, so a decoder computes it once
    (:meth:`project_keys`) and passes it to every step.
    """

    def __init__(self, query_size: int, key_size: int, attn_size: int):
        super().__init__()
        self.key_proj = nn.Linear(key_size, attn_size)
        self.query_proj = nn.Linear(query_size, attn_size, bias=False)
        self.score = nn.Linear(attn_size, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        """keys [B, T, Hk] -> W_k keys [B, T, A]."""
        return self.key_proj(keys)

    def forward(
        self, query: Tensor, keys: Tensor, mask: Tensor, projected_keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """query [B, Hq] or [B, S, Hq] (S queries against the same keys), keys [B, T, Hk], mask [B, T] bool.

        Returns (mix [B, Hk] or [B, S, Hk], weights [B, T] or [B, S, T]).
        """
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query  # [B, S, Hq]
        k = self.project_keys(keys) if projected_keys is None else projected_keys  # [B, T, A]
        scores = self.score(torch.tanh(k.unsqueeze(1) + self.query_proj(q).unsqueeze(2))).squeeze(-1)  # [B, S, T]
        weights = masked_softmax(scores, mask.unsqueeze(1))
        mix = weights @ keys  # [B, S, Hk]
        return (mix.squeeze(1), weights.squeeze(1)) if single else (mix, weights)


class AttentionPooling(nn.Module):
    r"""``Σ_t softmax_t(v · tanh(W h_t)) h_t`` over the real positions of each sequence."""

    def __init__(self, input_size: int, attn_size: int):
        super().__init__()
        self.proj = nn.Linear(input_size, attn_size)
        self.score = nn.Linear(attn_size, 1, bias=False)

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """states [N, L, D], mask [N, L] bool -> (pooled [N, D], weights [N, L])."""
        weights = masked_softmax(self.score(torch.tanh(self.proj(states))).squeeze(-1), mask)
        return (weights.unsqueeze(1) @ states).squeeze(1), weights


__all__ = ["masked_softmax", "AdditiveAttention", "AttentionPooling"]
