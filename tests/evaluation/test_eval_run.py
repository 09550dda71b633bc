"""``evaluate_run`` end to end on tiny trained runs (DGM-VAE and RNN-LM) of the built-in corpus."""

from __future__ import annotations

import hashlib
import json
import math
import shutil

import pytest

from demvae.config import compose
from demvae.errors import ConfigError
from demvae.evaluation.run import EvalOptions, evaluate_run
from demvae.metrics import METRIC_GROUPS, METRICS, flat_row, metric
from demvae.runs import train

TINY = {
    "data": {"options": {"n_train": 300, "n_valid": 60, "n_test": 60}},
    "model": {"embed_dim": 16, "hidden_size": 16},
    "train": {"max_steps": 30, "eval_every": 15, "progress": False, "device": "cpu"},
}
FAST = dict(is_samples=20, n_prior_samples=300, rppl_steps=20, device="cpu")


@pytest.fixture(scope="module")
def dgm_run(tmp_path_factory):
    return train(compose(config="builtin/dgm-vae", overrides=TINY), tmp_path_factory.mktemp("eval") / "dgm")


@pytest.fixture(scope="module")
def dgm_results(dgm_run):
    return evaluate_run(dgm_run, EvalOptions(**FAST))


def test_every_metric_is_finite(dgm_results):
    r = dgm_results
    for key in ("rppl", "rppl_real", "bleu", "sacrebleu", "wkl", "wkl_paper", "nll", "kl_z", "kl_c", "param_var",
                "mutual_info", "rec", "neg_elbo", "dispersion", "ppl", "is_ppl", "is_nll_se", "is_ppl_words"):
        assert key in r, key
        assert isinstance(r[key], (int, float)) and math.isfinite(r[key]), (key, r[key])
    assert r["model"] == "dgm-vae" and r["split"] == "test"
    assert r["is_n_sentences"] == 60
    assert r["rppl"] > 1 and 0 <= r["bleu"] <= 100 and r["wkl"] >= 0
    assert r["rppl_real"] > 1 and r["rppl_real_train_sentences"] == r["rppl_train_sentences"]  # the same LM budget
    assert set(r["homogeneity"]) == {"intent", "style"}
    for scores in r["homogeneity"].values():
        assert all(math.isfinite(v) for v in scores.values())
        assert 0.0 <= scores["homogeneity"] <= 1.0
    assert 1 <= r["codes_used"] <= 64  # 2 variables x 8 values
    assert len(r["prior_examples"]) == 10 and all(isinstance(s, str) for s in r["prior_examples"])
    assert set(r["seconds"]) == {"posterior", "nll", "bleu", "prior", "clusters", "control"}
    assert r["control"]["procedure"] == "rerank-t0-p0.9" and 0 <= r["control"]["recovery"] <= 1
    # the importance-sampled bound is at least as tight as the ELBO (up to Monte-Carlo noise)
    assert r["nll"] <= r["neg_elbo"] + 0.5


def test_metrics_file_written(dgm_run, dgm_results):
    path = dgm_run / "metrics-test.json"
    assert path.is_file()
    saved = json.loads(path.read_text())
    for key in ("rppl", "bleu", "nll", "kl_z", "mutual_info"):
        assert saved[key] == pytest.approx(dgm_results[key])
    assert saved["homogeneity"].keys() == dgm_results["homogeneity"].keys()
    assert saved["options"]["is_samples"] == 20


def test_flat_row(dgm_results):
    row = flat_row(dgm_results)
    assert row["model"] == "dgm-vae"
    assert row["homog_intent"] == dgm_results["homogeneity"]["intent"]["homogeneity"]
    assert row["homog_style"] == dgm_results["homogeneity"]["style"]["homogeneity"]
    assert "homogeneity" not in row and "prior_examples" not in row and "seconds" not in row
    for key in ("rppl", "bleu", "wkl", "nll", "kl_z", "kl_c", "param_var", "mutual_info"):
        assert row[key] == dgm_results[key]
    assert all(isinstance(v, (int, float)) for k, v in row.items() if k != "model")


def test_every_key_written_is_declared(dgm_results):
    """Every number a group writes is a declared metric of that group; every structure is the source of some
    (``homogeneity`` -> ``homog_<label>``, ...); and every key of a table row is declared."""
    sources = {m.source.split(".")[0] for m in METRICS if m.source}
    for group, keys in dgm_results["groups"].items():
        for key in keys:
            value = dgm_results[key]
            if isinstance(value, dict):
                assert key in sources, key
            elif isinstance(value, (int, float)):
                assert metric(key) is not None and metric(key).group in (group, "clusters"), (group, key)
    row = flat_row(dgm_results)
    assert {"homog_intent", "v_measure_style", "baseline_homog_intent", "control_agree_style"} <= set(row)
    assert [k for k in row if k != "model" and metric(k) is None] == []


