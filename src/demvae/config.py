"""Typed run configuration: data / model / objective / train / dialog sections, strict YAML in and out.

A config is composed in layers, later ones winning: the defaults below < a model preset
(``configs/presets.yaml``, picked by ``--model`` or a file's ``model_name``) < a YAML file
(``--config``) < explicit overrides (``--corpus``, ``--set section.key=value``). Unknown keys are
rejected with the list of valid ones (renamed keys name their new name); values are type- and
range-checked before any work starts. Every key carries its documentation (``demvae config show``).
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from demvae.errors import ConfigError
from demvae.expfam import FAMILIES
from demvae.nn.decoders import RECURRENCES

CONFIG_ROOT = Path(__file__).parent / "configs"


def _f(default: Any, doc: str, *, choices: tuple[Any, ...] | None = None, at_least: float | None = None,
       above: float | None = None) -> Any:
    """A field with its documentation and its checks (:func:`validate`): one of ``choices``, ``>= at_least``,
    ``> above``."""
    checks = {"choices": choices, "at_least": at_least, "above": above}
    metadata = {"doc": doc, **{k: v for k, v in checks.items() if v is not None}}
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DataConfig:
    corpus: str = _f("builtin", "A corpus name (builtin, ptb, dailydialog, smd) or a .txt/.jsonl file or folder.")
    data_dir: str | None = _f(None, "Folder of the paper corpora (else $DEMVAE_DATA).")
    max_len: int = _f(40, "Tokens per sentence, <s> and </s> included; longer ones keep their </s>.", at_least=2)
    max_vocab: int = _f(10000, "Words in the vocabulary (besides the special tokens), most frequent first.",
                       at_least=1)
    min_count: int = _f(1, "Words seen fewer times in train become <unk>.", at_least=1)
    max_examples: dict[str, int] = _f(dict, "Keep only the first N examples of a split, e.g. {train: 10000}.")
    options: dict[str, Any] = _f(dict, "Reader options, e.g. {n_train: 4000} for the built-in corpus.")


LATENTS = ("none", "gaussian", "discrete", "semi", "gm", "cm", "mixture")
PAPER_MIXTURES = {"gm": "gaussian", "cm": "categorical"}
"""The paper's two mixture latents and the family of their units (``mixture`` takes ``model.family``)."""
HEADS = ("linear", "relu", "tanh")


@dataclass
class ModelConfig:
    latent: str = _f("gm", "none (RNN-LM) | gaussian (VAE/AE) | discrete (DAE/DVAE/DI-VAE) | semi | gm | cm | "
                     "mixture (an exponential-family mixture of model.family units; gm and cm are the paper's two, "
                     "of gaussian and categorical units).", choices=LATENTS)
    family: str = _f("gaussian", "mixture: the exponential family of z's units, by its registry name (gaussian | "
                     "categorical | poisson).", choices=tuple(FAMILIES))
    n_variables: int = _f(20, "M: discrete latent variables c_1..c_M (gm, discrete, semi; cm uses 1).",
                          at_least=1)
    n_values: int = _f(5, "K: values per discrete variable = mixture components per variable.", at_least=1)
    n_units: int = _f(2, "Units of z per discrete variable: Gaussian dimensions (gm), categorical z variables (cm) "
                      "or units of model.family (mixture).", at_least=1)
    z_values: int = _f(8, "cm (a categorical mixture): values of each categorical z variable.", at_least=2)
    gaussian_dim: int = _f(40, "gaussian/semi: dimensions of the N(0, I) Gaussian z.", at_least=1)
    deterministic: bool = _f(False, "The auto-encoder: z = the posterior mean, no KL.")
    embed_dim: int = _f(512, "Word embedding size.", at_least=1)
    hidden_size: int = _f(512, "GRU size of the encoder (per direction) and the decoder.", at_least=1)
    bidirectional: bool = _f(True, "Bidirectional encoder.")
    share_embedding: bool = _f(False, "One embedding for the encoder and the decoder.")
    tie_output: bool = _f(True, "Decoder output layer tied to its embedding (needs embed_dim == hidden_size).")
    concat_latent: bool = _f(True, "The decoder reads z at every step (as well as in its initial state).")
    dropout: float = _f(0.3, "Dropout on the decoder's input embeddings and outputs, in [0, 1).")
    recurrence: str = _f("auto", "Decoder recurrence, the same numbers each way: gru (nn.GRU), shared (a scan that "
                         "projects each token once for all posterior samples, which share its dropout mask) or "
                         "auto (nn.GRU in training; the scan in evaluation on a CPU).", choices=RECURRENCES)
    temperature: float = _f(1.0, "Relaxation (Gumbel-softmax) temperature of discrete samples in training: "
                            "discrete codes, categorical and Poisson units.", above=0.0)
    z_head: str = _f("linear", "Head of q(z|x): linear, or Linear-act-Linear with act relu | tanh.", choices=HEADS)
    code_head: str = _f("relu", "Head of q(c|x): linear, or Linear-act-Linear with act relu | tanh.", choices=HEADS)
    supervise: dict[str, int] = _f(dict, "Label name -> index of the categorical variable it supervises.")
    decode_code: bool = _f(False, "gm, cm, mixture: the decoder also reads the one-hot code c beside z (a "
                           "straight-through Gumbel-softmax draw of q(c|x) in training). Opt-in, not the paper's model "
                           "(there x depends on z only): it ties generated sentences to the chosen code.")

    @property
    def mixture_family(self) -> str | None:
        """The registry name of the mixture latent's family (gm: gaussian, cm: categorical, mixture: ``family``);
        None for a latent that is not a mixture."""
        return self.family if self.latent == "mixture" else PAPER_MIXTURES.get(self.latent)


