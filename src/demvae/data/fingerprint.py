"""Where a corpus was read from, and what it held: a run records it (``corpus.json``) so that a run
folder moved elsewhere still finds its data, and an edited corpus is noticed instead of silently
changing the test split."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from demvae.config import DataConfig
from demvae.data.corpora import canonical_name, resolve_data_dir
from demvae.errors import DataError

CORPUS_DIRS = {"ptb": "ptb", "dailydialog": "daily_dialog", "smd": "stanford"}
"""A paper corpus's folder under the data folder."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def corpus_root(cfg: DataConfig) -> Path | None:
    """The file or folder a corpus is read from (None for the generated built-in corpus)."""
    name = canonical_name(cfg.corpus)
    if name == "builtin":
        return None
    if name is not None:
        root = resolve_data_dir(cfg.data_dir)
        return None if root is None else (root / CORPUS_DIRS[name]).resolve()
    return Path(cfg.corpus).expanduser().resolve()


def fingerprint(cfg: DataConfig) -> dict[str, Any]:
    """``{"corpus", "path", "files": {relative path: sha256}}`` of the files the corpus reads."""
    root = corpus_root(cfg)
    files: dict[str, str] = {}
    if root is not None and root.is_file():
        files[root.name] = _sha256(root)
    elif root is not None and root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            files[str(path.relative_to(root))] = _sha256(path)
    return {"corpus": cfg.corpus, "path": None if root is None else str(root), "files": files}


def locate(cfg: DataConfig, recorded: dict[str, Any] | None, corpus: str | None = None,
           data_dir: str | None = None, force: bool = False) -> tuple[DataConfig, list[str]]:
    """The DataConfig to read a run's corpus with, and warnings.

    ``corpus``/``data_dir`` point elsewhere explicitly. Otherwise a relative corpus path that does not
    exist from here (or a paper corpus whose data folder is not found) falls back to the absolute path
    recorded at training. The files found must hash as recorded (a one-file corpus may have been
    renamed): a changed corpus is an error, or with ``force`` a warning."""
    cfg = replace(cfg, corpus=cfg.corpus if corpus is None else corpus,
                  data_dir=cfg.data_dir if data_dir is None else data_dir)
    if corpus is not None and canonical_name(corpus) is None and not Path(corpus).expanduser().exists():
        raise DataError(f"--corpus {corpus}: no such file or folder")
    if recorded is None:
        return cfg, []
    name, found = canonical_name(cfg.corpus), recorded.get("path") and Path(recorded["path"]).exists()
    if corpus is None and name is None and not Path(cfg.corpus).exists():
        if found:
            cfg = replace(cfg, corpus=recorded["path"])
        else:
            raise DataError(f"the run's corpus {cfg.corpus!r} is not found from here (recorded at "
                            f"{recorded.get('path')}); pass --corpus PATH to point to it")
    root = corpus_root(cfg)
    if data_dir is None and name not in (None, "builtin") and (root is None or not root.exists()):
        if not found:
            raise DataError(f"the run's corpus {name} is not found from here (recorded at {recorded.get('path')}); "
                            "pass --data-dir DIR to point to its data folder")
        cfg = replace(cfg, data_dir=str(Path(recorded["path"]).parent))  # the data folder it was read from
    now = fingerprint(cfg)
    if len(now["files"]) == len(recorded["files"]) == 1 and Path(now["path"]).is_file():
        changed = [] if list(now["files"].values()) == list(recorded["files"].values()) else list(now["files"])
    else:  # a one-file corpus may be renamed; a folder's files keep their names
        changed = sorted(k for k in set(now["files"]) | set(recorded["files"])
                         if now["files"].get(k) != recorded["files"].get(k))
    if not changed:
        return cfg, []
    message = (f"the corpus changed since training ({', '.join(changed[:3])}"
               f"{' …' if len(changed) > 3 else ''} differ from the run's corpus.json)")
    if not force:
        raise DataError(message + "; the splits would not be the ones the run saw. Pass --force to use it anyway")
    return cfg, [message + "; going on because of --force"]
