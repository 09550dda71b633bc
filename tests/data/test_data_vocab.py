import json

import pytest

from demvae.data.tokenize import chat_tokenize
from demvae.data.vocab import BOS, EOS, PAD, UNK, Vocab
from demvae.errors import DataError


def test_chat_tokenize():
    assert chat_tokenize("I don't know!! <sil> ok...") == ["I", "don", "'", "t", "know", "!!", "<sil>", "ok", "..."]
    assert chat_tokenize("") == []
    assert chat_tokenize("café, naïve") == ["café", ",", "naïve"]


def test_specials_and_ids():
    v = Vocab.build([["b", "a", "a"], ["c"]], specials=("<usr>", "<sys>"))
    assert v.tokens[:6] == [PAD, UNK, BOS, EOS, "<usr>", "<sys>"]
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)
    assert v.tokens[6:] == ["a", "b", "c"]
    assert v.id("a") == 6 and v.token(6) == "a"
    assert v.id("zzz") == v.unk_id
    assert "a" in v and "zzz" not in v
    assert len(v) == 9 and v.n_specials == 6


def test_specials_in_text_are_not_words():
    v = Vocab.build([["<usr>", "hi", "<unk>", "<s>"]], specials=("<usr>",))
    assert v.tokens == [PAD, UNK, BOS, EOS, "<usr>", "hi"]


def test_cap_min_count_and_tie_breaking():
    seqs = [["x"] * 5, ["b", "a", "c"], ["a", "b", "c"], ["d"]]
    v = Vocab.build(seqs, max_size=None)
    assert v.words == ["x", "a", "b", "c", "d"]  # x:5, then a/b/c:2 sorted by string, then d:1
    assert Vocab.build(seqs, max_size=2).words == ["x", "a"]
    assert Vocab.build(seqs, max_size=None, min_count=2).words == ["x", "a", "b", "c"]
    assert Vocab.build(seqs, max_size=0).words == []
    # the order of the input does not matter
    assert Vocab.build(list(reversed(seqs)), max_size=3) == Vocab.build(seqs, max_size=3)


def test_encode_decode_and_truncation():
    v = Vocab.build([["a", "b", "c"]])
    a, b, c = v.id("a"), v.id("b"), v.id("c")
    assert v.encode(["a", "b", "q"]) == [2, a, b, 1, 3]
    ids = v.encode(["a", "b", "c", "a", "b"], max_len=4)
    assert ids == [2, a, b, 3]  # first max_len-1 ids then </s>
    assert len(v.encode(["a"] * 100)) == 40 and v.encode(["a"] * 100)[-1] == v.eos_id
    assert len(v.encode(["a"] * 38)) == 40 and len(v.encode(["a"] * 39)) == 40
    assert v.decode([2, a, b, 3, c, 0]) == ["a", "b"]
    assert v.decode([2, c, 0, a]) == ["c", "a"]


def test_save_load_round_trip(tmp_path):
    v = Vocab.build([["héllo", "world", "world"]], specials=("<sys>",), max_size=5)
    p = tmp_path / "sub" / "vocab.json"
    v.save(p)
    w = Vocab.load(p)
    assert w == v and w.settings["max_size"] == 5 and w.specials == ("<sys>",)
    assert w != Vocab.build([["world"]])


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        Vocab.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n"format": "demvae-vocab",\n"tokens": [\n')
    with pytest.raises(DataError, match=r"bad\.json:4"):
        Vocab.load(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "demvae-vocab", "tokens": ["a", "b"], "specials": []}))
    with pytest.raises(DataError):
        Vocab.load(wrong)
    other = tmp_path / "other.json"
    other.write_text("[1, 2]")
    with pytest.raises(DataError, match="not a demvae vocabulary"):
        Vocab.load(other)
    nonutf = tmp_path / "nonutf.json"
    nonutf.write_bytes(b"\xff\xfe")
    with pytest.raises(DataError):
        Vocab.load(nonutf)
