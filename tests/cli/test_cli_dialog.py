"""`demvae respond`, `demvae clusters` and `demvae eval` on a dialog run (tiny synthetic dialogues): the happy path
and one clean `error:` line for each kind of bad input."""

from __future__ import annotations

import math
import re

import pytest
import torch

from demvae.evaluation.respond import parse_context, respond
from demvae.models import top_codes
from demvae.training import load_run

CONTEXT = "Find me a gas station. | There is a gas station 2 miles away."
ROW = re.compile(r"^(\d+,\d+,\d+)\s+([0-9.]+)\s+(.*)$")


def assert_clean_error(rc: int, out: str, err: str, *needles: str) -> None:
    assert rc == 2, (rc, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in err, (needle, err)


def _rows(out: str) -> list[tuple[str, float, str]]:
    return [(m.group(1), float(m.group(2)), m.group(3)) for m in map(ROW.match, out.splitlines()) if m]


# ------------------------------------------------------------------------------------------- respond


def test_respond_lists_the_policy_top_codes_with_a_response_each(run_main, dialog_run):
    rc, out, err = run_main("respond", dialog_run, "--context", CONTEXT, "--n", "4")
    assert rc == 0, err
    assert err == ""  # every word is in the vocabulary: no note
    assert "<usr> Find me a gas station ." in out and "<sys> There is a gas station 2 miles away ." in out
    assert "<d>" in out  # the opening turn is read first, as in training
    rows = _rows(out)
    assert len(rows) == 4 and len({code for code, _, _ in rows}) == 4
    probs = [p for _, p, _ in rows]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-3
    # the probabilities are the policy's: Π_i p(c_i | context), and the four codes are its most probable
    run = load_run(dialog_run)
    replies = respond(run, CONTEXT, n=4).replies
    from demvae.data.dialog import DialogSplit
    from demvae.data.types import Example

    batch = DialogSplit.from_examples([Example(("<sys>",), {}, parse_context(CONTEXT))], run.vocab).full()
    policy = run.model.policy_probs(batch)[0]  # [M, K]
    joint = torch.cartesian_prod(*[p for p in policy]).prod(-1)  # every code's probability, codes in lexical order
    best = joint.topk(4).values
    for reply, p, (code, shown, _) in zip(replies, best, rows):
        assert ",".join(map(str, reply.code)) == code
        assert reply.probability == pytest.approx(float(p), rel=1e-5)
        assert reply.probability == pytest.approx(math.prod(float(policy[i, c]) for i, c in enumerate(reply.code)))
        assert shown == pytest.approx(reply.probability, abs=1e-4)


def test_respond_with_a_fixed_code(run_main, dialog_run):
    rc, out, err = run_main("respond", dialog_run, "--context", CONTEXT, "--code", "1,0,2", "--z", "sample",
                            "--beam", "3")
    assert rc == 0, err
    rows = _rows(out)
    assert [code for code, _, _ in rows] == ["1,0,2"]


def test_unknown_words_become_unk_with_a_note(run_main, dialog_run):
    rc, out, err = run_main("respond", dialog_run, "--context", "<sys> Bonjour zorblax | What is the address?")
    assert rc == 0, err
    assert err == "note: not in the vocabulary, read as <unk>: Bonjour zorblax\n"
    assert "<sys> <unk> <unk>" in out and "<usr> What is the address ?" in out  # tag kept, the next turn alternates


@pytest.mark.parametrize("args, needles", [
    (["--context", ""], ["context is empty"]),
    (["--context", " | "], ["context is empty"]),
    (["--context", "hello | | bye"], ["turn 2", "empty"]),
    (["--context", CONTEXT, "--code", "1,0,9"], ["3 value(s), each in 0..4"]),
    (["--context", CONTEXT, "--code", "1,0"], ["3 value(s)"]),
    (["--context", CONTEXT, "--code", "a,b,c"], ["3 integers separated by commas"]),
    (["--context", CONTEXT, "--z", "median"], ["--z", "mean"]),
])
def test_respond_bad_input(run_main, dialog_run, args, needles):
    assert_clean_error(*run_main("respond", dialog_run, *args), *needles)


def test_respond_needs_a_dialog_run(run_main, dialog_run, tmp_path):
    assert_clean_error(*run_main("respond", dialog_run / "stage1", "--context", CONTEXT), "sentence model",
                       "dialog.enabled")
    assert_clean_error(*run_main("respond", tmp_path / "nowhere", "--context", CONTEXT), "run folder not found")


def test_speaker_alternation():
    assert [t[0] for t in parse_context("a | b | c")] == ["<usr>", "<sys>", "<usr>"]
    assert [t[0] for t in parse_context("<sys> a | b | <sys> c | d")] == ["<sys>", "<usr>", "<sys>", "<usr>"]
    assert parse_context("<usr>Where's home?") == (("<usr>", "Where", "'", "s", "home", "?"),)


def test_top_codes_is_the_brute_force_ranking():
    g = torch.Generator().manual_seed(0)
    log_p = torch.log_softmax(torch.randn(4, 3, generator=g, dtype=torch.float64) * 2, -1)
    codes, probs = top_codes(log_p, 10)
    every = torch.cartesian_prod(*[torch.arange(3)] * 4)  # [81, 4]
    joint = log_p.gather(1, every.t()).sum(0).exp()
    order = joint.argsort(descending=True)[:10]
    assert torch.equal(codes, every[order])
    torch.testing.assert_close(probs, joint[order])
    assert top_codes(log_p, 500)[0].shape == (81, 4)  # at most K^M codes


# ------------------------------------------------------------------------------------------- clusters, eval


def test_clusters_of_a_dialog_run(run_main, dialog_run, dialog_data):
    rc, out, err = run_main("clusters", dialog_run, "--split", "train", "--data-dir", dialog_data, "--generated", "2")
    assert rc == 0, err
    heads = [line for line in out.splitlines() if line.startswith("code ")]
    assert heads and all("| domain: " in h and "| speaker: " in h and "%)" in h for h in heads)
    assert "homogeneity" in out
    generated = [line for line in out.splitlines() if line.startswith("  > ")]
    assert len(generated) == 2 * len(heads) and all("[after: " in line for line in generated)


@pytest.mark.parametrize("command", ["sample", "encode"])
def test_sentence_commands_refuse_a_dialog_run(run_main, dialog_run, tmp_path, command):
    args = [tmp_path / "x.txt"] if command == "encode" else []
    (tmp_path / "x.txt").write_text("hello\n")
    assert_clean_error(*run_main(command, dialog_run, *args), "dialog run", "stage1")


def test_eval_groups_of_a_dialog_run(run_main, dialog_run, tmp_path):
    rc, out, err = run_main("eval", dialog_run, "--metrics", "nll", "--device", "cpu")
    assert_clean_error(rc, out, err, "nll", "do not apply to a dialog run", "responses, clusters", "stage1")
    rc, out, err = run_main("eval", dialog_run / "stage1", "--metrics", "responses", "--device", "cpu")
    assert_clean_error(rc, out, err, "responses", "dialog run")


def test_train_runs_both_stages_and_resume_continues(run_main, dialog_data, tmp_path):
    sets = ["model.embed_dim=16", "model.hidden_size=16", "train.max_steps=4", "train.eval_every=2",
            "train.batch_size=8", "train.progress=false", "dialog.utterance_size=8", "dialog.context_size=16",
            "dialog.policy_size=16", "dialog.attn_size=8", "dialog.max_steps=2"]
    args = [a for s in sets for a in ("--set", s)]
    rc, out, err = run_main("train", "--config", "smd/di-vae", "--data-dir", dialog_data, *args, "--device", "cpu",
                            "--out", tmp_path / "run")
    assert rc == 0, err
    run = tmp_path / "run"
    assert (run / "stage1" / "model.safetensors").is_file() and (run / "model.safetensors").is_file()
    assert "stage1: 4 steps" in out and "stage2: 2 steps" in out and f"demvae respond {run}" in out  # the summary
    # a resumed run keeps its dialog section (only train.* may change, as for every run)
    rc, out, err = run_main("train", "--resume", run, "--set", "dialog.max_steps=4")
    assert_clean_error(rc, out, err, "only train.* can change")
    rc, out, err = run_main("train", "--resume", run)
    assert rc == 0 and "is finished" in err
