import json
from pathlib import Path

import pytest

from demvae.data import load_corpus
from demvae.data.corpora import CORPUS_NAMES
from demvae.data.corpora.synthetic import load_builtin
from demvae.errors import ConfigError, DataError, DemvaeWarning

# ------------------------------------------------------------------------------------------------- helpers


def write_ptb(root: Path, train="a b c\nd <unk> e\n", valid="a b\n", test="c d\n") -> Path:
    d = root / "ptb"
    d.mkdir(parents=True, exist_ok=True)
    for split, text in (("train", train), ("valid", valid), ("test", test)):
        if text is not None:
            (d / f"ptb.{split}.txt").write_text(text) if isinstance(text, str) else (
                d / f"ptb.{split}.txt"
            ).write_bytes(text)
    return root


DD_DIALOGS = "Hi , how are you ? __eou__ Fine , I don't know . __eou__ Ok ! __eou__\nHello there __eou__ Bye __eou__\n"
DD_ACTS = "2 1 3 \n1 4\n"
DD_EMOS = "0 4 0\n6 0 \n"


def write_dd(root: Path, dialogs=DD_DIALOGS, acts=DD_ACTS, emos=DD_EMOS, split_dir="train") -> Path:
    for sd in ("train", "validation", "test"):
        d = root / "daily_dialog" / sd
        d.mkdir(parents=True, exist_ok=True)
        bad = sd == split_dir
        (d / "dialogues.txt").write_text(dialogs if bad else DD_DIALOGS)
        (d / "dialogues_act.txt").write_text(acts if bad else DD_ACTS)
        (d / "dialogues_emotion.txt").write_text(emos if bad else DD_EMOS)
    return root


def smd_dialog(domain="weather", turns=(("driver", "What's the weather?"), ("assistant", "It's Sunny."))):
    return {
        "dialogue": [{"turn": t, "data": {"end_dialogue": False, "utterance": u}} for t, u in turns],
        "scenario": {"task": {"intent": domain}, "kb": {}, "uuid": "x"},
    }


def write_smd(root: Path, train_text: str | None = None) -> Path:
    d = root / "stanford"
    d.mkdir(parents=True, exist_ok=True)
    data = [smd_dialog(), smd_dialog("navigate", (("driver", "Go home"), ("assistant", "ok"), ("driver", "thanks")))]
    for name in ("train", "dev", "test"):
        (d / f"kvret_{name}_public.json").write_text(json.dumps(data, indent=2))
    if train_text is not None:
        (d / "kvret_train_public.json").write_text(train_text)
    return root


# ------------------------------------------------------------------------------------------------- PTB


def test_ptb(tmp_path):
    c = load_corpus("ptb", data_dir=write_ptb(tmp_path, train="a b c\n\nd <unk> e\n"))
    assert c.name == "ptb"
    assert [e.tokens for e in c.splits["train"]] == [("a", "b", "c"), ("d", "<unk>", "e")]
    assert len(c.splits["valid"]) == 1 and len(c.splits["test"]) == 1
    assert c.splits["train"][0].labels == {}


def test_ptb_crlf_and_no_final_newline(tmp_path):
    c = load_corpus("ptb", data_dir=write_ptb(tmp_path, train="A b\r\nc d"))
    assert [e.tokens for e in c.splits["train"]] == [("A", "b"), ("c", "d")]


def test_missing_file(tmp_path):
    write_ptb(tmp_path, test=None)
    with pytest.raises(DataError, match=r"ptb\.test\.txt: .*not found"):
        load_corpus("ptb", data_dir=tmp_path)


def test_missing_corpus_folder(tmp_path):
    with pytest.raises(DataError, match="PTB folder not found"):
        load_corpus("ptb", data_dir=tmp_path)


def test_empty_file(tmp_path):
    write_ptb(tmp_path, valid="")
    with pytest.raises(DataError, match=r"ptb\.valid\.txt: .*empty"):
        load_corpus("ptb", data_dir=tmp_path)
    write_ptb(tmp_path, valid="  \n\n")
    with pytest.raises(DataError, match="empty"):
        load_corpus("ptb", data_dir=tmp_path)


