"""Fixtures for the training tests: tiny configs on the built-in corpus."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from demvae.config import compose
from demvae.training import state_file

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


class Checkpoints:
    """Comparisons of run folders, for the resume tests."""

    @staticmethod
    def records(run_dir, kind=None) -> list[dict]:
        """The records of a run folder's metrics.jsonl (of one ``kind``: train / valid)."""
        recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        return [r for r in recs if kind is None or r["kind"] == kind]

    @staticmethod
    def same_tensors(path_a, path_b) -> None:
        a, b = load_file(str(path_a)), load_file(str(path_b))
        assert set(a) == set(b)
        for key in a:
            assert torch.equal(a[key], b[key]), f"{key} differs between {path_a} and {path_b}"

    @classmethod
    def same_end(cls, run_a, run_b) -> None:
        """Two run folders end in the same state: best and last weights, trainer state, Adam's state and
        learning rates, the RNG, and every validation record."""
        cls.same_tensors(run_a / "last" / "model.safetensors", run_b / "last" / "model.safetensors")
        cls.same_tensors(run_a / "model.safetensors", run_b / "model.safetensors")
        sa = json.loads((run_a / "last" / "trainer_state.json").read_text())
        assert sa == json.loads((run_b / "last" / "trainer_state.json").read_text())
        oa, rng_a = state_file.read(run_a / "last" / "optimizer.safetensors")
        ob, rng_b = state_file.read(run_b / "last" / "optimizer.safetensors")
        assert oa["param_groups"] == ob["param_groups"]
        for pid, state in oa["state"].items():
            for k, v in state.items():
                assert torch.equal(v, ob["state"][pid][k]), f"Adam {k} of param {pid} differs"
        assert torch.equal(rng_a["torch"], rng_b["torch"]) and rng_a["python"] == rng_b["python"]
        assert cls.records(run_a, "valid") == cls.records(run_b, "valid")


@pytest.fixture(scope="session")
def checkpoints() -> type[Checkpoints]:
    return Checkpoints
