"""The high-level Python API behind the command line: train, resume, or reuse a run folder.

Configs are composed by :func:`demvae.config.compose` (defaults < preset < file < overrides); a run
folder is read back by :func:`demvae.training.load_run` (or :func:`demvae.load`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from demvae.config import RunConfig, compose, from_dict, load_yaml, merge, replace
from demvae.data.fingerprint import locate
from demvae.errors import CheckpointError, ConfigError, DemvaeWarning, RunFinished
from demvae.metrics import title
from demvae.models.build import code_shape
from demvae.training import DialogTrainer, Trainer
from demvae.training.run_folder import CONFIG, RunFolder, load_code_stats, load_run

TRAINERS: dict[str, type[Trainer] | type[DialogTrainer]] = {"sentence": Trainer, "dialog": DialogTrainer}
"""The trainer of each kind of run (:attr:`RunFolder.kind`): a sentence model's, or both stages of a dialog run."""


def default_run_dir(cfg: RunConfig, root: str | Path = "runs") -> Path:
    corpus = Path(cfg.data.corpus).stem
    return Path(root) / f"{cfg.model_name}-{corpus}-{datetime.now():%Y%m%d-%H%M%S}"


def size_warning(cfg: RunConfig, device_type: str) -> str | None:
    """A warning when a configuration is a GPU job about to run on a CPU, or the CPU is already busy."""
    if device_type != "cpu":
        return None
    steps = sum(n for _, n in RunFolder.kind_for(cfg).budgets(cfg))  # a dialog run: both stages
    if cfg.model.hidden_size >= 512 and steps > 20000:
        return ("these are the paper's sizes (GRU 512, up to 100,000 steps): a GPU job. On a CPU start from "
                "--config builtin/dgm-vae (GRU 128, 2,000 steps) and grow from there")
    cores = os.cpu_count() or 1
    if cfg.train.threads == 0 and os.getloadavg()[0] >= cores:
        return (f"the CPU is busy (load {os.getloadavg()[0]:.1f} on {cores} cores): torch's threads will fight the "
                "other jobs for the cores and training can slow down many times over; give each training its "
                "share with --set train.threads=N (e.g. 1)")
    return None


def _fit(cfg: RunConfig, folder: RunFolder, until_step: int | None, resume: bool = False,
         force: bool = False) -> None:
    """Train; once the run has finished, save its codes' aggregate posterior statistics (a sentence model's: the
    ``aggregate`` generation procedure's, :func:`demvae.training.run_folder.load_code_stats`)."""
    trainer = TRAINERS[folder.kind](cfg, folder.path, resume=resume, force=force)
    try:  # the folder stays locked until code_stats.json is written too
        trainer.fit(until_step=until_step, keep_lock=True)
        if trainer.world.main and folder.best.is_file() and folder.finished(cfg):
            load_code_stats(load_run(folder.path), trainer.data)
    finally:
        trainer.close()


def train(cfg: RunConfig, out: str | Path | None = None, until_step: int | None = None,
          force: bool = False) -> Path:
    """Train a new run into ``out`` and return its folder (``force``: replace a run already there)."""
    run_dir = Path(out) if out is not None else default_run_dir(cfg)
    _fit(cfg, RunFolder.kind_for(cfg)(run_dir), until_step, force=force)
    return run_dir


