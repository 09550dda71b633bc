"""The command line end to end: train a tiny DGM-VAE, then sample / encode / clusters / eval / data stats.

Success paths use ``typer.testing.CliRunner``; error paths go through ``demvae.cli.main`` (the console
script's entry point, which turns a DemvaeError into ``error: ...`` on stderr and exit code 2).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from demvae.cli import app
from demvae.metrics import heading

TINY_SETS = [
    "--set", "train.max_steps=20",
    "--set", "data.options={n_train: 300, n_valid: 60, n_test: 60}",
    "--set", "model.embed_dim=16",
    "--set", "model.hidden_size=16",
    "--set", "train.progress=false",
]


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    stdout = invoke("train", "--config", "builtin/dgm-vae", *TINY_SETS, "--device", "cpu", "--out", out)
    assert f"run folder: {out}" in stdout
    for name in ("config.yaml", "vocab.json", "model.safetensors", "metrics.jsonl"):
        assert (out / name).is_file(), name
    return out


def test_train_applies_overrides(run_dir):
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["model_name"] == "dgm-vae"
    assert cfg["model"]["embed_dim"] == 16 and cfg["model"]["hidden_size"] == 16
    assert cfg["model"]["n_values"] == 8  # from the packaged config
    assert cfg["train"]["max_steps"] == 20 and cfg["train"]["progress"] is False
    assert cfg["data"]["options"] == {"n_train": 300, "n_valid": 60, "n_test": 60}


def test_sample(run_dir):
    lines = invoke("sample", run_dir, "--n", "3").splitlines()
    assert len(lines) == 3
    assert all("<s>" not in line and "<pad>" not in line for line in lines)
    assert invoke("sample", run_dir, "--n", "3").splitlines() == lines  # seeded: reproducible
    assert len(invoke("sample", run_dir, "--n", "4", "--sample-words", "--seed", "5").splitlines()) == 4


def test_sample_with_code(run_dir):
    lines = invoke("sample", run_dir, "--n", "2", "--code", "1,0").splitlines()
    assert len(lines) == 2
    assert len(invoke("sample", run_dir, "--n", "2", "--code", "7,7").splitlines()) == 2


def test_sample_with_code_names_its_procedure(run_dir):
    result = CliRunner().invoke(app, ["sample", str(run_dir), "--n", "2", "--code", "1,0"])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 2
    assert "generation procedure: rerank" in result.stderr and "temperature 0, top-p 0.9" in result.stderr
    assert (run_dir / "code_stats.json").is_file()  # saved after training
    prior = CliRunner().invoke(app, ["sample", str(run_dir), "--n", "2", "--code", "1,0", "--procedure", "prior"])
    assert "generation procedure: prior" in prior.stderr and "temperature 1" in prior.stderr
    nucleus = CliRunner().invoke(app, ["sample", str(run_dir), "--n", "2", "--code", "1,0", "--procedure", "nucleus",
                                       "--top-p", "0.5"])
    assert nucleus.exit_code == 0 and "generation procedure: nucleus" in nucleus.stderr
    assert "temperature 0, top-p 0.5" in nucleus.stderr
    zero = [invoke("sample", run_dir, "--n", "3", "--code", "1,0", "--procedure", "aggregate", "--temperature", "0",
                   "--seed", str(s)) for s in (0, 1)]
    assert zero[0] == zero[1] and len(set(zero[0].splitlines())) == 1  # temperature 0: the mean, greedy


def test_sample_unknown_procedure(run_dir, run_main):
    rc, out, err = run_main("sample", run_dir, "--n", "2", "--code", "1,0", "--procedure", "nope")
    assert rc == 2 and "unknown generation procedure 'nope'" in err and "aggregate" in err
    assert "Traceback" not in err + out


@pytest.mark.parametrize("code, needle", [
    ("99,0", "2 value(s), each in 0..7"),
    ("-1,0", "2 value(s), each in 0..7"),
    ("1", "2 value(s), each in 0..7"),
    ("a", "integers separated by commas"),
    ("", "integers separated by commas"),
])
def test_sample_bad_code(run_dir, run_main, code, needle):
    rc, out, err = run_main("sample", run_dir, "--n", "2", "--code", code)
    assert rc == 2
    assert err.startswith("error: ") and needle in err, err
    assert "Traceback" not in err + out and out == ""


def test_encode(run_dir, tmp_path):
    text = tmp_path / "in.txt"
    sentences = ["could you please tell me the weather in paris today ?", "", "call mom", "wake me up at six am"]
    text.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    lines = invoke("encode", run_dir, text).splitlines()
    assert len(lines) == 4 and lines[1] == ""  # one output line per input line (issue 21, row 10)
    for line, sentence in zip(lines, sentences):
        if not sentence:
            continue
        code, prob, echoed = line.split("\t")
        assert [0 <= int(c) < 8 for c in code.split(",")] == [True, True]  # 2 variables x 8 values
        assert 0 < float(prob) <= 1
        assert echoed == sentence


def test_encode_missing_file(run_dir, tmp_path, run_main):
    rc, out, err = run_main("encode", run_dir, tmp_path / "nope.txt")
    assert rc == 2 and "nope.txt" in err and "not found" in err and "Traceback" not in err


def test_clusters(run_dir):
    out = invoke("clusters", run_dir, "--generated", "1", "--top", "2")
    assert "codes used on test (60 examples)" in out
    heads = [line for line in out.splitlines() if line.startswith("code ")]
    assert heads, out
    assert all("size" in h and "intent:" in h and "style:" in h for h in heads)
    assert "codes vs gold labels" in out and "homogeneity" in out
    assert "| codes | intent |" in out and "| baseline | intent |" in out  # the codes beside the lexical baseline
    assert "> baseline: k-means with" in out
    assert sum(1 for line in out.splitlines() if line.startswith("  > ")) == len(heads)  # 1 generated each
    assert "generation procedure: rerank (the best of 4 nucleus sentences by q(code|x)" in out
    assert "words sampled; generation procedure" in out


def test_eval_table(run_dir):
    out = invoke("eval", run_dir, "--metrics", "posterior,clusters", "--device", "cpu")
    assert "test split" in out
    for key in ("kl_z", "kl_c", "param_var", "mutual_info", "homog_intent"):  # columns titled by the registry
        assert f"| {heading(key)} |" in out, key
    assert "| model |" in out and "dgm-vae" in out
    assert heading("bleu") not in out and heading("rppl") not in out  # groups not asked for
    assert (run_dir / "metrics-test.json").is_file()


def test_eval_unknown_group(run_dir, run_main):
    rc, out, err = run_main("eval", run_dir, "--metrics", "posterior,nope", "--device", "cpu")
    assert rc == 2 and "unknown metric group" in err and "nope" in err and "Traceback" not in err


def test_eval_nll_within_max_memory(run_dir, run_main):
    out = invoke("eval", run_dir, "--metrics", "nll", "--is-samples", "8", "--max-memory", "64", "--device", "cpu")
    assert f"| {heading('nll')} |" in out and "dgm-vae" in out
    rc, out, err = run_main("eval", run_dir, "--metrics", "nll", "--max-memory", "0.001", "--device", "cpu")
    assert rc != 0 and "error: max_memory" in err and "Traceback" not in err


def test_data_stats_builtin():
    out = invoke("data", "stats")
    assert "examples" in out and "tokens" in out
    assert "8,000" in out  # the built-in training split's default size
    assert "label 'intent'" in out and "label 'style'" in out


def test_models_lists_presets():
    out = invoke("models")
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert {"rnnlm", "dgm-vae", "gm-vae", "vae"} <= set(names)


def test_python_dash_m_runs_the_cli():
    """``python -m demvae`` is the command line (``torchrun -m demvae train ...`` starts it on every rank)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "demvae", "models"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "dgm-vae" in out.stdout
