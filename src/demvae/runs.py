"""The high-level Python API behind the command line: compose a config, train, resume.

A config is composed in layers, later ones winning: library defaults < the model preset
(``--model``) < a YAML file (``--config``; its ``model_name`` picks the preset) < explicit
overrides (``--corpus``, ``--set section.key=value``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from demvae.config import RunConfig, from_dict, load_yaml, merge
from demvae.errors import ConfigError
from demvae.models import preset
from demvae.training.checkpoint import LAST

CONFIG_ROOT = Path(__file__).parent / "configs"


def find_config(name: str | Path) -> Path:
    """A YAML path, or a packaged config name such as ``ptb/dgm-vae`` or ``builtin/dgm-vae``."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = CONFIG_ROOT / path if path.suffix in (".yaml", ".yml") else CONFIG_ROOT / f"{name}.yaml"
    if packaged.is_file():
        return packaged
    known = sorted(str(p.relative_to(CONFIG_ROOT).with_suffix("")) for p in CONFIG_ROOT.rglob("*.yaml"))
    raise ConfigError(f"config {str(name)!r} not found (a file path, or one of: {', '.join(known)})")


def compose(model: str | None = None, config: str | Path | None = None,
            overrides: dict[str, Any] | None = None) -> RunConfig:
    file_values = load_yaml(find_config(config)) if config is not None else {}
    name = model or file_values.get("model_name") or RunConfig().model_name
    values = merge(preset(name), file_values)
    values = merge(values, {"model_name": name})
    return from_dict(merge(values, overrides or {}))


def default_run_dir(cfg: RunConfig, root: str | Path = "runs") -> Path:
    corpus = Path(cfg.data.corpus).stem
    return Path(root) / f"{cfg.model_name}-{corpus}-{datetime.now():%Y%m%d-%H%M%S}"


def train(cfg: RunConfig, out: str | Path | None = None, until_step: int | None = None) -> Path:
    """Train a new run into ``out`` and return its folder."""
    from demvae.training import Trainer

    run_dir = Path(out) if out is not None else default_run_dir(cfg)
    Trainer(cfg, run_dir).fit(until_step=until_step)
    return run_dir


def resume(run_dir: str | Path, overrides: dict[str, Any] | None = None,
           until_step: int | None = None) -> Path:
    """Continue an interrupted run (``overrides`` may only change the train section, e.g. max_steps)."""
    from demvae.training import Trainer

    run_dir = Path(run_dir)
    bad = sorted(set(overrides or {}) - {"train"})
    if bad:
        raise ConfigError(f"a resumed run keeps its {', '.join(bad)} settings; only train.* can change")
    cfg = from_dict(merge(load_yaml(run_dir / "config.yaml"), overrides or {}))
    Trainer(cfg, run_dir, resume=True).fit(until_step=until_step)
    return run_dir


def train_or_reuse(config: str, run_dir: Path, overrides: dict) -> Path:
    """Train into ``run_dir``; reuse a finished run there, resume an interrupted one."""
    if (run_dir / "model.safetensors").is_file() and not (run_dir / LAST).is_dir():
        return run_dir
    if (run_dir / LAST).is_dir():
        state = json.loads((run_dir / LAST / "trainer_state.json").read_text())
        cfg = compose(config=config, overrides=overrides)
        if state["step"] >= cfg.train.max_steps or state.get("done"):
            return run_dir
        return resume(run_dir, {"train": overrides.get("train", {})})
    return train(compose(config=config, overrides=overrides), run_dir)
