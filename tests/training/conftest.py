"""Fixtures for the training tests: tiny configs on the built-in corpus."""

from __future__ import annotations

import pytest

from demvae.config import compose

# on top of the shared tiny sections (tests/conftest.py): 40 steps, validations at 15, 30, 40
TRAIN_LAYER = {"train": {"max_steps": 40, "eval_every": 15, "log_every": 10}}


@pytest.fixture(scope="session")
def tiny_cfg(tiny_overrides):
    """``tiny_cfg(name, train={...})`` -> a composed RunConfig of a shrunk preset."""
    def tiny_config(name: str = "dgm-vae", **sections):
        return compose(model=name, overrides=tiny_overrides(TRAIN_LAYER, sections))

    return tiny_config


@pytest.fixture(scope="session")
def full_run(tmp_path_factory, tiny_cfg):
    """One uninterrupted tiny DGM-VAE run (40 steps, validations at 15, 30, 40); read-only."""
    from demvae.runs import train

    return train(tiny_cfg(), tmp_path_factory.mktemp("full") / "A")
