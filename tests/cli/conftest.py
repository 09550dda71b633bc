"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest

SMALL_RUN = ["--config", "builtin/dgm-vae", "--set", "data.options={n_train: 120, n_valid: 60, n_test: 60}",
             "--set", "model.embed_dim=16", "--set", "model.hidden_size=16", "--set", "train.progress=false",
             "--device", "cpu", "--set", "train.threads=1", "--set", "train.max_steps=8", "--set", "train.eval_every=4"]


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """A small finished DGM-VAE run, trained in-process by the console script's ``main`` (8 steps, validations
    at 4 and 8); read-only: tests copy it before changing anything."""
    from cli_checks import train_in_process

    return train_in_process(tmp_path_factory.mktemp("small") / "run", *SMALL_RUN)
