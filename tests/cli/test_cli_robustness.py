"""The command line under bad input and faults (issue 14): one ``error:`` line and exit 2 per
expected failure, Ctrl-C saves and says how to resume, run folders are owned by one writer, and a
failure never changes a file of an existing run.

In-process cases run ``demvae.cli.main``; the signal cases run the console script in a subprocess.
File-system faults (read-only folders, a full disk) are simulated by patching the one call that
would fail, since the tests may run as root, whom permission bits do not stop.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_checks import one_error, snapshot

import demvae
from demvae.training.run_folder import RunLock

SMALL = ["--set", "data.options={n_train: 120, n_valid: 60, n_test: 60}", "--set", "model.embed_dim=16",
         "--set", "model.hidden_size=16", "--set", "train.progress=false", "--device", "cpu",
         "--set", "train.threads=1"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("DEMVAE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def run(small_run):
    return small_run  # (tests/cli/conftest.py)


@pytest.fixture
def copy(run, tmp_path):
    return shutil.copytree(run, tmp_path / "copy")


# --- configuration and arguments -----------------------------------------------------------------

@pytest.mark.parametrize("setting,needle", [
    ("model.hidden_size=256", "tie_output needs model.embed_dim == model.hidden_size"),
    ("model.hidden_size=64", "tie_output needs model.embed_dim == model.hidden_size"),
    ("model.dropout=1.5", "model.dropout: 1.5 must lie in [0, 1)"),
])
def test_bad_model_settings(run_main, setting, needle, tmp_path):
    one_error(*run_main("train", "--config", "builtin/dgm-vae", "--set", setting, "--out", tmp_path / "r"), needle)
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda(run_main, tmp_path):
    one_error(*run_main("train", "--config", "builtin/dgm-vae", *SMALL[:-4], "--device", "cuda",
                        "--out", tmp_path / "r"), "no CUDA device")


def test_unknown_device(run_main, copy):
    before = snapshot(copy)
    one_error(*run_main("sample", copy, "--device", "foo"), "unknown device 'foo'")
    assert snapshot(copy) == before


@pytest.mark.parametrize("args", [("eval", "RUN", "--is-samples", "0"), ("eval", "RUN", "--n-prior", "0"),
                                  ("data", "stats", "--max-len", "0")])
def test_out_of_range_options(run_main, copy, args):
    rc, out, err = run_main(*[copy if a == "RUN" else a for a in args])
    assert rc == 2 and "Traceback" not in out + err and ("Invalid value" in err or "range" in err), err


def test_a_run_whose_config_cannot_build(run_main, copy):
    cfg = (copy / "config.yaml").read_text().replace("embed_dim: 16", "embed_dim: 24")
    (copy / "config.yaml").write_text(cfg)
    before = snapshot(copy)
    one_error(*run_main("sample", copy), "embed_dim == model.hidden_size")
    assert snapshot(copy) == before


def test_config_show_documents_every_key(run_main):
    rc, out, err = run_main("config", "show", "builtin/dgm-vae")
    assert rc == 0
    assert "n_variables: 2" in out and "# M: discrete latent variables" in out
    assert "threads: 0" in out


# --- the file system -----------------------------------------------------------------------------

def _deny_writes_under(monkeypatch, folder: Path, err=errno.EACCES):
    """Make every file creation under ``folder`` fail as a read-only or full file system would."""
    import tempfile

    real_mkstemp, real_mkdtemp, real_open = tempfile.mkstemp, tempfile.mkdtemp, os.open

    def under(path) -> bool:
        return str(Path(path).resolve()).startswith(str(folder.resolve()))

    def mkstemp(*a, dir=None, **k):
        if dir is not None and under(dir):
            raise OSError(err, os.strerror(err), str(dir))
        return real_mkstemp(*a, dir=dir, **k)

    def mkdtemp(*a, dir=None, **k):
        if dir is not None and under(dir):
            raise OSError(err, os.strerror(err), str(dir))
        return real_mkdtemp(*a, dir=dir, **k)

    def os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(path):
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(os, "open", os_open)


def test_read_only_out(run_main, monkeypatch, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    _deny_writes_under(monkeypatch, folder)
    one_error(*run_main("train", "--config", "builtin/dgm-vae", *SMALL, "--set", "train.max_steps=2",
                        "--out", folder / "run"), "permission denied", "--out")


def test_resume_of_a_read_only_run(run_main, monkeypatch, copy):
    before = snapshot(copy)
    _deny_writes_under(monkeypatch, copy, errno.EROFS)
    one_error(*run_main("train", "--resume", copy, "--set", "train.max_steps=12"), "read-only")
    assert snapshot(copy) == before


def test_eval_of_a_read_only_run_says_so_first_and_writes_to_out(run_main, monkeypatch, copy, tmp_path):
    before = snapshot(copy)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == copy and m & os.W_OK else real_access(p, m))
    t = time.perf_counter()
    one_error(*run_main("eval", copy, "--metrics", "posterior", "--device", "cpu"), "read-only", "--out")
    assert time.perf_counter() - t < 10  # refused before computing anything
    rc, out, err = run_main("eval", copy, "--metrics", "posterior", "--device", "cpu", "--out", tmp_path / "m")
    assert rc == 0 and (tmp_path / "m" / "metrics-test.json").is_file()
    assert snapshot(copy) == before


def test_disk_full_during_a_checkpoint(run_main, monkeypatch, copy):
    from demvae.training import state_file

    before = snapshot(copy)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "model.safetensors")

    monkeypatch.setattr(state_file, "save_file", full)  # every safetensors file of a checkpoint
    one_error(*run_main("train", "--resume", copy, "--set", "train.max_steps=12"), "disk is full",
              f"demvae train --resume {copy}")  # the run's own folder (issue 21, row 13)
    after = snapshot(copy)
    checkpoint = [k for k in before if k.startswith("last/") or k == "model.safetensors"]
    assert {k: after[k] for k in checkpoint} == {k: before[k] for k in checkpoint}  # the checkpoint is intact
    monkeypatch.undo()
    rc, out, err = run_main("train", "--resume", copy, "--set", "train.max_steps=12")  # space is back
    assert rc == 0, err


# --- owning a run folder -------------------------------------------------------------------------

def test_a_second_writer_is_refused_with_the_holders_pid(run_main, copy):
    before = snapshot(copy)
    lock = RunLock(copy).acquire()
    try:
        one_error(*run_main("train", "--resume", copy, "--set", "train.max_steps=12"),
                  "another process", f"pid {os.getpid()}")
        one_error(*run_main("train", "--config", "builtin/dgm-vae", *SMALL, "--out", copy, "--force"),
                  "another process")
    finally:
        lock.release()
    assert snapshot(copy) == before


def test_a_fresh_train_refuses_a_folder_that_holds_a_run(run_main, copy):
    shutil.rmtree(copy / "last")  # a run whose resumable state is gone is still a run
    before = snapshot(copy)
    one_error(*run_main("train", "--config", "builtin/dgm-vae", *SMALL, "--set", "train.max_steps=2", "--out", copy),
              "already holds a run", "--force")
    assert snapshot(copy) == before
    rc, out, err = run_main("train", "--config", "builtin/dgm-vae", *SMALL, "--set", "train.max_steps=2",
                            "--out", copy, "--force")
    assert rc == 0 and json.loads((copy / "last" / "trainer_state.json").read_text())["step"] == 2


def test_resume_flags_that_would_be_ignored_are_an_error(run_main, copy):
    before = snapshot(copy)
    one_error(*run_main("train", "--resume", copy, "--out", "elsewhere"), "--out", "--resume")
    one_error(*run_main("train", "--resume", copy, "--model", "vae"), "--model")
    one_error(*run_main("train", "--resume", copy, "--set", "train.max_steps=12", "--corpus", "other.txt"),
              "--corpus other.txt", "no such file")
    assert snapshot(copy) == before


def test_resume_of_a_finished_run_says_so(run_main, copy):
    before = snapshot(copy)
    rc, out, err = run_main("train", "--resume", copy)
    assert rc == 0 and "is finished" in err and "train.max_steps" in err
    assert snapshot(copy) == before


def test_resume_cleans_leftovers_and_truncates_the_log(run_main, copy):
    state = json.loads((copy / "last" / "trainer_state.json").read_text())
    (copy / ".last.abc123").mkdir()
    (copy / ".config.yaml.x.tmp").write_text("half")
    with open(copy / "metrics.jsonl", "a") as f:  # records a killed run wrote after its checkpoint
        f.write(json.dumps({"kind": "train", "step": state["step"] + 3, "loss": 1.0}) + "\n")
    rc, out, err = run_main("train", "--resume", copy, "--set", "train.max_steps=12")
    assert rc == 0, err
    steps = [json.loads(line)["step"] for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(state["step"] + 3) == 0 or steps[-1] == 12
    assert not (copy / ".last.abc123").exists() and not (copy / ".config.yaml.x.tmp").exists()


def test_a_torn_last_log_line_is_dropped_on_resume(run_main, copy):
    """A full disk (or a kill) while appending to metrics.jsonl leaves half a line: resume, as the error
    advises, drops it with a warning instead of failing on it."""
    with open(copy / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "step": 9, "lo')
    rc, out, err = run_main("train", "--resume", copy, "--set", "train.max_steps=12")
    assert rc == 0 and "Traceback" not in err, err
    assert "warning:" in err and "metrics.jsonl" in err and "half-written" in err
    records = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 12


def test_a_bad_log_line_inside_the_log_is_one_error(run_main, copy):
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    (copy / "metrics.jsonl").write_text("\n".join([lines[0], "{oops", *lines[1:]]) + "\n")
    one_error(*run_main("train", "--resume", copy, "--set", "train.max_steps=12"), "metrics.jsonl:2", "delete")


# --- data --------------------------------------------------------------------------------------

def _text_corpus(path: Path, n: int = 200) -> Path:
    rng = random.Random(0)
    words = "alpha beta gamma delta epsilon zeta eta theta".split()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) + "\n" for _ in range(n)))
    return path


def test_a_run_used_from_elsewhere_and_an_edited_corpus(run_main, tmp_path, monkeypatch):
    work = tmp_path / "work"
    corpus = _text_corpus(work / "data" / "corpus.txt")
    monkeypatch.chdir(work)
    rc, out, err = run_main("train", "--config", "builtin/dgm-vae", "--corpus", "data/corpus.txt", *SMALL[2:],
                            "--set", "train.max_steps=2", "--out", "run")
    assert rc == 0, err
    monkeypatch.chdir(tmp_path)  # elsewhere: the relative path no longer resolves
    rc, out, err = run_main("clusters", work / "run", "--generated", "0")
    assert rc == 0, err
    record = json.loads((work / "run" / "corpus.json").read_text())
    assert record["path"] == str(corpus.resolve()) and len(record["files"]["corpus.txt"]) == 64
    before = snapshot(work / "run")
    corpus.write_text(corpus.read_text() + "a new sentence\n")
    one_error(*run_main("clusters", work / "run"), "corpus changed since training", "--force")
    rc, out, err = run_main("clusters", work / "run", "--force", "--generated", "0")
    assert rc == 0 and "warning: the corpus changed" in err
    moved = tmp_path / "moved.txt"
    shutil.move(corpus, moved)
    one_error(*run_main("eval", work / "run", "--metrics", "posterior", "--device", "cpu"), "--corpus")
    rc, out, err = run_main("eval", work / "run", "--metrics", "posterior", "--device", "cpu",
                            "--corpus", moved, "--force")
    assert rc == 0, err
    assert {k: v for k, v in snapshot(work / "run").items() if not k.startswith("metrics-")} == before


def test_resume_checks_the_corpus_it_trains_on(run_main, tmp_path, monkeypatch):
    """``train --resume`` finds and checks the run's corpus as ``eval`` does: an edited corpus, or another file
    under the same relative name, is refused (unless --force); a moved copy is found with --corpus."""
    work = tmp_path / "work"
    corpus = _text_corpus(work / "data" / "corpus.txt")
    original = corpus.read_bytes()
    monkeypatch.chdir(work)
    rc, out, err = run_main("train", "--config", "builtin/dgm-vae", "--corpus", "data/corpus.txt", *SMALL[2:],
                            "--set", "train.max_steps=2", "--set", "train.eval_every=2", "--out", "run")
    assert rc == 0, err
    run = work / "run"
    before = snapshot(run)
    more = ("--set", "train.max_steps=4")
    corpus.write_text(corpus.read_text() + "a new sentence\n")  # edited after training
    one_error(*run_main("train", "--resume", run, *more), "corpus changed since training", "--force")
    assert snapshot(run) == before
    corpus.write_bytes(original)
    elsewhere = tmp_path / "elsewhere"
    _text_corpus(elsewhere / "data" / "corpus.txt", n=150)  # the same relative name, another file
    monkeypatch.chdir(elsewhere)
    one_error(*run_main("train", "--resume", run, *more), "corpus changed since training")
    assert snapshot(run) == before
    moved = tmp_path / "moved.txt"
    shutil.move(corpus, moved)  # the same bytes, elsewhere
    monkeypatch.chdir(work)
    one_error(*run_main("train", "--resume", run, *more), "not found from here", "--corpus")
    assert snapshot(run) == before
    rc, out, err = run_main("train", "--resume", run, *more, "--corpus", moved)
    assert rc == 0 and "corpus" not in err, err  # found, unchanged: nothing to say about it
    assert json.loads((run / "last" / "trainer_state.json").read_text())["step"] == 4
    moved.write_text(moved.read_text() + "one more\n")
    rc, out, err = run_main("train", "--resume", run, "--set", "train.max_steps=6", "--force")
    assert rc == 0 and "warning: the corpus changed since training" in err, err


def test_encode_reads_the_text_of_a_jsonl_file(run_main, copy, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"text": "could you play some jazz", "id": 7}) + "\n")
    rc, out, err = run_main("encode", copy, path)
    assert rc == 0, err
    code, p, text = out.strip().split("\t")
    assert text == "could you play some jazz" and "{" not in out and "," in code


def test_one_code_format_everywhere(run_main, copy):
    rc, out, err = run_main("clusters", copy, "--generated", "0", "--max-clusters", "1")
    assert rc == 0
    code = next(line.split()[1] for line in out.splitlines() if line.startswith("code "))
    assert "," in code and "-" not in code
    same = [run_main("sample", copy, "--n", "2", "--code", c)[1] for c in (code, code.replace(",", "-"))]
    assert same[0] == same[1] and same[0].strip()


def test_jsonl_identifier_fields_are_not_labels(run_main, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"text": f"w{i % 7} w{i % 5}", "id": i, "topic": "ab"[i % 2]}) + "\n"
                            for i in range(100)))
    rc, out, err = run_main("data", "stats", path)
    assert rc == 0 and "topic" in out and "note: JSONL field(s) id not used as labels" in out


def test_eval_fits_a_small_split_and_names_its_columns(run_main, copy):
    rc, out, err = run_main("eval", copy, "--device", "cpu")
    assert rc == 0, err
    assert "50 IS samples" in err and "1,000 prior samples" in err and "≤ 100 steps" in err
    header = next(line for line in out.splitlines() if line.startswith("| model"))
    for column in ("NLL ↓", "PPL ↓", "Homogeneity intent ↑", "Homogeneity style ↑"):  # the registry's headings
        assert f" {column} " in header, header
    assert "- NLL: importance-sampled upper bound" in out and "- Homogeneity: joint argmax code" in out


def test_run_files_are_world_readable(run):
    for path in run.rglob("*"):
        if path.is_file() and path.name != ".lock":
            assert path.stat().st_mode & 0o644 == 0o644, path


def test_busy_cpu_and_paper_sizes_warn():
    from demvae.config import compose
    from demvae.runs import size_warning

    assert "GPU job" in size_warning(compose(model="dgm-vae"), "cpu")
    assert size_warning(compose(model="dgm-vae"), "cuda") is None
    small = compose(config="builtin/dgm-vae", overrides={"train": {"threads": 1}})
    assert size_warning(small, "cpu") is None


# --- signals: Ctrl-C and kill -9, then resume ------------------------------------------------------

SIGNAL_RUN = ["train", "--config", "builtin/dgm-vae", *SMALL, "--set", "train.max_steps=60",
              "--set", "train.eval_every=20", "--set", "train.log_every=5"]
TIMING = ("tokens_per_s", "sentences_per_s", "seconds")


CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(demvae.__file__).parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}
"""The console script in a subprocess runs the demvae under test (the tests change the working directory)."""


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "demvae.cli", *map(str, args)], capture_output=True, text=True,
                          env=CHILD_ENV, **kw)


def _records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("signals") / "reference"
    result = _cli(*SIGNAL_RUN, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def _ctrl_c_default() -> None:
    """Ctrl-C as in a terminal, for a child: a suite started in the background (``cmd &``) ignores SIGINT, and its
    children would inherit that, so a signal test would see a run that never stops."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def ctrl_c_as_in_a_terminal():
    """The same for this process (an in-process command), restored after the test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt(out: Path, sig: int, seed: int) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([sys.executable, "-m", "demvae.cli", *SIGNAL_RUN, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CHILD_ENV,
                            preexec_fn=_ctrl_c_default)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # training has started
    time.sleep(random.Random(seed).uniform(0.0, 1.0))
    if proc.poll() is None:
        proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interrupted_training_resumes_to_the_same_weights_and_log(reference, tmp_path, sig, seed):
    out = tmp_path / "run"
    first = _interrupt(out, sig, seed)
    if first.returncode == 0 or "best validation" in first.stdout:  # the summary: training had ended
        pytest.skip("the run finished before the signal arrived (a slow start)")
    if sig == signal.SIGINT:
        assert first.returncode == 130, first.stderr
        assert f"resume with: demvae train --resume {out}" in first.stderr and "Traceback" not in first.stderr
        if "interrupted at step" in first.stderr:  # (a signal before the first step stops at once instead)
            state = json.loads((out / "last" / "trainer_state.json").read_text())
            assert f"interrupted at step {state['step']}" in first.stderr
    else:
        assert first.returncode == -signal.SIGKILL
    resumed = _cli("train", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    for name in ("model.safetensors", "last/model.safetensors"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert _records(out) == _records(reference)
    assert not list(out.glob(".last.*")) and not list(out.glob(".*.tmp"))


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="watches /proc/PID/maps")
def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    """SIGINT while the command still loads torch (a second or more): one line, exit 130, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "demvae.cli", *SIGNAL_RUN, "--out", str(tmp_path / "run")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CHILD_ENV,
                            preexec_fn=_ctrl_c_default)
    maps, deadline = Path(f"/proc/{proc.pid}/maps"), time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and "torch/lib" not in maps.read_text():
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)  # torch's libraries are loading
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if line.strip()] == ["interrupted"]


def test_ctrl_c_during_eval_is_one_line_and_saves_nothing(run_main, copy, monkeypatch, ctrl_c_as_in_a_terminal):
    """eval's rPPL language model is a throwaway: Ctrl-C stops it at once, with no talk of checkpoints."""
    from demvae.training.trainer import Trainer

    step = Trainer.train_step

    def interrupted_step(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", interrupted_step)
    rc, out, err = run_main("eval", copy, "--metrics", "prior", "--n-prior", "100", "--rppl-steps", "5",
                            "--device", "cpu")
    assert rc == 130 and "checkpoint" not in out + err and "Traceback" not in err, (out, err)
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    assert lines == ["interrupted"]  # (the progress bar aside: a terminal erases it)
