"""A user's own corpus: plain text or JSON Lines, one file (split automatically) or a folder of three files.

* ``.txt``: one sentence per line, whitespace-tokenized (``tokenizer="chat"`` for the chat tokenizer); blank lines are
  skipped.
* ``.jsonl``: one JSON object per line with a string ``"text"``; the fields named by ``labels`` are labels. By default
  (``labels=None``) a field is a label when it looks like a class: a string or integer, not an identifier (``id``,
  ``*_id``, ...), and (from 20 records on) at most ``MAX_CLASSES`` distinct values, fewer than half as many as
  records; the fields left out are named in a note
  (``Corpus.notes``). Integer label values are used as class ids; string values are mapped to ids in sorted order (over
  all splits) and the names kept in ``label_names``; ``null`` means "no label". Blank lines are skipped, and so
  are records whose text has no token (``"text": ""``), with a warning naming their lines.
* A folder holding ``train``, ``valid`` (or ``validation``/``dev``) and ``test`` files, each ``.txt`` or ``.jsonl``.
* A single file is shuffled with ``random.Random(seed)`` and cut 90/5/5 into train/valid/test.
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Iterator
from pathlib import Path

from demvae.data.corpora._io import iter_lines, read_lines
from demvae.data.tokenize import TOKENIZERS
from demvae.data.types import SPLITS, Corpus, Example
from demvae.errors import DataError, DemvaeWarning

SUFFIXES = (".txt", ".jsonl")
SPLIT_STEMS = {"train": ("train",), "valid": ("valid", "validation", "dev"), "test": ("test",)}

# A record before label ids are assigned: (tokens, raw labels).
_Record = tuple[tuple[str, ...], dict[str, object]]


def _tokenizer(name: str):
    try:
        return TOKENIZERS[name]
    except KeyError:
        raise DataError(f"unknown tokenizer {name!r} (choose from {', '.join(TOKENIZERS)})") from None


def _read_txt(path: Path, lowercase: bool, tokenizer: str) -> list[_Record]:
    tok = _tokenizer(tokenizer)
    tokenized = (tok(line.lower() if lowercase else line) for line in read_lines(path, "text file"))
    return [(tuple(toks), {}) for toks in tokenized if toks]


def _jsonl_record(line: str, path: Path, number: int) -> tuple[str, dict[str, object]]:
    """One JSONL line -> (its ``text``, its other non-null fields); a DataError naming the line when malformed."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON: {e.msg} (column {e.colno})", path, number) from None
    if not isinstance(obj, dict):
        raise DataError(f"expected a JSON object, got {type(obj).__name__}", path, number)
    text = obj.get("text")
    if not isinstance(text, str):
        raise DataError('missing or non-string "text" field', path, number)
    return text, {key: value for key, value in obj.items() if key != "text" and value is not None}


def _read_jsonl(path: Path, lowercase: bool, tokenizer: str) -> list[_Record]:
    tok = _tokenizer(tokenizer)
    out: list[_Record] = []
    empty: list[int] = []
    for i, line in enumerate(read_lines(path, "JSONL file"), start=1):
        if not line.strip():
            continue
        text, fields = _jsonl_record(line, path, i)
        labels = {k: int(v) if isinstance(v, bool) else v for k, v in fields.items()}  # checked if it becomes a label
        if lowercase:
            text = text.lower()
        tokens = tuple(tok(text))
        if tokens:
            out.append((tokens, labels))
        else:
            empty.append(i)
    if empty:  # an explicit record, unlike a blank line: say that it is left out
        more = f"; so are lines {_line_list(empty[1:])}" if len(empty) > 1 else ""
        warnings.warn(f'{path}:{empty[0]}: "text" has no words: the record is skipped, as a blank line is{more}',
                      DemvaeWarning, stacklevel=2)
    return out


def _line_list(lines: list[int], shown: int = 10) -> str:
    return ", ".join(map(str, lines[:shown])) + (" …" if len(lines) > shown else "")


def _read_file(path: Path, lowercase: bool, tokenizer: str) -> list[_Record]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        records = _read_jsonl(path, lowercase, tokenizer)
    elif suffix == ".txt":
        records = _read_txt(path, lowercase, tokenizer)
    else:
        raise DataError(f"unsupported file type {suffix or '(none)'!r}: use .txt or .jsonl", path)
    if not records:
        raise DataError("no sentences found", path)
    return records


