"""The benchmark scripts still run on the current code (``--quick``: tiny sizes, a functional check, no figure)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "DEMVAE_DATA": ""}  # the synthetic PTB-shaped data, whatever this machine holds
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_speed_table_prints_one_markdown_row_per_configuration():
    out = _run("speed_table.py", "--quick", "--precisions", "fp32", "--batching", "bucketed", "--threads", "1")
    rows = [line for line in out.splitlines() if line.startswith("| training") or line.startswith("| IS-NLL")]
    assert len(rows) == 1 + 1, out
    assert all(line.count("|") == 10 for line in rows)


def test_profile_step_prints_the_output_layer_share_and_its_floor():
    out = _run("profile_step.py", "--quick", "--steps", "1", "--threads", "1")
    assert "| output layer + CE, forward" in out and "output-layer floor" in out


def test_time_to_target_prints_each_validation_and_when_the_target_was_reached():
    out = _run("time_to_target.py", "--quick", "--threads", "1")  # the built-in corpus is far below 128 nats
    assert "precision fp32 (train.amp: auto)" in out or "precision bf16 (train.amp: auto)" in out
    rows = [line for line in out.splitlines() if line.startswith("| 10 |")]
    assert len(rows) == 1 and rows[0].count("|") == 4, out
    assert "target reached at step 10 after" in out



def test_respond_study_measures_distinct_responses_and_code_recovery(dialog_run):
    out = _run("respond_study.py", str(dialog_run), "--contexts", "4", "--top", "3")
    row = [line for line in out.splitlines() if line.startswith(f"| {dialog_run} |")]
    assert len(row) == 1, out
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert cells[1] == "4" and 0 <= float(cells[2]) <= 1 and 0 <= float(cells[3]) <= 1
    assert len(cells[6].split(",")) == 3  # recovery per variable: M = 3
    assert out.count("\ncontext: ") == 3