ANNEALING = ("logistic", "linear", "none")


@dataclass
class ObjectiveConfig:
    """The weights of :func:`demvae.objectives.objective` (its docstring gives the loss they weigh)."""

    beta: float = _f(0.0, "β: dispersion weight, paper convention (objective = ELBO + β·L_d), in [0, 1].")
    mi_weight: float = _f(0.0, "λ: weight of the mutual-information bonus I(x; c) (1 = the paper's +Lmi).")
    kl_weight: float = _f(1.0, "κ: β-VAE weight on the whole KL term, MI bonus included (1 = the ELBO).")
    free_bits_c: float = _f(0.0, "λ_c of free bits: per-variable hinge on KL(c) at λ_c/M (0 = off).")
    free_bits_z: float = _f(0.0, "λ_z of free bits: per-variable hinge on the exact KL(z) at λ_z/M (0 = off).")
    supervision_weight: float = _f(1.0, "γ: weight of the supervised cross-entropy (not annealed).")
    anneal: str = _f("logistic", "KL annealing w(step): logistic, linear or none.", choices=ANNEALING)
    anneal_k: float = _f(0.0025, "Slope k of the logistic w(step) = 1/(1+exp(−k(step−x0))).")
    anneal_x0: int = _f(2500, "Midpoint x0 of the logistic annealing (the linear one reaches 1 there).")


SELECT_METRICS = ("elbo", "loss", "rec")
AMP_CHOICES = (True, False, "auto")
"""train.amp: bf16 autocast on, off, or where the device has bf16 units (:func:`demvae.device.auto_precision`)."""


@dataclass
class TrainConfig:
    seed: int = _f(0, "Seed of every random draw (data order, initialisation, sampling).")
    device: str = _f("auto", "cpu, cuda, cuda:N or auto.")
    batch_size: int = _f(30, "Sentences per step.", at_least=1)
    n_samples: int = _f(20, "Posterior samples per sentence in training (the original's post_sample_num).",
                         at_least=1)
    lr: float = _f(1e-3, "Adam learning rate.", above=0.0)
    grad_clip: float = _f(0.5, "Gradient-norm clipping.", above=0.0)
    max_steps: int = _f(100_000, "Training steps at most.", at_least=1)
    eval_every: int = _f(2000, "Steps between validations (each writes a resumable checkpoint).", at_least=1)
    select_metric: str = _f("elbo", "Model selection on validation: elbo (−ELBO), loss (the objective at w=1) or rec.",
                            choices=SELECT_METRICS)
    lr_decay: float = _f(0.8, "Learning-rate factor when validation stops improving (1 = off).")
    lr_hold: int = _f(3, "Decay from the lr_hold−1-th validation in a row without improvement (the original's rule).")
    patience: int = _f(10, "Validations without enough improvement before stopping.")
    patience_increase: float = _f(2.0, "On improvement, patience = max(patience, validations × this).")
    improve_threshold: float = _f(0.996, "An improvement must beat the best by this factor to extend patience.")
    min_lr: float = _f(1e-6, "Stop when the learning rate falls to this.")
    eval_batch_size: int = _f(100, "Sentences per validation batch.", at_least=1)
    amp: bool | str = _f("auto", "bf16 autocast in training and validation (the latent terms stay float32): auto "
                         "(where the device multiplies bf16 in hardware: a GPU of compute capability ≥ 8, a CPU "
                         "with AMX/AVX512-BF16 whose bf16 product proves faster when timed at start-up; else "
                         "fp32), true (refused on a device without bf16 units) or false (fp32). The precision "
                         "used is recorded in versions.json.", choices=AMP_CHOICES)
    log_every: int = _f(50, "Steps between training log records.", at_least=1)
    aggressive: bool = _f(False, "He et al. (2019) aggressive encoder updates until the validation MI stops rising.")
    aggressive_max_inner: int = _f(50, "Encoder-only updates per outer step at most.")
    aggressive_max_steps: int = _f(2000, "The aggressive phase ends after this step at the latest.")
    progress: bool = _f(True, "Show a progress bar and a line per validation.")
    threads: int = _f(0, "CPU threads for torch (0 = torch's default: every core). Several trainings on one "
                         "machine: give each cores / trainings, e.g. 1.", at_least=0)
    tensorboard: bool = _f(False, "Also write metrics.jsonl's records as TensorBoard event files in <run>/tensorboard "
                           "(needs the tensorboard extra: pip install 'demvae[tensorboard]').")