def test_non_utf8_reports_line(tmp_path):
    write_ptb(tmp_path, train=b"ok line\nsecond line\nbad \xe9t\xe9 here\n")
    with pytest.raises(DataError) as err:
        load_corpus("ptb", data_dir=tmp_path)
    msg = str(err.value)
    assert "ptb.train.txt:3" in msg and "UTF-8" in msg
    assert err.value.line == 3


# ------------------------------------------------------------------------------------------------- DailyDialog


def test_dailydialog(tmp_path):
    c = load_corpus("dd", data_dir=write_dd(tmp_path))
    assert c.name == "dailydialog"
    train = c.splits["train"]
    assert len(train) == 5 and c.info["dialogues"] == {"train": 2, "valid": 2, "test": 2}
    assert train[0].tokens == ("hi", ",", "how", "are", "you", "?")
    assert train[1].tokens == ("fine", ",", "i", "don", "'", "t", "know", ".")
    assert [e.labels["act"] for e in train] == [1, 0, 2, 0, 3]
    assert [e.labels["emotion"] for e in train] == [0, 4, 0, 6, 0]
    assert c.label_names["act"] == ["inform", "question", "directive", "commissive"]
    assert c.label_names["emotion"][0] == "no emotion" and len(c.label_names["emotion"]) == 7
    assert train[2].context == (train[0].tokens, train[1].tokens)
    assert train[0].context == () and train[3].context == ()  # a new dialogue starts without context
    c1 = load_corpus("dailydialog", data_dir=tmp_path, context_turns=1)
    assert c1.splits["train"][2].context == (train[1].tokens,)


def test_dailydialog_label_count_mismatch(tmp_path):
    write_dd(tmp_path, acts="2 1 3\n1\n", split_dir="validation")
    with pytest.raises(DataError) as err:
        load_corpus("dd", data_dir=tmp_path)
    msg = str(err.value)
    assert "validation" in msg and "dialogues.txt:2" in msg and "dialogues_act.txt" in msg


def test_dailydialog_line_count_mismatch_and_bad_label(tmp_path):
    write_dd(tmp_path, emos="0 4 0\n")
    with pytest.raises(DataError, match="line counts differ"):
        load_corpus("dd", data_dir=tmp_path)
    write_dd(tmp_path, acts="2 1 9\n1 4\n")
    with pytest.raises(DataError, match=r"dialogues_act\.txt:1: .*out of range"):
        load_corpus("dd", data_dir=tmp_path)
    write_dd(tmp_path, emos="0 x 0\n6 0\n")
    with pytest.raises(DataError, match=r"dialogues_emotion\.txt:1"):
        load_corpus("dd", data_dir=tmp_path)


def test_dailydialog_non_utf8(tmp_path):
    write_dd(tmp_path)
    (tmp_path / "daily_dialog" / "test" / "dialogues.txt").write_bytes(
        b"Hi __eou__ there __eou__\nA \xff b __eou__ c __eou__\n"
    )
    with pytest.raises(DataError, match=r"test/dialogues\.txt:2"):
        load_corpus("dd", data_dir=tmp_path)


# ------------------------------------------------------------------------------------------------- SMD


def test_smd(tmp_path):
    c = load_corpus("stanford", data_dir=write_smd(tmp_path))
    assert c.name == "smd" and c.specials == ("<usr>", "<sys>", "<d>")
    train = c.splits["train"]
    assert len(train) == 5 and c.info["dialogues"] == {"train": 2, "valid": 2, "test": 2}
    assert train[0].tokens == ("<usr>", "What", "'", "s", "the", "weather", "?")
    assert train[1].tokens[0] == "<sys>" and "Sunny" in train[1].tokens  # case kept
    assert c.label_names["domain"] == ["navigate", "schedule", "weather"]
    assert [e.labels["domain"] for e in train] == [2, 2, 0, 0, 0]
    assert [e.labels["speaker"] for e in train] == [0, 1, 0, 1, 0]
    assert train[1].context == (train[0].tokens,)
    assert train[4].context == (train[2].tokens, train[3].tokens)
    c1 = load_corpus("smd", data_dir=tmp_path, context_turns=1)
    assert c1.splits["train"][4].context == (train[3].tokens,)


