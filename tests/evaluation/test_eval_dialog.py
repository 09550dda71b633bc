"""The ``responses`` metric group of `demvae eval` against an independent computation: references rebuilt from the
raw dialogue files, BLEU from sacreBLEU (unsmoothed, untokenised: multi-bleu's definition) with and without the
speaker token, and the embedding metrics written out with numpy."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import sacrebleu
import torch

from demvae.data.tokenize import chat_tokenize
from demvae.evaluation.run import EvalOptions, evaluate_run
from demvae.metrics import flat_row, metric
from demvae.models import DialogModel, Responses
from demvae.training import load_run

SPEAKER = {"driver": "<usr>", "assistant": "<sys>"}
SWAP = "the"  # the fake model's responses: the reference with its second word replaced by this one


def _fake_respond(self, batch, **_):
    """The reference, second word swapped: a response whose scores are known without the model."""
    ids = batch.tokens[:, 1:].clone()
    swap = torch.tensor(self.swap_id)
    ids[:, 2] = torch.where((batch.lengths > 4).to(ids.device), swap, ids[:, 2])  # speaker, w1, w2 ...
    m, k = self.code_shape()
    return Responses(ids, torch.zeros(batch.size, m, dtype=torch.long), torch.full((batch.size, m, k), 1.0 / k))


def _raw_references(data_dir, vocab, max_len):
    refs, contexts = [], []
    for dialogue in json.loads((data_dir / "stanford" / "kvret_test_public.json").read_text()):
        turns = []
        for turn in dialogue["dialogue"]:
            tokens = [SPEAKER[turn["turn"]], *chat_tokenize(turn["data"]["utterance"])][: max_len - 2]
            tokens = [t if t in vocab else "<unk>" for t in tokens]
            refs.append(tokens)
            contexts.append(" | ".join(["<d>", *turns]))
            turns.append(" ".join(tokens))
    return refs, contexts


def _embedding(hyps, refs, vectors):
    def vecs(tokens):
        words = [t.lower() for t in tokens if not (t.startswith("<") or t.endswith(">"))]
        return np.array([vectors[w] for w in words if w in vectors], dtype=np.float64)

    def cos(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    def extrema(m):
        return np.array([col[np.argmax(np.abs(col))] for col in m.T])

    scores = []
    for h, r in zip(hyps, refs):
        H, R = vecs(h), vecs(r)
        if len(H) and len(R):
            greedy = 0.5 * (np.mean([max(cos(x, y) for y in H) for x in R]) +
                            np.mean([max(cos(y, x) for x in R) for y in H]))
            scores.append((cos(H.mean(0), R.mean(0)), cos(extrema(H), extrema(R)), greedy))
    return 100 * np.mean(scores, axis=0), len(scores)


def test_responses_group_against_an_independent_computation(dialog_run, dialog_data, tmp_path, monkeypatch):
    run_dir = shutil.copytree(dialog_run, tmp_path / "run")
    run = load_run(run_dir)
    monkeypatch.setattr(DialogModel, "respond", _fake_respond)
    monkeypatch.setattr(DialogModel, "swap_id", run.vocab.id(SWAP), raising=False)
    refs, contexts = _raw_references(dialog_data, run.vocab, run.config.data.max_len)
    hyps = [r[:2] + [SWAP] + r[3:] if len(r) > 2 else r for r in refs]
    # word vectors for most (not all) lower-cased words: the look-up must skip the missing ones
    words = sorted({t.lower() for r in refs for t in r if not t.startswith("<")})
    g = np.random.default_rng(0)
    vectors = {w: g.normal(size=5) for w in words[::4] + words[1::4] + words[2::4]}
    (tmp_path / "vec.txt").write_text("".join(f"{w} {' '.join(f'{x:.6f}' for x in v)}\n" for w, v in vectors.items()))
    vectors = {w: np.array([float(f"{x:.6f}") for x in v]) for w, v in vectors.items()}

    results = evaluate_run(run_dir, EvalOptions(metrics=("responses",), device="cpu", vectors=str(tmp_path / "vec.txt"),
                                                lowercase_vectors=True))

    with open(run_dir / "responses-test.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert [r["reference"] for r in rows] == [" ".join(r) for r in refs]
    assert [r["context"] for r in rows] == contexts
    assert [r["response"] for r in rows] == [" ".join(h) for h in hyps]
    assert {r["code"] for r in rows} == {"0,0,0"}

    def bleu(h, r):
        return sacrebleu.BLEU(tokenize="none", smooth_method="none", force=True).corpus_score(
            [" ".join(x) for x in h], [[" ".join(x) for x in r]]).score

    assert 0 < results["response_bleu"] < 100
    assert results["response_bleu"] == pytest.approx(bleu(hyps, refs), abs=1e-6)  # the speaker token on both sides
    assert results["response_bleu_words"] == pytest.approx(bleu([h[1:] for h in hyps], [r[1:] for r in refs]), abs=1e-6)
    (average, extrema, greedy), pairs = _embedding(hyps, refs, vectors)
    assert results["response_embedding_n_pairs"] == pairs > 0
    assert results["response_embedding_average"] == pytest.approx(average, abs=1e-6)
    assert results["response_embedding_extrema"] == pytest.approx(extrema, abs=1e-6)
    assert results["response_embedding_greedy"] == pytest.approx(greedy, abs=1e-6)
    assert "lower-cased look-up" in results["response_embedding_vectors"]
    assert [k for k in flat_row(results) if k != "model" and metric(k) is None] == []  # every number is declared


def test_responses_are_reproducible_and_follow_the_generation_settings(dialog_run, tmp_path):
    run_dir = shutil.copytree(dialog_run, tmp_path / "run")
    opts = EvalOptions(metrics=("responses",), device="cpu")
    first = evaluate_run(run_dir, opts)
    tsv = (run_dir / "responses-test.tsv").read_text()
    assert evaluate_run(run_dir, opts)["response_bleu"] == first["response_bleu"]
    assert (run_dir / "responses-test.tsv").read_text() == tsv  # the same seed, the same responses
    assert "response_embedding_average" not in first  # no vectors in the tiny data folder
    assert "clusters" not in first and "homogeneity" not in first
    both = evaluate_run(run_dir, EvalOptions(device="cpu"))  # every group that applies to a dialog run
    assert {"response_bleu", "homogeneity"} <= set(both)
