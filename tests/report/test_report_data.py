"""What the report computes and reads, checked against independent computations: the kept step, the
projection of the latent space and of the prior's components, the code summaries; the optional
``control`` columns; runs without a code or a latent; reproduction folders; the command line."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil

import numpy as np
import pytest
import torch
from sklearn.metrics.cluster import contingency_matrix

from demvae.config import compose
from demvae.errors import CheckpointError, DemvaeWarning
from demvae.evaluation.codes import encode_codes
from demvae.models import build_for
from demvae.report.clusters import summarize_codes
from demvae.report.history import read_history
from demvae.report.html import write_report
from demvae.reproduce.latent_map import Projection, gaussian_block, latent_map
from demvae.runs import train
from demvae.training import load_run
from demvae.training.run_folder import run_data


@pytest.fixture(scope="module")
def loaded(tiny_run):
    run = load_run(tiny_run)
    data = run_data(run)
    return run, data


# --- training history ----------------------------------------------------------------------------------


def test_history_kept_step_is_the_trainers(tiny_run):
    h = read_history(tiny_run)
    assert [r["step"] for r in h.train] == [5, 10, 15, 20] and [r["step"] for r in h.valid] == [10, 20]
    state = json.loads((tiny_run / "last" / "trainer_state.json").read_text())
    assert h.best_step == state["best_step"] and h.metric == "neg_elbo"


def test_history_of_a_resumed_run(tmp_path):
    records = [{"kind": "valid", "step": 10, "metric": "neg_elbo", "neg_elbo": 5.0},
               {"kind": "train", "step": 15, "loss": 9.0},
               {"kind": "train", "step": 15, "loss": 8.0},  # logged again after resuming from step 10
               {"kind": "valid", "step": 20, "metric": "neg_elbo", "neg_elbo": 4.0},
               {"kind": "valid", "step": 30, "metric": "neg_elbo", "neg_elbo": 4.0}]  # a tie keeps the first
    (tmp_path / "metrics.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n")
    h = read_history(tmp_path)
    assert [(r["step"], r["loss"]) for r in h.train] == [(15, 8.0)]
    assert h.best_step == 20
    (tmp_path / "metrics.jsonl").write_text(json.dumps(records[0]) + "\n{not json\n")
    with pytest.raises(CheckpointError, match=r"metrics.jsonl:2: not a metrics record"):
        read_history(tmp_path)


# --- the latent map --------------------------------------------------------------------------------------


def test_projection_is_pca_and_projects_gaussians_exactly():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + 3.0
    p = Projection.fit(x)
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    signs = np.sign((p.points(x) * expected).sum(0))  # principal axes are defined up to sign
    np.testing.assert_allclose(p.points(x) * signs, expected, atol=1e-8)
    # N(μ, diag σ²) projected: Monte Carlo mean and covariance against W(μ − m) and W diag σ² Wᵀ
    mu, var = rng.normal(size=5), rng.uniform(0.2, 2.0, size=5)
    samples = p.points(mu + np.sqrt(var) * rng.normal(size=(200_000, 5)))
    np.testing.assert_allclose(samples.mean(0), p.points(mu[None])[0], atol=0.02)
    np.testing.assert_allclose(np.cov(samples.T), p.covariances(var[None])[0], atol=0.03)
    assert "PCA of the 5-D" in p.description


def test_prior_components_monte_carlo(loaded):
    run, data = loaded
    block = gaussian_block(run.model)
    codes = np.array([[0, 1], [3, 7], [5, 5]])
    m = latent_map(run.model, data.splits["test"], prior_codes=codes)
    torch.manual_seed(0)
    for i, code in enumerate(codes):
        with torch.no_grad():
            z = block.prior.sample(torch.as_tensor(code).expand(100_000, 2)).flatten(1).double().numpy()  # [n, M·U]
        projected = m.projection.points(z)
        np.testing.assert_allclose(projected.mean(0), m.prior_means[i], atol=0.03)
        np.testing.assert_allclose(np.cov(projected.T), m.prior_covs[i], atol=0.05)


def test_two_dimensional_latent_is_drawn_as_is(loaded, tiny_overrides):
    run, data = loaded
    cfg = compose(model="dgm-vae", overrides=tiny_overrides({"model": {"n_variables": 1, "n_values": 5, "n_units": 2}}))
    model = build_for(cfg, run.vocab).eval()
    split = data.splits["test"]
    m = latent_map(model, split, n_points=25)
    assert len(m.index) == 25 and len(set(m.index.tolist())) == 25
    with torch.no_grad():
        means = model.latents[0].mode_features(model.encode(split.batch(m.index.tolist()))).double().numpy()
    np.testing.assert_allclose(m.points, means, atol=1e-6)
    assert m.prior_codes.tolist() == [[k] for k in range(5)]  # one variable: every component
    assert m.projection.description.startswith("the 2-D latent itself")


# --- the codes -------------------------------------------------------------------------------------------


def test_code_summaries(loaded):
    run, data = loaded
    split = data.splits["test"]
    codes = encode_codes(run.model, split)
    summaries = summarize_codes(run, data.corpus, "test", codes, split, top=3, n_generated=2)
    values, counts = np.unique(codes.joint, return_counts=True)
    assert [s.size for s in summaries] == sorted(counts.tolist(), reverse=True)
    assert sum(s.share for s in summaries) == pytest.approx(1.0)
    for label, y in split.labels.items():
        table = contingency_matrix(y.numpy(), codes.joint)  # [classes, codes], columns in the order of `values`
        for s in summaries:
            column = table[:, list(values).index(int(codes.joint[np.nonzero((codes.codes == s.code).all(1))[0][0]]))]
            name, purity = s.majority[label]
            assert purity == pytest.approx(column.max() / column.sum())
            assert name == data.corpus.label_names[label][int(column.argmax())]
    for s in summaries:  # the typical sentences, encoded again, get the code
        again = [t.split() for t in s.typical]
        assert 1 <= len(again) <= 3 and len(s.generated) == 2
        from demvae.data.batching import EncodedSplit
        from demvae.data.types import Example
        encoded = EncodedSplit.from_examples([Example(tuple(w)) for w in again], run.vocab, split.max_len)
        assert (encode_codes(run.model, encoded).codes == np.array(s.code)).all()


# --- reading and drawing ---------------------------------------------------------------------------------


def test_collect_only_reads_the_run_folder(tiny_run, tmp_path):
    """No model is loaded (there is none), nothing evaluated, no file written or changed."""
    from demvae.report.collect import collect_run

    run = shutil.copytree(tiny_run, tmp_path / "run")
    (run / "model.safetensors").unlink()
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    files = collect_run(run, "run")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert files.metrics == json.loads((run / "metrics-test.json").read_text())
    assert files.measured is False  # it measured the model.safetensors that is gone
    assert files.model == "dgm-vae" and files.history.best_step == read_history(run).best_step
    assert collect_run(run, "run", split="valid").metrics is None  # no metrics-valid.json, and none computed


def test_templates_and_static_files_ship_in_the_wheel():
    """Every file the page is drawn from matches a package-data pattern of pyproject.toml."""
    import fnmatch
    import tomllib
    from pathlib import Path

    import demvae

    root = Path(demvae.__file__).parent
    patterns = tomllib.loads((root.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    needed = [p.relative_to(root).as_posix() for folder in ("templates", "static")
              for p in (root / "report" / folder).rglob("*") if p.is_file()]
    assert len(needed) >= 4 and any(n.endswith(".css") for n in needed) and any(n.endswith(".js") for n in needed)
    unshipped = [n for n in needed if not any(fnmatch.fnmatch(n, g.replace("**/", "*")) for g in patterns["demvae"])]
    assert unshipped == []


# --- pages -----------------------------------------------------------------------------------------------


def test_missing_metrics_are_computed_and_control_columns_appear(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "metrics-test.json").unlink()
    page = write_report([run], tmp_path / "a.html", device="cpu", progress=False).read_text()
    assert (run / "metrics-test.json").is_file()  # what `demvae eval --metrics posterior,clusters` writes
    assert "metrics-test.json was missing" in page
    assert "code recovery" not in page and "agreement" not in page
    baseline = json.loads((run / "metrics-test.json").read_text())["baseline"]  # the clusters group's baseline
    assert baseline["n_clusters"] == 30 and "<dt>Baseline homogeneity intent</dt>" in page  # 8^2 codes, 300 train
    assert "The baseline (k-means with 30 clusters on TF-IDF + LSA vectors of the sentences, fitted on train)" in page

    metrics = json.loads((run / "metrics-test.json").read_text())
    load = load_run(run)
    codes = encode_codes(load.model, run_data(load).splits["test"])
    first = codes.codes[np.argmax(codes.joint == np.argmax(np.bincount(codes.joint)))].tolist()  # the largest code
    metrics["control"] = {"recovery": 0.5, "coverage": 0.9, "distinct": 0.55, "distinct_2": 0.45,
                          "labels": {"intent": {"agreement": 0.4}},
                          "codes": [{"code": first, "size": 9, "recovery": 0.8125, "distinct": 0.25,
                                     "distinct_2": 0.375, "majority": {"intent": 0},
                                     "agreement": {"intent": 0.6875}, "ceiling": {"intent": 0.7}}]}
    (run / "metrics-test.json").write_text(json.dumps(metrics))
    page = write_report([run], tmp_path / "b.html", device="cpu", progress=False).read_text()
    assert ">code recovery</th>" in page and ">intent agreement</th>" in page
    assert ">distinct</th>" in page and ">distinct-2</th>" in page
    assert "distinct sentences 0.550, distinct-2 0.450" in page
    first_row = re.search(r"<tbody>\s*<tr>(.*?)</tr>", page.split('id="codes-0"')[1], re.S).group(1)
    assert 'data-v="0.8125" class="num">81%<' in first_row and 'data-v="0.6875" class="num">69%<' in first_row
    assert 'data-v="0.25" class="num">25%<' in first_row and 'data-v="0.375" class="num">38%<' in first_row
    assert "metrics-test.json was missing" not in page


def test_metrics_of_an_earlier_model_are_not_shown_beside_a_resumed_one(tiny_run, tmp_path):
    """eval, then --resume to more steps, then report: the old metrics file is recognised as stale (resume
    marks one that does not say which model it measured) and the report evaluates again, saying so."""
    from demvae.report.analysis import evaluate_if_needed
    from demvae.report.collect import collect_run
    from demvae.runs import resume

    def model_sha256(run):
        return hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()

    run = shutil.copytree(tiny_run, tmp_path / "run")
    before = model_sha256(run)
    legacy = json.loads((run / "metrics-test.json").read_text())
    legacy.pop("model_sha256", None)  # as an older demvae wrote it
    (run / "metrics-test.json").write_text(json.dumps(legacy))
    resume(run, {"train": {"max_steps": 40}})
    assert model_sha256(run) != before  # a better model was kept
    assert json.loads((run / "metrics-test.json").read_text()).get("model_sha256") == before  # marked on resume
    files = collect_run(run, "run")
    assert files.measured is False and files.metrics["model_sha256"] == before
    with pytest.warns(DemvaeWarning, match=r"metrics-test\.json measured an earlier model"):
        metrics, notes = evaluate_if_needed(files, device="cpu")
    assert metrics["model_sha256"] == model_sha256(run)
    assert any("measured an earlier model" in note for note in notes)
    assert json.loads((run / "metrics-test.json").read_text())["model_sha256"] == model_sha256(run)


def test_a_reproduction_folder_embeds_no_file_from_outside_it(tiny_run, reproduction_folder, tmp_path):
    """A symlinked PNG (or results.md) pointing outside the folder given is left out, with a warning."""
    repro = reproduction_folder(tmp_path / "repro", tiny_run)
    secret = tmp_path / "secret.png"
    secret.write_bytes((repro / "figure4-dgm-vae-step400.png").read_bytes() + b"SECRET")
    (repro / "figure4-leak.png").symlink_to(secret)
    (repro / "figures").mkdir()
    (repro / "figures" / "inside.png").write_bytes(b"\x89PNG")
    (repro / "figure4-inside.png").symlink_to(repro / "figures" / "inside.png")  # a link within: fine
    with pytest.warns(DemvaeWarning, match="figure4-leak.png is a link to outside"):
        page = write_report([repro], tmp_path / "r.html", progress=False).read_text()
    assert base64.b64encode(secret.read_bytes()).decode() not in page and "figure4-leak" not in page
    assert "figure4-inside.png" in page and "figure4-dgm-vae-step400.png" in page


@pytest.mark.parametrize("model", ["vae", "rnnlm"])
def test_models_without_a_code(model, tmp_path, tiny_overrides):
    cfg = compose(model=model, overrides=tiny_overrides({"train": {"max_steps": 4, "eval_every": 2, "log_every": 2}}))
    run = train(cfg, tmp_path / model)
    page = write_report([run], tmp_path / "report.html", device="cpu", progress=False).read_text()
    assert f"Model <code>{model}</code> has no discrete code" in page
    assert ("has no Gaussian latent" in page) == (model == "rnnlm")
    assert page.count("data:image/png;base64,") == (1 if model == "rnnlm" else 3)  # curves (+ latent map, thumbnail)


def test_reproduction_page(tiny_run, reproduction_folder, tmp_path):
    repro = reproduction_folder(tmp_path / "repro", tiny_run)
    page = write_report([repro], tmp_path / "r.html", progress=False).read_text()
    assert re.findall(r'<section id="([^"]+)">', page) == ["overview", "reproduction"]
    nav = page.split("<nav>")[1].split("</nav>")[0]
    assert re.findall(r'<a href="#([^"]+)">([^<]+)</a>', nav) == [("overview", "Overview"),
                                                                   ("reproduction", "Reproduction")]
    row = page.split("<td>DGM-VAE</td>")[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[3:6] == ["7.63", "5.50 ± 0.00", "-2.13"]  # BLEU: paper, ours (one seed), ours − paper
    assert '<th colspan="3">Homogeneity act ↑</th>' in page and '<th colspan="3">V-measure emotion ↑</th>' in page
    assert "figure4-dgm-vae-step400.png" in page
    assert "<li><b>not run</b> DGM-VAE (± Lmi) has the highest BLEU: missing: DGM-VAE+Lmi bleu" in page


def test_reproduction_page_shows_the_baseline_row_and_the_claims(tiny_run, reproduction_folder, tmp_path):
    repro = reproduction_folder(tmp_path / "repro", tiny_run)
    results = json.loads((repro / "results.json").read_text())
    results["rows"] += [{"label": "DGM-VAE+Lmi", "seed": s, "homog_act": 0.3 + s / 50, "baseline_clusters": 125,
                         "baseline_homog_act": 0.2 + s / 50} for s in range(2)]
    (repro / "results.json").write_text(json.dumps(results))
    page = write_report([repro], tmp_path / "r.html", progress=False).read_text()
    row = page.split("<td>baseline (TF-IDF k-means)</td>")[1].split("</tr>")[0]
    assert "0.21 ± 0.01" in re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert ("<li><b>✓</b> (ours, not the paper&#39;s) DGM-VAE+Lmi&#39;s codes are more act-homogeneous than the "
            "lexical baseline: DGM-VAE+Lmi homog_act 0.31 ± 0.01414 vs baseline (TF-IDF k-means) 0.21 ± 0.01414"
            in page)


def test_cli_report(tiny_run, tmp_path, run_main):
    out = tmp_path / "sub" / "r.html"
    rc, stdout, _ = run_main("report", tiny_run, "-o", out, "--device", "cpu", "--max-codes", "2")
    assert rc == 0 and stdout.strip() == f"report: {out}" and out.is_file()
    assert out.read_text().split('id="codes-0"')[1].split("</table>")[0].count("<tr>") == 3  # header + 2 codes
    rc, _, err = run_main("report", tmp_path / "nope")
    assert rc == 2 and "error: not found" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    rc, _, err = run_main("report", tmp_path / "empty")
    assert rc == 2 and "neither a run folder" in err
