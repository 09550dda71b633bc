"""Fixtures for the data-layer tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _shared_data_dir() -> Path | None:
    env = os.environ.get("DEMVAE_DATA")
    candidates = [Path(env)] if env else []
    # tests/data/conftest.py -> parents[2] is the repository root; the shared data sit next to it.
    candidates.append(Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real corpora (PTB, DailyDialog, SMD); the test is skipped when they are absent."""
    d = _shared_data_dir()
    if d is None:
        pytest.skip("shared corpora not found (set DEMVAE_DATA)")
    return d


@pytest.fixture
def no_data_env(monkeypatch):
    monkeypatch.delenv("DEMVAE_DATA", raising=False)
