from collections import Counter

import pytest

from demvae.data import Vocab, load_corpus
from demvae.data.corpora.synthetic import INTENTS, STYLES, TEMPLATES
from demvae.errors import DataError


@pytest.fixture(scope="module")
def corpus():
    return load_corpus("builtin")


def test_default_sizes_and_labels(corpus):
    assert {k: len(v) for k, v in corpus.splits.items()} == {"train": 8000, "valid": 500, "test": 500}
    assert corpus.label_names == {"intent": INTENTS, "style": STYLES}
    assert len(INTENTS) == 8 and len(STYLES) == 3
    for split in corpus.splits.values():
        for e in split:
            assert set(e.labels) == {"intent", "style"}
            assert 0 <= e.labels["intent"] < 8 and 0 <= e.labels["style"] < 3
            assert 4 <= len(e.tokens) <= 14
    counts = Counter(e.labels["intent"] for e in corpus.splits["train"])
    assert len(counts) == 8 and min(counts.values()) > 800


def test_deterministic_and_seeded(corpus):
    again = load_corpus("builtin", seed=0)
    assert again.splits == corpus.splits
    other = load_corpus("builtin", seed=1)
    assert other.splits["train"] != corpus.splits["train"]
    small = load_corpus("builtin", n_train=100, n_valid=7, n_test=9)
    assert [len(small.splits[s]) for s in ("train", "valid", "test")] == [100, 7, 9]
    # valid/test do not depend on the train size
    assert small.splits["valid"] == corpus.splits["valid"][:7]
    with pytest.raises(DataError):
        load_corpus("builtin", n_train=0)


def test_labels_consistent_with_text(corpus):
    """Every sentence matches a template of its own (intent, style) cell."""
    from demvae.data.corpora.synthetic import SLOTS

    def matches(tokens, template):
        words = template.split()

        def rec(i, j):
            if i == len(words):
                return j == len(tokens)
            w = words[i]
            if w.startswith("{"):
                return any(
                    tuple(tokens[j : j + len(v.split())]) == tuple(v.split()) and rec(i + 1, j + len(v.split()))
                    for v in SLOTS[w[1:-1]]
                )
            return j < len(tokens) and tokens[j] == w and rec(i + 1, j + 1)

        return rec(0, 0)

    for e in corpus.splits["valid"][:200]:
        cell = TEMPLATES[INTENTS[e.labels["intent"]]][STYLES[e.labels["style"]]]
        assert any(matches(e.tokens, t) for t in cell), e


def test_vocabulary_small(corpus):
    v = Vocab.build(e.tokens for e in corpus.splits["train"])
    assert 150 <= len(v) <= 600
    test_tokens = [t for e in corpus.splits["test"] for t in e.tokens]
    assert all(t in v for t in test_tokens)
