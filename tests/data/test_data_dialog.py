"""Dialog splits: responses with their contexts, one padded turn per earlier turn, ``<d>`` first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from demvae.data import BucketBatchSampler, Example, Vocab, iterate, load_corpus
from demvae.data.batching import EncodedSplit
from demvae.data.dialog import DialogBatch, DialogSplit, encode_dialog_splits
from demvae.data.types import Batch
from demvae.errors import ConfigError, DataError

DIALOGUES = [
    ("weather", [("driver", "What's the weather in Boston?"), ("assistant", "It will be Sunny."),
                 ("driver", "Thanks"), ("assistant", "You're welcome.")]),
    ("navigate", [("driver", "Find me a gas station"), ("assistant", "There is a Chevron 4 miles away."),
                  ("driver", "What is the address?"), ("assistant", "783 Arcadia Pl."), ("driver", "Thank you car!"),
                  ("assistant", "Happy to help.")]),
    ("schedule", [("driver", "Remind me of the doctor appointment"), ("assistant", "Setting a reminder.")]),
]


def write_dialogues(root: Path) -> Path:
    d = root / "stanford"
    d.mkdir(parents=True, exist_ok=True)
    data = [{"dialogue": [{"turn": who, "data": {"utterance": text}} for who, text in turns],
             "scenario": {"task": {"intent": domain}}} for domain, turns in DIALOGUES]
    for name in ("train", "dev", "test"):
        (d / f"kvret_{name}_public.json").write_text(json.dumps(data))
    return root


@pytest.fixture
def corpus(tmp_path):
    return load_corpus("smd", data_dir=write_dialogues(tmp_path))


@pytest.fixture
def vocab(corpus):
    return Vocab.build((ex.tokens for ex in corpus.splits["train"]), specials=corpus.specials)


def original_contexts(corpus, cap):
    """The original's contexts, rebuilt independently: each dialogue is [<d>, t0, t1, ...] and the turn at
    position i has context dialog[max(0, i - cap):i]."""
    out, start = [], 0
    for _, turns in DIALOGUES:
        dialog = [("<d>",)] + [ex.tokens for ex in corpus.splits["train"][start : start + len(turns)]]
        out += [dialog[max(0, i - cap) : i] for i in range(1, len(dialog))]
        start += len(turns)
    return out


def rows(split: DialogSplit, vocab: Vocab, n: int) -> list[list[int]]:
    batch = split.batch([n])
    return [batch.context[0, j, : int(batch.context_lengths[0, j])].tolist() for j in range(int(batch.n_turns[0]))]


@pytest.mark.parametrize("cap", [30, 3, 1])
def test_contexts_are_the_originals_with_the_opening_turn(corpus, vocab, cap):
    split = DialogSplit.from_examples(corpus.splits["train"], vocab, context_turns=cap)
    expected = original_contexts(corpus, cap)
    assert len(split) == len(expected) == 12
    for n, turns in enumerate(expected):
        assert rows(split, vocab, n) == [vocab.encode(t) for t in turns]
    # every dialogue's first turn has the <d> turn as its whole context
    assert rows(split, vocab, 0) == [[vocab.bos_id, vocab.id("<d>"), vocab.eos_id]]
    assert vocab.id("<d>") != vocab.unk_id and "<d>" in corpus.specials


def test_responses_are_the_encoded_split(corpus, vocab):
    exs = corpus.splits["train"]
    split = DialogSplit.from_examples(exs, vocab, max_len=8)
    plain = EncodedSplit.from_examples(exs, vocab, max_len=8)
    assert torch.equal(split.ids, plain.ids) and torch.equal(split.lengths, plain.lengths)
    assert split.labels.keys() == plain.labels.keys() and all(torch.equal(split.labels[k], plain.labels[k])
                                                              for k in plain.labels)
    assert split.n_truncated == plain.n_truncated > 0
    assert split.example_index.tolist() == list(range(len(exs)))


def test_turn_truncation_keeps_eos(corpus, vocab):
    split = DialogSplit.from_examples(corpus.splits["train"], vocab, max_len=40, turn_len=5)
    batch = split.full()
    real = batch.context_lengths > 0
    assert int(batch.context_lengths.max()) == 5 and batch.context.shape[2] == 5
    last = batch.context.gather(2, (batch.context_lengths - 1).clamp(min=0).unsqueeze(2)).squeeze(2)
    assert bool((last[real] == vocab.eos_id).all())  # every real turn ends with </s>, cut or not
    assert bool((batch.context[:, :, 0][real] == vocab.bos_id).all())
    distinct = {turn for context in original_contexts(corpus, 30) for turn in context}
    assert split.n_turns_truncated == sum(len(t) + 2 > 5 for t in distinct) > 0
    # a truncated turn is vocab.encode's truncation
    assert rows(split, vocab, 2)[1] == vocab.encode(corpus.splits["train"][0].tokens, max_len=5)


def test_batch_padding_and_mask(corpus, vocab):
    split = DialogSplit.from_examples(corpus.splits["train"], vocab)
    batch = split.batch([4, 8, 10])  # first turn of dialogue 2 (1 turn), its 5th turn (5 turns), dialogue 3 (1)
    assert isinstance(batch, DialogBatch) and isinstance(batch, Batch)
    assert batch.n_turns.tolist() == [1, 5, 1]
    assert batch.context.shape[:2] == (3, 5) and batch.context_lengths.shape == (3, 5)
    assert batch.turn_mask.tolist() == [[True] + [False] * 4, [True] * 5, [True] + [False] * 4]
    assert bool((batch.context[~batch.turn_mask] == vocab.pad_id).all())
    assert bool((batch.context_lengths[~batch.turn_mask] == 0).all())
    positions = torch.arange(batch.context.shape[2])
    assert bool((batch.context[positions >= batch.context_lengths.unsqueeze(2)] == vocab.pad_id).all())
    assert int(batch.context_lengths.max()) == batch.context.shape[2]  # trimmed to the batch's longest turn
    assert torch.equal(batch.host_n_turns, batch.n_turns) and batch.host_context_lengths.device.type == "cpu"
    moved = batch.to("cpu")
    assert isinstance(moved, DialogBatch) and torch.equal(moved.context, batch.context)
    assert moved.labels.keys() == batch.labels.keys() and torch.equal(moved.tokens, batch.tokens)


def test_system_turns_only(corpus, vocab):
    exs = corpus.splits["train"]
    sys_split = DialogSplit.from_examples(exs, vocab, speakers="sys")
    both = DialogSplit.from_examples(exs, vocab)
    keep = [i for i, ex in enumerate(exs) if ex.tokens[0] == "<sys>"]
    assert sys_split.example_index.tolist() == keep and len(sys_split) == 6
    assert bool((sys_split.labels["speaker"] == 1).all())
    for n, i in enumerate(keep):  # contexts keep the user turns
        assert rows(sys_split, vocab, n) == rows(both, vocab, i)
        assert sys_split.ids[n, : int(sys_split.lengths[n])].tolist() == vocab.encode(exs[i].tokens)
    with pytest.raises(ConfigError, match="speakers"):
        DialogSplit.from_examples(exs, vocab, speakers="usr")
    with pytest.raises(DataError, match="speaker"):
        DialogSplit.from_examples([Example(("a",))], vocab, speakers="sys")


def test_opening_needs_the_token_and_can_be_left_out(corpus):
    exs = corpus.splits["train"]
    bare = Vocab.build(ex.tokens for ex in exs)  # built without the corpus specials
    with pytest.raises(DataError, match="<d>"):
        DialogSplit.from_examples(exs, bare)
    split = DialogSplit.from_examples(exs, bare, opening=None)
    assert split.n_turns.tolist()[:4] == [0, 1, 2, 3]
    batch = split.batch([0])
    assert batch.context.shape[:2] == (1, 0) and batch.n_turns.tolist() == [0]
    with pytest.raises(ConfigError, match="context_turns"):
        DialogSplit.from_examples(exs, bare, opening=None, context_turns=0)


def test_bucketed_batches_carry_contexts(corpus, vocab):
    split = DialogSplit.from_examples(corpus.splits["train"], vocab)
    sampler = BucketBatchSampler(split.lengths, batch_size=4, shuffle=True, seed=1, bucket_factor=3)
    seen = []
    for indices, batch in zip(sampler.batches(0), iterate(split, sampler)):
        assert isinstance(batch, DialogBatch)
        assert batch.lengths.tolist() == sorted(batch.lengths.tolist())  # bucketed by response length
        for b, n in enumerate(indices):
            assert rows(split, vocab, n) == [batch.context[b, j, : int(batch.context_lengths[b, j])].tolist()
                                             for j in range(int(batch.n_turns[b]))]
        seen += indices
    assert sorted(seen) == list(range(len(split)))


def test_encode_dialog_splits(corpus, vocab):
    splits = encode_dialog_splits(corpus, vocab, speakers="sys")
    assert set(splits) == {"train", "valid", "test"}
    assert all(len(s) == 6 and s.labels.keys() == {"domain", "speaker"} for s in splits.values())


def test_real_smd_counts(shared_data_dir):
    if not (shared_data_dir / "stanford").is_dir():
        pytest.skip("stanford/ not in the shared data")
    corpus = load_corpus("smd", data_dir=shared_data_dir)
    vocab = Vocab.build((ex.tokens for ex in corpus.splits["train"]), specials=corpus.specials)
    both = encode_dialog_splits(corpus, vocab)
    assert {k: len(s) for k, s in both.items()} == {"train": 12732, "valid": 1567, "test": 1629}
    assert len(encode_dialog_splits(corpus, vocab, speakers="sys")["train"]) == 6299
    train = both["train"]
    first = train.turns[train.turn_index[:, 0]]
    assert bool((first[:, :3] == torch.tensor([vocab.bos_id, vocab.id("<d>"), vocab.eos_id])).all())
    assert int(train.n_turns.max()) == 12  # the 30-turn cap never binds
    assert 3.3 < float(train.n_turns.float().mean()) < 3.5
