"""The ``control`` metric of trained runs under several generation procedures, with intent/style homogeneity:
the numbers behind the default procedure (README, "Generation from a code").

    PYTHONPATH=src python benchmarks/control_procedures.py RUN [RUN ...] [--procedures prior,mode,aggregate-t0.5]
        [--split test] [--json out.json]

A procedure is ``NAME`` or ``NAME-t<temperature>`` (NAME in prior, mode, aggregate).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from demvae.evaluation.codes import encode_codes, label_scores
from demvae.evaluation.control import ControlOptions, control_scores, control_table
from demvae.models.generation import Procedure
from demvae.training import load_run
from demvae.training.run_folder import load_code_stats, run_data


def parse(name: str):
    base, _, t = name.partition("-t")
    return Procedure.named(base, float(t) if t else None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--procedures", default="prior,mode,prior-t0.5,aggregate-t1,aggregate-t0.5,aggregate-t0.3,"
                                            "aggregate-t0")
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
            t0 = time.perf_counter()
            r = control_scores(run.model, run.vocab, split, data.splits["train"],
                               ControlOptions(n_per_code=args.n_per_code, procedure=procedure, stats=stats))
            results[r.procedure] = r
            row = {"procedure": r.procedure, "recovery": r.recovery, "distinct": r.distinct,
                   "seconds": time.perf_counter() - t0}
            for label, s in r.labels.items():
                row.update({f"{label}_agreement": s.agreement, f"{label}_ceiling": s.ceiling,
                            f"{label}_chance": s.chance, f"{label}_classifier": s.classifier_accuracy})
            rows.append(row)
        print(f"## {run_dir} ({run.config.model_name}); homogeneity {homog}; {time.perf_counter() - t:.0f}s\n")
        print(control_table(results))
        print()
        out[str(run_dir)] = {"model": run.config.model_name, "homogeneity": homog, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
