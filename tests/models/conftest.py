"""Fixtures for the model tests: tiny configs of every preset, trained once per session."""

from __future__ import annotations

import pytest

from demvae.config import compose

# on top of the shared tiny sections (tests/conftest.py): no dropout, very short runs
MODEL_LAYER = {
    "model": {"dropout": 0.0},
    "train": {"max_steps": 6, "eval_every": 6, "log_every": 3, "aggressive_max_inner": 2, "aggressive_max_steps": 4},
}


@pytest.fixture(scope="session")
def tiny_cfg(tiny_overrides):
    """``tiny_cfg(name, train={...}, objective={...})`` -> a composed RunConfig of a shrunk preset.

    The supervised presets supervise the built-in ``intent`` (8 classes).
    """
    def tiny_config(name: str, **sections):
        preset = {}
        if name in ("cm-vae", "dcm-vae"):
            preset = {"n_variables": 1, "z_values": 8, "supervise": {"intent": 0}}
        elif name == "dvae-sup":
            preset = {"n_values": 8, "supervise": {"intent": 0}}
        overrides = tiny_overrides(MODEL_LAYER, {"model": preset}, sections)
        cfg = compose(model=name, overrides=overrides)
        # compose deep-merges mappings, so an override cannot drop the preset's emotion/act labels
        # (see test_models_config_bugs.py); set the supervised labels directly
        cfg.model.supervise = dict(overrides["model"].get("supervise", {}))
        return cfg

    return tiny_config


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_cfg):
    """``trained(name)`` -> (Trainer after fit, run folder); each preset is trained once."""
    from demvae.training import Trainer

    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            run_dir = tmp_path_factory.mktemp("runs") / name
            trainer = Trainer(tiny_cfg(name), run_dir)
            trainer.fit()
            cache[name] = (trainer, run_dir)
        return cache[name]

    return get
