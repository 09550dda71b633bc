"""Resume equivalence: a run interrupted and resumed ends bitwise where an uninterrupted run ends."""

from __future__ import annotations

import json
import shutil

import pytest

from demvae.errors import CheckpointError, ConfigError, DemvaeError, DemvaeWarning
from demvae.runs import RunFinished, resume, train
from demvae.training import Trainer

N = 40  # tiny_cfg: max_steps 40, eval_every 15, log_every 10


def assert_same_end(checkpoints, run_a, run_b):
    checkpoints.same_end(run_a, run_b)  # every validation, the final one included, has the same metrics
    assert [r["step"] for r in checkpoints.records(run_a, "valid")] == [15, 30, 40]


def test_resume_is_bitwise_equivalent(checkpoints, full_run, tiny_cfg, tmp_path):
    run_b = train(tiny_cfg(), tmp_path / "B", until_step=N // 2 + 3)
    state = json.loads((run_b / "last" / "trainer_state.json").read_text())
    assert state["step"] == N // 2 + 3 and not state["done"]
    assert [r["step"] for r in checkpoints.records(run_b, "valid")] == [15]  # no extra validation when stopping
    assert [r["step"] for r in checkpoints.records(run_b, "train")] == [10, 20]
    resume(run_b)
    assert_same_end(checkpoints, full_run, run_b)
    assert [r["step"] for r in checkpoints.records(run_b, "train")] == [10, 20, 30, 40]


def test_resume_in_several_slices(checkpoints, full_run, tiny_cfg, tmp_path):
    """Stops on a validation step (15), mid-epoch (31), then to the end."""
    run_b = train(tiny_cfg(), tmp_path / "B", until_step=15)
    resume(run_b, until_step=31)
    assert json.loads((run_b / "last" / "trainer_state.json").read_text())["step"] == 31
    resume(run_b)
    assert_same_end(checkpoints, full_run, run_b)


def test_resume_aggressive_run_is_bitwise_equivalent(checkpoints, tiny_cfg, tmp_path):
    cfg = tiny_cfg("gm-vae-aggressive", train={"max_steps": 20, "eval_every": 7, "log_every": 5,
                                                "aggressive_max_inner": 3, "aggressive_max_steps": 100})
    run_a = train(cfg, tmp_path / "A")
    run_b = train(cfg, tmp_path / "B", until_step=9)
    resume(run_b)
    checkpoints.same_tensors(run_a / "last" / "model.safetensors", run_b / "last" / "model.safetensors")
    assert checkpoints.records(run_a, "valid") == checkpoints.records(run_b, "valid")
    sa = json.loads((run_a / "last" / "trainer_state.json").read_text())
    assert sa == json.loads((run_b / "last" / "trainer_state.json").read_text())


def test_a_run_resumed_with_aggressive_training_switched_on_runs_its_aggressive_phase(tiny_cfg, tmp_path):
    cfg = tiny_cfg("gm-vae", train={"max_steps": 12, "eval_every": 6, "log_every": 3})
    run = train(cfg, tmp_path / "run", until_step=4)
    assert json.loads((run / "last" / "trainer_state.json").read_text())["aggressive"] is None
    resume(run, overrides={"train": {"aggressive": True, "aggressive_max_inner": 2, "aggressive_max_steps": 8}})
    state = json.loads((run / "last" / "trainer_state.json").read_text())
    assert state["step"] == 12 and state["aggressive"]["active"] is False  # the phase ran, and ended by step 8


def test_resuming_a_finished_run_changes_nothing(checkpoints, full_run, tmp_path):
    run = shutil.copytree(full_run, tmp_path / "done")
    before = (run / "last" / "model.safetensors").read_bytes()
    n_records = len(checkpoints.records(run))
    with pytest.raises(RunFinished, match="max_steps = 40 at step 40.*N > 40"):
        resume(run)
    assert (run / "last" / "model.safetensors").read_bytes() == before
    assert len(checkpoints.records(run)) == n_records


def test_until_step_already_reached_is_a_no_op(tiny_cfg, tmp_path):
    run_b = train(tiny_cfg(), tmp_path / "B", until_step=23)
    resume(run_b, until_step=23)  # stopping at the same step twice
    assert json.loads((run_b / "last" / "trainer_state.json").read_text())["step"] == 23


def test_resume_after_keyboard_interrupt_is_equivalent(checkpoints, full_run, tiny_cfg, tmp_path):
    trainer = Trainer(tiny_cfg(), tmp_path / "C")
    original = trainer.train_step

    def interrupted(batch, weight, frozen=()):
        if trainer.state.step == 23:  # Ctrl-C during step 24, before any computation
            raise KeyboardInterrupt
        return original(batch, weight, frozen)

    trainer.train_step = interrupted
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    # nothing is written on the interrupt: the last checkpoint (the validation at step 15) stays
    assert json.loads((tmp_path / "C" / "last" / "trainer_state.json").read_text())["step"] == 15
    resume(tmp_path / "C")
    checkpoints.same_tensors(full_run / "last" / "model.safetensors", tmp_path / "C" / "last" / "model.safetensors")


def test_resume_before_the_first_checkpoint_trains_from_the_start(checkpoints, full_run, tiny_cfg, tmp_path):
    """A run killed before its first checkpoint has nothing to lose: resume trains it from step 0, with a warning."""
    run = tmp_path / "nolast"
    Trainer(tiny_cfg(), run).close()  # writes config.yaml / vocab.json, no training, no last/
    assert (run / "config.yaml").is_file() and not (run / "last").exists()
    with pytest.warns(DemvaeWarning, match="no checkpoint yet: training it from step 0"):
        resume(run)
    checkpoints.same_tensors(full_run / "last" / "model.safetensors", run / "last" / "model.safetensors")


def test_resume_with_a_lost_checkpoint_is_a_clear_error(full_run, tmp_path):
    """A trained run whose last/ is gone cannot be resumed silently from scratch: that would lose its model."""
    run = shutil.copytree(full_run, tmp_path / "lost")
    shutil.rmtree(run / "last")
    with pytest.raises(CheckpointError, match="no resumable checkpoint") as info:
        resume(run)
    assert str(run / "last") in str(info.value)


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(DemvaeError, match="config.yaml"):
        resume(tmp_path)


def test_resume_rejects_changes_outside_train(full_run, tmp_path):
    run = shutil.copytree(full_run, tmp_path / "copy")
    with pytest.raises(ConfigError, match="only train"):
        resume(run, overrides={"model": {"n_variables": 5}})


def test_training_into_an_existing_run_is_refused(full_run, tiny_cfg, tmp_path):
    run = shutil.copytree(full_run, tmp_path / "copy")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(tiny_cfg(), run)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_reproduce_continues_a_row_killed_before_its_first_checkpoint(tiny_overrides, tmp_path):
    """``reproduce`` (train_or_reuse) on a row folder that holds only its config: trained from step 0, not refused."""
    from demvae.config import compose
    from demvae.runs import train_or_reuse

    overrides = tiny_overrides({"train": {"max_steps": 6, "eval_every": 3}})
    run = tmp_path / "row"
    Trainer(compose(config="builtin/dgm-vae", overrides=overrides), run).close()  # killed before step 3
    with pytest.warns(DemvaeWarning, match="no checkpoint yet"):
        train_or_reuse("builtin/dgm-vae", run, overrides)
    assert json.loads((run / "last" / "trainer_state.json").read_text())["step"] == 6
    before = (run / "model.safetensors").read_bytes()
    train_or_reuse("builtin/dgm-vae", run, overrides)  # finished: reused as it is
    assert (run / "model.safetensors").read_bytes() == before