def resume(run_dir: str | Path, overrides: dict[str, Any] | None = None, until_step: int | None = None,
           corpus: str | None = None, data_dir: str | None = None, force: bool = False) -> Path:
    """Continue an interrupted run (``overrides`` may only change the train section, e.g. max_steps) on the
    corpus it trained on: found where ``corpus.json`` recorded it (or at ``corpus``/``data_dir``: a moved
    copy), refused if its files changed since unless ``force`` (then a warning), as ``demvae eval`` does."""
    run_dir = Path(run_dir)
    config = RunFolder(run_dir).config
    if not config.is_file():
        raise CheckpointError(f"{run_dir} is not a run folder ({CONFIG} is missing)")
    bad = sorted(set(overrides or {}) - {"train"})
    if bad:
        raise ConfigError(f"a resumed run keeps its {', '.join(bad)} settings; only train.* can change")
    cfg = from_dict(merge(load_yaml(config), overrides or {}))
    folder = RunFolder.kind_for(cfg)(run_dir)
    state = folder.last_state()  # a dialog run's last/ is stage 2's
    if until_step is None and state is not None and folder.finished(cfg):
        setting, steps = folder.budgets(cfg)[-1]
        why = "stopped early (patience)" if state["done"] else f"reached {setting} = {steps}"
        more = (f"; to train on, pass --set train.max_steps=N with N > {state['step']}"
                if setting.startswith("train.") else "")  # (only train.* may change)
        raise RunFinished(f"{run_dir} is finished: it {why} at step {state['step']}, best at step "
                          f"{state['best_step']}{more}")
    data, notes = locate(cfg.data, folder.corpus_record(), corpus, data_dir, force)
    for note in notes:
        warnings.warn(note, DemvaeWarning, stacklevel=2)
    cfg = replace(cfg, data=asdict(data))  # where it was found is what config.yaml records from now on
    again = not folder.resumable() and not folder.best.exists()  # killed before its first checkpoint: nothing to lose
    if again:
        warnings.warn(f"{run_dir} has no checkpoint yet: training it from step 0 again", DemvaeWarning, stacklevel=2)
    _fit(cfg, folder, until_step, resume=not again, force=again)
    return run_dir


def train_or_reuse(config: str, run_dir: Path, overrides: dict) -> Path:
    """Train into ``run_dir``; reuse a finished run there, resume an interrupted one."""
    folder = RunFolder(run_dir)
    if folder.best.is_file() and not folder.last.is_dir():
        return run_dir
    cfg = compose(config=config, overrides=overrides)
    folder = RunFolder.kind_for(cfg)(run_dir)
    if folder.finished(cfg):
        return run_dir  # (a dialog run's last/ is stage 2's)
    if folder.resumable() or folder.config.is_file():
        # interrupted (or killed before its first checkpoint, which resume trains again from step 0)
        data = overrides.get("data", {})  # another data folder or corpus: the run's must be found there
        return resume(run_dir, {"train": overrides.get("train", {})}, corpus=data.get("corpus"),
                      data_dir=data.get("data_dir"))
    if folder.holds_run():  # (the Trainer's own refusal advises `train` options that its callers here lack)
        raise CheckpointError(f"{run_dir} holds files of a run but no {CONFIG} to resume it from: remove them, or "
                              "write elsewhere (--out)")
    return train(cfg, run_dir)


def summary(run_dir: str | Path) -> str:
    """What a finished (or stopped) training says: where the run is, its best validation, what to try next."""
    folder = RunFolder.open(run_dir)
    valid = folder.records("valid")
    lines = [f"run folder: {folder.path}"]
    if valid:
        best = min(valid, key=lambda r: r[r["metric"]])
        keys = ("neg_elbo", "rec", "kl_c", "kl_z", "mutual_info", "param_var", "nll", "policy", "policy_error",
                "attribute_error")
        shown = ", ".join(f"{title(k)} {best[k]:.3f}" for k in keys if k in best)
        lines.append(f"best validation {best['metric']} at step {best['step']} of {valid[-1]['step']}: {shown}")
    times = folder.stage_times()  # a dialog run's
    if times:
        lines.append("; ".join(f"{name}: {s['step']} steps in {s['seconds']:.0f} s (best at step {s['best_step']})"
                               for name, s in times.items()))
    lines.append("next: " + "  |  ".join(NEXT[folder.kind](folder)))
    return "\n".join(lines)


def _sentence_next(folder: RunFolder) -> list[str]:
    shape = code_shape(folder.read_config().model)  # none for a mixture of one component per variable (K = 1)
    return ([f"demvae clusters {folder.path}", f"demvae sample {folder.path} --code 0{',0' * (shape[0] - 1)}"]
            if shape is not None else [f"demvae sample {folder.path}"]) + [f"demvae eval {folder.path}"]


NEXT: dict[str, Callable[[RunFolder], list[str]]] = {
    "sentence": _sentence_next,
    "dialog": lambda folder: [f"demvae respond {folder.path} --context \"...\"",
                              f"demvae clusters {folder.path} --split train", f"demvae eval {folder.path}"]}
"""What to try on each kind of trained run (the summary's last line)."""
