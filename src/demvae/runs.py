"""The high-level Python API behind the command line: train, resume, or reuse a run folder.

Configs are composed by :func:`demvae.config.compose` (defaults < preset < file < overrides); a run
folder is read back by :func:`demvae.training.load_run` (or :func:`demvae.load`).
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from demvae.config import RunConfig, compose, from_dict, load_yaml, merge
from demvae.errors import CheckpointError, ConfigError, DemvaeError, DemvaeWarning
from demvae.training import Trainer
from demvae.training.run_folder import CONFIG, LAST, METRICS, MODEL


def default_run_dir(cfg: RunConfig, root: str | Path = "runs") -> Path:
    corpus = Path(cfg.data.corpus).stem
    return Path(root) / f"{cfg.model_name}-{corpus}-{datetime.now():%Y%m%d-%H%M%S}"


def size_warning(cfg: RunConfig, device_type: str) -> str | None:
    """A warning when a configuration is a GPU job about to run on a CPU, or the CPU is already busy."""
    if device_type != "cpu":
        return None
    if cfg.model.hidden_size >= 512 and cfg.train.max_steps > 20000:
        return ("these are the paper's sizes (GRU 512, up to 100,000 steps): a GPU job. On a CPU start from "
                "--config builtin/dgm-vae (GRU 128, 2,000 steps) and grow from there")
    cores = os.cpu_count() or 1
    if cfg.train.threads == 0 and os.getloadavg()[0] >= cores:
        return (f"the CPU is busy (load {os.getloadavg()[0]:.1f} on {cores} cores): torch's threads will fight the "
                "other jobs for the cores and training can slow down many times over; give each training its "
                "share with --set train.threads=N (e.g. 1)")
    return None


def train(cfg: RunConfig, out: str | Path | None = None, until_step: int | None = None,
          force: bool = False) -> Path:
    """Train a new run into ``out`` and return its folder (``force``: replace a run already there)."""
    run_dir = Path(out) if out is not None else default_run_dir(cfg)
    Trainer(cfg, run_dir, force=force).fit(until_step=until_step)
    return run_dir


class RunFinished(DemvaeError):
    """``--resume`` on a run that has nothing left to do (reported, not an error: exit 0)."""


def training_state(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / LAST / "trainer_state.json"
    return json.loads(path.read_text()) if path.is_file() else None


def resume(run_dir: str | Path, overrides: dict[str, Any] | None = None,
           until_step: int | None = None) -> Path:
    """Continue an interrupted run (``overrides`` may only change the train section, e.g. max_steps)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise CheckpointError(f"{run_dir} is not a run folder ({CONFIG} is missing)")
    bad = sorted(set(overrides or {}) - {"train"})
    if bad:
        raise ConfigError(f"a resumed run keeps its {', '.join(bad)} settings; only train.* can change")
    cfg = from_dict(merge(load_yaml(run_dir / CONFIG), overrides or {}))
    state = training_state(run_dir)
    if state is not None and until_step is None and (state["step"] >= cfg.train.max_steps or state.get("done")):
        why = "stopped early (patience)" if state.get("done") else f"reached train.max_steps = {cfg.train.max_steps}"
        raise RunFinished(f"{run_dir} is finished: it {why} at step {state['step']}, best at step "
                          f"{state['best_step']}; to train on, pass --set train.max_steps=N with N > {state['step']}")
    fresh = state is None and not (run_dir / f".{LAST}.old").is_dir() and not (run_dir / MODEL).exists()
    if fresh:  # killed before its first checkpoint: nothing to lose, nothing to resume from
        warnings.warn(f"{run_dir} has no checkpoint yet: training it from step 0 again", DemvaeWarning, stacklevel=2)
        Trainer(cfg, run_dir, force=True).fit(until_step=until_step)
        return run_dir
    Trainer(cfg, run_dir, resume=True).fit(until_step=until_step)
    return run_dir


def train_or_reuse(config: str, run_dir: Path, overrides: dict) -> Path:
    """Train into ``run_dir``; reuse a finished run there, resume an interrupted one."""
    if (run_dir / MODEL).is_file() and not (run_dir / LAST).is_dir():
        return run_dir
    if (run_dir / LAST).is_dir():
        state = training_state(run_dir)
        cfg = compose(config=config, overrides=overrides)
        if state["step"] >= cfg.train.max_steps or state.get("done"):
            return run_dir
        return resume(run_dir, {"train": overrides.get("train", {})})
    return train(compose(config=config, overrides=overrides), run_dir)


def summary(run_dir: str | Path) -> str:
    """What a finished (or stopped) training says: where the run is, its best validation, what to try next."""
    run_dir = Path(run_dir)
    records = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines() if line.strip()] \
        if (run_dir / METRICS).is_file() else []
    valid = [r for r in records if r.get("kind") == "valid"]
    lines = [f"run folder: {run_dir}"]
    if valid:
        best = min(valid, key=lambda r: r[r["metric"]])
        shown = ", ".join(f"{name} {best[key]:.3f}" for key, name in
                          (("neg_elbo", "-ELBO"), ("rec", "rec"), ("kl_c", "KL(c)"), ("kl_z", "KL(z)"),
                           ("mutual_info", "MI"), ("param_var", "Var")) if key in best)
        lines.append(f"best validation {best['metric']} at step {best['step']} of {valid[-1]['step']}: {shown}")
    cfg = load_yaml(run_dir / CONFIG)
    has_code = cfg.get("model", {}).get("latent") in ("gm", "cm", "discrete", "semi")
    lines.append("next: " + "  |  ".join(
        ([f"demvae clusters {run_dir}", f"demvae sample {run_dir} --code 0{',0' * (cfg['model']['n_variables'] - 1)}"]
         if has_code else [f"demvae sample {run_dir}"]) + [f"demvae eval {run_dir}"]))
    return "\n".join(lines)
