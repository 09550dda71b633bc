"""``demvae reproduce TABLE``: train every row of a paper table, evaluate it, write ``results.md``.

Scales: ``smoke`` (seconds; tests), ``mini`` (a reduced model and budget for 2 CPU cores, meant to
show the qualitative result), ``paper`` (the paper's sizes and budget, for a GPU); a table may bring
its own scales (:attr:`Table.scales`: SMD's two-stage runs need other budgets). Each row runs with
several seeds (:data:`DEFAULT_SEEDS`: 3 at ``mini``, where one seed cannot separate the rows) and the
table reports mean ± std over them; the table's claims (:mod:`.claims`) are checked on those. Rows and
seeds run concurrently with ``--jobs`` (several small models share one GPU well).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from demvae.config import merge
from demvae.errors import ConfigError
from demvae.evaluation.baseline import LABEL as BASELINE
from demvae.evaluation.tables import side_by_side
from demvae.metrics import conventions_markdown, flat_row
from demvae.reproduce.claims import Cell, claims_markdown
from demvae.reproduce.tables import TABLES, Table

SCALES: dict[str, dict[str, Any]] = {
    "smoke": {
        "config": {
            "data": {"max_examples": {"train": 200, "valid": 40, "test": 40}, "max_vocab": 400},
            "model": {"embed_dim": 16, "hidden_size": 16},
            "train": {"max_steps": 6, "eval_every": 3, "batch_size": 16, "n_samples": 2, "log_every": 3,
                      "progress": False, "aggressive_max_inner": 3},
        },
        "eval": {"is_samples": 4, "n_prior_samples": 60, "rppl_steps": 4},
    },
    "mini": {
        "config": {
            "data": {"max_examples": {"train": 20000, "valid": 500, "test": 500}, "max_vocab": 3000},
            "model": {"embed_dim": 128, "hidden_size": 128},
            "train": {"max_steps": 1600, "eval_every": 400, "batch_size": 32, "n_samples": 2, "log_every": 100,
                      "progress": False, "aggressive_max_inner": 10, "aggressive_max_steps": 150},
            "objective": {"anneal_x0": 800, "anneal_k": 0.005},
        },
        "eval": {"is_samples": 20, "n_prior_samples": 5000, "rppl_steps": 500},
    },
    "paper": {"config": {"train": {"progress": False, "max_steps": 40000}},
              "eval": {"is_samples": 500, "n_prior_samples": 40000}},
}
DEFAULT_SEEDS = {"smoke": 1, "mini": 3, "paper": 1}
"""Seeds per row when ``--seeds`` is not given: at ``mini`` a difference of 0.05 homogeneity or 1 BLEU is
within one seed's noise; ``paper`` runs cost hours each."""


@dataclass
class Job:
    table: str
    label: str
    config: str
    seed: int
    out: str
    overrides: dict[str, Any]
    eval_groups: tuple[str, ...]
    eval_options: dict[str, Any]
    threads: int
    beta: float | None = None
    """Set for the rows whose β is chosen on validation (``--beta-grid``)."""


def scale_spec(scale: str, table: Table | None = None) -> dict[str, Any]:
    """A scale's ``{"config": ..., "eval": ...}``: the table's own if it has one, else the shared one."""
    if table is not None and scale in table.scales:
        return table.scales[scale]
    return SCALES[scale]


def scale_overrides(scale: str, config_values: dict[str, Any], device: str = "auto", seed: int = 0,
                    data_dir: str | None = None, corpus: str | None = None,
                    table: Table | None = None) -> dict[str, Any]:
    """The overrides of one reproduction run: the scale's values (posterior samples capped, never
    raised: S=1 rows stay S=1), the device and seed, and optionally another data folder or corpus."""
    values = json.loads(json.dumps(scale_spec(scale, table)["config"]))
    cap = values.get("train", {}).get("n_samples")
    if cap is not None:
        values["train"]["n_samples"] = min(cap, config_values.get("train", {}).get("n_samples", cap))
    values = merge(values, {"train": {"seed": seed, "device": device}})
    data = {k: v for k, v in (("data_dir", data_dir), ("corpus", corpus)) if v is not None}
    return merge(values, {"data": data})