SPEAKER_CHOICES = ("both", "sys")
"""dialog.speakers: which turns are responses (targets): every turn (the original's) or the system's only."""
CODE_CHOICES = ("argmax", "sample")
"""dialog.gen_code: how a generated response's code is taken from the policy."""
Z_CHOICES = ("sample", "mean")
"""dialog.gen_z: z ~ p(z|c), or the chosen component's mean."""
DECODINGS = ("greedy", "beam")


@dataclass
class DialogConfig:
    """The two-stage dialog model (paper §4.4, the original's ``AeED_GMM`` / ``AeED``). Read only when
    ``enabled``; every other model ignores the section. Stage 1 is the sentence VAE that the model,
    objective and train sections describe, trained on the responses for ``train.max_steps`` steps (the
    original's freeze step); stage 2 freezes it and trains the keys below with ``train.*``'s optimiser
    settings (lr, clipping, validation interval, decay, patience) and its own model selection."""

    enabled: bool = _f(False, "Train the two-stage dialog model (a corpus with dialogue contexts, e.g. smd).")
    context_turns: int = _f(30, "Earlier turns in a context, the opening <d> turn included (<= the reader's).",
                          at_least=1)
    turn_len: int = _f(40, "Tokens per context turn, <s> and </s> included; longer turns keep their </s>.",
                      at_least=2)
    speakers: str = _f("both", "Responses: both (every turn, the original) or sys (system turns only).",
                     choices=SPEAKER_CHOICES)
    utterance_size: int = _f(256, "Utterance encoder: bi-GRU size per direction (turn vector = 2x this).",
                            at_least=1)
    context_size: int = _f(512, "Context encoder GRU over the turn vectors (c_last), and the attention decoder's GRU "
                                "(h0 = Linear(code latent) + c_last).", at_least=1)
    policy_size: int = _f(512, "Policy p(c|context): hidden width of Linear-tanh-Linear.", at_least=1)
    attn_size: int = _f(512, "Attention decoder: width of the additive attention over the context turns.",
                       at_least=1)
    max_steps: int = _f(43_000, "Stage-2 training steps at most (the original: 50,000 in all, stage 1 included).",
                       at_least=1)
    attribute_weight: float = _f(0.1, "Weight of the attribute loss: CE of frozen q(c|decoder's soft output).")
    posterior_latent: str = _f("sample", "Stage-2 decoder input from q(z|r): sample (DGM-VAE) or mode (DI-VAE: "
                                         "the argmax code).", choices=("sample", "mode"))
    select_metric: str = _f("nll_policy", "Stage-2 selection: nll_policy (token NLL + policy CE, DGM-VAE) or "
                                          "errors (policy + attribute error rates, DI-VAE).",
                            choices=("nll_policy", "errors"))
    gen_code: str = _f("argmax", "Generation: the policy's argmax code (DGM-VAE) or a sample (DI-VAE).",
                        choices=CODE_CHOICES)
    gen_z: str = _f("sample", "Generation: z ~ p(z|c) (the original) or the component's mean.",
                     choices=Z_CHOICES)
    decoding: str = _f("greedy", "Generation: greedy or beam search.", choices=DECODINGS)
    beam_size: int = _f(5, "Beam search: hypotheses kept per response.", at_least=1)
    length_penalty: float = _f(0.0, "Beam search: rank by score / length^alpha (0 = summed log-probability).")


