"""Checks the command-line tests share (imported by the test modules of this folder)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path


def one_error(rc, out, err, *needles, code=2):
    """The command failed as expected: exit ``code``, one ``error:`` line holding every needle, no traceback."""
    assert rc == code, (rc, out, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def train_in_process(out: Path, *args: str) -> Path:
    """``demvae train ARGS --out OUT`` through the console script's ``main``, in this process; it must succeed."""
    from demvae.cli import main

    argv = sys.argv
    sys.argv = ["demvae", "train", *args, "--out", str(out)]
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        sys.argv = argv
    return out


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of a folder with its content hash (to show a failure changed nothing)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}
