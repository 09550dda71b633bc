"""What the report shows, gathered from run and reproduction folders; the little that ``train`` and ``eval``
did not write (the codes' members, generated sentences, posterior means) is computed here, cheaply."""

from __future__ import annotations

import itertools
import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demvae.errors import CheckpointError, DemvaeError, DemvaeWarning
from demvae.evaluation.codes import SplitCodes
from demvae.report.clusters import CodeSummary
from demvae.report.history import History, read_history
from demvae.reproduce.latent_map import LatentMap
from demvae.training.run_folder import CONFIG, METRICS, VERSIONS, VOCAB

__all__ = ["ReportError", "RunData", "ReproductionData", "LatentGroups", "folder_kind", "collect_run",
           "collect_reproduction", "control_by_code", "code_ids"]

EVAL_GROUPS = ("posterior", "clusters")
"""What the report evaluates for a run without a metrics file (cheap: one pass over the split)."""


class ReportError(DemvaeError):
    """A folder the report cannot show."""


@dataclass
class LatentGroups:
    """One way of colouring the latent map: a group id per drawn point (-1: none) and the groups' names."""

    title: str
    ids: np.ndarray
    names: dict[int, str]
    prior_ids: np.ndarray | None = None
    """The group of every drawn prior component (None: they belong to no group)."""


@dataclass
class RunData:
    path: Path
    name: str
    config: dict[str, Any]
    config_text: str
    versions: dict[str, Any]
    history: History
    split: str
    metrics: dict[str, Any]
    """The run's ``metrics-<split>.json``."""
    notes: list[str] = field(default_factory=list)
    """What the report computed itself, for the page."""
    n_examples: int = 0
    code_shape: tuple[int, int] | None = None
    """(M, K): the model's discrete variables and their values (None: no discrete code)."""
    codes_used: int = 0
    codes: list[CodeSummary] = field(default_factory=list)
    """The largest codes (empty for a model without a discrete code)."""
    latent: LatentMap | None = None
    colourings: list[LatentGroups] = field(default_factory=list)

    @property
    def model(self) -> str:
        return str(self.config["model_name"])


@dataclass
class ReproductionData:
    path: Path
    name: str
    results: dict[str, Any]
    """``results.json``: the table's name, the scale and one flat row per run."""
    markdown: str
    """``results.md``."""
    figures: list[Path]
    """The folder's PNG files in natural order (``step400`` before ``step2000``)."""
    histories: dict[str, History]
    """The training records of the folder's runs, by folder name."""


def folder_kind(path: Path) -> str:
    """``"run"`` or ``"reproduction"``; a :class:`ReportError` for anything else."""
    if (path / "results.json").is_file():
        return "reproduction"
    if (path / CONFIG).is_file() and (path / VOCAB).is_file():
        return "run"
    if not path.is_dir():
        raise ReportError(f"not found: {path}")
    raise ReportError(f"{path} is neither a run folder (config.yaml, vocab.json, model.safetensors) "
                      "nor a reproduction folder (results.json)")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None


def control_by_code(metrics: dict[str, Any]) -> dict[tuple[int, ...], dict[str, Any]]:
    """The ``control`` metric's per-code scores (``demvae eval --metrics control``), by code; empty
    when the run was not evaluated for it."""
    return {tuple(c["code"]): c for c in metrics.get("control", {}).get("codes", [])}


def code_ids(codes: SplitCodes, wanted: np.ndarray) -> np.ndarray:
    """The split's joint id (``codes.joint``) of each per-variable code in ``wanted`` [C, M]; a code that no
    example has gets a fresh id above them."""
    known = {tuple(c): j for c, j in zip(codes.codes.tolist(), codes.joint.tolist())}
    fresh = itertools.count(int(codes.joint.max(initial=-1)) + 1)
    return np.array([known[c] if c in known else next(fresh) for c in map(tuple, wanted.tolist())], dtype=np.int64)


