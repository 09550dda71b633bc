"""Fixtures for the model tests: tiny configs of every preset, trained once per session."""

from __future__ import annotations

import copy

import pytest
import torch

from demvae.runs import compose

TINY_DATA = {"options": {"n_train": 300, "n_valid": 60, "n_test": 60}, "max_len": 20}
TINY_MODEL = {"embed_dim": 16, "hidden_size": 16, "n_codes": 2, "code_size": 3, "z_dim": 2, "dropout": 0.0}
TINY_TRAIN = {"batch_size": 16, "n_samples": 2, "max_steps": 6, "eval_every": 6, "log_every": 3,
              "eval_batch_size": 30, "progress": False, "device": "cpu",
              "aggressive_max_inner": 2, "aggressive_max_steps": 4}


def tiny_overrides(name: str, **sections) -> dict:
    """Overrides that shrink a preset; the supervised presets supervise the built-in ``intent`` (8 classes)."""
    model = dict(TINY_MODEL)
    if name in ("cm-vae", "dcm-vae"):
        model.update(n_codes=1, z_values=8, supervise={"intent": 0})
    elif name == "dvae-sup":
        model.update(code_size=8, supervise={"intent": 0})
    out = {"data": copy.deepcopy(TINY_DATA), "model": model, "train": dict(TINY_TRAIN)}
    for section, values in sections.items():
        out[section] = {**out.get(section, {}), **values}
    return out


def tiny_config(name: str, **sections):
    overrides = tiny_overrides(name, **sections)
    cfg = compose(model=name, overrides=overrides)
    # compose deep-merges mappings, so an override cannot drop the preset's emotion/act labels
    # (see test_models_config_bugs.py); set the supervised labels directly
    cfg.model.supervise = dict(overrides["model"].get("supervise", {}))
    return cfg


@pytest.fixture(scope="session")
def tiny_cfg():
    """``tiny_cfg(name, train={...}, objective={...})`` -> a composed RunConfig of a shrunk preset."""
    return tiny_config


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models are ~100x faster on one thread when the machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """``trained(name)`` -> (Trainer after fit, run folder); each preset is trained once."""
    from demvae.training import Trainer

    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            run_dir = tmp_path_factory.mktemp("runs") / name
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                trainer = Trainer(tiny_config(name), run_dir)
                trainer.fit()
            finally:
                torch.set_num_threads(before)
            cache[name] = (trainer, run_dir)
        return cache[name]

    return get
