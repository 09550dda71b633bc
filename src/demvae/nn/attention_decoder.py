r"""GRU decoder with additive attention over a memory (the dialog context), from a given initial state.

At step t: ``h_t = GRU(emb(w_{t−1}), h_{t−1})``, ``a_t = attention(h_t, memory)``, ``o_t = tanh(W_o [a_t; h_t])``,
``p(w_t | ·) = softmax(W_v o_t)``. The GRU reads only the words (no input feeding), so teacher forcing runs it over
the whole sequence at once and attends from every step in one batched call. Dropout acts on the input embeddings
and on o_t. ``h_0`` is given by the caller (for the dialog model: Linear(z) + c_last).

``log p(x | h_0, memory) = Σ_{t ≥ 1} log p(x_t | ·)`` over the real tokens after ``<s>``, ``</s>`` included; only
real positions are projected onto the vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from demvae.nn.attention import AdditiveAttention
from demvae.nn.decoding import Decoding, beam_search, real_targets, sample_decode, token_nll


class AttentionDecoder(nn.Module):
    def __init__(
        self,
        embedding: nn.Embedding,
        hidden_size: int,
        memory_size: int,
        attn_size: int | None = None,
        dropout: float = 0.3,
    ):
        super().__init__()
        vocab_size, embed_dim = embedding.weight.shape
        self.embedding = embedding
        self.hidden_size = hidden_size
        self.rnn = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.attention = AdditiveAttention(hidden_size, memory_size, attn_size or hidden_size)
        self.combine = nn.Linear(memory_size + hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def _output(self, hidden: Tensor, memory: Tensor, mask: Tensor, keys: Tensor) -> Tensor:
        """hidden [B, H] or [B, S, H] -> o = dropout(tanh(W_o [attention(h, memory); h])), same shape."""
        mix, _ = self.attention(hidden, memory, mask, keys)
        return self.dropout(torch.tanh(self.combine(torch.cat((mix, hidden), dim=-1))))

    def outputs(self, tokens: Tensor, init: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """Teacher-forced o_t for every target position: tokens [B, T] (``<s>`` first), init [B, H],
        memory [B, C, M], memory_mask [B, C] -> [B, T − 1, H] (apply :attr:`out` for the logits)."""
        emb = self.dropout(self.embedding(tokens[:, :-1]))
        hidden, _ = self.rnn(emb, init.unsqueeze(0))
        return self._output(hidden, memory, memory_mask, self.attention.project_keys(memory))

    def log_likelihood(
        self, tokens: Tensor, lengths: Tensor, init: Tensor, memory: Tensor, memory_mask: Tensor
    ) -> Tensor:
        """``log p(x | h_0, memory)`` per row, teacher forced: tokens [B, T], lengths [B] (best on the CPU) -> [B]."""
        targets = tokens[:, 1:]
        rows, steps = targets.shape
        flat, row = real_targets(lengths, steps)
        flat, row = flat.to(tokens.device, non_blocking=True), row.to(tokens.device, non_blocking=True)
        out = self.outputs(tokens, init, memory, memory_mask).flatten(0, 1).index_select(0, flat)  # [N_real, H]
        nll = token_nll(out, self.out.weight, self.out.bias, targets.flatten().index_select(0, flat))
        return -torch.zeros(rows, device=nll.device, dtype=nll.dtype).index_add_(0, row, nll)

    def _step(self, memory: Tensor, mask: Tensor):
        keys = self.attention.project_keys(memory)

        def step(word: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
            hidden, state = self.rnn(self.dropout(self.embedding(word)), state)
            return self.out(self._output(hidden[:, -1], memory, mask, keys)), state

        return step

    @torch.no_grad()
    def generate(self, init: Tensor, memory: Tensor, memory_mask: Tensor, decoding: Decoding) -> Tensor:
        """Greedy (or sampled) decoding: init [B, H] -> ids [B, ≤ max_len − 1] (``</s>`` then ``<pad>``)."""
        step = self._step(memory, memory_mask)
        return sample_decode(step, init.unsqueeze(0), init.shape[0], decoding)

    @torch.no_grad()
    def beam_search(
        self, init: Tensor, memory: Tensor, memory_mask: Tensor, decoding: Decoding, beam_size: int = 5,
        length_penalty: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        """Beam search (see :func:`demvae.nn.decoding.beam_search` for the length handling): init [B, H] ->
        (ids [B, ≤ max_len − 1], summed log-probabilities [B] of the returned responses)."""
        k = beam_size
        step = self._step(memory.repeat_interleave(k, 0), memory_mask.repeat_interleave(k, 0))
        state = init.repeat_interleave(k, 0).unsqueeze(0)
        return beam_search(step, state, init.shape[0], decoding, k, length_penalty)


__all__ = ["AttentionDecoder"]
