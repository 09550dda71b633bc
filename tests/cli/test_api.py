"""The Python API (:mod:`demvae.api`): each function called from Python gives what its command prints, since the
command is argument parsing, that one call, and printing."""

from __future__ import annotations

import json

import pytest

from demvae import api
from demvae.errors import ConfigError, DemvaeError, RunFinished


@pytest.fixture
def run_main(monkeypatch):
    """``run_main(*args)``: the console script in-process -> (exit code, stdout, stderr), read through
    redirected streams (pytest's capsys, set up after the session's training run, reads a closed file here)."""
    import contextlib
    import io
    import sys

    from demvae.cli import main

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["demvae", *map(str, args)])
        out, err, code = io.StringIO(), io.StringIO(), 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code, out.getvalue(), err.getvalue()

    return run


TINY = {"data": {"options": {"n_train": 120, "n_valid": 60, "n_test": 60}},
        "model": {"embed_dim": 16, "hidden_size": 16},
        "train": {"progress": False, "threads": 1, "max_steps": 4, "eval_every": 4}}


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """A tiny VAE (no discrete code) trained through the API."""
    return api.train(model="vae", out=tmp_path_factory.mktemp("api") / "vae", overrides=TINY, corpus="builtin",
                     device="cpu")


def test_train_writes_a_run_with_the_overrides(plain_run):
    import yaml

    cfg = yaml.safe_load((plain_run / "config.yaml").read_text())
    assert cfg["model_name"] == "vae" and cfg["model"]["hidden_size"] == 16 and cfg["train"]["max_steps"] == 4
    assert (plain_run / "model.safetensors").is_file()


def test_resume_of_a_finished_run_says_so(small_run):
    with pytest.raises(RunFinished, match="is finished"):
        api.resume(small_run)


@pytest.mark.parametrize("call", [lambda run: api.sample(run, 2, code=[0]), lambda run: api.encode(run, ["a"]),
                                  lambda run: api.clusters(run)], ids=["sample", "encode", "clusters"])
def test_a_run_without_a_discrete_code_is_refused_at_the_call(plain_run, call):
    with pytest.raises(DemvaeError, match="has no discrete code"):
        call(plain_run)


def test_sample_from_the_prior_has_no_code_to_check(plain_run):
    assert len(list(api.sample(plain_run, 3))) == 3


def test_sample_is_the_commands_output(small_run, run_main):
    lines = list(api.sample(small_run, 5, seed=3))
    rc, out, err = run_main("sample", small_run, "--n", 5, "--seed", 3)
    assert rc == 0, err
    assert len(lines) == 5 and out.splitlines() == lines
    assert list(api.sample(small_run, 5, seed=3)) == lines != list(api.sample(small_run, 5, seed=4))


def test_sample_with_a_code_takes_a_list_or_the_commands_text(small_run, run_main):
    from demvae.training import load_run

    m = load_run(small_run).model.code_shape()[0]
    code = [1] * m
    lines = list(api.sample(small_run, 4, code=code, procedure="mode"))
    assert lines == list(api.sample(small_run, 4, code=",".join("1" * m), procedure="mode"))
    rc, out, err = run_main("sample", small_run, "--n", 4, "--code", ",".join("1" * m), "--procedure", "mode")
    assert rc == 0 and out.splitlines() == lines, err
    with pytest.raises(DemvaeError):
        api.sample(small_run, 1, code=[99] * m)  # checked at the call, before any sentence is read


def test_encode_reads_sentences_or_a_file(small_run, run_main, tmp_path):
    sentences = ["call mom", "", "what is the weather like"]
    lines = list(api.encode(small_run, sentences))
    assert len(lines) == 3 and lines[1] == "" and lines[0].endswith("\tcall mom")
    path = tmp_path / "in.txt"
    path.write_text("\n".join(sentences) + "\n")
    assert list(api.encode(small_run, path)) == lines == list(api.encode(small_run, str(path)))
    rc, out, err = run_main("encode", small_run, path)
    assert rc == 0 and out.split("\n")[:-1] == lines, err


def test_clusters_is_the_commands_text(small_run, run_main):
    text = api.clusters(small_run, "valid", top=2, generated=1)
    rc, out, err = run_main("clusters", small_run, "--split", "valid", "--top", 2, "--generated", 1)
    assert rc == 0, err
    assert out == text + "\n" and "code" in text


def test_evaluate_returns_what_it_writes(small_run, tmp_path):
    before = sorted(p.name for p in small_run.iterdir())
    results = api.evaluate(small_run, metrics=["posterior"], out=tmp_path, device="cpu")
    written = json.loads((tmp_path / "metrics-test.json").read_text())
    assert results["kl_c"] == written["kl_c"] and results["groups"] == {"posterior": written["groups"]["posterior"]}
    assert sorted(p.name for p in small_run.iterdir()) == before  # written to out, not into the run
    with pytest.raises(ConfigError, match="unknown metric group"):
        api.evaluate(small_run, metrics=["nope"], out=tmp_path)


def test_respond_needs_a_dialog_run(small_run):
    with pytest.raises(ConfigError, match="needs a dialog run"):
        api.respond(small_run, "hello")


def test_respond_is_the_commands_table(dialog_run, run_main):
    found = api.respond(dialog_run, "Find me a gas station.", n=3)
    rc, out, err = run_main("respond", dialog_run, "--context", "Find me a gas station.", "--n", 3)
    assert rc == 0, err
    assert len(found.replies) == 3 and out == str(found) + "\n" and found.unknown == []
    probs = [r.probability for r in found.replies]
    assert probs == sorted(probs, reverse=True)


def test_report_writes_one_page(small_run, tmp_path):
    path = api.report([small_run], tmp_path / "page.html", device="cpu")
    assert path == tmp_path / "page.html" and "<html" in path.read_text()[:500].lower()
