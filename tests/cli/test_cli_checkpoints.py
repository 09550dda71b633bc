"""Resume never runs code from a run folder (issue 21, rows 1 and 9): ``last/`` holds safetensors and JSON,
an older run's ``optimizer.pt`` is read with ``weights_only=True``, and a crafted, corrupt or foreign
file is one ``error:`` line that names it."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from cli_checks import one_error

from demvae.training import state_file

MORE = ("--set", "train.max_steps=12")


class RunsACommand:
    """A pickle payload: unpickling it calls ``os.system`` (the attack of row 1)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def run(small_run):
    return small_run  # (tests/cli/conftest.py)


@pytest.fixture
def copy(run, tmp_path, monkeypatch):
    monkeypatch.delenv("DEMVAE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    return shutil.copytree(run, tmp_path / "copy")


def test_last_holds_no_pickle(run):
    assert sorted(p.name for p in (run / "last").iterdir()) == [
        "model.safetensors", "optimizer.safetensors", "trainer_state.json"]
    for path in (run / "last").iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path} is a pickle"


@pytest.mark.parametrize("name", ["optimizer.pt", "optimizer.safetensors"])
def test_a_crafted_pickle_runs_no_command(run_main, copy, tmp_path, name):
    marker = tmp_path / "pwned"
    (copy / "last" / "optimizer.safetensors").unlink(missing_ok=True)
    torch.save({"optimizer": RunsACommand(marker), "rng": {}}, copy / "last" / name)
    rc, out, err = run_main("train", "--resume", copy, *MORE)
    assert not marker.exists(), "resume ran a command from the run folder"
    one_error(rc, out, err, name, "train --force --out")


def test_a_corrupt_optimizer_state_is_one_error(run_main, copy):
    path = copy / "last" / "optimizer.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rc, out, err = run_main("train", "--resume", copy, *MORE)
    one_error(rc, out, err, "optimizer.safetensors", "not a training state")


def test_a_missing_optimizer_state_is_one_error(run_main, copy):
    (copy / "last" / "optimizer.safetensors").unlink()
    one_error(*run_main("train", "--resume", copy, *MORE), "missing", "optimizer.safetensors")


@pytest.mark.parametrize("content", ["{\"step\": 3", "{\"epoch\": 1}", "[1, 2]", "\xff"])
def test_a_corrupt_trainer_state_is_one_error(run_main, copy, content):
    (copy / "last" / "trainer_state.json").write_text(content, encoding="latin-1")
    rc, out, err = run_main("train", "--resume", copy, *MORE)
    one_error(rc, out, err, "trainer_state.json", "not a trainer state")


def test_another_models_optimizer_state_is_one_error(run_main, copy):
    """An optimizer state of another shape: the state file of a run with a different hidden size."""
    optimizer_state, rng = state_file.read(copy / "last" / "optimizer.safetensors")
    optimizer_state["param_groups"][0]["params"] = optimizer_state["param_groups"][0]["params"][:3]
    state_file.write(copy / "last" / "optimizer.safetensors", optimizer_state, rng)
    one_error(*run_main("train", "--resume", copy, *MORE), "does not match")


def test_an_older_runs_optimizer_pt_still_resumes(run_main, copy, tmp_path):
    """Runs written before the safetensors state hold a plain ``torch.save`` of tensors and containers:
    ``weights_only=True`` reads them, and the resumed run ends where one resumed from the new format does."""
    optimizer_state, rng = state_file.read(copy / "last" / "optimizer.safetensors")
    new = shutil.copytree(copy, tmp_path / "new")
    (copy / "last" / "optimizer.safetensors").unlink()
    torch.save({"optimizer": optimizer_state, "rng": rng}, copy / "last" / "optimizer.pt")
    assert run_main("train", "--resume", copy, *MORE)[0] == 0
    assert run_main("train", "--resume", new, *MORE)[0] == 0
    for name in ("model.safetensors", "last/model.safetensors"):
        assert (copy / name).read_bytes() == (new / name).read_bytes(), name
    assert json.loads((copy / "last" / "trainer_state.json").read_text())["step"] == 12


def test_state_file_round_trip(tmp_path):
    """Adam's state after real steps, the torch and Python RNGs: what is read equals what was written."""
    import random

    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.95))
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(5, 4)).square().sum().backward()
        optimizer.step()
    random.random()
    rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
    written = optimizer.state_dict()
    state_file.write(tmp_path / "state.safetensors", written, rng)
    read, rng_read = state_file.read(tmp_path / "state.safetensors")
    assert rng_read["python"] == rng["python"] and torch.equal(rng_read["torch"], rng["torch"])
    assert set(read["state"]) == set(written["state"])
    for index, entries in written["state"].items():
        assert set(read["state"][index]) == set(entries)
        for key, value in entries.items():
            assert torch.equal(read["state"][index][key], value), (index, key)
            assert read["state"][index][key].dtype == value.dtype
    fresh = torch.optim.Adam(model.parameters(), lr=0.5)
    fresh.load_state_dict(read)
    assert fresh.param_groups[0]["lr"] == 0.01 and tuple(fresh.param_groups[0]["betas"]) == (0.8, 0.95)