def test_smd_malformed_json(tmp_path):
    write_smd(tmp_path, train_text='[\n  {"dialogue": [],\n   "scenario": oops}\n]\n')
    with pytest.raises(DataError) as err:
        load_corpus("smd", data_dir=tmp_path)
    assert "kvret_train_public.json:3" in str(err.value) and "malformed JSON" in str(err.value)


def test_smd_bad_structure(tmp_path):
    write_smd(tmp_path, train_text=json.dumps([smd_dialog("shopping")]))
    with pytest.raises(DataError, match="unknown domain 'shopping'"):
        load_corpus("smd", data_dir=tmp_path)
    write_smd(tmp_path, train_text=json.dumps([smd_dialog(turns=(("robot", "hi"),))]))
    with pytest.raises(DataError, match="dialogue #0, turn 0"):
        load_corpus("smd", data_dir=tmp_path)
    write_smd(tmp_path, train_text=json.dumps({"a": 1}))
    with pytest.raises(DataError, match="JSON list"):
        load_corpus("smd", data_dir=tmp_path)


# ------------------------------------------------------------------------------------------------- user text


def test_text_single_txt_split(tmp_path):
    p = tmp_path / "mine.txt"
    p.write_text("\n".join(f"Sentence Number {i}" for i in range(100)) + "\n\n\n")
    c = load_corpus(str(p))
    assert c.name == "mine"
    sizes = {k: len(v) for k, v in c.splits.items()}
    assert sizes == {"train": 90, "valid": 5, "test": 5}
    all_ = sorted(e.tokens for s in c.splits.values() for e in s)
    assert all_ == sorted(("Sentence", "Number", str(i)) for i in range(100))
    assert c.splits == load_corpus(p).splits  # deterministic
    assert c.splits != load_corpus(p, seed=1).splits
    low = load_corpus(p, lowercase=True)
    assert low.splits["train"][0].tokens[0] == "sentence"


def test_text_jsonl_labels(tmp_path):
    p = tmp_path / "lab.jsonl"
    rows = [{"text": f"w{i} x", "topic": ["b", "a", "c"][i % 3], "rating": i % 2} for i in range(40)]
    rows.append({"text": "no labels here", "topic": None})
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    c = load_corpus(p)
    assert c.label_names["topic"] == ["a", "b", "c"] and c.label_names["rating"] == ["0", "1"]
    for s in c.splits.values():
        for e in s:
            if e.tokens == ("no", "labels", "here"):
                assert e.labels == {}
            else:
                i = int(e.tokens[0][1:])
                assert c.label_names["topic"][e.labels["topic"]] == ["b", "a", "c"][i % 3]
                assert e.labels["rating"] == i % 2


