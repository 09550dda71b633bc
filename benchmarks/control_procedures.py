"""The ``control`` metric of trained runs under several generation procedures, with intent/style homogeneity:
the numbers behind the default procedure (README, "Generation from a code").

    PYTHONPATH=src python benchmarks/control_procedures.py RUN [RUN ...] [--procedures prior,mode,aggregate-t0.5]
        [--split test] [--json out.json]

A procedure is ``NAME``, ``NAME-t<temperature>`` or ``NAME-t<temperature>-p<top-p>`` (NAME in
``demvae.models.generation.PROCEDURES``). Per run it prints the control table and the time of generating
1,000 sentences; with several runs (e.g. one per seed), the mean and range over the runs of every procedure's
recovery, agreement / ceiling, distinct share and distinct-2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from demvae.evaluation.codes import encode_codes, label_scores
from demvae.evaluation.control import ControlOptions, control_scores, control_table
from demvae.evaluation.tables import format_table
from demvae.models.generation import Procedure, generate_from_codes
from demvae.training import load_run
from demvae.training.run_folder import load_code_stats, run_data


def parse(name: str) -> Procedure:
    base, *parts = name.split("-")
    option = {p[0]: float(p[1:]) for p in parts if p[:1] in ("t", "p")}
    return Procedure.named(base, option.get("t"), option.get("p"))


def seconds_per_1000(model, codes: list[tuple[int, ...]], procedure: Procedure, stats) -> float:
    """Wall seconds to generate 1,000 sentences (the scored codes in turn), one decoder call."""
    rows = torch.tensor([codes[i % len(codes)] for i in range(1000)])
    torch.manual_seed(0)
    t = time.perf_counter()
    generate_from_codes(model, rows, procedure, stats)
    return time.perf_counter() - t


def summary(out: dict) -> list[dict]:
    """Per procedure, the mean and range over the runs."""
    by_procedure: dict[str, list[dict]] = {}
    for run in out.values():
        for row in run["rows"]:
            by_procedure.setdefault(row["procedure"], []).append(row)
    table = []
    for name, rows in by_procedure.items():
        line = {"procedure": name, "runs": len(rows)}
        for key in [k for k in rows[0] if k not in ("procedure",)]:
            values = np.array([r[key] for r in rows], dtype=float)
            line[key] = f"{values.mean():.3f} ({values.min():.3f}-{values.max():.3f})"
        table.append(line)
    return table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--procedures", default="rerank-t0-p0.9,rerank-t0.3-p0.9,rerank-t0.5-p0.9,rerank-t0.5-p1,"
                                            "nucleus-t0-p0.9,nucleus-t0-p0.8,nucleus-t0-p0.7,nucleus-t0.3-p0.9,"
                                            "nucleus-t0.3-p0.7,nucleus-t0.5-p0.9,nucleus-t0.5-p0.7,nucleus-t0.5-p1,"
                                            "aggregate-t0.5,aggregate-t1,mode,prior")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n-per-code", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {}
    for run_dir in args.runs:
        run = load_run(run_dir)
        data = run_data(run)
        split = data.splits[args.split]
        t = time.perf_counter()
        stats = load_code_stats(run, data)
        homog = {k: v["homogeneity"] for k, v in label_scores(encode_codes(run.model, split), split).items()}
        results, rows = {}, []
        for name in args.procedures.split(","):
            procedure = parse(name)
            r = control_scores(run.model, run.vocab, split, data.splits["train"],
                               ControlOptions(n_per_code=args.n_per_code, procedure=procedure, stats=stats))
            results[r.procedure] = r
            row = {"procedure": r.procedure, "recovery": r.recovery, "unfiltered": r.unfiltered_recovery,
                   "distinct": r.distinct, "distinct_2": r.distinct_2}
            for label, s in r.labels.items():
                row[f"{label}/ceiling"] = s.agreement / s.ceiling
            row["s/1000"] = seconds_per_1000(run.model, [c.code for c in r.codes], procedure, stats)
            rows.append(row)
        print(f"## {run_dir} ({run.config.model_name}); homogeneity {homog}; {time.perf_counter() - t:.0f}s\n")
        print(control_table(results))
        print()
        print(format_table(rows, list(rows[0]), floatfmt=".3f"))
        print()
        out[str(run_dir)] = {"model": run.config.model_name, "homogeneity": homog, "rows": rows}
    if len(out) > 1:
        table = summary(out)
        print(format_table(table, list(table[0]), title=f"mean (range) over {len(out)} runs"))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
