"""Files that are never half-written: every run file is written to a temporary name and renamed
(atomic on POSIX), with the permissions the process's umask gives a new file (0644 under the usual 022)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, then rename the result onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file(path.parent, f".{path.name}.", ".tmp")
    try:
        mode = tmp.stat().st_mode & 0o777  # what the umask gives a new file
        write(tmp)
        if tmp.stat().st_mode & 0o777 != mode:  # a writer that made its own file (safetensors: 0600)
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file ``folder/<prefix><random><suffix>``, with mode 0666 which the kernel masks with the
    umask, as for any file a program creates (mkstemp's 0600 would ignore the umask)."""
    while True:
        path = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue


def new_folder(parent: Path, prefix: str) -> Path:
    """Create an empty folder ``parent/<prefix><random>`` with mode 0777 masked by the umask (mkdtemp's 0700
    would ignore it)."""
    while True:
        path = Path(parent) / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(0o777)
            return path
        except FileExistsError:
            continue


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=1, default=str))
