"""Sentence encoder: embedding + (bi)GRU over packed sequences (no computation on padding)."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence


class SentenceEncoder(nn.Module):
    """``h = [h_fwd(last real token); h_bwd(first token)]`` (bidirectional) or ``h_fwd(last)``."""

    def __init__(self, embedding: nn.Embedding, hidden_size: int, bidirectional: bool = True):
        super().__init__()
        self.embedding = embedding
        self.rnn = nn.GRU(
            embedding.embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional
        )
        self.output_size = hidden_size * (2 if bidirectional else 1)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens [B, T], lengths [B] (best on the CPU: packing reads them) -> summary [B, output_size]."""
        return self.encode_embedded(self.embedding(tokens), lengths)

    def encode_embedded(self, embedded: Tensor, lengths: Tensor) -> Tensor:
        """The summary of already embedded inputs [B, T, E] (e.g. expected embeddings of soft tokens)."""
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(packed)  # [dirs, B, H]
        return h_n.transpose(0, 1).reshape(embedded.shape[0], -1)
