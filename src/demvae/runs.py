"""The high-level Python API behind the command line: train, resume, or reuse a run folder.

Configs are composed by :func:`demvae.config.compose` (defaults < preset < file < overrides); a run
folder is read back by :func:`demvae.training.load_run` (or :func:`demvae.load`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from demvae.config import RunConfig, compose, from_dict, load_yaml, merge
from demvae.errors import ConfigError
from demvae.training import DialogTrainer, Trainer
from demvae.training.run_folder import CONFIG, LAST, MODEL, STAGE1, finished, last_state


def default_run_dir(cfg: RunConfig, root: str | Path = "runs") -> Path:
    corpus = Path(cfg.data.corpus).stem
    return Path(root) / f"{cfg.model_name}-{corpus}-{datetime.now():%Y%m%d-%H%M%S}"


def _trainer(cfg: RunConfig, run_dir: Path, resume: bool = False) -> Trainer | DialogTrainer:
    """The sentence model's Trainer, or both stages of a dialog run (``dialog.enabled``)."""
    if cfg.dialog.enabled:
        return DialogTrainer(cfg, run_dir, resume=resume)
    return Trainer(cfg, run_dir, resume=resume)


def train(cfg: RunConfig, out: str | Path | None = None, until_step: int | None = None) -> Path:
    """Train a new run into ``out`` and return its folder."""
    run_dir = Path(out) if out is not None else default_run_dir(cfg)
    _trainer(cfg, run_dir).fit(until_step=until_step)
    return run_dir


def resume(run_dir: str | Path, overrides: dict[str, Any] | None = None,
           until_step: int | None = None) -> Path:
    """Continue an interrupted run (``overrides`` may only change the train section, e.g. max_steps)."""
    run_dir = Path(run_dir)
    bad = sorted(set(overrides or {}) - {"train"})
    if bad:
        raise ConfigError(f"a resumed run keeps its {', '.join(bad)} settings; only train.* can change")
    cfg = from_dict(merge(load_yaml(run_dir / CONFIG), overrides or {}))
    _trainer(cfg, run_dir, resume=True).fit(until_step=until_step)
    return run_dir


def train_or_reuse(config: str, run_dir: Path, overrides: dict) -> Path:
    """Train into ``run_dir``; reuse a finished run there, resume an interrupted one."""
    if (run_dir / MODEL).is_file() and not (run_dir / LAST).is_dir():
        return run_dir
    cfg = compose(config=config, overrides=overrides)
    if finished(last_state(run_dir), cfg.dialog.max_steps if cfg.dialog.enabled else cfg.train.max_steps):
        return run_dir  # (a dialog run's last/ is stage 2's)
    if (run_dir / LAST).is_dir() or (run_dir / STAGE1 / LAST).is_dir():
        return resume(run_dir, {"train": overrides.get("train", {})})
    return train(cfg, run_dir)
