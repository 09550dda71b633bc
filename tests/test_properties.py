"""Property-based tests (Hypothesis, issue 21 item 10): the corpus readers, the config parser and the code parser
on arbitrary input give a result or a :class:`~demvae.errors.DemvaeError`, never another exception.

Each test draws ``EXAMPLES`` inputs (``max_examples``; no deadline, as the CI's CPUs may be busy); together they
take a few seconds.
"""

from __future__ import annotations

import json
import math
import string

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from demvae.config import SECTIONS, compose, from_dict, load_yaml, parse_overrides
from demvae.data.corpora import dailydialog, ptb, smd
from demvae.data.corpora._io import read_lines
from demvae.data.corpora.text import iter_sentences, load_text
from demvae.data.types import Corpus
from demvae.errors import ConfigError, DemvaeError
from demvae.evaluation.codes import format_code, parse_code

EXAMPLES = 200
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "cp1252", "shift_jis")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """One folder for every example's files (each example overwrites them)."""
    return tmp_path_factory.mktemp("properties")


def _result_or_demvae_error(call):
    """``call()``'s result, or None when it raised a DemvaeError (any other exception fails the test)."""
    try:
        return call()
    except DemvaeError:
        return None


# --- corpus readers ------------------------------------------------------------------------------------------------

text_bytes = st.one_of(
    st.binary(max_size=400),
    st.tuples(st.text(max_size=200), st.sampled_from(ENCODINGS)).map(
        lambda t: t[0].encode(t[1], errors="replace")),
    st.lists(st.text(alphabet=string.ascii_letters + " \t\r\x00\u00e9\u2028\ufeff", max_size=30), max_size=12).map(
        lambda lines: "\n".join(lines).encode("utf-8")),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["text", "label", "id", "x"]) |
                                                                 st.text(max_size=5), inner, max_size=4),
    max_leaves=8)


@PROPERTY
@given(data=text_bytes, suffix=st.sampled_from([".txt", ".jsonl"]))
def test_a_user_corpus_of_any_bytes(folder, data, suffix):
    path = folder / f"corpus{suffix}"
    path.write_bytes(data)
    corpus = _result_or_demvae_error(lambda: load_text(path))
    assert corpus is None or isinstance(corpus, Corpus) and all(ex.tokens for ex in corpus.splits["train"])


@PROPERTY
@given(records=st.lists(json_values, min_size=1, max_size=8))
def test_a_jsonl_corpus_of_any_json(folder, records):
    path = folder / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    corpus = _result_or_demvae_error(lambda: load_text(path))
    assert corpus is None or isinstance(corpus, Corpus)


@PROPERTY
@given(data=text_bytes, suffix=st.sampled_from([".txt", ".jsonl"]))
def test_encode_input_gives_one_result_per_line(folder, data, suffix):
    """What ``demvae encode`` reads: one token tuple per line of the file, or a DemvaeError."""
    path = folder / f"input{suffix}"
    path.write_bytes(data)
    sentences = _result_or_demvae_error(lambda: list(iter_sentences(path)))
    if sentences is not None:
        assert len(sentences) == data.count(b"\n") + (not data.endswith(b"\n") and len(data) > 0)


@PROPERTY
@given(data=text_bytes)
def test_read_lines_and_ptb_of_any_bytes(folder, data):
    path = folder / "ptb.train.txt"
    path.write_bytes(data)
    lines = _result_or_demvae_error(lambda: read_lines(path))
    assert lines is None or all("\n" not in line for line in lines)
    _result_or_demvae_error(lambda: ptb.read_sentences(path))


@PROPERTY
@given(texts=st.tuples(text_bytes, text_bytes, text_bytes),
       turns=st.lists(st.text(alphabet="ab ?", max_size=6), max_size=3),
       labels=st.lists(st.integers(-1, 8), max_size=3))
def test_a_dailydialog_split_of_any_content(folder, texts, turns, labels):
    """Random files, and well-formed lines whose label counts and values may not match their turns."""
    split = folder / "dd"
    split.mkdir(exist_ok=True)
    names = ("dialogues.txt", "dialogues_act.txt", "dialogues_emotion.txt")
    for name, data in zip(names, texts):
        (split / name).write_bytes(data)
    _result_or_demvae_error(lambda: dailydialog.read_split(split))
    line = "".join(f"{t} {dailydialog.EOU}" for t in turns)
    for name, text in zip(names, (line, " ".join(map(str, labels)), " ".join(map(str, labels)))):
        (split / name).write_text(text + "\n", encoding="utf-8")
    _result_or_demvae_error(lambda: dailydialog.read_split(split))