@dataclass
class RunConfig:
    model_name: str = _f("dgm-vae", "The model preset the run started from (see `demvae models`).")
    data: DataConfig = _f(DataConfig, "")
    model: ModelConfig = _f(ModelConfig, "")
    objective: ObjectiveConfig = _f(ObjectiveConfig, "")
    train: TrainConfig = _f(TrainConfig, "")
    dialog: DialogConfig = _f(DialogConfig, "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


SECTIONS = {f.name: f for f in fields(RunConfig)}

DIALOG_LATENTS = ("gm", "discrete")
"""Stage-1 latents a dialog model can build on: one block whose code c the policy predicts."""
RENAMED = {
    "model.n_codes": "model.n_variables (M, the discrete variables)",
    "model.code_size": "model.n_values (K, values per variable)",
    "model.z_dim": "model.n_units (gm: Gaussian dims per variable; cm: categorical z variables) or "
                   "model.gaussian_dim (gaussian/semi)",
}


def doc(section: str, key: str) -> str:
    """The documentation of one config key."""
    cls = type(getattr(RunConfig(), section))
    return {f.name: f.metadata.get("doc", "") for f in fields(cls)}[key]


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
        for option in inner:  # the first type that takes the value (e.g. train.amp: true or auto)
            try:
                return _check_type(name, value, option)
            except ConfigError:
                if len(inner) == 1:
                    raise
        raise ConfigError(f"{name}: expected {' or '.join(getattr(a, '__name__', str(a)) for a in inner)}, "
                          f"got {value!r}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        key_type, value_type = args
        for key in value:
            _check_type(f"{name} key", key, key_type)
        return {key: _check_type(f"{name}.{key}", v, value_type) for key, v in value.items()}
    if annotation is float:
        return _check_float(name, value)
    if annotation in (int, str, bool):
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise ConfigError(f"{name}: expected {annotation.__name__}, got {value!r}")
    return value


# A decimal number as people write it: YAML 1.1 reads only ``1.0e-3`` and ``.5`` as floats, and leaves ``1e-3``,
# ``1E4``, ``-2e-5`` or ``+.5`` as strings (they reach a float field from a YAML file and from --set alike).
_DECIMAL = re.compile(r"[-+]?(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][-+]?\d+)?")
_NOT_FINITE = re.compile(r"[-+]?\.?(nan|inf|infinity)", re.IGNORECASE)


def _check_float(name: str, value: Any) -> float:
    """A float field's value: a number (integers too) or a string in decimal notation; NaN and ±inf are refused
    (``.nan`` would slip through every range check, and ``inf`` means nothing as a setting)."""
    text = value.strip() if isinstance(value, str) else None
    if text is not None and _DECIMAL.fullmatch(text):
        value = float(text.replace("_", ""))
    if text is not None and _NOT_FINITE.fullmatch(text):
        value = math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}: expected float, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{name}: must be a finite number, got {text or value!r}")
    return number


def _build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in fields(cls)]
    for key in values:
        if f"{where}{key}" in RENAMED:
            raise ConfigError(f"{where}{key} was renamed: use {RENAMED[where + key]}")
    unknown = sorted(str(k) for k in values if k not in valid)  # (a YAML key may be a number, null, ...)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(where + k for k in unknown)}; valid keys: {', '.join(valid)}")
    kwargs = {k: _check_type(where + k, v, hints[k]) for k, v in values.items()}
    return cls(**kwargs)


def from_dict(raw: dict[str, Any]) -> RunConfig:
    """Build a RunConfig, rejecting unknown sections and keys."""
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping of sections")
    unknown = sorted(str(k) for k in raw if k not in SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    cfg = RunConfig()
    for name, value in raw.items():
        if name == "model_name":
            cfg.model_name = _check_type(name, value, str)
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"section {name!r} must be a mapping")
        setattr(cfg, name, _build_section(type(getattr(cfg, name)), value, f"{name}."))
    validate(cfg)
    return cfg


def _check_field(key: str, value: Any, checks: Mapping[str, Any]) -> None:
    """The checks that a field declares (:func:`_f`)."""
    choices = checks.get("choices")
    if choices is not None and value not in choices:
        shown = ", ".join(str(c).lower() if isinstance(c, bool) else c for c in choices)
        raise ConfigError(f"{key}: {value!r} is not one of {shown}")
    if "at_least" in checks and value < checks["at_least"]:
        raise ConfigError(f"{key}: {value!r} is out of range (must be >= {checks['at_least']})")
    if "above" in checks and value <= checks["above"]:
        raise ConfigError(f"{key}: {value!r} is out of range (must be > {checks['above']})")