def iter_sentences(path: str | Path, lowercase: bool = False,
                   tokenizer: str = "whitespace") -> Iterator[tuple[str, ...]]:
    """The tokens of every line of one .txt or .jsonl file (its ``text`` fields), one line at a time and in file
    order: an empty tuple for a blank line (or a record with a blank text), so the n-th result is the n-th line."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"unsupported file type {suffix or '(none)'!r}: use .txt or .jsonl", path)
    tok = _tokenizer(tokenizer)
    for number, line in enumerate(iter_lines(path, "JSONL file" if suffix == ".jsonl" else "text file"), start=1):
        text = _jsonl_record(line, path, number)[0] if suffix == ".jsonl" and line.strip() else line
        yield tuple(tok(text.lower() if lowercase else text))


def _find_split_file(folder: Path, split: str) -> Path:
    found = [folder / f"{stem}{suf}" for stem in SPLIT_STEMS[split] for suf in SUFFIXES]
    found = [p for p in found if p.is_file()]
    if not found:
        names = ", ".join(f"{s}{x}" for s in SPLIT_STEMS[split] for x in SUFFIXES)
        raise DataError(f"no {split} file in this folder (expected one of: {names})", folder)
    if len(found) > 1:
        raise DataError(f"several {split} files: {', '.join(p.name for p in found)}; keep one", folder)
    return found[0]


MAX_CLASSES = 50
_ID_NAMES = {"id", "idx", "uid", "uuid", "key", "index", "guid"}


def _label_fields(raw_splits: dict[str, list[_Record]], labels: list[str] | None) -> tuple[list[str], list[str]]:
    """(label fields, notes). Explicit ``labels`` must exist; otherwise class-like fields are chosen."""
    values: dict[str, list] = {}
    for records in raw_splits.values():
        for _, fields in records:
            for k, v in fields.items():
                if v is not None:
                    values.setdefault(k, []).append(v)
    if labels is not None:
        missing = sorted(set(labels) - set(values))
        if missing:
            found = ", ".join(sorted(values)) or "none"
            raise DataError(f"label field(s) {', '.join(missing)} not found (fields: {found})")
        return list(labels), []
    chosen, skipped = [], []
    for key, vals in sorted(values.items()):
        distinct = len({json.dumps(v, sort_keys=True) for v in vals})
        id_like = key.lower() in _ID_NAMES or key.lower().endswith(("_id", "-id"))
        too_many = len(vals) >= 20 and (distinct > MAX_CLASSES or 2 * distinct > len(vals))  # judged on enough records
        if id_like or too_many or not all(isinstance(v, (int, str)) for v in vals):
            skipped.append(key)
        else:
            chosen.append(key)
    notes = [f"JSONL field(s) {', '.join(skipped)} not used as labels (identifier-like or too many distinct values); "
             "name the label fields with data.options.labels"] if skipped else []
    return chosen, notes


def _assign_label_ids(raw_splits: dict[str, list[_Record]],
                      fields: list[str]) -> tuple[dict[str, list[Example]], dict[str, list[str]]]:
    values: dict[str, set] = {}
    for records in raw_splits.values():
        for _, labels in records:
            for k, v in labels.items():
                if k in fields and v is not None:
                    if not isinstance(v, (int, str)):
                        raise DataError(f"label {k!r}: values must be strings or integers, got {v!r}")
                    if isinstance(v, int) and v < 0:
                        raise DataError(f"label {k!r}: integer class ids must be >= 0, got {v}")
                    values.setdefault(k, set()).add(v)
    maps: dict[str, dict[object, int]] = {}
    label_names: dict[str, list[str]] = {}
    for key in sorted(values):
        vals = values[key]
        if all(isinstance(v, int) for v in vals):
            maps[key] = {v: v for v in vals}
            label_names[key] = [str(i) for i in range(max(vals) + 1)]
        else:  # strings (ints mixed in are treated as their string form)
            names = sorted({str(v) for v in vals})
            index = {n: i for i, n in enumerate(names)}
            maps[key] = {v: index[str(v)] for v in vals}
            label_names[key] = names
    splits = {
        split: [Example(toks, {k: maps[k][v] for k, v in labels.items() if k in maps and v is not None})
                for toks, labels in records]
        for split, records in raw_splits.items()
    }
    return splits, label_names


def load_text(
    path: str | Path,
    lowercase: bool = False,
    seed: int = 0,
    tokenizer: str = "whitespace",
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    labels: list[str] | None = None,
) -> Corpus:
    path = Path(path)
    if not path.exists():
        raise DataError("corpus file or folder not found", path)
    if path.is_dir():
        raw = {split: _read_file(_find_split_file(path, split), lowercase, tokenizer) for split in SPLITS}
        how = "train/valid/test files"
    else:
        records = _read_file(path, lowercase, tokenizer)
        n = len(records)
        if n < 3:
            raise DataError(f"only {n} sentence(s): need at least 3 to split into train/valid/test", path)
        if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
            raise DataError("valid_fraction and test_fraction must be in [0, 1) and sum to less than 1")
        random.Random(seed).shuffle(records)
        n_valid = max(1, int(n * valid_fraction))
        n_test = max(1, int(n * test_fraction))
        raw = {
            "train": records[n_valid + n_test :],
            "valid": records[:n_valid],
            "test": records[n_valid : n_valid + n_test],
        }
        shares = (100 - 100 * (valid_fraction + test_fraction), 100 * valid_fraction, 100 * test_fraction)
        how = "one file split {:g}/{:g}/{:g} with seed {}".format(*shares, seed)
    fields, notes = _label_fields(raw, labels)
    splits, label_names = _assign_label_ids(raw, fields)
    name = path.stem if path.is_file() else path.name
    return Corpus(
        name=name or str(path),
        splits=splits,
        label_names=label_names,
        description=f"user corpus {path} ({how})",
        notes=notes,
    )