def test_flat_row_with_accuracy():
    row = flat_row({"model": "m", "nll": 1.5, "flag": True, "accuracy": {"act": {"accuracy": 0.7, "majority": 0.4}}})
    assert row == {"model": "m", "nll": 1.5, "acc_act": 0.7, "majority_act": 0.4}


def test_unknown_metric_group(dgm_run):
    with pytest.raises(ConfigError) as info:
        evaluate_run(dgm_run, EvalOptions(metrics=("posterior", "bogus"), device="cpu"))
    assert "bogus" in str(info.value)
    for group in METRIC_GROUPS:
        assert group in str(info.value)


def test_subset_of_groups_and_other_split(dgm_run, dgm_results):
    r = evaluate_run(dgm_run, EvalOptions(split="valid", metrics=("posterior", "clusters"), device="cpu"))
    assert "kl_z" in r and "homogeneity" in r
    assert "bleu" not in r and "rppl" not in r and "nll" not in r
    assert (dgm_run / "metrics-valid.json").is_file()
    # posterior KLs are deterministic: the same on a second evaluation of the test split
    again = evaluate_run(dgm_run, EvalOptions(metrics=("posterior",), device="cpu"))
    assert again["kl_c"] == pytest.approx(dgm_results["kl_c"], rel=1e-6)
    assert again["mutual_info"] == pytest.approx(dgm_results["mutual_info"], rel=1e-6)


def test_unsaved_evaluation_reads_and_writes_no_metrics_file(dgm_run, tmp_path):
    # save=False: how the report evaluates a read-only run
    run = shutil.copytree(dgm_run, tmp_path / "run")
    (run / "metrics-valid.json").unlink(missing_ok=True)
    r = evaluate_run(run, EvalOptions(split="valid", metrics=("posterior",), device="cpu", save=False))
    assert "kl_z" in r and not (run / "metrics-valid.json").exists()


def test_nll_is_reproducible(dgm_run, dgm_results):
    opts = EvalOptions(metrics=("nll",), is_samples=20, device="cpu")
    a, b = evaluate_run(dgm_run, opts), evaluate_run(dgm_run, opts)
    assert a["nll"] == b["nll"]
    # same groups before it -> same random stream -> the same estimate as the full evaluation
    c = evaluate_run(dgm_run, EvalOptions(metrics=("posterior", "nll"), is_samples=20, device="cpu"))
    assert c["nll"] == pytest.approx(dgm_results["nll"], abs=1e-9)
    assert a["nll"] == pytest.approx(dgm_results["nll"], rel=0.02)  # statistically the same


def test_nll_does_not_depend_on_other_groups(dgm_run, dgm_results):
    alone = evaluate_run(dgm_run, EvalOptions(metrics=("nll",), is_samples=20, device="cpu"))
    assert alone["nll"] == pytest.approx(dgm_results["nll"], abs=1e-9)


def test_precision_fp32_bf16_and_auto(dgm_run, dgm_results, monkeypatch):
    import demvae.device as device_module

    assert dgm_results["precision"] in ("fp32", "bf16")  # auto's decision on this CPU
    opts = dict(metrics=("posterior", "nll"), is_samples=20, device="cpu")
    fp32 = evaluate_run(dgm_run, EvalOptions(**opts, precision="fp32"))
    assert fp32["precision"] == "fp32"
    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: False)
    with pytest.raises(ConfigError, match="--precision fp32"):
        evaluate_run(dgm_run, EvalOptions(**opts, precision="bf16"))
    assert evaluate_run(dgm_run, EvalOptions(**opts, precision="auto"))["precision"] == "fp32"
    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: True)  # bf16 autocast runs on any CPU
    bf16 = evaluate_run(dgm_run, EvalOptions(**opts, precision="bf16"))
    assert bf16["precision"] == "bf16"
    # the default evaluation (auto) computed exactly what the precision auto chose computes
    assert {"fp32": fp32, "bf16": bf16}[dgm_results["precision"]]["nll"] == pytest.approx(dgm_results["nll"], abs=1e-9)
    assert 0 < abs(bf16["nll"] - fp32["nll"]) < 0.05  # nats per sentence
    assert bf16["neg_elbo"] == pytest.approx(fp32["neg_elbo"], abs=0.05)
    with pytest.raises(ConfigError, match="precision 'fp16' is not one of auto, fp32, bf16"):
        evaluate_run(dgm_run, EvalOptions(**opts, precision="fp16"))


def test_missing_run_folder(tmp_path):
    from demvae.errors import DemvaeError

    with pytest.raises(DemvaeError):
        evaluate_run(tmp_path / "nope", EvalOptions(metrics=("posterior",), device="cpu"))


