"""Fixtures for the training tests: tiny configs on the built-in corpus, one CPU thread."""

from __future__ import annotations

import pytest
import torch

from demvae.runs import compose

TINY = {
    "data": {"options": {"n_train": 300, "n_valid": 60, "n_test": 60}, "max_len": 20},
    "model": {"embed_dim": 16, "hidden_size": 16, "n_codes": 2, "code_size": 3, "z_dim": 2},
    "train": {"batch_size": 16, "n_samples": 2, "max_steps": 40, "eval_every": 15, "log_every": 10,
              "eval_batch_size": 30, "progress": False, "device": "cpu"},
}


def tiny_config(name: str = "dgm-vae", **sections):
    overrides = {k: dict(v) for k, v in TINY.items()}
    for section, values in sections.items():
        overrides[section] = {**overrides.get(section, {}), **values}
    return compose(model=name, overrides=overrides)


@pytest.fixture(scope="session")
def tiny_cfg():
    """``tiny_cfg(name, train={...})`` -> a composed RunConfig of a shrunk preset."""
    return tiny_config


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models are ~100x faster on one thread when the machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    """One uninterrupted tiny DGM-VAE run (40 steps, validations at 15, 30, 40); read-only."""
    from demvae.runs import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(tiny_config(), tmp_path_factory.mktemp("full") / "A")
    finally:
        torch.set_num_threads(before)
