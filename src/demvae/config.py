"""Typed run configuration: data / model / objective / train sections, strict YAML in and out.

Unknown keys are rejected with the list of valid ones; ``--set section.key=value`` overrides are
parsed as YAML scalars and type-checked against the dataclass field.
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from demvae.errors import ConfigError
from demvae.objectives import ObjectiveConfig


@dataclass
class DataConfig:
    corpus: str = "builtin"
    """A corpus name (builtin, ptb, dailydialog, smd) or a path to a .txt/.jsonl file or folder."""
    data_dir: str | None = None
    max_len: int = 40
    max_vocab: int = 10000
    min_count: int = 1
    max_examples: dict[str, int] = field(default_factory=dict)
    """Keep only the first N examples of a split, e.g. ``{train: 10000}`` (reduced-scale runs)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Reader options, e.g. ``{train_size: 4000}`` for the built-in corpus."""


@dataclass
class ModelConfig:
    latent: str = "gm"
    """none (RNN-LM) | gaussian (VAE/AE) | discrete (DAE/DVAE/DI-VAE) | semi | gm | cm."""
    n_codes: int = 20
    """M: discrete variables (gm, discrete, semi); mixture groups; cm uses 1."""
    code_size: int = 5
    """K: values per discrete variable = mixture components per group."""
    z_dim: int = 2
    """gm: Gaussian dims per discrete variable; gaussian/semi: total dims; cm: categorical z variables."""
    z_values: int = 8
    """cm only: values of each categorical z variable."""
    deterministic: bool = False
    """The auto-encoder: z = E_q[z], no KL."""
    embed_dim: int = 512
    hidden_size: int = 512
    bidirectional: bool = True
    share_embedding: bool = False
    tie_output: bool = True
    concat_latent: bool = True
    dropout: float = 0.3
    temperature: float = 1.0
    supervise: dict[str, int] = field(default_factory=dict)
    """Label name -> index of the categorical latent variable it supervises (cross-entropy)."""


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "auto"
    batch_size: int = 30
    n_samples: int = 20
    """Posterior samples per sentence in training (the paper's post_sample_num)."""
    lr: float = 1e-3
    grad_clip: float = 0.5
    max_steps: int = 100_000
    eval_every: int = 2000
    select_metric: str = "elbo"
    """Model selection on validation: elbo (−ELBO), loss (the objective at w=1) or rec."""
    lr_decay: float = 0.8
    lr_hold: int = 3
    patience: int = 10
    patience_increase: float = 2.0
    improve_threshold: float = 0.996
    min_lr: float = 1e-6
    eval_batch_size: int = 100
    amp: bool = False
    """bf16 autocast (CUDA, or a CPU with bf16 support)."""
    log_every: int = 50
    aggressive: bool = False
    """He et al. (2019) aggressive encoder updates until the objective stops improving."""
    aggressive_max_inner: int = 50
    aggressive_max_steps: int = 2000
    progress: bool = True
    tensorboard: bool = False
    """Also write metrics.jsonl's scalars as TensorBoard event files in ``<run>/tensorboard`` (needs the
    ``tensorboard`` extra: ``pip install 'demvae[tensorboard]'``)."""


@dataclass
class RunConfig:
    model_name: str = "dgm-vae"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


SECTIONS = {f.name: f for f in fields(RunConfig)}


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    """Coerce/verify ``value`` against a dataclass field's type annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_type(name, value, inner[0])
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise ConfigError(f"{name}: expected {annotation.__name__}, got {value!r}")
    return value


def _build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(where + k for k in unknown)}; valid keys: {', '.join(valid)}")
    kwargs = {k: _check_type(where + k, v, hints[k]) for k, v in values.items()}
    return cls(**kwargs)


def from_dict(raw: dict[str, Any]) -> RunConfig:
    """Build a RunConfig, rejecting unknown sections and keys."""
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping of sections")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    cfg = RunConfig()
    for name, value in raw.items():
        if name == "model_name":
            cfg.model_name = _check_type(name, value, str)
            continue
        section_cls = type(getattr(cfg, name))
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"section {name!r} must be a mapping")
        setattr(cfg, name, _build_section(section_cls, value, f"{name}."))
    validate(cfg)
    return cfg


_CHOICES = {
    "model.latent": ("none", "gaussian", "discrete", "semi", "gm", "cm"),
    "train.select_metric": ("elbo", "loss", "rec"),
    "objective.anneal": ("logistic", "linear", "none"),
}
_MINIMA = {
    "data.max_len": 2, "data.max_vocab": 1, "data.min_count": 1, "model.n_codes": 1, "model.code_size": 1,
    "model.z_dim": 1, "model.z_values": 2, "model.embed_dim": 1, "model.hidden_size": 1, "train.batch_size": 1,
    "train.n_samples": 1, "train.max_steps": 1, "train.eval_every": 1, "train.log_every": 1,
    "train.eval_batch_size": 1, "train.lr": 0.0, "train.grad_clip": 0.0, "model.temperature": 0.0,
}


def validate(cfg: RunConfig) -> None:
    """Range and choice checks, so a bad value fails before any work starts."""
    for key, choices in _CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")
    for key, minimum in _MINIMA.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value < minimum or (isinstance(minimum, float) and value <= minimum):
            bound = ">" if isinstance(minimum, float) else ">="
            raise ConfigError(f"{key}: {value!r} is out of range (must be {bound} {minimum})")
    device = cfg.train.device
    if device not in ("auto", "cpu") and not device.startswith(("cuda", "mps")):
        raise ConfigError(f"train.device: {device!r} is not one of auto, cpu, cuda[:N], mps")
    if not 0.0 <= cfg.objective.beta <= 1.0:
        raise ConfigError(f"objective.beta: {cfg.objective.beta} must lie in [0, 1] (the paper's convention)")


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge config layers section by section: a field set in ``override`` replaces the base's value
    (mapping-valued fields such as ``model.supervise`` included; they are not merged key by key)."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k in SECTIONS:
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.lr=1e-3", "model.n_codes=3"]`` -> nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2:
            raise ConfigError(f"--set key must be section.key (sections: {', '.join(SECTIONS)}), got {key!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc})") from None
        out = merge(out, {parts[0]: {parts[1]: parsed}})
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config must be a mapping of sections")
    return data


def replace(cfg: RunConfig, **sections: dict[str, Any]) -> RunConfig:
    """A copy of ``cfg`` with some section fields changed (validated)."""
    return from_dict(merge(cfg.to_dict(), sections))


__all__ = [
    "DataConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "RunConfig",
    "TrainConfig",
    "from_dict",
    "load_yaml",
    "merge",
    "parse_overrides",
    "replace",
]
