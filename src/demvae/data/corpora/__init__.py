"""Corpus readers and :func:`load_corpus`, the one entry point the rest of the project uses."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from demvae.data.types import Corpus
from demvae.errors import ConfigError, DataError

# canonical name -> aliases
CORPUS_NAMES: dict[str, tuple[str, ...]] = {
    "builtin": (),
    "ptb": (),
    "dailydialog": ("dd",),
    "smd": ("stanford",),
}
DEFAULT_CORPUS = "builtin"
DATA_ENV = "DEMVAE_DATA"

_ALIASES = {alias: name for name, aliases in CORPUS_NAMES.items() for alias in (name, *aliases)}
_FILE_CORPUS = {"ptb", "dailydialog", "smd"}


def _reader(name: str):
    if name == "builtin":
        from demvae.data.corpora.synthetic import load_builtin

        return load_builtin
    if name == "ptb":
        from demvae.data.corpora.ptb import load_ptb

        return load_ptb
    if name == "dailydialog":
        from demvae.data.corpora.dailydialog import load_dailydialog

        return load_dailydialog
    if name == "smd":
        from demvae.data.corpora.smd import load_smd

        return load_smd
    from demvae.data.corpora.text import load_text

    return load_text


def _valid_names() -> str:
    return ", ".join(f"{n} (alias {', '.join(a)})" if a else n for n, a in CORPUS_NAMES.items())


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """``data_dir`` if given, else ``$DEMVAE_DATA`` if set, else None."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return None


def canonical_name(name_or_path: str) -> str | None:
    """The canonical corpus name for a name or alias (case-insensitive), None for anything else."""
    return _ALIASES.get(str(name_or_path).strip().lower())


def _looks_like_path(s: str) -> bool:
    return os.sep in s or "/" in s or s.startswith(".") or Path(s).suffix.lower() in (".txt", ".jsonl")


def _call(reader, corpus: str, args: tuple, options: dict) -> Corpus:
    params = inspect.signature(reader).parameters
    allowed = [p for p in params if p not in ("data_dir", "path")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for corpus {corpus!r} (valid: {', '.join(allowed) or 'none'})"
        )
    return reader(*args, **options)


def load_corpus(name_or_path: str | Path = DEFAULT_CORPUS, data_dir: str | Path | None = None, **options) -> Corpus:
    """Load a corpus by name (``builtin``, ``ptb``, ``dailydialog``/``dd``, ``smd``/``stanford``) or by path.

    The paper corpora are read from ``data_dir`` (else ``$DEMVAE_DATA``): ``ptb/ptb.{train,valid,test}.txt``,
    ``daily_dialog/{train,validation,test}/dialogues{,_act,_emotion}.txt``,
    ``stanford/kvret_{train,dev,test}_public.json``. A path to a ``.txt``/``.jsonl`` file or to a folder of
    train/valid/test files loads a user corpus. ``options`` go to the reader (e.g. ``seed``, ``n_train``,
    ``context_turns``, ``lowercase``); an unknown option raises ConfigError, any data problem DataError.
    """
    raw = str(name_or_path)
    name = canonical_name(raw)
    if name is None:
        path = Path(raw).expanduser()
        if path.exists() or _looks_like_path(raw):
            if not path.exists():
                raise DataError("corpus file or folder not found", path)
            return _call(_reader("text"), "text", (path,), options)
        raise DataError(
            f"unknown corpus {raw!r}: valid names are {_valid_names()}, or a path to a .txt/.jsonl file or a folder "
            "with train/valid/test files"
        )
    reader = _reader(name)
    if name in _FILE_CORPUS:
        root = resolve_data_dir(data_dir)
        if root is None:
            raise DataError(
                f"corpus {name!r} needs the data folder: pass --data-dir DIR (data_dir=...) or set {DATA_ENV}"
            )
        if not root.is_dir():
            raise DataError("data folder not found", root)
        return _call(reader, name, (root,), options)
    return _call(reader, name, (), options)


__all__ = ["load_corpus", "CORPUS_NAMES", "DEFAULT_CORPUS", "DATA_ENV", "resolve_data_dir", "canonical_name"]
