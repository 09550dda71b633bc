"""`demvae reproduce --scale smoke`: every row of every table trains, is evaluated and reaches
results.md with the metrics the paper reports for it."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest

from demvae.reproduce.run import reproduce
from demvae.reproduce.tables import TABLES

DATA = Path(os.environ.get("DEMVAE_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


def needs(corpus_dir: str):
    return pytest.mark.skipif(not (DATA / corpus_dir).is_dir(), reason=f"paper data not found in {DATA}")


def check(table_name: str, out: Path, results: Path) -> None:
    table = TABLES[table_name]
    rows = json.loads((out / "results.json").read_text())["rows"]
    text = results.read_text()
    for row in table.rows:
        ours = [r for r in rows if r["label"] == row.label]
        assert ours, f"{row.label} did not run"
        assert f"| {row.label} |" in text
        for metric in row.paper:
            if metric.startswith("majority"):
                continue
            value = ours[0].get(metric)
            assert isinstance(value, (int, float)) and math.isfinite(value), (row.label, metric, value)
    assert "## Conventions" in text


@pytest.fixture(scope="module")
def ptb_out(tmp_path_factory):
    return tmp_path_factory.mktemp("ptb")


@needs("ptb")
@pytest.mark.parametrize("table", ["ptb-table1", "ptb-table7"])
def test_ptb_tables_smoke(table, ptb_out):
    # both tables share one folder: Table 7 reuses Table 1's GM-VAE and DGM-VAE runs
    results = reproduce(table, "smoke", out=ptb_out, data_dir=str(DATA), device="cpu")
    check(table, ptb_out, results)


@needs("daily_dialog")
def test_dd_table2_smoke_with_beta_choice(tmp_path):
    results = reproduce("dd-table2", "smoke", out=tmp_path, data_dir=str(DATA), device="cpu", beta_grid=(0.7, 0.9))
    check("dd-table2", tmp_path, results)
    text = results.read_text()
    assert "- DGM-VAE: chose β=" in text and "- DGM-VAE+Lmi: chose β=" in text
    assert (tmp_path / "dgm-vae-beta0.7-seed0").is_dir() and (tmp_path / "dgm-vae-beta0.9-seed0").is_dir()


@needs("daily_dialog")
def test_dd_table6_smoke(tmp_path):
    results = reproduce("dd-table6", "smoke", out=tmp_path, data_dir=str(DATA), device="cpu")
    check("dd-table6", tmp_path, results)
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert all(0 < r["majority_emotion"] <= 1 and 0 <= r["acc_emotion"] <= 1 for r in rows)


def test_machinery_on_the_builtin_corpus(tmp_path, monkeypatch):
    """Without the paper's data: two of Table 1's rows on the built-in corpus, two seeds (mean ± std), two
    jobs, with the lexical baseline row beside DGM-VAE and Table 1's claims checked (those on its other rows
    not run)."""
    from demvae.evaluation.baseline import LABEL as BASELINE
    from demvae.reproduce.claims import above

    table = TABLES["ptb-table1"]
    rows = tuple(r for r in table.rows if r.label in ("VAE", "DGM-VAE"))
    beats = above("DGM-VAE", BASELINE, "homog_intent", "DGM-VAE's codes beat the baseline")
    small = dataclasses.replace(table, name="test-table", rows=rows, metrics=(*table.metrics, "homog_intent"),
                                baseline_of="DGM-VAE", claims=(*table.claims, beats))
    assert small.eval_groups == (*table.eval_groups, "clusters")  # homog_intent's
    monkeypatch.setitem(TABLES, "test-table", small)
    import torch

    threads = torch.get_num_threads()
    results = reproduce("test-table", "smoke", seeds=2, jobs=2, out=tmp_path, corpus="builtin", device="cpu")
    assert torch.get_num_threads() == threads  # rows run in this process hand the caller its threads back
    check("test-table", tmp_path, results)
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert sorted((r["label"], r["seed"]) for r in rows) == [("DGM-VAE", 0), ("DGM-VAE", 1), ("VAE", 0), ("VAE", 1)]
    text = results.read_text()
    # the runs' own time, summed: what a re-rendering from reused runs still reports
    assert all(r["train_seconds"] > 0 and r["eval_seconds"] > 0 for r in rows)
    train = sum(r["train_seconds"] for r in rows)
    assert f"the 4 runs' own: training {train:.0f} s, evaluation " in text
    again = reproduce("test-table", "smoke", seeds=2, jobs=1, out=tmp_path, corpus="builtin", device="cpu")
    assert f"the 4 runs' own: training {train:.0f} s, evaluation " in again.read_text()  # reused: the same
    dgm = [r["nll"] for r in rows if r["label"] == "DGM-VAE"]
    mean = sum(dgm) / 2
    assert f"{mean:.2f} ± " in text
    # the baseline: computed for DGM-VAE's runs only (20 clusters: one per 10 of the 200 train sentences)
    assert all(("baseline_clusters" in r) == (r["label"] == "DGM-VAE") for r in rows)
    assert {r["baseline_clusters"] for r in rows if r["label"] == "DGM-VAE"} == {20}
    baseline = [r["baseline_homog_intent"] for r in rows if r["label"] == "DGM-VAE"]
    assert f"| {BASELINE} |" in text and f"{sum(baseline) / 2:.2f} ± " in text and "- Baseline: " in text
    claims = text[text.index("## Claims"):]
    assert text.rstrip().endswith(claims.rstrip())  # the last section
    assert "- **not run** GM-VAE collapses (Var and MI near 0): missing: GM-VAE param_var" in claims
    assert "DGM-VAE does not collapse (Var and MI above near-0): DGM-VAE param_var " in claims
    line = next(x for x in claims.splitlines() if "DGM-VAE's codes beat the baseline" in x)
    assert line.startswith(("- **✓**", "- **✗**", "- **within noise**")) and f"vs {BASELINE} " in line, line


def test_mini_runs_three_seeds_per_row_by_default(tmp_path, monkeypatch):
    """The jobs planned at ``mini`` without ``seeds`` (nothing trains: the rows are fabricated)."""
    import demvae.reproduce.run as run

    planned = []

    def fake(jobs, n_jobs):
        planned.extend(jobs)
        return [{"label": j.label, "seed": j.seed, "bleu": 1.0 + j.seed, "param_var": 0.0, "mutual_info": 0.0}
                for j in jobs]

    monkeypatch.setattr(run, "execute", fake)
    results = reproduce("ptb-table7", "mini", out=tmp_path, corpus="builtin", device="cpu", only=("gm-vae",
                                                                                                  "dgm-vae"))
    assert sorted((j.label, j.seed) for j in planned) == [(label, s) for label in ("DGM-VAE", "GM-VAE")
                                                           for s in range(3)]
    assert not any(j.eval_options["baseline"] for j in planned)  # Table 7 has no baseline row
    text = results.read_text()
    assert "3 seed(s)" in text and "| GM-VAE |" in text and "2.00 ± 1.00" in text
    assert "- **✓** GM-VAE collapses (Var and MI near 0): GM-VAE param_var 0 ± 0 ≤ 0.5" in text
    assert "- **within noise** DGM-VAE has the highest BLEU" not in text  # its rivals did not run
    assert "- **not run** DGM-VAE has the highest BLEU: missing: +aggressive bleu" in text


@needs("stanford")
def test_smd_table3_smoke(tmp_path):
    results = reproduce("smd-table3", "smoke", out=tmp_path, data_dir=str(DATA), device="cpu",
                        extra={"train": {"threads": 1}})
    check("smd-table3", tmp_path, results)
    text = results.read_text()
    assert "## Training time per stage" in text and "both starting with the speaker token" in text
    for slug in ("di-vae", "dgm-vae-mi"):
        run = tmp_path / f"{slug}-seed0"
        assert (run / "stage1" / "model.safetensors").is_file() and (run / "responses-test.tsv").is_file()
        assert len((run / "responses-test.tsv").read_text().splitlines()) == 1 + 40  # smoke caps the test split
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert all(r["stage1_steps"] == 6 and r["stage2_steps"] == 6 for r in rows)


def test_rows_are_spread_over_the_devices():
    from demvae.reproduce.run import Job, devices_for, place

    assert devices_for("cuda:0, cuda:1") == ["cuda:0", "cuda:1"] and devices_for("cpu") == ["cpu"]
    jobs = [Job("t", f"r{i}", "builtin/dgm-vae", 0, f"out{i}", {"train": {"device": "auto"}}, ("posterior",),
                {"device": "auto"}, 1) for i in range(5)]
    placed = place(jobs, ["cuda:0", "cuda:1"])
    assert [j.overrides["train"]["device"] for j in placed] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert [j.eval_options["device"] for j in placed] == [j.overrides["train"]["device"] for j in placed]
