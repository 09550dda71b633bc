"""What the report computes for a run, in two explicit steps after :mod:`~demvae.report.collect` read its
files: :func:`evaluate_if_needed` (``demvae eval --metrics posterior,clusters`` where the metrics file is
missing or measured an earlier model), then :func:`analyse_run` (the split's codes with their members and
generated sentences, the latent map)."""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from demvae.errors import DemvaeWarning
from demvae.evaluation.codes import SplitCodes
from demvae.models import TextVAE
from demvae.report.clusters import CodeSummary
from demvae.report.collect import RunFiles
from demvae.reproduce.latent_map import LatentMap

__all__ = ["EVAL_GROUPS", "LatentGroups", "RunData", "evaluate_if_needed", "analyse_run", "code_ids"]

EVAL_GROUPS = ("posterior", "clusters")
"""What the report evaluates for a run without current metrics (cheap: one pass over the split)."""

Step = Callable[[str], object]
"""Called with what comes next (a progress bar's hook)."""


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
    """What the page shows of a run: its files and what the report computed."""

    files: RunFiles
    metrics: dict[str, Any]
    """The files' metrics, or those :func:`evaluate_if_needed` computed."""
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


def evaluate_if_needed(files: RunFiles, device: str = "auto", corpus: str | None = None, data_dir: str | None = None,
                       force: bool = False, step: Step = lambda what: None) -> tuple[dict[str, Any], list[str]]:
    """(metrics, notes for the page): the run's metrics file where it measured the current model; else the
    :data:`EVAL_GROUPS` evaluated now, saved to the run folder where it is writable (as ``demvae eval`` would)."""
    from demvae.evaluation.run import EvalOptions, evaluate_run

    path = files.metrics_path
    if files.metrics is not None and files.measured is not False:
        if files.measured is None:
            return files.metrics, [f"{path.name} does not say which model it measured (an older demvae wrote it): "
                                   "if the run was resumed since, run `demvae eval` again."]
        return files.metrics, []
    why = "was missing" if files.metrics is None else "measured an earlier model.safetensors (the run was resumed)"
    step(f"evaluating ({path.name} {why})")
    if files.metrics is not None:
        warnings.warn(f"{path} {why}: the report evaluates the current model again", DemvaeWarning, stacklevel=2)
    writable = os.access(files.path, os.W_OK)  # a read-only run is evaluated all the same, without saving
    metrics = evaluate_run(files.path, EvalOptions(split=files.split, metrics=EVAL_GROUPS, device=device,
                                                   corpus=corpus, data_dir=data_dir, force=force, save=writable))
    saved = "written to the run folder" if writable else "not saved: the run folder is read-only"
    return metrics, [f"{path.name} {why}: the report ran `demvae eval --metrics {','.join(EVAL_GROUPS)}` ({saved}); "
                     "run `demvae eval` for NLL, BLEU, rPPL."]


def code_ids(codes: SplitCodes, wanted: np.ndarray) -> np.ndarray:
    """The split's joint id (``codes.joint``) of each per-variable code in ``wanted`` [C, M]; a code that no
    example has gets a fresh id above them."""
    known = {tuple(c): j for c, j in zip(codes.codes.tolist(), codes.joint.tolist())}
    fresh = itertools.count(int(codes.joint.max(initial=-1)) + 1)
    return np.array([known[c] if c in known else next(fresh) for c in map(tuple, wanted.tolist())], dtype=np.int64)


def analyse_run(files: RunFiles, metrics: dict[str, Any], notes: list[str], device: str = "auto",
                corpus: str | None = None, data_dir: str | None = None, force: bool = False, max_codes: int = 100,
                top: int = 5, n_generated: int = 3, n_points: int = 2000, step: Step = lambda what: None) -> RunData:
    """Encode the run's split with its model: the codes' summaries and the latent map. The corpus is found as
    ``metrics`` (its ``options``) found it, unless ``corpus``/``data_dir``/``force`` say otherwise."""
    from demvae.data.prepare import check_split
    from demvae.device import resolve_device
    from demvae.evaluation.codes import encode_codes
    from demvae.report.clusters import summarize_codes
    from demvae.reproduce.latent_map import gaussian_block, latent_map
    from demvae.training import load_run, run_folder

    step("encoding the split")
    check_split(files.split)
    run = load_run(files.path, str(resolve_device(device)))
    options = metrics.get("options", {})
    prepared = run_folder.run_data(run, corpus or options.get("corpus"), data_dir or options.get("data_dir"),
                                   force or options.get("force", False), options.get("max_examples"))
    encoded = prepared.splits[files.split]
    model = cast(TextVAE, run.model)  # a report reads a sentence model (a dialog run: through its stage 1)
    out = RunData(files, metrics, notes, n_examples=len(encoded), code_shape=model.code_shape())
    codes = encode_codes(model, encoded)
    if codes is not None:
        step("summarising the codes")
        out.codes_used = len(np.unique(codes.joint))
        out.codes = summarize_codes(run, prepared.corpus, files.split, codes, encoded, top, n_generated, max_codes,
                                    data=prepared if options.get("max_examples") is None else None)
    step("mapping the latent space")
    block = gaussian_block(model)
    shown = None
    if block is not None and block.has_code and block.n_variables > 1:  # draw the largest codes' components
        shown = np.array([s.code for s in out.codes[:10]], dtype=np.int64).reshape(-1, block.n_variables)
    out.latent = latent_map(model, encoded, n_points, prior_codes=shown)
    if out.latent is None:
        return out
    index = out.latent.index
    if codes is not None:
        ids = code_ids(codes, np.array([s.code for s in out.codes]).reshape(-1, codes.codes.shape[1]))
        names = {int(i): f"code {s.name}" for i, s in zip(ids, out.codes)}
        prior_ids = code_ids(codes, out.latent.prior_codes) if block is not None and block.has_code else None
        out.colourings.append(LatentGroups("by code", codes.joint[index], names, prior_ids))
    for label, y in encoded.labels.items():
        ids = y.numpy()[index]
        if (ids >= 0).any():
            out.colourings.append(LatentGroups(f"by {label}", ids,
                                               dict(enumerate(prepared.corpus.label_names.get(label, [])))))
    return out
