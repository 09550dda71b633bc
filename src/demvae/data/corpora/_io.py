"""Reading corpus files: one place for the checks every reader needs.

A missing file, a directory, an empty file and invalid UTF-8 all raise :class:`~demvae.errors.DataError` naming the
file (and, for bad bytes, the line), never a bare traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

from demvae.errors import DataError


def read_text(path: str | Path, what: str = "file") -> str:
    """The whole file as text (UTF-8, an optional BOM removed). Raises DataError when missing, empty or not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} not found", path)
    if not path.is_file():
        raise DataError(f"{what} is not a regular file", path)
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

    Only ``\\n`` separates lines (unlike :meth:`str.splitlines`, which would also split on rare Unicode separators
    inside a sentence).
    """
    text = read_text(path, what)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    return lines


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
