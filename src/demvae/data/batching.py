"""Encoding a split once, length-bucketed batching, and iteration.

Differences from the original loader (documented on purpose): every example is kept (the original dropped the
``N % batch_size`` leftovers of every split, test included), and training batches are bucketed by length (the
original shuffled without bucketing), which cuts padding a lot at no cost in randomness across epochs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from demvae.data.types import Batch, Example
from demvae.data.vocab import PAD_ID, Vocab


class EncodedSplit:
    """One split encoded with a vocabulary: a padded id matrix, lengths and labels, ready to slice into batches.

    ``ids`` [N, Lmax] long (``<s>`` ... ``</s>`` then ``<pad>``=0), ``lengths`` [N] (with ``<s>``/``</s>``),
    ``labels[name]`` [N] long (-1 where an example lacks the label), ``n_truncated``: examples cut to ``max_len``.
    """

    def __init__(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        labels: dict[str, torch.Tensor] | None = None,
        n_truncated: int = 0,
        max_len: int | None = None,
    ):
        if ids.dim() != 2 or lengths.dim() != 1 or ids.shape[0] != lengths.shape[0]:
            raise ValueError("ids must be [N, L] and lengths [N]")
        self.ids = ids
        self.lengths = lengths
        self.labels = dict(labels or {})
        self.n_truncated = int(n_truncated)
        self.max_len = max_len

    @classmethod
    def from_examples(
        cls,
        examples: Sequence[Example],
        vocab: Vocab,
        max_len: int | None = 40,
        label_keys: Iterable[str] | None = None,
    ) -> EncodedSplit:
        n = len(examples)
        encoded = [vocab.encode(ex.tokens, max_len=None) for ex in examples]
        raw_len = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=n)
        if max_len is not None:
            if max_len < 2:
                raise ValueError("max_len must be at least 2 (<s> and </s>)")
            long_rows = np.nonzero(raw_len > max_len)[0]
            for i in long_rows:
                e = encoded[i]
                encoded[i] = e[: max_len - 1] + e[-1:]
            lengths = np.minimum(raw_len, max_len)
        else:
            long_rows = np.zeros(0, dtype=np.int64)
            lengths = raw_len
        width = int(lengths.max()) if n else 0
        ids = np.full((n, width), PAD_ID, dtype=np.int64)
        if n:
            flat = np.fromiter((t for e in encoded for t in e), dtype=np.int64, count=int(lengths.sum()))
            rows = np.repeat(np.arange(n), lengths)
            starts = np.cumsum(lengths) - lengths
            cols = np.arange(flat.shape[0]) - np.repeat(starts, lengths)
            ids[rows, cols] = flat
        if label_keys is None:
            keys: set[str] = set()
            for ex in examples:
                keys.update(ex.labels)
            label_keys = sorted(keys)
        labels = {
            key: torch.from_numpy(
                np.fromiter((ex.labels.get(key, -1) for ex in examples), dtype=np.int64, count=n)
            )
            for key in label_keys
        }
        return cls(torch.from_numpy(ids), torch.from_numpy(lengths.astype(np.int64)), labels, len(long_rows), max_len)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def batch(self, indices: Sequence[int] | torch.Tensor) -> Batch:
        """The examples at ``indices`` (in that order), padded to the longest of them."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        lengths = self.lengths[idx]
        width = int(lengths.max()) if idx.numel() else 0
        tokens = self.ids[idx, :width]
        return Batch(tokens, lengths, {k: v[idx] for k, v in self.labels.items()})

    def full(self) -> Batch:
        """All examples as one batch (small splits only)."""
        return self.batch(torch.arange(len(self)))


def _as_long_tensor(lengths) -> torch.Tensor:
    if isinstance(lengths, torch.Tensor):
        return lengths.detach().to("cpu", torch.long).reshape(-1)
    return torch.as_tensor(np.asarray(lengths, dtype=np.int64)).reshape(-1)


class BucketBatchSampler:
    """Batches of indices grouped by length.

    ``shuffle=True`` (training): the indices are shuffled, cut into chunks of ``batch_size * bucket_factor``, each
    chunk sorted by length and cut into batches, and the batch order is shuffled; deterministic given
    ``(seed, epoch)``. ``shuffle=False`` (evaluation): indices sorted by length, cut into batches, no randomness.
    Every example is kept unless ``drop_last`` (then a final short batch is dropped).
    """

    def __init__(
        self,
        lengths: Sequence[int] | torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        bucket_factor: int = 50,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if bucket_factor < 1:
            raise ValueError("bucket_factor must be >= 1")
        self.lengths = _as_long_tensor(lengths)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.bucket_factor = int(bucket_factor)

    def __len__(self) -> int:
        n = self.lengths.numel()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _cut(self, order: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(order, self.batch_size))

    def batches(self, epoch: int = 0) -> list[list[int]]:
        n = self.lengths.numel()
        if n == 0:
            return []
        if not self.shuffle:
            order = torch.argsort(self.lengths, stable=True)
            batches = self._cut(order)
        else:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(epoch))
            perm = torch.randperm(n, generator=g)
            chunk = self.batch_size * self.bucket_factor
            batches = []
            for part in torch.split(perm, chunk):
                part = part[torch.argsort(self.lengths[part], stable=True)]
                batches.extend(self._cut(part))
        if self.drop_last:
            batches = [b for b in batches if b.numel() == self.batch_size]
        if self.shuffle and len(batches) > 1:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        return [b.tolist() for b in batches]


def random_batches(n: int, batch_size: int, seed: int = 0) -> list[list[int]]:
    """Plain shuffled batches without bucketing (the original's scheme, but keeping the leftovers)."""
    g = torch.Generator().manual_seed(seed)
    return [b.tolist() for b in torch.split(torch.randperm(n, generator=g), batch_size)]


def padding_efficiency(lengths: Sequence[int] | torch.Tensor, batches: Sequence[Sequence[int]]) -> float:
    """Real tokens / padded tokens over ``batches`` (1.0 means no padding at all)."""
    lens = _as_long_tensor(lengths)
    real = padded = 0
    for b in batches:
        if len(b) == 0:
            continue
        lb = lens[torch.as_tensor(b, dtype=torch.long)]
        real += int(lb.sum())
        padded += int(lb.max()) * len(b)
    return real / padded if padded else 1.0


def iterate(split: EncodedSplit, sampler: BucketBatchSampler, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
    """The batches of ``split`` for ``epoch`` in sampler order, skipping the first ``start`` (to resume mid-epoch)."""
    if len(sampler.lengths) != len(split):
        raise ValueError(f"sampler covers {len(sampler.lengths)} examples but the split has {len(split)}")
    for indices in sampler.batches(epoch)[start:]:
        yield split.batch(indices)


__all__ = ["EncodedSplit", "BucketBatchSampler", "padding_efficiency", "iterate", "random_batches"]
