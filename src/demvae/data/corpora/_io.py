"""Reading corpus files: one place for the checks every reader needs.

A missing file, a directory, an empty file and invalid UTF-8 all raise :class:`~demvae.errors.DataError` naming the
file (and, for bad bytes, the line), never a bare traceback.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path

from demvae.errors import DataError


def _existing_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} not found", path)
    if not path.is_file():
        raise DataError(f"{what} is not a regular file", path)
    return path


def read_text(path: str | Path, what: str = "file") -> str:
    """The whole file as text (UTF-8, an optional BOM removed). Raises DataError when missing, empty or not UTF-8."""
    path = _existing_file(path, what)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {what} ({e.strerror or e})", path) from None
    if not raw.strip():
        raise DataError(f"{what} is empty", path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        line_start = raw.rfind(b"\n", 0, e.start) + 1
        col = e.start - line_start + 1
        raise DataError(
            f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {col}); re-save the file as UTF-8", path, line
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def read_lines(path: str | Path, what: str = "file") -> list[str]:
    """The file's lines without line terminators (``\\n`` or ``\\r\\n``); a final newline adds no empty line.
    Raises DataError when the file is missing, empty or not UTF-8.

    Only ``\\n`` separates lines (unlike :meth:`str.splitlines`, which would also split on rare Unicode separators
    inside a sentence).
    """
    lines = list(iter_lines(path, what))
    if not any(line.strip() for line in lines):
        raise DataError(f"{what} is empty", Path(path))
    return lines


def iter_lines(path: str | Path, what: str = "file") -> Iterator[str]:
    """The lines of :func:`read_lines` one at a time, so a file of any size is read in the memory of one line
    (an empty file gives none). Bad bytes raise DataError naming their line."""
    path = _existing_file(path, what)
    try:
        file = path.open("rb")
    except OSError as e:
        raise DataError(f"cannot read {what} ({e.strerror or e})", path) from None
    with file:
        for number, raw in enumerate(file, start=1):  # binary lines end at b"\n" only
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); re-save the "
                                "file as UTF-8", path, number) from None


def read_json(path: str | Path, what: str = "JSON file") -> object:
    """Parse a JSON file; a syntax error raises DataError with its line number."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON: {e.msg} (column {e.colno})", path, e.lineno) from None


def require_dir(path: Path, what: str, expected: str) -> Path:
    """Check that a corpus folder exists, with a message saying what should be inside."""
    if not path.is_dir():
        raise DataError(f"{what} folder not found (expected {expected})", path)
    return path
