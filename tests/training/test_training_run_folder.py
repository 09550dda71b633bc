"""The run folder: its files, atomic checkpoints, load_run, and the errors users see."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from demvae import io
from demvae.config import RunConfig, compose
from demvae.errors import CheckpointError, ConfigError, TrainingError
from demvae.training import Trainer, load_run
from demvae.training import run_folder as ckpt
from demvae.training.validation import PosteriorStats


def _leftovers(run_dir):
    """Temporary files and half-swapped checkpoints (``.lock`` is the run's lock file: it stays, unlocked)."""
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                  if p.name.endswith(".tmp") or (p.name.startswith(".") and p.name != ".lock"))


def test_run_folder_files(full_run):
    for name in ("config.yaml", "vocab.json", "versions.json", "metrics.jsonl", "model.safetensors"):
        assert (full_run / name).is_file(), name
    assert sorted(p.name for p in (full_run / "last").iterdir()) == [
        "model.safetensors", "optimizer.safetensors", "trainer_state.json"]
    assert _leftovers(full_run) == []
    cfg = yaml.safe_load((full_run / "config.yaml").read_text())
    assert cfg["model_name"] == "dgm-vae" and cfg["train"]["max_steps"] == 40
    versions = json.loads((full_run / "versions.json").read_text())
    assert {"torch", "python", "demvae", "device", "precision"} <= set(versions)
    assert cfg["train"]["amp"] == "auto" and versions["precision"] in ("bf16", "fp32")  # auto, and what it meant
    records = [json.loads(line) for line in (full_run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    valid = [r for r in records if r["kind"] == "valid"]
    assert [r["step"] for r in train] == [10, 20, 30, 40]
    assert [r["step"] for r in valid] == [15, 30, 40]
    assert {"loss", "rec", "kl_c", "kl_z_avg", "dispersion", "mutual_info", "kl_weight"} <= set(train[0])
    assert {"neg_elbo", "rec", "mutual_info", "lr", "metric", "ppl", "components_used"} <= set(valid[0])
    state = json.loads((full_run / "last" / "trainer_state.json").read_text())
    assert state["step"] == 40 and state["validations"] == 3
    assert state["best"] == min(r["neg_elbo"] for r in valid)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "file.txt"
    io.write_text(target, "old")

    def failing(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        io.atomic_write(target, failing)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


@pytest.mark.parametrize("umask", [0o027, 0o002])
def test_new_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        io.write_json(tmp_path / "a.json", {"x": 1})
        ckpt.save_model(torch.nn.Linear(2, 2), tmp_path / "model.safetensors")
        ckpt.RunLock(tmp_path).acquire().release()
        model = torch.nn.Linear(2, 2)
        ckpt.RunFolder(tmp_path).save_training_state(model, torch.optim.Adam(model.parameters()),
                                                     {"step": 1, "done": False})
    finally:
        os.umask(previous)
    for name in ("a.json", "model.safetensors", ".lock", "last/model.safetensors", "last/optimizer.safetensors",
                 "last/trainer_state.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert (tmp_path / "last").stat().st_mode & 0o777 == 0o777 & ~umask


def test_the_lock_is_held_until_code_stats_are_written(tiny_cfg, tmp_path, monkeypatch):
    """``code_stats.json`` is the last file training writes: no second writer may start before it is there."""
    from demvae import runs
    from demvae.errors import RunInUse

    seen = []
    write = runs.load_code_stats

    def load_code_stats(run, data=None):
        try:
            ckpt.RunLock(run.folder.path).acquire().release()
            seen.append("free")
        except RunInUse:
            seen.append("held")
        return write(run, data)

    monkeypatch.setattr(runs, "load_code_stats", load_code_stats)
    run = runs.train(tiny_cfg(train={"max_steps": 4, "eval_every": 2}), tmp_path / "run")
    assert seen == ["held"] and (run / "code_stats.json").is_file()
    ckpt.RunLock(run).acquire().release()  # and released after


def test_failed_checkpoint_keeps_the_previous_last(full_run, tmp_path, monkeypatch):
    run = shutil.copytree(full_run, tmp_path / "copy")
    before = {p.name: p.read_bytes() for p in (run / "last").iterdir()}
    model = load_run(run).model
    optimizer = torch.optim.Adam(model.parameters())

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.state_file, "save_file", broken_save)
    with pytest.raises(OSError):
        ckpt.RunFolder(run).save_training_state(model, optimizer, {"step": 99})
    assert {p.name: p.read_bytes() for p in (run / "last").iterdir()} == before
    assert _leftovers(run) == []


def test_interrupted_swap_is_recovered_from_last_old(full_run, tiny_cfg, tmp_path):
    """A crash between the two renames of save_training_state leaves only .last.old."""
    run = shutil.copytree(full_run, tmp_path / "copy")
    (run / "last").rename(run / ".last.old")
    trainer = Trainer(tiny_cfg(), run, resume=True)
    assert trainer.state.step == 40


def test_load_run_errors(full_run, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_run(tmp_path / "missing")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(CheckpointError):
        load_run(a_file)
    with pytest.raises(CheckpointError, match="config.yaml"):
        load_run(tmp_path)

    no_model = shutil.copytree(full_run, tmp_path / "no_model")
    (no_model / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_run(no_model)
    assert load_run(no_model, weights="last").model is not None

    corrupt = shutil.copytree(full_run, tmp_path / "corrupt")
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_run(corrupt)


def test_load_run_with_mismatched_shapes_is_a_checkpoint_error(full_run, tmp_path):
    other = shutil.copytree(full_run, tmp_path / "other")
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["model"]["n_variables"] = 5
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError, match="does not match"):
        load_run(other)


@pytest.mark.parametrize("change", ["drop", "extra"])
def test_load_run_with_missing_or_extra_tensors_is_a_checkpoint_error(full_run, tmp_path, change):
    from safetensors.torch import load_file, save_file

    run = shutil.copytree(full_run, tmp_path / "run")
    state = load_file(str(run / "model.safetensors"))
    if change == "drop":
        del state["latents.0.code_net.0.bias"]
    else:
        state["latents.0.bogus"] = torch.zeros(3)
    save_file(state, str(run / "model.safetensors"))
    with pytest.raises(CheckpointError, match="code_net.0.bias" if change == "drop" else "bogus"):
        load_run(run)


def test_unknown_config_key_lists_valid_keys():
    with pytest.raises(ConfigError) as info:
        compose(model="dgm-vae", overrides={"train": {"bogus": 1}})
    message = str(info.value)
    assert "train.bogus" in message and "valid keys" in message
    for key in ("lr", "max_steps", "eval_every", "lr_decay"):
        assert key in message
    with pytest.raises(ConfigError, match="valid"):
        compose(model="dgm-vae", overrides={"trian": {"lr": 1.0}})
    with pytest.raises(ConfigError, match="train.lr"):
        compose(model="dgm-vae", overrides={"train": {"lr": "fast"}})
    with pytest.raises(ConfigError, match="known models"):
        compose(model="no-such-model")


def test_amp_without_bf16_matrix_units_is_a_config_error(tiny_cfg, tmp_path, monkeypatch):
    import demvae.device as device_module

    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: False)
    with pytest.raises(ConfigError, match="train.amp=false"):
        Trainer(tiny_cfg(train={"amp": True}), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before the folder is made


@pytest.mark.parametrize(("amp", "units", "expected"), [("auto", False, "fp32"), (False, True, "fp32"),
                                                        ("auto", True, "bf16")])
def test_the_run_records_the_precision_that_train_amp_resolved_to(tiny_cfg, tmp_path, monkeypatch, capsys,
                                                                   amp, units, expected):
    import demvae.device as device_module

    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: units)
    monkeypatch.setattr(device_module, "matmul_seconds", lambda dtype, device: 1.0 if dtype == torch.float32 else 0.1)
    cfg = tiny_cfg(train={"amp": amp, "max_steps": 1, "eval_every": 1, "progress": True})
    trainer = Trainer(cfg, tmp_path / "run")
    assert trainer.precision == expected
    trainer.fit()
    assert json.loads((tmp_path / "run" / "versions.json").read_text())["precision"] == expected
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["amp"] == amp  # as asked
    first = capsys.readouterr().out.splitlines()[0]
    assert f"training on cpu in {expected} (train.amp: {str(amp).lower()})" in first


def test_amp_with_bf16_matrix_units_trains_and_validates_under_autocast(tiny_cfg, tmp_path, monkeypatch):
    import demvae.device as device_module

    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: True)
    seen = []
    trainer = Trainer(tiny_cfg(train={"amp": True, "max_steps": 2, "eval_every": 2, "log_every": 1}), tmp_path / "run")
    original = trainer.model.forward

    def spy(batch, n_samples=1, noise=None):
        seen.append(torch.is_autocast_enabled("cpu"))
        return original(batch, n_samples, noise)

    trainer.model.forward = spy
    trainer.fit()
    assert len(seen) > 2 and all(seen)  # the two training steps and the validation's batches
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert losses and all(math.isfinite(x) for x in losses)


def test_bf16_matmul_check_follows_the_cpu_flags():
    from demvae.device import has_bf16_matmul

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo")
    flags = set(cpuinfo.read_text().split())
    assert has_bf16_matmul(torch.device("cpu")) == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_nan_training_loss_is_a_training_error(tiny_cfg, tmp_path, monkeypatch):
    cfg = tiny_cfg(train={"max_steps": 8, "eval_every": 2, "log_every": 4})
    trainer = Trainer(cfg, tmp_path / "run")
    original = trainer.model.forward

    def poisoned(batch, n_samples=1, noise=None):
        terms = original(batch, n_samples)
        if trainer.model.training and trainer.state.step >= 2:
            terms.rec = terms.rec * float("nan")
        return terms

    monkeypatch.setattr(trainer.model, "forward", poisoned)
    with pytest.raises(TrainingError, match="checkpoint") as info:
        trainer.fit()
    assert "nan" in str(info.value).lower()
    last = tmp_path / "run" / "last"
    assert str(last) in str(info.value)
    # the checkpoint it points to is the good one from step 2
    assert json.loads((last / "trainer_state.json").read_text())["step"] == 2
    good = load_run(tmp_path / "run", weights="last").model
    assert all(torch.isfinite(p).all() for p in good.parameters())


def test_nan_validation_metric_is_a_training_error(tiny_cfg, tmp_path):
    trainer = Trainer(tiny_cfg(), tmp_path / "run")
    with pytest.raises(TrainingError, match="checkpoint"):
        trainer._after_validation(PosteriorStats(neg_elbo=math.nan, rec=1.0, loss=1.0, ppl=1.0))


def test_config_round_trips_through_the_run_folder(full_run, tiny_cfg):
    loaded = load_run(full_run)
    assert isinstance(loaded.config, RunConfig)
    assert loaded.config.to_dict() == tiny_cfg().to_dict()


# ------------------------------------------------------------------------------------------- RunFolder and kinds


def test_run_folder_paths_are_the_files_on_disk(tmp_path):
    folder = ckpt.RunFolder(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in (
        folder.config, folder.vocab, folder.versions, folder.metrics_log, folder.best, folder.last, folder.corpus,
        folder.code_stats, folder.metrics_file("valid"))] == [
        "config.yaml", "vocab.json", "versions.json", "metrics.jsonl", "model.safetensors", "last", "corpus.json",
        "code_stats.json", "metrics-valid.json"]
    dialog = ckpt.DialogRun(tmp_path)
    assert dialog.stage1.path == tmp_path / "stage1" and dialog.stages == tmp_path / "stages.json"
    assert dialog.stage2.best == dialog.best == tmp_path / "model.safetensors"
    assert dialog.code_stats is None  # the dialog model generates no sentence from a code


def test_open_gives_the_kind_of_the_run(full_run, dialog_run, tmp_path):
    sentence, dialog = ckpt.RunFolder.open(full_run), ckpt.RunFolder.open(dialog_run)
    assert type(sentence) is ckpt.RunFolder and sentence.kind == "sentence" and sentence.stage_times() == {}
    assert type(dialog) is ckpt.DialogRun and dialog.kind == "dialog"
    assert set(dialog.stage_times()) == {"stage1", "stage2"}
    assert ckpt.RunFolder.open(dialog.stage1.path).kind == "sentence"  # stage 1 is a sentence run of its own
    assert load_run(full_run).folder.kind == "sentence" and load_run(dialog_run).folder.kind == "dialog"
    for folder in (sentence, dialog):
        assert folder.is_run() and folder.resumable() and folder.corpus_record() is not None
        metrics = {"model_sha256": folder.model_sha256()}
        assert folder.measured(metrics) and folder.measured({"model_sha256": "0" * 64}) is False
        assert folder.measured({}) is None  # a record that does not say which model it measured
    with pytest.raises(CheckpointError, match="config.yaml is missing"):
        ckpt.RunFolder.open(tmp_path)
    assert not ckpt.RunFolder(tmp_path).is_run() and ckpt.RunFolder(tmp_path).corpus_record() is None


def _state(folder, step, done=False):
    folder.last.mkdir(parents=True, exist_ok=True)
    (folder.last / "trainer_state.json").write_text(json.dumps({"step": step, "done": done, "best_step": step}))


def test_resumable_and_finished_of_each_kind(tiny_cfg, tiny_dialog_cfg, tmp_path):
    cfg = tiny_cfg()  # 40 steps
    sentence = ckpt.RunFolder.kind_for(cfg)(tmp_path / "sentence")
    assert type(sentence) is ckpt.RunFolder and sentence.budgets(cfg) == [("train.max_steps", 40)]
    assert not sentence.resumable() and not sentence.finished(cfg)
    _state(sentence, 20)
    assert sentence.resumable() and not sentence.finished(cfg)
    _state(sentence, 20, done=True)  # stopped early
    assert sentence.finished(cfg)
    _state(sentence, 40)
    assert sentence.finished(cfg)
    sentence.last.rename(sentence.path / ".last.old")  # a swap interrupted between its two renames
    assert sentence.resumable()

    dcfg = tiny_dialog_cfg()
    dialog = ckpt.RunFolder.kind_for(dcfg)(tmp_path / "dialog")
    assert type(dialog) is ckpt.DialogRun
    assert dialog.budgets(dcfg) == [("train.max_steps", dcfg.train.max_steps),
                                    ("dialog.max_steps", dcfg.dialog.max_steps)]  # the last one bounds stage 2's last/
    _state(dialog.stage1, dcfg.train.max_steps)  # stage 1 done, stage 2 not started
    assert dialog.resumable() and not dialog.stage2.resumable() and not dialog.finished(dcfg)
    _state(dialog, dcfg.dialog.max_steps)
    assert dialog.finished(dcfg) and dialog.stage2.resumable()


def test_claim_clears_the_runs_entries_of_its_kind(tmp_path):
    dialog = ckpt.DialogRun(tmp_path)
    dialog.claim(force=False)  # an empty folder: nothing to refuse
    for path in (dialog.config, dialog.stages, tmp_path / "notes.txt"):
        path.write_text("x")
    _state(dialog.stage1, 3)
    with pytest.raises(CheckpointError, match="--resume"):
        dialog.claim(force=False)
    dialog.stage2.claim(force=True)  # stage 2's trainer: the run's own files, never stage 1's
    assert not dialog.config.exists() and dialog.stages.exists() and dialog.stage1.resumable()
    with pytest.raises(CheckpointError):
        dialog.claim(force=False)  # stage1/ and stages.json are the dialog run's
    dialog.claim(force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_expect_names_where_the_other_kind_is(tmp_path):
    ckpt.RunFolder(tmp_path).expect("sentence", "ok")
    with pytest.raises(ConfigError, match="holds a sentence model: x needs a dialog run; .*dialog.enabled"):
        ckpt.RunFolder(tmp_path).expect("dialog", "x needs a dialog run")
    with pytest.raises(ConfigError, match="holds a dialog run: .*" + re.escape(str(tmp_path / "stage1"))):
        ckpt.DialogRun(tmp_path).expect("sentence", "x reads a sentence model")



def test_bf16_training_inside_an_enclosing_autocast_computes_with_each_steps_weights(tiny_cfg, tmp_path, monkeypatch):
    """An evaluation trains its rPPL language model inside its own autocast region. autocast keeps its bf16 weight
    copies until the outermost region ends, so unless each update clears them, every step after the first computes
    with the first step's weights (that LM diverged: rPPL 10^15 against 200). An RNN-LM: no custom backward that
    reads the autocast state, so the two runs are the same bit for bit."""
    from safetensors.torch import load_file

    import demvae.device as device_module

    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: True)
    cfg = tiny_cfg("rnnlm", train={"amp": True, "max_steps": 40, "eval_every": 40, "log_every": 40})
    Trainer(cfg, tmp_path / "alone").fit()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        Trainer(cfg, tmp_path / "enclosed").fit()
    alone, enclosed = (load_file(str(tmp_path / run / "last" / "model.safetensors")) for run in ("alone", "enclosed"))
    assert all(torch.equal(alone[k], enclosed[k]) for k in alone)
