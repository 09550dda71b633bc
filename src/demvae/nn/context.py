r"""The dialog context: a hierarchical encoder (utterance encoder, then a GRU over the turns) and the policy
network p(c | context).

Everything runs on the real tokens and turns only: the utterance encoder packs each turn and pools over its real
positions, empty padded turns are never encoded, and the turn GRU is packed by the number of real turns, so its
final state is the state after the last real turn. A batch's padding (more padded turns, longer padded turns)
therefore never changes an encoding. The original ran both GRUs and the pooling over padding, which made its
encodings depend on the batch; that is a documented difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from demvae.nn.attention import AttentionPooling


class UtteranceEncoder(nn.Module):
    """A bidirectional GRU over each turn (packed) and attention pooling over its real positions -> 2H per turn."""

    def __init__(self, embedding: nn.Embedding, hidden_size: int = 256, attn_size: int | None = None):
        super().__init__()
        self.embedding = embedding
        self.rnn = nn.GRU(embedding.embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.output_size = 2 * hidden_size
        self.pool = AttentionPooling(self.output_size, attn_size or self.output_size)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens [N, L], lengths [N] (every one ≥ 1; best on the CPU: packing reads them) -> [N, 2H]."""
        steps = tokens.shape[1]
        packed = pack_padded_sequence(self.embedding(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=steps)  # [N, L, 2H]
        mask = torch.arange(steps, device=tokens.device) < lengths.to(tokens.device).unsqueeze(1)
        return self.pool(states, mask)[0]


@dataclass
class ContextEncoding:
    """What the hierarchical encoder hands to the policy and the decoder."""

    outputs: Tensor
    """[B, C, H]: the turn GRU's output after each real turn (the decoder's attention memory); 0 on padded turns."""
    last: Tensor
    """[B, H]: the state after the last real turn (c_last); 0 for a row without turns."""
    mask: Tensor
    """[B, C] bool: True on the real turns."""


class ContextEncoder(nn.Module):
    """Utterance encoder over every real turn, then a GRU over each dialogue's real turns (packed)."""

    def __init__(self, utterance: UtteranceEncoder, hidden_size: int = 512):
        super().__init__()
        self.utterance = utterance
        self.rnn = nn.GRU(utterance.output_size, hidden_size, batch_first=True)
        self.hidden_size = hidden_size

    def forward(
        self,
        context: Tensor,
        context_lengths: Tensor,
        n_turns: Tensor,
        host_context_lengths: Tensor | None = None,
        host_n_turns: Tensor | None = None,
    ) -> ContextEncoding:
        """context [B, C, L], context_lengths [B, C] (0 on padded turns), n_turns [B] (real turns first).

        The ``host_*`` arguments are CPU copies of the lengths (a :class:`~demvae.data.dialog.DialogBatch` carries
        them); without them the lengths are copied to the CPU here.
        """
        batch, turns, steps = context.shape
        device = context.device
        turn_len = (context_lengths if host_context_lengths is None else host_context_lengths).cpu().reshape(-1)
        host_n = (n_turns if host_n_turns is None else host_n_turns).cpu()
        # 1. encode the real turns only, then put them back in their [B·C] slots (zeros elsewhere)
        real = turn_len.nonzero().squeeze(1)
        size = self.utterance.output_size
        vectors = torch.zeros(batch * turns, size, device=device, dtype=self.rnn.get_parameter("weight_ih_l0").dtype)
        if real.numel():
            at = real.to(device, non_blocking=True)
            encoded = self.utterance(context.reshape(batch * turns, steps).index_select(0, at), turn_len[real])
            vectors = vectors.index_copy(0, at, encoded)
        vectors = vectors.reshape(batch, turns, size)
        # 2. the turn GRU over the rows that have turns, packed by their number of turns
        outputs = vectors.new_zeros(batch, turns, self.hidden_size)
        last = vectors.new_zeros(batch, self.hidden_size)
        rows = host_n.nonzero().squeeze(1)
        if rows.numel():
            subset = None if rows.numel() == batch else rows.to(device, non_blocking=True)  # None: every row
            packed = pack_padded_sequence(
                vectors if subset is None else vectors.index_select(0, subset), host_n[rows], batch_first=True,
                enforce_sorted=False,
            )
            out, h_n = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=turns)
            if subset is None:
                outputs, last = out, h_n[0]
            else:
                outputs, last = outputs.index_copy(0, subset, out), last.index_copy(0, subset, h_n[0])
        mask = torch.arange(turns, device=device) < n_turns.to(device).unsqueeze(1)
        return ContextEncoding(outputs, last, mask)


class PolicyNetwork(nn.Module):
    """p(c | context) = Π_i softmax(logits_i): Linear-tanh-Linear(D -> M·K), read as M K-way softmaxes."""

    def __init__(self, input_size: int, n_variables: int, n_values: int, hidden_size: int | None = None):
        super().__init__()
        hidden = hidden_size or input_size
        self.n_variables, self.n_values = n_variables, n_values
        self.net = nn.Sequential(nn.Linear(input_size, hidden), nn.Tanh(), nn.Linear(hidden, n_variables * n_values))

    def forward(self, context: Tensor) -> Tensor:
        """context [B, D] (c_last) -> logits [B, M, K]."""
        return self.net(context).reshape(-1, self.n_variables, self.n_values)


__all__ = ["UtteranceEncoder", "ContextEncoding", "ContextEncoder", "PolicyNetwork"]
