"""Checks against the real corpora (skipped when they are absent)."""

from collections import Counter

import pytest

from demvae.data import load_corpus


def _need(shared_data_dir, sub):
    if not (shared_data_dir / sub).is_dir():
        pytest.skip(f"{sub} not in {shared_data_dir}")
    return shared_data_dir


def test_ptb_counts(shared_data_dir):
    c = load_corpus("ptb", data_dir=_need(shared_data_dir, "ptb"))
    assert {k: len(v) for k, v in c.splits.items()} == {"train": 42068, "valid": 3370, "test": 3761}
    assert sum(len(e.tokens) + 2 for e in c.splits["valid"]) == 77130


def test_dailydialog_counts(shared_data_dir):
    c = load_corpus("dailydialog", data_dir=_need(shared_data_dir, "daily_dialog"))
    assert {k: len(v) for k, v in c.splits.items()} == {"train": 87170, "valid": 8069, "test": 7740}
    assert c.info["dialogues"] == {"train": 11118, "valid": 1000, "test": 1000}
    names = c.label_names["act"]
    acts = Counter(names[e.labels["act"]] for e in c.splits["test"])
    assert acts == {"inform": 3534, "question": 2210, "directive": 1278, "commissive": 718}
    emo = Counter(e.labels["emotion"] for e in c.splits["test"])
    assert emo[0] == 6321 and emo[4] == 1019


def test_smd_counts(shared_data_dir):
    c = load_corpus("smd", data_dir=_need(shared_data_dir, "stanford"))
    assert c.info["dialogues"] == {"train": 2425, "valid": 302, "test": 304}
    assert len(c.splits["valid"]) == 1567 and len(c.splits["test"]) == 1629
    assert all(e.tokens[0] in ("<usr>", "<sys>") for e in c.splits["test"])
