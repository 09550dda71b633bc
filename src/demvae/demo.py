"""The main job on the built-in corpus: train DGM-VAE with the mutual-information term (and GM-VAE to
compare), show the clusters and how well generation follows the codes, write the HTML report of the runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from demvae import runs
from demvae.data.prepare import PreparedData, prepare
from demvae.evaluation.codes import SplitCodes, encode_codes, format_code
from demvae.evaluation.control import ControlOptions, control_scores
from demvae.evaluation.run import EvalOptions, evaluate_run
from demvae.evaluation.tables import format_table
from demvae.metrics import flat_row, heading
from demvae.models import TextVAE
from demvae.models.generation import DEFAULT, PAPER
from demvae.report.clusters import cluster_report
from demvae.report.html import is_report, write_report
from demvae.training import load_run
from demvae.training.outputs import OutputRefused
from demvae.training.run_folder import LoadedRun

MAIN, COMPARISON = "dgm-vae-mi", "gm-vae"
SUMMARY = ("homog_intent", "homog_style", "param_var", "kl_c", "mutual_info", "codes_used", "neg_elbo")
"""The homogeneity table's columns after the model's name: keys of :mod:`demvae.metrics`, headed by their titles."""
"""The demo's models: DGM-VAE with the mutual-information term (its codes are the purest and the most
controllable on the built-in corpus, README) and GM-VAE (no dispersion term) to compare."""


@dataclass
class Summary:
    row: dict[str, Any]
    """The homogeneity row."""
    control: dict[str, Any]
    """The control result of the default procedure."""
    run: LoadedRun
    model: TextVAE
    """The run's model (a sentence model: the demo's runs are)."""
    data: PreparedData
    codes: SplitCodes
    """The test split's codes."""


def summarize(run_dir: Path, device: str = "auto") -> Summary:
    """A run's :class:`Summary`; writes ``metrics-test.json`` (posterior, clusters, control) that the report
    reads."""
    results = evaluate_run(run_dir, EvalOptions(metrics=("posterior", "clusters", "control"), device=device))
    run = load_run(run_dir)
    model = run.sentence_model("the demo summarises sentence runs")
    data = prepare(run.config.data, run.vocab)
    test = data.splits["test"]
    codes = encode_codes(model, test)
    assert codes is not None  # the demo's models have a discrete code
    flat = flat_row(results)
    row = {"model": run.config.model_name, **{heading(key): flat.get(key) for key in SUMMARY}}
    return Summary(row, results["control"], run, model, data, codes)


def _spread(values: list[float]) -> float | str:
    """One run's value, or the mean and range of several: ``0.950 (0.930-0.970)``."""
    if len(values) == 1:
        return values[0]
    return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def control_rows(controls: dict[str, list[dict]]) -> list[dict]:
    """One row per (model, procedure): code recovery, variety, and per label agreement beside its ceiling and
    chance; over several runs (seeds) each cell is their mean and range."""
    rows = []
    for name, results in controls.items():
        row: dict[str, float | str] = {
            "model, procedure": name + (f" ({len(results)} seeds)" if len(results) > 1 else "")}
        for key, column in (("recovery", "code recovery"), ("unfiltered_recovery", "unfiltered recovery"),
                            ("distinct", "distinct"), ("distinct_2", "distinct-2")):
            row[column] = _spread([c[key] for c in results])
        labels = list(dict.fromkeys(label for c in results for label in c["labels"]))
        for label in labels:
            scores = [c["labels"][label] for c in results if label in c["labels"]]
            for key in ("agreement", "ceiling", "chance"):
                row[f"{label} {key}"] = _spread([s[key] for s in scores])
        rows.append(row)
    return rows


def seed_folder(name: str, seed: int) -> str:
    """A run's folder name in the demo: the model's name for seed 0 (the demo's single run), else with its seed."""
    return name if seed == 0 else f"{name}-seed{seed}"


def run_demo(out: Path, compare: bool = True, steps: int | None = None, device: str | None = None,
             seeds: Sequence[int] = (0,)) -> str:
    """Train (or reuse) the main model once per seed (and the comparison model with the first seed), then print
    the tables; the control table's cells are the mean and range over the seeds."""
    page = Path(out) / "report.html"
    if page.exists() and not is_report(page):  # said before the training, not after it
        raise OutputRefused(f"{page} exists and is not a demvae report: move it, or give the demo another --out")
    train: dict[str, Any] = {}
    if steps is not None:
        train["max_steps"] = steps
    if device is not None:
        train["device"] = device
    jobs = [(MAIN, seed) for seed in seeds] + ([(COMPARISON, seeds[0])] if compare else [])
    rows: list[dict[str, Any]] = []
    controls: dict[str, list[dict]] = {}
    first: Summary | None = None
    run_dirs: list[Path] = []
    for name, seed in jobs:
        overrides = {"train": {**train, "seed": seed}} if seed else ({"train": train} if train else {})
        run_dirs.append(runs.train_or_reuse(f"builtin/{name}", Path(out) / seed_folder(name, seed), overrides))
        s = summarize(run_dirs[-1], device or "auto")
        rows.append({**s.row, "model": f"{s.row['model']} (seed {seed})" if len(seeds) > 1 else s.row["model"]})
        controls.setdefault(f"{name}, {s.control['procedure']}", []).append(s.control)
        if name == MAIN:  # the main model: also the paper's generation, for comparison (next row)
            first = first or s
            prior = control_scores(s.model, s.run.vocab, s.data.splits["test"], s.data.splits["train"],
                                   ControlOptions(procedure=PAPER))
            controls.setdefault(f"{name}, prior (the paper's)", []).append(prior.to_dict())
    assert first is not None  # jobs start with the main model
    run, data, codes = first.run, first.data, first.codes
    report = write_report(run_dirs, page, device=device or "auto")
    columns = list(rows[0])
    crows = control_rows(controls)
    seeds_note = f", mean (range) over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else ""
    parts = [
        format_table(rows, columns, title="Built-in corpus (8 intents x 3 styles), test split", floatfmt=".3f"),
        "",
        "Homogeneity: how purely each discovered code holds one intent (1 = perfect, 0 = unrelated).",
        "Var: variance of the prior components' natural parameters; near 0 means the mixture collapsed.",
        "",
        format_table(crows, list(crows[0]), title="Generation from a code (20 sentences per code holding >= 1% of "
                     f"test{seeds_note})", floatfmt=".3f"),
        "",
        "Code recovery: share of generated sentences that encode back to their code (unfiltered: among the "
        "candidates a procedure that filters by the model's own q(code|x) chooses from). Distinct: share of distinct "
        "sentences among a code's 20; distinct-2: distinct word bigrams over all bigrams. Agreement: share a "
        "classifier (trained on the gold train split) gives the code's majority label; ceiling = the codes' purity, "
        "chance = the largest label's share.",
        f"{DEFAULT.label} (the default of `demvae sample` for a code and of `demvae clusters`): "
        f"{DEFAULT.describe().removeprefix('generation procedure: ')}; prior: z ~ p(z|code), as the paper generates.",
        "",
        f"What {run_dirs[0].name} found:",
        cluster_report(run, data.corpus, "test", codes, data.splits["test"], top=3, n_generated=2, max_clusters=12,
                       data=data),
        f"Runs are in {out}/ (try `demvae sample {run_dirs[0]} --code {format_code([0] * codes.codes.shape[1])}`"
        f" or `demvae clusters {run_dirs[0]}`).",
        f"The report (open it in a browser): {report}",
    ]
    return "\n".join(parts)
