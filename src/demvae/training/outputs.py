"""Where a command may write its output: never onto a run folder's own files, and over an existing file only
when that file is the command's own kind of output, or with ``--force``.

Every ``-o``/``--out`` follows the one rule here (``report``, ``eval --out``, ``sample``/``encode``/``clusters
-o``, and the output folders of ``train``, ``reproduce`` and ``demo``):

* A run folder's files are never an output, ``--force`` or not: ``config.yaml``, ``vocab.json``,
  ``versions.json``, ``model.safetensors``, ``metrics.jsonl``, ``corpus.json``, ``code_stats.json``,
  ``metrics-<split>.json``, ``stages.json``, ``.lock`` and everything under ``last/``, ``stage1/`` and
  ``tensorboard/``. A run whose file was overwritten is broken for good; nothing a command writes is worth that.
  (``eval`` writing its own run's ``metrics-<split>.json`` is that run's own derived file, not an output here.)
* An existing file is replaced when the command recognises it as its own output (``report``: a page it wrote;
  ``eval --out``: a metrics file), otherwise only with ``--force``. Text outputs (``sample``, ``encode``,
  ``clusters``) cannot be told from a corpus file, so replacing one always takes ``--force``.

Paths are resolved first, so a symbolic link to a run's file is caught as the file itself.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path

from demvae.errors import DemvaeError
from demvae.training.run_folder import RUN_FILES, DialogRun, RunFolder
from demvae.training.tensorboard import TENSORBOARD_DIR

RUN_ENTRIES = (*RUN_FILES, *DialogRun.nested, TENSORBOARD_DIR, ".lock")
"""The names a run folder owns at its top level (folders among them: everything below them too)."""
DERIVED = "metrics-*.json"
"""``eval``'s results in a run folder: a run's file as well (they describe that run's model)."""


class OutputRefused(DemvaeError):
    """An output would land on a run's file, or replace a file that is not the command's own output."""


def run_entry(path: Path) -> tuple[Path, str] | None:
    """(run folder, entry name) when ``path`` is a run folder's own file or lies in one of its folders."""
    target = Path(path).resolve()
    for folder in target.parents:
        if RunFolder(folder).holds_run():
            entry = target.relative_to(folder).parts[0]
            if entry in RUN_ENTRIES or fnmatch.fnmatchcase(entry, DERIVED):
                return folder, entry
    return None


def check_output(path: Path, force: bool = False, own: Callable[[Path], bool] | None = None,
                 folder: bool = False) -> Path:
    """Refuse an output ``path`` (a file, or with ``folder`` a folder to write into) that the rule above forbids;
    ``own(path)`` says whether an existing file is the command's own output. Returns ``path``."""
    path = Path(path)
    found = run_entry(path)
    if found is not None:
        run, entry = found
        what = f"{entry}/ of the run in {run}" if (run / entry).is_dir() else f"the file {entry} of the run in {run}"
        raise OutputRefused(f"{path} is {what}: an output never replaces a run's own files; write it elsewhere")
    if folder or not path.exists():
        return path
    if path.is_dir():
        raise OutputRefused(f"{path} is a folder: give the output a file name")
    if not force and not (own is not None and own(path)):
        raise OutputRefused(f"{path} exists: pass --force to replace it, or write elsewhere")
    return path