def run_job(job: Job) -> dict[str, Any]:
    """Train (or reuse) and evaluate one row × seed, in its own process."""
    import torch

    from demvae.evaluation.run import EvalOptions, evaluate_run
    from demvae.runs import train_or_reuse
    from demvae.training.run_folder import RunFolder

    threads = torch.get_num_threads()  # run in-process (jobs = 1): give the caller its threads back after
    torch.set_num_threads(job.threads)
    try:
        run_dir = Path(job.out)
        train_or_reuse(job.config, run_dir, job.overrides)
        opts = EvalOptions(metrics=job.eval_groups, seed=job.seed, **job.eval_options)
        results = evaluate_run(run_dir, opts)
        row = flat_row(results)
        row.update(label=job.label, seed=job.seed, eval_seconds=sum(results.get("seconds", {}).values()))
        folder = RunFolder.open(run_dir)
        for stage, info in folder.stage_times().items():  # a dialog run: the time of each stage
            row.update({f"{stage}_seconds": info["seconds"], f"{stage}_steps": info["step"]})
        row["train_seconds"] = folder.train_seconds()
        if job.beta is not None:  # the paper chose β by validation BLEU
            valid = EvalOptions(split="valid", metrics=("bleu",), seed=job.seed, **job.eval_options)
            row.update(beta=job.beta, valid_bleu=flat_row(evaluate_run(run_dir, valid))["bleu"])
        return row
    finally:
        torch.set_num_threads(threads)


def plan(table: Table, scale: str, seeds: int, out: Path, data_dir: str | None, corpus: str | None,
         extra: dict[str, Any], device: str, threads: int, beta_grid: tuple[float, ...] = ()) -> list[Job]:
    from demvae.config import compose, find_config, load_yaml

    jobs = []
    for row in table.rows:
        base = load_yaml(find_config(row.config))
        dispersed = compose(config=row.config).objective.beta > 0
        betas = beta_grid if (beta_grid and dispersed) else (None,)
        for seed in range(seeds):
            for beta in betas:
                overrides = merge(scale_overrides(scale, base, device, seed, data_dir, corpus, table), extra)
                slug = row.config.split("/")[-1]
                if beta is not None:
                    overrides = merge(overrides, {"objective": {"beta": beta}})
                    slug += f"-beta{beta:g}"
                eval_options = dict(scale_spec(scale, table)["eval"], device=device, data_dir=data_dir,
                                    baseline=row.label == table.baseline_of)
                if table.full_test and scale != "smoke":  # smoke checks the machinery, on the capped split
                    limits = overrides.get("data", {}).get("max_examples", {})
                    eval_options["max_examples"] = {k: v for k, v in limits.items() if k != "test"}
                jobs.append(Job(table.name, row.label, row.config, seed, str(out / f"{slug}-seed{seed}"),
                                overrides, table.eval_groups, eval_options, threads, beta))
    return jobs


def select_beta(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, dict[float, float]]]:
    """Keep, per table row, the β with the best mean validation BLEU; return the kept rows and the
    validation BLEU of every β tried (for the record)."""
    tried: dict[str, dict[float, list[float]]] = {}
    for r in rows:
        if "beta" in r:
            tried.setdefault(r["label"], {}).setdefault(r["beta"], []).append(r["valid_bleu"])
    means = {label: {b: statistics.fmean(v) for b, v in grid.items()} for label, grid in tried.items()}
    best = {label: max(grid, key=grid.__getitem__) for label, grid in means.items()}
    kept = [r for r in rows if "beta" not in r or r["beta"] == best[r["label"]]]
    return kept, means