def validate(cfg: RunConfig) -> None:
    """Range, choice and combination checks, so a bad value fails before any work starts."""
    for section in fields(RunConfig):
        values = getattr(cfg, section.name)
        for f in fields(values) if is_dataclass(values) else ():
            _check_field(f"{section.name}.{f.name}", getattr(values, f.name), f.metadata)
    device = cfg.train.device
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ConfigError(f"train.device: {device!r} is not one of auto, cpu, cuda, cuda:N")
    if not 0.0 <= cfg.objective.beta <= 1.0:
        raise ConfigError(f"objective.beta: {cfg.objective.beta} must lie in [0, 1] (the paper's convention)")
    if not 0.0 <= cfg.model.dropout < 1.0:
        raise ConfigError(f"model.dropout: {cfg.model.dropout} must lie in [0, 1)")
    m = cfg.model
    if m.tie_output and m.embed_dim != m.hidden_size and m.latent != "none":
        raise ConfigError(
            f"model.tie_output needs model.embed_dim == model.hidden_size (got {m.embed_dim} and {m.hidden_size}); "
            f"set both, e.g. model.embed_dim={m.hidden_size}, or model.tie_output=false"
        )
    if m.family != ModelConfig.family and m.mixture_family != m.family:
        raise ConfigError(f"model.family: {m.family!r} applies to model.latent: mixture (got {m.latent!r}; gm and cm "
                          f"are the {' and '.join(PAPER_MIXTURES.values())} mixtures)")
    if cfg.dialog.attribute_weight < 0:
        raise ConfigError(f"dialog.attribute_weight: {cfg.dialog.attribute_weight} must be >= 0")
    if cfg.dialog.enabled and cfg.train.aggressive:
        raise ConfigError("dialog.enabled: the aggressive schedule (train.aggressive) is for sentence models only")
    if cfg.dialog.enabled and m.latent not in DIALOG_LATENTS:
        raise ConfigError(
            f"dialog.enabled needs a stage-1 model with one discrete code: model.latent {' or '.join(DIALOG_LATENTS)}"
            f" (got {m.latent!r})"
        )


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
    """``["train.lr=1e-3", "model.n_variables=3"]`` -> nested dict (values parsed as YAML scalars)."""
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
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({_yaml_problem(exc)})") from None
        out = merge(out, {parts[0]: {parts[1]: parsed}})
    return out


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: what is wrong and where."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}".replace("\n", " ")


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {_yaml_problem(exc)}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config must be a mapping of sections")
    return data


def presets() -> dict[str, dict[str, Any]]:
    """Model name -> config values (``configs/presets.yaml``)."""
    return load_yaml(CONFIG_ROOT / "presets.yaml")


def preset(name: str) -> dict[str, Any]:
    table = presets()
    if name not in table:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(table)}")
    return table[name]


def find_config(name: str | Path) -> Path:
    """A YAML path, or a packaged config name such as ``ptb/dgm-vae`` or ``builtin/dgm-vae``."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = CONFIG_ROOT / path if path.suffix in (".yaml", ".yml") else CONFIG_ROOT / f"{name}.yaml"
    if packaged.is_file() and packaged.name != "presets.yaml":
        return packaged
    raise ConfigError(f"config {str(name)!r} not found (a file path, or one of: {', '.join(packaged_configs())})")


def packaged_configs() -> list[str]:
    return sorted(str(p.relative_to(CONFIG_ROOT).with_suffix("")) for p in CONFIG_ROOT.rglob("*.yaml")
                  if p.name != "presets.yaml")


def compose(model: str | None = None, config: str | Path | None = None,
            overrides: dict[str, Any] | None = None) -> RunConfig:
    """defaults < preset < config file < overrides, validated."""
    file_values = load_yaml(find_config(config)) if config is not None else {}
    name = model or file_values.get("model_name") or RunConfig().model_name
    if not isinstance(name, str):
        raise ConfigError(f"model_name: expected str, got {name!r}")
    values = merge(merge(preset(name), file_values), {"model_name": name})
    return from_dict(merge(values, overrides or {}))


def replace(cfg: RunConfig, **sections: dict[str, Any]) -> RunConfig:
    """A copy of ``cfg`` with some section fields changed (validated)."""
    return from_dict(merge(cfg.to_dict(), sections))


__all__ = [
    "AMP_CHOICES", "ANNEALING", "CODE_CHOICES", "DECODINGS", "DataConfig", "DialogConfig", "LATENTS", "SPEAKER_CHOICES",
    "ModelConfig", "ObjectiveConfig", "RunConfig", "TrainConfig", "Z_CHOICES",
    "compose", "doc", "find_config", "from_dict", "load_yaml", "merge", "parse_overrides", "preset", "presets",
    "replace",
]
