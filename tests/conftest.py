"""Shared test setup and fixtures.

Tiny models run fastest (and without thread contention) on one thread, so the whole suite runs with
``torch.set_num_threads(1)``; no test module needs its own thread fixture.
"""

from __future__ import annotations

import copy
import sys

import pytest
import torch

torch.set_num_threads(1)


# --- tiny run configurations ----------------------------------------------------------------------

# The built-in corpus shrunk to 300/60/60 sentences and a 16-wide model: the base of the tiny runs of the
# model and training tests (each adds its own step counts and model tweaks on top).
TINY_SECTIONS = {
    "data": {"options": {"n_train": 300, "n_valid": 60, "n_test": 60}, "max_len": 20},
    "model": {"embed_dim": 16, "hidden_size": 16, "n_variables": 2, "n_values": 3, "n_units": 2},
    "train": {"batch_size": 16, "n_samples": 2, "eval_batch_size": 30, "progress": False, "device": "cpu"},
}


@pytest.fixture(scope="session")
def tiny_overrides():
    """``tiny_overrides(layer, ...)`` -> ``TINY_SECTIONS`` with each ``{section: {key: value}}`` layer merged in."""
    from demvae.config import merge

    def build(*layers: dict) -> dict:
        out = copy.deepcopy(TINY_SECTIONS)
        for layer in layers:
            out = merge(out, copy.deepcopy(layer))
        return out

    return build


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture
def run_main(monkeypatch, capsys):
    """``run_main(*args)`` runs the console script's ``main`` in-process -> (exit code, stdout, stderr)."""
    from demvae.cli import main

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["demvae", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


# --- exponential families -------------------------------------------------------------------------


def _make_poisson():
    """Poisson with η = log λ, defined only through A(η) = exp η (plus T and h for densities)."""
    from demvae.expfam import AutogradFamily

    return AutogradFamily(
        lambda eta: eta[..., 0].exp(),
        1,
        sufficient_stats=lambda x: x.unsqueeze(-1),
        log_base_measure=lambda x: -torch.lgamma(x + 1),
        name="poisson",
    )


@pytest.fixture(scope="session")
def make_poisson():
    """``make_poisson()`` -> a fresh Poisson ``AutogradFamily`` (given only by its log-partition A(η))."""
    return _make_poisson