def test_rnnlm_run_skips_bleu_and_reports_nll(tmp_path):
    overrides = {**TINY, "train": {**TINY["train"], "max_steps": 10, "eval_every": 10}}
    run = train(compose(model="rnnlm", overrides=overrides), tmp_path / "lm")
    r = evaluate_run(run, EvalOptions(metrics=("posterior", "nll", "bleu", "clusters"), **{
        k: v for k, v in FAST.items() if k != "n_prior_samples"}))
    assert "bleu" not in r and "sacrebleu" not in r
    assert "homogeneity" not in r  # no discrete code
    assert math.isfinite(r["nll"])
    # the RNN-LM's "importance-sampled" NLL is its exact NLL, i.e. its reconstruction term
    assert r["nll"] == pytest.approx(r["rec"], rel=1e-5)
    assert r["is_ppl"] == pytest.approx(r["ppl"], rel=1e-4)


def test_embedding_metrics_of_reconstructions(dgm_run, tmp_path):
    """With --vectors, the reconstructions are scored against the references by embedding
    similarity; the numbers equal a direct call on the same sentences."""
    import numpy as np

    from demvae.data.prepare import prepare
    from demvae.evaluation.embedding import embedding_scores
    from demvae.evaluation.generation import reconstructions, references
    from demvae.training import load_run

    run = load_run(dgm_run)
    rng = np.random.default_rng(0)
    words = [w for w in run.vocab.words if not w.startswith("<")]
    path = tmp_path / "vec.txt"
    path.write_text("".join(f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=5)) + "\n" for w in words))
    opts = EvalOptions(metrics=("bleu",), device="cpu", vectors=str(path))
    emb = evaluate_run(dgm_run, opts)["embedding"]
    assert emb["n_pairs"] > 0 and all(-100 <= emb[k] <= 100 for k in ("average", "extrema", "greedy"))
    split = prepare(run.config.data, run.vocab).splits["test"]
    vectors = {w: np.array([float(x) for x in line.split()[1:]], dtype=np.float32)
               for w, line in zip(words, path.read_text().splitlines())}
    direct = embedding_scores(reconstructions(run.model, split, run.vocab), references(split, run.vocab), vectors)
    assert direct["greedy"] == pytest.approx(emb["greedy"], abs=1e-4)
    assert flat_row({"model": "m", "embedding": emb})["emb_average"] == emb["average"]


def test_embedding_lookup_is_case_sensitive_by_default(dgm_run, tmp_path):
    """As the original (SMD keeps case): a vector stored under "Hello" does not serve "hello"
    unless lower-casing is asked for."""
    import numpy as np

    from demvae.training import load_run

    run = load_run(dgm_run)
    rng = np.random.default_rng(0)
    words = [w for w in run.vocab.words if not w.startswith("<")]
    path = tmp_path / "upper.txt"
    path.write_text("".join(f"{w.upper()} " + " ".join(f"{v:.4f}" for v in rng.normal(size=5)) + "\n"
                            for w in words))
    sensitive = evaluate_run(dgm_run, EvalOptions(metrics=("bleu",), device="cpu", vectors=str(path)))
    assert sensitive["embedding"]["n_pairs"] == 0
    folded = evaluate_run(dgm_run, EvalOptions(metrics=("bleu",), device="cpu", vectors=str(path),
                                               lowercase_vectors=True))
    assert folded["embedding"]["n_pairs"] > 0


def test_an_interrupted_evaluation_never_leaves_a_less_complete_file(dgm_run, tmp_path, monkeypatch):
    """Each finished group replaces its own entries of the metrics file (atomically); a kill mid-eval keeps the
    earlier evaluation's other groups of the same model, never a partial file in place of a complete one."""
    from demvae.evaluation import run as evaluation

    run = shutil.copytree(dgm_run, tmp_path / "run")
    groups = ("posterior", "clusters")
    complete = evaluate_run(run, EvalOptions(metrics=groups, device="cpu"))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as SIGKILL would stop it: after the posterior group was written

    monkeypatch.setattr(evaluation, "_clusters", killed)
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run, EvalOptions(metrics=groups, device="cpu", seed=0))
    saved = json.loads((run / "metrics-test.json").read_text())
    assert saved.get("homogeneity") == complete["homogeneity"] and saved.get("codes_used") == complete["codes_used"]
    assert complete["model_sha256"] == hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()
    assert set(saved["groups"]) == set(groups) and "homogeneity" in saved["groups"]["clusters"]
    monkeypatch.undo()
    other = evaluate_run(run, EvalOptions(metrics=("posterior",), device="cpu", max_examples={"test": 20}))
    assert "homogeneity" not in other  # other settings: the earlier groups are not mixed in
