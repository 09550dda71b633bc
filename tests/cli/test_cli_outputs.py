"""What commands write (issue 21): an output never lands on a run's own files and replaces an existing file only
when it is the command's own output or with --force (row 5); ``sample --n N`` and ``encode`` work a batch at a
time, writing each batch as it comes, so their memory does not grow with N (row 7); ``encode`` keeps one output
line per input line, ``sample`` one per sentence (row 10)."""

from __future__ import annotations

import itertools
import json
import shutil
import time

import pytest
import torch
import typer
from cli_checks import one_error, snapshot, train_in_process

from demvae.models import TextVAE

SMALL = ["--set", "data.options={n_train: 120, n_valid: 60, n_test: 60}", "--set", "model.embed_dim=16",
         "--set", "model.hidden_size=16", "--set", "train.progress=false", "--device", "cpu",
         "--set", "train.threads=1", "--set", "train.max_steps=4", "--set", "train.eval_every=2"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("DEMVAE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny finished DGM-VAE run (never changed: the tests show that)."""
    return train_in_process(tmp_path_factory.mktemp("outputs") / "run", "--config", "builtin/dgm-vae", *SMALL)


@pytest.fixture
def sentences(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("call mom\n\nwake me up at six am\n")
    return path


# --- row 5: outputs never land on a run's files ---------------------------------------------------------------

COMMANDS = {
    "report": lambda run, target, inputs: ["report", run, "-o", target],
    "sample": lambda run, target, inputs: ["sample", run, "-o", target],
    "encode": lambda run, target, inputs: ["encode", run, inputs, "-o", target],
    "clusters": lambda run, target, inputs: ["clusters", run, "-o", target],
    "eval": lambda run, target, inputs: ["eval", run, "--metrics", "posterior", "--device", "cpu", "--out", target],
}


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("target", ["config.yaml", "model.safetensors", "last/optimizer.pt"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_output_never_replaces_a_runs_file(run_main, run, sentences, command, target, force):
    before = snapshot(run)
    args = COMMANDS[command](run, run / target, sentences) + (["--force"] if force else [])
    one_error(*run_main(*args), str(run / target), "never replaces a run's own files")
    assert snapshot(run) == before


def test_a_link_to_a_runs_file_and_another_runs_metrics_are_refused(run_main, run, sentences, tmp_path):
    before = snapshot(run)
    (tmp_path / "link.txt").symlink_to(run / "vocab.json")
    one_error(*run_main("encode", run, sentences, "-o", tmp_path / "link.txt", "--force"), "vocab.json")
    other = shutil.copytree(run, tmp_path / "other")  # eval's metrics of one run written into another run
    one_error(*run_main(*COMMANDS["eval"](run, other, None)), "metrics-test.json", str(other))
    assert snapshot(run) == before and not (other / "metrics-test.json").exists()


@pytest.mark.parametrize("args", [
    ["train", "--config", "builtin/dgm-vae", *SMALL, "--out", "{run}/last"],
    ["train", "--config", "builtin/dgm-vae", *SMALL, "--out", "{run}/last", "--force"],
    ["demo", "--out", "{run}/last", "--steps", "1"],
    ["reproduce", "ptb-table1", "--scale", "smoke", "--corpus", "builtin", "--out", "{run}/last/x"],
])
def test_an_output_folder_is_never_inside_a_runs_own_folders(run_main, run, args):
    before = snapshot(run)
    one_error(*run_main(*[a.replace("{run}", str(run)) for a in args]), "last/ of the run", "never replaces")
    assert snapshot(run) == before


def test_an_existing_text_output_is_replaced_only_with_force(run_main, run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my own notes\n")
    one_error(*run_main("sample", run, "--n", "3", "-o", notes), "exists", "--force")
    assert notes.read_text() == "my own notes\n"
    rc, out, err = run_main("sample", run, "--n", "3", "-o", notes, "--force")
    assert rc == 0 and out == "", err
    assert len(notes.read_text().splitlines()) == 3
    rc, out, err = run_main("sample", run, "--n", "3")
    assert out.splitlines() == notes.read_text().splitlines()  # the same lines as on stdout


def test_eval_out_replaces_a_metrics_file_but_not_another_file(run_main, run, tmp_path):
    args = COMMANDS["eval"](run, tmp_path / "m.json", None)
    rc, out, err = run_main(*args)
    assert rc == 0 and json.loads((tmp_path / "m.json").read_text())["split"] == "test", err
    rc, out, err = run_main(*args)  # its own kind of output: replaced
    assert rc == 0, err
    (tmp_path / "data.json").write_text('{"mine": 1}')
    one_error(*run_main(*COMMANDS["eval"](run, tmp_path / "data.json", None)), "exists", "--force")
    assert json.loads((tmp_path / "data.json").read_text()) == {"mine": 1}


def test_the_demo_refuses_a_foreign_page_before_training(run_main, tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "report.html").write_text("my page")
    one_error(*run_main("demo", "--out", tmp_path / "demo", "--steps", "1"), "not a demvae report", "--out")
    assert not (tmp_path / "demo" / "dgm-vae-mi").exists()


def test_report_replaces_its_own_pages_only(tmp_path):
    from demvae.report.html import is_report, render
    from demvae.training.outputs import OutputRefused, check_output

    page, other = tmp_path / "report.html", tmp_path / "index.html"
    page.write_text(render([], []), encoding="utf-8")
    other.write_text("<!doctype html><title>my page</title>")
    assert check_output(page, own=is_report) == page
    with pytest.raises(OutputRefused, match="--force"):
        check_output(other, own=is_report)
    assert check_output(other, force=True, own=is_report) == other


# --- row 7: bounded memory --------------------------------------------------------------------------------------

@pytest.fixture
def calls(monkeypatch):
    """Every model call (rows asked for) and every write to stdout, in order."""
    events: list[tuple[str, int]] = []
    echo = typer.echo

    def logged_echo(message=None, *args, err=False, **kwargs):
        if not err:
            events.append(("write", str(message).count("\n") + 1))
        return echo(message, *args, err=err, **kwargs)

    def cheap_samples(self, n, codes=None, greedy=None):  # the rows asked for; no decoding (N is large)
        events.append(("model", n))
        ids = torch.full((n, 4), 2, dtype=torch.long)  # </s> first: empty sentences
        ids[::2, 0] = 7  # every other sentence: one word
        return ids

    code_probs = TextVAE.code_probs

    def logged_code_probs(self, batch):
        events.append(("model", batch.tokens.shape[0]))
        return code_probs(self, batch)

    monkeypatch.setattr(typer, "echo", logged_echo)
    monkeypatch.setattr(TextVAE, "sample_prior", cheap_samples)
    monkeypatch.setattr(TextVAE, "code_probs", logged_code_probs)
    return events


def _largest_call_and_streamed(events) -> tuple[int, bool]:
    """The largest model call, and whether output was written before the last model call."""
    models = [i for i, (kind, _) in enumerate(events) if kind == "model"]
    writes = [i for i, (kind, _) in enumerate(events) if kind == "write"]
    return max(events[i][1] for i in models), bool(writes) and writes[0] < models[-1]


def test_sample_memory_does_not_grow_with_n(run_main, run, calls):
    largest = {}
    for n in (3_000, 30_000):
        calls.clear()
        rc, out, err = run_main("sample", run, "--n", n)
        assert rc == 0, err
        assert len(out.splitlines()) == n and out.splitlines()[1] == ""  # one line per sentence, empty ones too
        largest[n], streamed = _largest_call_and_streamed(calls)
        assert streamed, "every sentence was generated before the first line was written"
    assert largest[30_000] == largest[3_000] <= 1000  # one batch at a time, whatever N


def test_encode_streams_its_input_and_output(run_main, run, calls, tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("".join("call mom\n" if i % 7 else "\n" for i in range(2_500)))
    rc, out, err = run_main("encode", run, path)
    assert rc == 0, err
    lines = out.split("\n")[:-1]
    assert len(lines) == 2_500 and all((line == "") == (i % 7 == 0) for i, line in enumerate(lines))
    assert _largest_call_and_streamed(calls)[1], "the whole file was encoded before the first line was written"


def test_the_streams_are_lazy(run):
    """The first batch comes at once, however many sentences follow (nothing is made or read ahead)."""
    from demvae.report.stream import encode_batches, sample_batches
    from demvae.training import load_run

    loaded = load_run(run)
    t = time.perf_counter()
    first = next(sample_batches(loaded.model, loaded.vocab, 10**12, batch_size=50))
    endless = itertools.repeat(("call", "mom"))  # an input that never ends
    encoded = next(encode_batches(loaded.model, loaded.vocab, 20, endless, batch_size=50))
    assert len(first) == 50 and len(encoded) == 50 and time.perf_counter() - t < 10


# --- row 10: one output line per input line -----------------------------------------------------------------------

def test_encode_keeps_one_line_per_input_line_of_a_jsonl_file(run_main, run, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([json.dumps({"text": "call mom"}), "", json.dumps({"text": ""}),
                               json.dumps({"text": "wake me up"})]) + "\n")
    rc, out, err = run_main("encode", run, path)
    assert rc == 0, err
    lines = out.split("\n")[:-1]
    assert len(lines) == 4 and lines[1] == lines[2] == ""
    assert lines[0].endswith("\tcall mom") and lines[3].endswith("\twake me up")


# --- row 13: a full disk outside training -------------------------------------------------------------------------

def test_a_full_disk_outside_training_advises_no_resume(run_main, run, tmp_path, monkeypatch):
    import errno
    import os

    from demvae import io

    def full(path, write):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(io, "atomic_write", full)
    rc, out, err = run_main(*COMMANDS["eval"](run, tmp_path / "m", None))
    error = [line for line in err.splitlines() if line.startswith("error: ")]
    assert rc == 2 and len(error) == 1, err
    assert "disk is full" in error[0] and "run the command again" in error[0] and "--resume" not in error[0]