def execute(jobs: list[Job], n_jobs: int) -> list[dict[str, Any]]:
    if n_jobs <= 1:
        return [run_job(j) for j in jobs]
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(run_job, jobs))


def _cell(values: list[Any]) -> Cell | None:
    values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if not values:
        return None
    return Cell(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))


def _baseline_rows(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lexical baseline as rows of its own, one per seed: the ``baseline_*`` values of the
    :attr:`Table.baseline_of` row's runs under the codes' metric names (``baseline_homog_act`` -> ``homog_act``)."""
    prefix = "baseline_"
    return [{"label": BASELINE, "seed": r["seed"],
             **{k[len(prefix):]: v for k, v in r.items() if k.startswith(prefix) and k != "baseline_clusters"}}
            for r in rows if r["label"] == table.baseline_of and "baseline_clusters" in r]


def seed_stats(table: Table, rows: list[dict[str, Any]]) -> dict[str, dict[str, Cell]]:
    """Mean, sample standard deviation and number of seeds per row and metric (the table's and those its
    claims read), the lexical baseline's row included where the table has one."""
    rows = rows + _baseline_rows(table, rows)
    labels = [r.label for r in table.rows] + ([BASELINE] if any(r["label"] == BASELINE for r in rows) else [])
    out: dict[str, dict[str, Cell]] = {}
    for label in labels:
        mine = [r for r in rows if r["label"] == label]
        cells = {m: _cell([r.get(m) for r in mine]) for m in table.measured}
        out[label] = {m: c for m, c in cells.items() if c is not None}
    return out


def _pairs(table: Table, stats: dict[str, dict[str, Cell]]) -> dict[str, dict[str, tuple[float, float]]]:
    return {label: {m: (c.mean, c.std) for m, c in cells.items() if m in table.metrics}
            for label, cells in stats.items()}


def aggregate(table: Table, rows: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Mean and sample standard deviation over seeds, per row (the baseline's included) and metric of the table."""
    return _pairs(table, seed_stats(table, rows))


def _baseline_note(table: Table, rows: list[dict[str, Any]]) -> list[str]:
    sizes = sorted({r["baseline_clusters"] for r in rows if r["label"] == table.baseline_of
                    and "baseline_clusters" in r})
    if not sizes:
        return []
    return [f"{BASELINE}: k-means with {' / '.join(map(str, sizes))} clusters ({table.baseline_of}'s K^M joint "
            "codes, capped as the Baseline convention says) on TF-IDF + LSA vectors of the sentences, fitted on the "
            "train split, once per seed. Not a model of the paper: it shows where the codes beat surface clustering "
            "of the words and where they do not.", ""]


def _compute_time(rows: list[dict[str, Any]]) -> str:
    """The runs' own time, summed (a run reused from an earlier invocation counts what it took then)."""
    train = sum(r.get("train_seconds", 0.0) for r in rows)
    evaluation = sum(r.get("eval_seconds", 0.0) for r in rows)
    return f"; the {len(rows)} runs' own: training {train:.0f} s, evaluation {evaluation:.0f} s" if train else ""


def write_results(table: Table, scale: str, seeds: int, rows: list[dict[str, Any]], out: Path,
                  wall: float, beta_choice: dict[str, dict[float, float]] | None = None) -> Path:
    stats = seed_stats(table, rows)
    agg = _pairs(table, stats)
    paper = {r.label: r.paper for r in table.rows}
    md = [f"# {table.title} — scale `{scale}`, {seeds} seed(s)", "",
          f"Wall time {wall:.0f} s (this invocation){_compute_time(rows)}. Each cell: paper | ours (mean ± std over "
          "seeds) | ours − paper.", "",
          side_by_side(agg, paper, list(table.metrics)), "", *_baseline_note(table, rows)]
    if beta_choice:
        md += ["## β chosen on the validation split (reconstruction BLEU, as the paper chose by BLEU/rPPL)", ""]
        for label, grid in beta_choice.items():
            tried = ", ".join(f"β={b:g}: {v:.2f}" for b, v in sorted(grid.items()))
            md.append(f"- {label}: chose β={max(grid, key=grid.__getitem__):g} (validation BLEU {tried})")
        md.append("")
    timed = [r for r in rows if "stage1_seconds" in r]
    if timed:
        md += ["## Training time per stage (wall clock)", "",
               "| row | seed | stage 1 steps | stage 1 | stage 2 steps | stage 2 |", "|---|---|---|---|---|---|"]
        md += [f"| {r['label']} | {r['seed']} | {r['stage1_steps']} | {r['stage1_seconds']:.0f} s | "
               f"{r.get('stage2_steps', 0)} | {r.get('stage2_seconds', 0.0):.0f} s |" for r in timed]
        md.append("")
    if table.notes:
        md += ["## This table", "", table.notes]
    baseline = ["baseline_clusters"] if BASELINE in stats else []
    md.append(conventions_markdown(list(table.metrics) + (["beta"] if beta_choice else []) + baseline))
    if table.claims:
        md += ["", claims_markdown(table.claims, stats)]
    path = out / "results.md"
    path.write_text("\n".join(md), encoding="utf-8")
    (out / "results.json").write_text(json.dumps({"table": table.name, "scale": scale, "rows": rows}, indent=1,
                                                  default=str))
    return path


def devices_for(device: str) -> list[str]:
    """The devices rows are placed on: a comma-separated list as given, every visible GPU for
    ``auto`` on a GPU machine, else the one device."""
    if "," in device:
        return [d.strip() for d in device.split(",") if d.strip()]
    if device == "auto":
        import torch

        if torch.cuda.device_count() > 0:
            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [device]


def place(jobs: list[Job], devices: list[str]) -> list[Job]:
    """Rows round-robin over the devices (several rows share a device when there are more rows)."""
    for i, job in enumerate(jobs):
        device = devices[i % len(devices)]
        job.overrides = merge(job.overrides, {"train": {"device": device}})
        job.eval_options = {**job.eval_options, "device": device}
    return jobs


def reproduce(table_name: str, scale: str = "mini", seeds: int | None = None, jobs: int = 1,
              out: str | Path | None = None, data_dir: str | None = None, corpus: str | None = None,
              extra: dict[str, Any] | None = None, device: str = "auto", beta_grid: tuple[float, ...] = (),
              only: tuple[str, ...] = ()) -> Path:
    """``seeds``: per row (None: the scale's :data:`DEFAULT_SEEDS`). ``device``: one device, ``auto``, or a
    comma-separated list (``cuda:0,cuda:1``) to spread the rows over; ``auto`` on a machine with GPUs uses all
    of them. ``only``: a subset of the rows, by config name (``gm-vae``) or label (``GM-VAE``)."""
    import time

    if table_name not in TABLES:
        raise ConfigError(f"unknown table {table_name!r}; valid: {', '.join(TABLES)}")
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    table = TABLES[table_name]
    seeds = DEFAULT_SEEDS[scale] if seeds is None else seeds
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    if only:
        names = {r.config.split("/")[-1] for r in table.rows} | {r.label for r in table.rows}
        unknown = sorted(set(only) - names)
        if unknown:
            raise ConfigError(f"no row {', '.join(unknown)} in {table_name}; rows: "
                              f"{', '.join(r.config.split('/')[-1] for r in table.rows)}")
        table = replace(table, rows=tuple(r for r in table.rows if r.label in only or r.config.split("/")[-1] in only))
    out = Path(out or f"runs/reproduce/{table_name}-{scale}")
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    t = time.perf_counter()
    job_list = plan(table, scale, seeds, out, data_dir, corpus, extra or {}, device, threads, beta_grid)
    job_list = place(job_list, devices_for(device))
    rows, beta_choice = select_beta(execute(job_list, jobs))
    return write_results(table, scale, seeds, rows, out, time.perf_counter() - t, beta_choice)