def test_text_folder(tmp_path):
    d = tmp_path / "corp"
    d.mkdir()
    (d / "train.txt").write_text("a b\nc d\n")
    (d / "dev.jsonl").write_text('{"text": "a c", "y": "pos"}\n')
    (d / "test.txt").write_text("d\n")
    c = load_corpus(str(d))
    assert [len(c.splits[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    assert c.splits["valid"][0].labels == {"y": 0} and c.label_names["y"] == ["pos"]
    (d / "test.txt").unlink()
    with pytest.raises(DataError, match="no test file"):
        load_corpus(d)


@pytest.mark.parametrize(
    "line, msg",
    [
        ('{"text": "ok"', "malformed JSON"),
        ('["text"]', "expected a JSON object"),
        ('{"label": 1}', '"text"'),
        ('{"text": 5}', '"text"'),
    ],
)
def test_text_jsonl_errors(tmp_path, line, msg):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "fine"}\n\n{"text": "also fine"}\n' + line + "\n")
    with pytest.raises(DataError, match=msg) as err:
        load_corpus(p)
    assert "bad.jsonl:4" in str(err.value)


def test_jsonl_records_without_text_are_skipped_with_their_lines_named(tmp_path):
    """``"text": ""`` is skipped as a blank line is, but not silently: a warning names file:line."""
    p = tmp_path / "c.jsonl"
    texts = ["a b", "", "c d", "   ", "e f", "g h"]
    p.write_text("".join(json.dumps({"text": t, "topic": "x"}) + "\n" for t in texts))
    with pytest.warns(DemvaeWarning, match=r"c\.jsonl:2: \"text\" has no words.*so are lines 4$"):
        c = load_corpus(p)
    assert all(ex.tokens for split in c.splits.values() for ex in split)
    assert sum(len(split) for split in c.splits.values()) == 4


def test_jsonl_labels_are_class_like_fields_or_the_named_ones(tmp_path):
    p = tmp_path / "c.jsonl"
    rows = [{"text": f"s {i}", "id": i, "topic": ["a", "b"][i % 2], "score": i * 0.5, "meta": {"k": 1}}
            for i in range(40)]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    c = load_corpus(p)
    assert set(c.label_names) == {"topic"}  # id-like, float and mapping fields are not classes
    assert any("id" in n and "score" in n for n in c.notes)
    c = load_corpus(p, labels=["topic", "id"])
    assert set(c.label_names) == {"topic", "id"} and not c.notes
    with pytest.raises(DataError, match="not found"):
        load_corpus(p, labels=["nope"])
    with pytest.raises(DataError, match="label 'meta'"):
        load_corpus(p, labels=["meta"])


def test_text_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_corpus(str(tmp_path / "nope.txt"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_corpus(tmp_path / "empty.txt")
    (tmp_path / "two.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="at least 3"):
        load_corpus(tmp_path / "two.txt")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported file type"):
        load_corpus(tmp_path / "x.csv")
    (tmp_path / "bin.txt").write_bytes(b"one\ntwo\nthree\nfour \x80\n")
    with pytest.raises(DataError, match=r"bin\.txt:4"):
        load_corpus(tmp_path / "bin.txt")


# ------------------------------------------------------------------------------------------------- load_corpus


def test_unknown_name_lists_valid_names():
    with pytest.raises(DataError) as err:
        load_corpus("wikitext")
    msg = str(err.value)
    for name in CORPUS_NAMES:
        assert name in msg


def test_data_dir_required(no_data_env):
    with pytest.raises(DataError, match="--data-dir.*DEMVAE_DATA"):
        load_corpus("ptb")


def test_data_dir_from_env(tmp_path, monkeypatch):
    write_ptb(tmp_path)
    monkeypatch.setenv("DEMVAE_DATA", str(tmp_path))
    assert len(load_corpus("PTB").splits["train"]) == 2
    with pytest.raises(DataError, match="data folder not found"):
        load_corpus("ptb", data_dir=tmp_path / "nothing")


def test_unknown_option():
    with pytest.raises(ConfigError, match="n_train"):
        load_corpus("builtin", n_trian=5)


def test_builtin_needs_no_data_dir(no_data_env):
    c = load_corpus("builtin", n_train=10, n_valid=3, n_test=2)
    assert [len(c.splits[s]) for s in ("train", "valid", "test")] == [10, 3, 2]
    assert load_builtin(n_train=10, n_valid=3, n_test=2).splits == c.splits


def test_locate_finds_a_paper_corpus_where_it_was_read(tmp_path, monkeypatch):
    """A paper corpus whose data folder is not given (or gone) falls back to the one recorded at training, as a
    relative path does; an edited file there is refused."""
    from dataclasses import replace

    from demvae.config import DataConfig
    from demvae.data.fingerprint import fingerprint, locate

    monkeypatch.delenv("DEMVAE_DATA", raising=False)
    root = write_ptb(tmp_path / "data")
    cfg = DataConfig(corpus="ptb", data_dir=str(root))
    recorded = fingerprint(cfg)
    found, notes = locate(replace(cfg, data_dir=None), recorded)
    assert found.data_dir == str(root) and not notes
    (root / "ptb" / "ptb.test.txt").write_text("an edited test split\n")
    with pytest.raises(DataError, match="ptb.test.txt differ"):
        locate(replace(cfg, data_dir=None), recorded)
    with pytest.raises(DataError, match="--data-dir"):
        locate(replace(cfg, data_dir=None), {**recorded, "path": str(tmp_path / "gone")})