@PROPERTY
@given(value=json_values | st.lists(st.fixed_dictionaries(
    {"dialogue": st.lists(st.fixed_dictionaries({"turn": st.sampled_from(["driver", "assistant", "x"]),
                                                 "data": json_values}), max_size=3),
     "scenario": st.fixed_dictionaries({"task": st.fixed_dictionaries(
         {"intent": st.sampled_from(smd.DOMAIN_NAMES + ["other"])})})}), max_size=3))
def test_an_smd_file_of_any_json(folder, value):
    path = folder / "kvret.json"
    path.write_text(json.dumps(value), encoding="utf-8")
    _result_or_demvae_error(lambda: smd.read_split(path))


# --- the config parser ------------------------------------------------------------------------------------------

FIELDS = {f"{section}.{name}": value for section, values in compose().to_dict().items() if isinstance(values, dict)
          for name, value in values.items()}
FLOAT_FIELDS = sorted(key for key, value in FIELDS.items() if isinstance(value, float))

yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
    st.sampled_from([".nan", "nan", ".inf", "-.inf", "inf", "1e-3", ".5", "1E4", "-2e-5", "1_000", "0x1F", "~",
                     "null", "yes", "[1, 2]", "{a: 1}", "{n_train: 10}", "!!python/none ''", "&a [*a]", "'"]))


@PROPERTY
@given(items=st.lists(st.one_of(
    st.text(max_size=30),
    st.tuples(st.sampled_from(sorted(FIELDS)) | st.text(max_size=12), yaml_scalars).map(
        lambda t: f"{t[0]}={t[1]}")), max_size=4))
def test_set_overrides_of_any_text(items):
    """``--set`` items: any text, and known keys with any YAML value; composed and validated like ``train``."""
    cfg = _result_or_demvae_error(lambda: compose(model="dgm-vae", overrides=parse_overrides(items)))
    if cfg is not None:
        for values in cfg.to_dict().values():
            for value in (values.values() if isinstance(values, dict) else [values]):
                assert not isinstance(value, float) or math.isfinite(value)


@PROPERTY
@given(key=st.sampled_from(FLOAT_FIELDS), number=st.floats(allow_nan=True, allow_infinity=True),
       notation=st.sampled_from(["{!r}", "{:e}", "{:E}", "{:g}", "{:.3f}", "{:+e}"]))
def test_float_fields_read_any_notation_and_refuse_nan_and_inf(key, number, notation):
    text = notation.format(number)
    section, name = key.split(".")
    try:
        value = getattr(getattr(from_dict(parse_overrides([f"{key}={text}"])), section), name)
    except ConfigError as exc:
        assert key in str(exc)
        assert math.isfinite(float(text)) or "finite" in str(exc)
        return
    assert value == float(text)


config_values = st.recursive(
    yaml_scalars | st.floats(allow_nan=True),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(sorted({k.split(".")[1] for k in FIELDS}) + sorted(SECTIONS)) | st.text(max_size=6) |
        st.integers(), inner, max_size=4),
    max_leaves=10)


@PROPERTY
@given(raw=st.dictionaries(st.sampled_from(sorted(SECTIONS)) | st.text(max_size=6) | st.integers() | st.none(),
                           config_values, max_size=4) | config_values)
def test_a_config_file_of_any_nesting(folder, raw):
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    _result_or_demvae_error(lambda: from_dict(load_yaml(path)))


@PROPERTY
@given(data=text_bytes)
def test_a_config_file_of_any_bytes(folder, data):
    path = folder / "bytes.yaml"
    path.write_bytes(data)
    values = _result_or_demvae_error(lambda: load_yaml(path))
    assert values is None or isinstance(values, dict)
    _result_or_demvae_error(lambda: compose(config=path))


# --- the code parser --------------------------------------------------------------------------------------------

@PROPERTY
@given(text=st.text(alphabet="0123456789,- +\u0663x", max_size=12) | st.text(max_size=12),
       m=st.integers(1, 4), k=st.integers(1, 12))
def test_a_code_of_any_text(text, m, k):
    code = _result_or_demvae_error(lambda: parse_code(text, (m, k)))
    assert code is None or len(code) == m and all(0 <= v < k for v in code)


@PROPERTY
@given(shape=st.tuples(st.integers(1, 5), st.integers(2, 30)).flatmap(
    lambda mk: st.tuples(st.just(mk), st.lists(st.integers(0, mk[1] - 1), min_size=mk[0], max_size=mk[0]))))
def test_a_formatted_code_parses_back(shape):
    (m, k), values = shape
    assume(len(values) == m)
    assert parse_code(format_code(values), (m, k)) == values