def collect_run(path: Path, name: str, split: str = "test", device: str = "auto", data_dir: str | None = None,
                max_codes: int = 100, top: int = 5, n_generated: int = 3, n_points: int = 2000,
                step: Callable[[str], object] = lambda what: None, corpus: str | None = None,
                force: bool = False) -> RunData:
    """Read a run folder and compute its codes and latent map; ``step(what)`` is called before each stage
    (a progress bar's hook). ``corpus``/``data_dir``/``force`` locate the run's corpus as ``eval`` does."""
    from demvae.data.prepare import check_split
    from demvae.device import resolve_device
    from demvae.evaluation.codes import encode_codes
    from demvae.evaluation.run import EvalOptions, evaluate_run
    from demvae.report.clusters import summarize_codes
    from demvae.reproduce.latent_map import gaussian_block, latent_map
    from demvae.training import load_run, run_folder

    step("reading the run")
    device = str(resolve_device(device))
    run = load_run(path, device)
    if run.is_dialog:
        raise ReportError(f"{path} is a dialog run: the report shows sentence models (its stage 1: {path / 'stage1'}"
                          f"); for the dialog model see `demvae eval`, `demvae clusters` and `demvae respond`")
    versions = _read_json(path / VERSIONS) if (path / VERSIONS).is_file() else {}
    metrics_path = path / f"metrics-{split}.json"
    notes = []
    metrics = _read_json(metrics_path) if metrics_path.is_file() else None
    current = None if metrics is None else run_folder.measured(metrics, path)
    if metrics is None or current is False:  # missing, or it measured a model the run has since replaced
        why = "was missing" if metrics is None else "measured an earlier model.safetensors (the run was resumed)"
        step(f"evaluating ({metrics_path.name} {why})")
        if metrics is not None:
            warnings.warn(f"{metrics_path} {why}: the report evaluates the current model again",
                          DemvaeWarning, stacklevel=2)
        writable = os.access(path, os.W_OK)  # a read-only run is evaluated all the same, without saving
        metrics = evaluate_run(path, EvalOptions(split=split, metrics=EVAL_GROUPS, device=device, corpus=corpus,
                                                 data_dir=data_dir, force=force, save=writable))
        saved = "written to the run folder" if writable else "not saved: the run folder is read-only"
        notes.append(f"{metrics_path.name} {why}: the report ran `demvae eval --metrics {','.join(EVAL_GROUPS)}` "
                     f"({saved}); run `demvae eval` for NLL, BLEU, rPPL.")
    elif current is None:
        notes.append(f"{metrics_path.name} does not say which model it measured (an older demvae wrote it): "
                     "if the run was resumed since, run `demvae eval` again.")
    config_text = (path / CONFIG).read_text(encoding="utf-8")
    run_data = RunData(path, name, run.config.to_dict(), config_text, versions, read_history(path), split, metrics,
                       notes)
    options = metrics.get("options", {})
    step("encoding the split")
    check_split(split)
    prepared = run_folder.run_data(run, corpus or options.get("corpus"), data_dir or options.get("data_dir"),
                                   force or options.get("force", False), options.get("max_examples"))
    corpus, encoded = prepared.corpus, prepared.splits[split]
    run_data.n_examples = len(encoded)
    run_data.code_shape = run.model.code_shape()
    codes = encode_codes(run.model, encoded)
    colourings: list[LatentGroups] = []
    if codes is not None:
        step("summarising the codes")
        run_data.codes_used = len(np.unique(codes.joint))
        run_data.codes = summarize_codes(run, corpus, split, codes, encoded, top, n_generated, max_codes,
                                         data=prepared if options.get("max_examples") is None else None)
    step("mapping the latent space")
    block = gaussian_block(run.model)
    shown = None
    if block is not None and block.has_code and block.n_variables > 1:  # draw the largest codes' components
        shown = np.array([s.code for s in run_data.codes[:10]], dtype=np.int64).reshape(-1, block.n_variables)
    m = latent_map(run.model, encoded, n_points, prior_codes=shown)
    if m is not None:
        run_data.latent = m
        if codes is not None:
            ids = code_ids(codes, np.array([s.code for s in run_data.codes]).reshape(-1, codes.codes.shape[1]))
            names = {int(i): f"code {s.name}" for i, s in zip(ids, run_data.codes)}
            prior_ids = code_ids(codes, m.prior_codes) if block.has_code else None
            colourings.append(LatentGroups("by code", codes.joint[m.index], names, prior_ids))
        for label, y in encoded.labels.items():
            ids = y.numpy()[m.index]
            if (ids >= 0).any():
                colourings.append(LatentGroups(f"by {label}", ids, dict(enumerate(corpus.label_names.get(label, [])))))
        run_data.colourings = colourings
    return run_data


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (links followed) lies inside ``folder``; what points elsewhere is not read: a report
    embeds its figures, and a link in a shared folder must not put any file of this machine into the page."""
    if path.resolve().is_relative_to(folder.resolve()):
        return True
    warnings.warn(f"{path} is a link to outside {folder}: left out of the report", DemvaeWarning, stacklevel=3)
    return False


def collect_reproduction(path: Path, name: str) -> ReproductionData:
    results = _read_json(path / "results.json")
    md_path = path / "results.md"
    md = md_path.read_text(encoding="utf-8") if md_path.is_file() and _inside(md_path, path) else ""
    runs = sorted(p for p in path.iterdir() if (p / METRICS).is_file() and _inside(p / METRICS, path))
    natural = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]
    figures = sorted((p for p in path.glob("*.png") if _inside(p, path)), key=natural)
    return ReproductionData(path, name, results, md, figures, {p.name: read_history(p) for p in runs})
