import random

import pytest
import torch

from demvae.data import BucketBatchSampler, EncodedSplit, Example, Vocab, iterate
from demvae.data.batching import padding_efficiency, random_batches


def _examples(n=200, seed=0):
    rng = random.Random(seed)
    return [
        Example(tuple(rng.choice("abcdefg") for _ in range(rng.randint(0, 50))), {"y": i % 3} if i % 5 else {})
        for i in range(n)
    ]


def test_encoded_split_and_batch():
    exs = [Example(("a", "b")), Example(("c",), {"y": 1}), Example(tuple("abcdefgh"), {"y": 0, "z": 2})]
    v = Vocab.build([e.tokens for e in exs])
    s = EncodedSplit.from_examples(exs, v, max_len=6)
    assert len(s) == 3 and s.ids.shape == (3, 6) and s.ids.dtype == torch.long
    assert s.lengths.tolist() == [4, 3, 6]
    assert s.n_truncated == 1
    assert s.ids[2].tolist() == v.encode(exs[2].tokens, max_len=6)
    assert s.ids[1].tolist() == v.encode(("c",)) + [0, 0, 0]
    assert s.labels["y"].tolist() == [-1, 1, 0] and s.labels["z"].tolist() == [-1, -1, 2]
    b = s.batch([1, 0])
    assert b.tokens.shape == (2, 4)  # trimmed to the longest in the batch
    assert b.tokens[0].tolist() == [2, v.id("c"), 3, 0]
    assert b.lengths.tolist() == [3, 4] and b.labels["y"].tolist() == [1, -1]
    assert b.n_targets == 5 and b.size == 2
    only = EncodedSplit.from_examples(exs, v, label_keys=["y"])
    assert set(only.labels) == {"y"} and only.n_truncated == 0 and only.ids.shape[1] == 10


def test_encoded_split_matches_vocab_encode():
    exs = _examples()
    v = Vocab.build([e.tokens for e in exs[:50]], max_size=4)
    s = EncodedSplit.from_examples(exs, v, max_len=40)
    for i, e in enumerate(exs):
        enc = v.encode(e.tokens, max_len=40)
        assert s.ids[i, : len(enc)].tolist() == enc
        assert int(s.lengths[i]) == len(enc)
        assert (s.ids[i, len(enc) :] == 0).all()
    assert s.n_truncated == sum(len(e.tokens) + 2 > 40 for e in exs)


def _check_cover(batches, n):
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(n))


def test_sampler_deterministic_and_covering():
    lengths = [random.Random(i).randint(3, 40) for i in range(1000)]
    s = BucketBatchSampler(lengths, batch_size=32, seed=7, bucket_factor=5)
    e0, e0b, e1 = s.batches(0), s.batches(0), s.batches(1)
    assert e0 == e0b
    assert e0 != e1
    assert BucketBatchSampler(lengths, 32, seed=8, bucket_factor=5).batches(0) != e0
    for b in (e0, e1):
        _check_cover(b, 1000)
        assert len(b) == len(s) == 32  # ceil(1000 / 32), nothing dropped
    dropped = BucketBatchSampler(lengths, 32, seed=7, drop_last=True, bucket_factor=5)
    assert len(dropped) == 31 and all(len(b) == 32 for b in dropped.batches(3))


def test_sampler_eval_order_sorted():
    lengths = [5, 3, 9, 3, 1, 7, 2]
    s = BucketBatchSampler(lengths, batch_size=3, shuffle=False)
    b = s.batches(0)
    assert b == s.batches(5)
    _check_cover(b, len(lengths))
    flat = [lengths[i] for bb in b for i in bb]
    assert flat == sorted(lengths)
    assert [len(x) for x in b] == [3, 3, 1]


def test_buckets_reduce_padding():
    lengths = torch.randint(2, 41, (3000,), generator=torch.Generator().manual_seed(0))
    bucketed = padding_efficiency(lengths, BucketBatchSampler(lengths, 30).batches(0))
    rand = padding_efficiency(lengths, random_batches(3000, 30))
    assert bucketed > 0.95 and bucketed > rand + 0.2
    assert padding_efficiency([4, 4], [[0, 1]]) == 1.0
    assert padding_efficiency([2, 4], [[0, 1]]) == pytest.approx(6 / 8)


def test_iterate_and_resume():
    exs = _examples(100)
    v = Vocab.build([e.tokens for e in exs])
    split = EncodedSplit.from_examples(exs, v)
    sampler = BucketBatchSampler(split.lengths, batch_size=16, seed=1)
    full = list(iterate(split, sampler, epoch=2))
    assert len(full) == len(sampler) == 7
    assert sum(b.size for b in full) == 100
    resumed = list(iterate(split, sampler, epoch=2, start=3))
    assert len(resumed) == 4
    for a, b in zip(full[3:], resumed):
        assert torch.equal(a.tokens, b.tokens)
    for b in full:
        assert b.tokens.shape[1] == int(b.lengths.max())
        assert (b.tokens[:, 0] == v.bos_id).all()
    with pytest.raises(ValueError):
        list(iterate(split, BucketBatchSampler([3] * 5, 2), 0))
