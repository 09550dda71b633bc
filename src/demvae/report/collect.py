"""What the report reads from run and reproduction folders. Reading only: nothing here loads a model,
evaluates or writes (what the report computes is :mod:`demvae.report.analysis`)."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demvae.errors import CheckpointError, DemvaeError, DemvaeWarning
from demvae.report.history import History, read_history
from demvae.training.run_folder import RunFolder

__all__ = ["ReportError", "RunFiles", "ReproductionData", "folder_kind", "display_names", "collect_run",
           "collect_reproduction", "control_by_code"]


class ReportError(DemvaeError):
    """A folder the report cannot show."""


@dataclass
class RunFiles:
    """A run folder's files as the report reads them."""

    path: Path
    name: str
    config: dict[str, Any]
    config_text: str
    versions: dict[str, Any]
    history: History
    split: str
    metrics: dict[str, Any] | None
    """The run's ``metrics-<split>.json`` (None: there is none)."""
    measured: bool | None
    """Whether ``metrics`` measured the current ``model.safetensors`` (None: the file does not say)."""

    @property
    def model(self) -> str:
        return str(self.config["model_name"])

    @property
    def metrics_path(self) -> Path:
        return RunFolder(self.path).metrics_file(self.split)


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
    if RunFolder(path).is_run():
        return "run"
    if not path.is_dir():
        raise ReportError(f"not found: {path}")
    raise ReportError(f"{path} is neither a run folder (config.yaml, vocab.json, model.safetensors) "
                      "nor a reproduction folder (results.json)")


def display_names(paths: list[Path]) -> list[str]:
    """Each folder's name, with as many parent folders as it takes to tell them apart."""
    resolved = [p.resolve() for p in paths]
    for depth in range(1, max(len(p.parts) for p in resolved) + 1):
        names = ["/".join(p.parts[-depth:]) for p in resolved]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None


def control_by_code(metrics: dict[str, Any]) -> dict[tuple[int, ...], dict[str, Any]]:
    """The ``control`` metric's per-code scores (``demvae eval --metrics control``), by code; empty
    when the run was not evaluated for it."""
    return {tuple(c["code"]): c for c in metrics.get("control", {}).get("codes", [])}


def collect_run(path: Path, name: str, split: str = "test") -> RunFiles:
    """Read a run folder's config, versions, training records and ``metrics-<split>.json``."""
    folder = RunFolder.open(path)
    folder.expect("sentence", "the report shows sentence models (a dialog model's numbers and codes: `demvae eval`, "
                  "`demvae clusters`, `demvae respond`)")
    versions = _read_json(folder.versions) if folder.versions.is_file() else {}
    metrics_path = folder.metrics_file(split)
    metrics = _read_json(metrics_path) if metrics_path.is_file() else None
    return RunFiles(path, name, folder.read_config().to_dict(), folder.config.read_text(encoding="utf-8"), versions,
                    read_history(path), split, metrics, None if metrics is None else folder.measured(metrics))


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
    logs = (RunFolder(p).metrics_log for p in path.iterdir())
    runs = sorted(log.parent for log in logs if log.is_file() and _inside(log, path))
    natural = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]
    figures = sorted((p for p in path.glob("*.png") if _inside(p, path)), key=natural)
    return ReproductionData(path, name, results, md, figures, {p.name: read_history(p) for p in runs})
