r"""GRU decoder fed by a latent vector: ``h_0 = W z`` and, optionally, ``[emb(w_{t−1}); z]`` at every step.

``log p(x | z) = Σ_{t ≥ 1} log softmax(W_o h_t)[x_t]`` over the real tokens after ``<s>``, ``</s>``
included. Only real positions are projected onto the vocabulary (padding costs nothing there).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from demvae.nn.decoding import real_targets, sample_decode, token_nll


class LatentDecoder(nn.Module):
    def __init__(
        self,
        embedding: nn.Embedding,
        hidden_size: int,
        init_dim: int = 0,
        input_dim: int = 0,
        dropout: float = 0.3,
        tie_output: bool = True,
    ):
        super().__init__()
        vocab_size, embed_dim = embedding.weight.shape
        self.embedding = embedding
        self.hidden_size = hidden_size
        self.input_dim = input_dim
        self.init = nn.Linear(init_dim, hidden_size, bias=False) if init_dim > 0 else None
        self.rnn = nn.GRU(embed_dim + input_dim, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        if tie_output:
            if embed_dim != hidden_size:
                raise ValueError("a tied output layer needs embed_dim == hidden_size")
            self.out = None
        else:
            self.out = nn.Linear(hidden_size, vocab_size)

    def logits(self, hidden: Tensor) -> Tensor:
        if self.out is None:
            return hidden @ self.embedding.weight.t()
        return self.out(hidden)

    def _initial_state(self, init: Tensor | None, rows: int, ref: Tensor) -> Tensor:
        if self.init is None or init is None:
            return ref.new_zeros(1, rows, self.hidden_size)
        return self.init(init).unsqueeze(0)

    def _inputs(self, emb: Tensor, latent_input: Tensor | None) -> Tensor:
        emb = self.dropout(emb)
        if self.input_dim == 0:
            return emb
        return torch.cat((emb, latent_input.unsqueeze(1).expand(-1, emb.shape[1], -1)), dim=-1)

    def log_likelihood(
        self,
        tokens: Tensor,
        lengths: Tensor,
        init: Tensor | None = None,
        latent_input: Tensor | None = None,
        replicas: int = 1,
    ) -> Tensor:
        """``log p(x | z)`` per row, teacher forced.

        tokens [B, T] and lengths [B] are shared by ``replicas`` consecutive rows of ``init`` /
        ``latent_input`` ([B·replicas, F]); returns [B·replicas].
        """
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        emb = self.embedding(inputs)
        if replicas > 1:
            emb = emb.repeat_interleave(replicas, dim=0)
            targets = targets.repeat_interleave(replicas, dim=0)
        rows, steps = targets.shape
        flat, row = real_targets(lengths, steps, replicas)
        flat, row = flat.to(tokens.device, non_blocking=True), row.to(tokens.device, non_blocking=True)
        hidden, _ = self.rnn(self._inputs(emb, latent_input), self._initial_state(init, rows, emb))
        hidden = self.dropout(hidden.flatten(0, 1).index_select(0, flat))  # [N_real, H]
        nll = token_nll(self.logits, hidden, targets.flatten().index_select(0, flat))
        return -torch.zeros(rows, device=nll.device, dtype=nll.dtype).index_add_(0, row, nll)

    @torch.no_grad()
    def generate(
        self,
        init: Tensor | None,
        latent_input: Tensor | None,
        rows: int,
        bos_id: int,
        eos_id: int,
        max_len: int = 40,
        greedy: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Decode ``rows`` sequences; returns ids [rows, ≤ max_len−1] (``</s>`` then ``<pad>=0``)."""

        def step(word: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
            hidden, state = self.rnn(self._inputs(self.embedding(word), latent_input), state)
            return self.logits(hidden[:, -1]), state

        state = self._initial_state(init, rows, self.embedding.weight)
        return sample_decode(step, state, rows, bos_id, eos_id, max_len, greedy, generator)
