"""Bad input through the command line: one ``error: ...`` line on stderr, exit code 2, no traceback.

Most cases run ``demvae.cli.main`` in-process (the console script's entry point); two run the installed
``demvae`` script in a subprocess to check the real exit code and stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY_DATA = "data.options={n_train: 40, n_valid: 10, n_test: 10}"
TINY = ["--set", TINY_DATA, "--set", "model.embed_dim=16", "--set", "model.hidden_size=16",
        "--set", "train.progress=false", "--set", "train.max_steps=1", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch, tmp_path):
    monkeypatch.delenv("DEMVAE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # a default run folder (runs/...) would land here, never in the repository


def assert_clean_error(rc: int, out: str, err: str, *needles: str) -> None:
    """Exit 2 and one ``error:`` line (``warning:`` lines may come before it), no traceback."""
    assert rc == 2, (rc, out, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def test_unknown_set_key_lists_valid_keys(run_main):
    rc, out, err = run_main("train", "--set", "train.bogus=1")
    assert_clean_error(rc, out, err, "train.bogus", "valid keys", "max_steps", "batch_size", "lr")


@pytest.mark.parametrize("args, needles", [
    (["--set", "bogus.key=1"], ["unknown section", "bogus"]),
    (["--set", "train.lr=abc"], ["train.lr", "expected float"]),
    (["--set", "trainlr"], ["section.key=value"]),
    (["--set", "a.b.c=1"], ["section.key"]),
    (["--set", "model.latent=foo"], ["model.latent", "foo"]),
])
def test_bad_set_values(run_main, tmp_path, args, needles):
    rc, out, err = run_main("train", *TINY, *args, "--out", tmp_path / "run")
    assert_clean_error(rc, out, err, *needles)


def test_unknown_model(run_main):
    rc, out, err = run_main("train", "--model", "nope")
    assert_clean_error(rc, out, err, "unknown model 'nope'", "dgm-vae", "rnnlm")


def test_missing_config_file(run_main):
    rc, out, err = run_main("train", "--config", "missing.yaml")
    assert_clean_error(rc, out, err, "missing.yaml", "not found", "builtin/dgm-vae")


def test_invalid_yaml_config(run_main, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n", encoding="utf-8")
    rc, out, err = run_main("train", "--config", bad)
    assert_clean_error(rc, out, err, "bad.yaml", "invalid YAML")


def test_unknown_corpus_name(run_main, tmp_path):
    rc, out, err = run_main("train", "--corpus", "nosuchcorpus", *TINY[2:], "--out", tmp_path / "run")
    assert_clean_error(rc, out, err, "unknown corpus 'nosuchcorpus'", "builtin", "ptb")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_data_stats_ptb_without_data_dir(run_main):
    rc, out, err = run_main("data", "stats", "ptb")
    assert_clean_error(rc, out, err, "'ptb'", "--data-dir", "DEMVAE_DATA")


def test_data_stats_missing_data_dir(run_main, tmp_path):
    rc, out, err = run_main("data", "stats", "ptb", "--data-dir", tmp_path / "nope")
    assert_clean_error(rc, out, err, "nope", "not found")


@pytest.mark.parametrize("command", [["sample"], ["encode"], ["clusters"], ["eval", "--device", "cpu"]])
def test_missing_run_folder(run_main, tmp_path, command):
    extra = [tmp_path / "x.txt"] if command == ["encode"] else []
    rc, out, err = run_main(command[0], tmp_path / "missing", *extra, *command[1:])
    assert_clean_error(rc, out, err, "run folder not found", "missing")


def test_resume_without_checkpoint(run_main, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = run_main("train", "--resume", empty)
    assert_clean_error(rc, out, err, "config")
    # a folder with the config and vocabulary of a run but no checkpoint
    half = tmp_path / "half"
    rc, out, err = run_main("train", *TINY, "--out", half)
    assert rc == 0, err
    import shutil

    shutil.rmtree(half / "last")  # its best model is still there: not silently retrained
    rc, out, err = run_main("train", "--resume", half)
    assert_clean_error(rc, out, err, "no resumable checkpoint", str(half))
    (half / "model.safetensors").unlink()  # killed before its first checkpoint: trained again from step 0
    rc, out, err = run_main("train", "--resume", half)
    assert rc == 0 and "no checkpoint yet" in err, err


def test_resume_cannot_change_the_model(run_main, tmp_path):
    run = tmp_path / "run"
    assert run_main("train", *TINY, "--out", run)[0] == 0
    rc, out, err = run_main("train", "--resume", run, "--set", "model.n_units=3")
    assert_clean_error(rc, out, err, "only train.* can change")


def test_train_twice_into_the_same_folder(run_main, tmp_path):
    run = tmp_path / "run"
    assert run_main("train", *TINY, "--out", run)[0] == 0
    rc, out, err = run_main("train", *TINY, "--out", run)
    assert_clean_error(rc, out, err, "already holds a run", "--resume")


def _bad_utf8(tmp_path: Path) -> Path:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello there world\nthis is \xff bad\nanother line\n")
    return bad


def test_corpus_with_invalid_utf8(run_main, tmp_path):
    bad = _bad_utf8(tmp_path)
    rc, out, err = run_main("train", "--corpus", bad, *TINY[2:], "--out", tmp_path / "run")
    assert_clean_error(rc, out, err, f"{bad}:2:", "invalid UTF-8", "0xff")
    rc, out, err = run_main("data", "stats", bad)
    assert_clean_error(rc, out, err, f"{bad}:2:", "invalid UTF-8")


def test_missing_corpus_file(run_main, tmp_path):
    rc, out, err = run_main("data", "stats", tmp_path / "nope.txt")
    assert_clean_error(rc, out, err, "nope.txt", "not found")


# --- the installed console script ---------------------------------------------------------------------


def _script() -> list[str]:
    exe = Path(sys.executable).with_name("demvae")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "demvae.cli"]


def _run_script(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DEMVAE_DATA", None)
    return subprocess.run([*_script(), *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


def test_script_unknown_key_exit_code(tmp_path):
    proc = _run_script("train", "--set", "train.bogus=1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown key(s) train.bogus; valid keys:")
    assert "Traceback" not in proc.stderr + proc.stdout and proc.stdout == ""


def test_script_bad_utf8_exit_code(tmp_path):
    bad = _bad_utf8(tmp_path)
    proc = _run_script("data", "stats", bad, cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{bad}:2:" in proc.stderr and "Traceback" not in proc.stderr


# --- bad input that still ends in a traceback (bugs) -------------------------------------------------------


def test_set_with_malformed_yaml_value(run_main):
    rc, out, err = run_main("train", "--set", "data.options={n_train:")
    assert_clean_error(rc, out, err, "data.options")


@pytest.mark.parametrize("command", [["eval", "--metrics", "posterior", "--device", "cpu"], ["clusters"]])
def test_unknown_split(run_main, tmp_path, command):
    run = tmp_path / "run"
    assert run_main("train", *TINY, "--out", run)[0] == 0
    rc, out, err = run_main(command[0], run, "--split", "bogus", *command[1:])
    assert_clean_error(rc, out, err, "bogus")


@pytest.mark.parametrize("item", ["train.device=tpu", "data.max_len=1", "train.batch_size=0",
                                  "train.select_metric=foo", "train.amp=bf16"])
def test_out_of_range_set_values(run_main, tmp_path, item):
    rc, out, err = run_main("train", *TINY, "--set", item, "--out", tmp_path / "run")
    assert_clean_error(rc, out, err, item.split("=")[0].split(".")[1])


def test_sample_negative_n(run_main, tmp_path):
    run = tmp_path / "run"
    assert run_main("train", *TINY, "--out", run)[0] == 0
    rc, out, err = run_main("sample", run, "--n", "-1")
    assert rc == 2 and "Traceback" not in out + err and "--n" in err


# --- numbers as people write them (issue 21, rows 6 and 8) ---------------------------------------------------------

@pytest.mark.parametrize("key, text, value", [
    ("train.lr", "1e-3", 0.001), ("objective.beta", ".5", 0.5), ("train.grad_clip", "1E4", 1e4),
    ("objective.anneal_k", "-2e-5", -2e-5), ("train.min_lr", "1.0e-06", 1e-6), ("model.dropout", "0", 0.0),
])
def test_float_fields_read_numbers_as_people_write_them(run_main, tmp_path, key, text, value):
    """YAML 1.1 reads 1e-3, 1E4 and -2e-5 as strings; a float field takes them, from --set and from a file."""
    import yaml

    section, name = key.split(".")
    rc, out, err = run_main("config", "show", "dgm-vae", "--set", f"{key}={text}")
    assert rc == 0, err
    shown = yaml.safe_load(out)
    assert shown[section][name] == pytest.approx(value)
    (tmp_path / "mine.yaml").write_text(f"model_name: dgm-vae\n{section}:\n  {name}: {text}\n")
    rc, out, err = run_main("config", "show", tmp_path / "mine.yaml")
    assert rc == 0, err
    assert yaml.safe_load(out)[section][name] == pytest.approx(value)


def test_config_show_output_is_a_config_file(run_main, tmp_path):
    """What `config show` prints reads back as the same config (data_dir stays null, 1e-06 stays a number)."""
    rc, shown, err = run_main("config", "show", "builtin/dgm-vae", "--set", "train.lr=2e-4")
    assert rc == 0, err
    (tmp_path / "shown.yaml").write_text(shown)
    rc, again, err = run_main("config", "show", tmp_path / "shown.yaml")
    assert rc == 0, err
    assert again.splitlines()[1:] == shown.splitlines()[1:]  # the first line names the source


@pytest.mark.parametrize("setting, needle", [
    ("data.max_examples={train: .nan}", "data.max_examples.train: expected int"),
    ("model.supervise={act: x}", "model.supervise.act: expected int"),
    ("data.max_examples={1: 5}", "data.max_examples key: expected str"),
])
def test_mapping_values_are_typed(run_main, tmp_path, setting, needle):
    rc, out, err = run_main("train", *TINY, "--set", setting, "--out", tmp_path / "run")
    assert_clean_error(rc, out, err, needle)


@pytest.mark.parametrize("text", [".nan", "nan", ".NaN", "inf", ".inf", "-.inf", "Infinity", "1e999"])
def test_nan_and_inf_are_refused_with_the_fields_name(run_main, tmp_path, text):
    rc, out, err = run_main("train", *TINY, "--set", f"train.lr={text}", "--out", tmp_path / "run")
    assert_clean_error(rc, out, err, "train.lr", "finite")
    (tmp_path / "mine.yaml").write_text(f"objective:\n  beta: {text}\n")
    rc, out, err = run_main("train", *TINY, "--config", tmp_path / "mine.yaml", "--out", tmp_path / "run")
    assert_clean_error(rc, out, err, "objective.beta", "finite")
    assert not (tmp_path / "run").exists()
