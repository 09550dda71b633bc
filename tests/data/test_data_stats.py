from demvae.data import Corpus, Example, Vocab
from demvae.data.stats import corpus_stats, describe, format_stats


def test_corpus_stats_small():
    train = [Example(("a", "b", "c"), {"y": 0}), Example(("a",) * 50, {"y": 1}), Example(("b",), {})]
    valid = [Example(("a", "zz", "<unk>"), {"y": 1})]
    c = Corpus("toy", {"train": train, "valid": valid, "test": list(train)}, label_names={"y": ["neg", "pos"]},
               info={"dialogues": {"train": 2, "valid": 1, "test": 2}})
    v = Vocab.build(e.tokens for e in train)
    st = corpus_stats(c, v, max_len=10, batch_size=2)
    tr, va = st["splits"]["train"], st["splits"]["valid"]
    assert tr["examples"] == 3 and tr["tokens"] == 5 + 52 + 3
    assert tr["tokens_after_truncation"] == 5 + 10 + 3 and tr["truncated"] == 1
    assert tr["length"]["max"] == 52
    assert tr["labels"]["y"] == {"neg": 1, "pos": 1, "(none)": 1}
    assert va["oov_rate"] == 1 / 3  # "zz" is OOV; a literal <unk> is not counted
    assert st["vocab_size"] == len(v) and st["train_types"] == 3
    assert 0 < tr["padding_efficiency"]["bucketed"] <= 1
    text = format_stats(st)
    for needle in ("toy", "examples", "dialogues", "OOV rate", "33.33%", "label 'y'", "neg", "padding"):
        assert needle in text


def test_describe_builtin():
    text = describe("builtin", n_train=300, n_valid=50, n_test=50)
    assert "builtin" in text and "300" in text and "label 'intent'" in text and "ask_weather" in text
