"""Generation from a code (``demvae.models.generation``): the named procedures, the codes' aggregate posterior
statistics (checked against an independent per-sentence computation) and their cache in the run folder."""

from __future__ import annotations

import json

import pytest
import torch

from demvae.errors import ConfigError
from demvae.expfam import Gaussian
from demvae.models.generation import (
    DEFAULT,
    PAPER,
    PROCEDURES,
    RERANK_CANDIDATES,
    STATS_VERSION,
    CodeStats,
    Procedure,
    code_features,
    code_stats,
    generate_from_codes,
)
from demvae.nn.decoding import Decoding, nucleus, sample_decode
from demvae.training import load_run
from demvae.training.run_folder import CODE_STATS, load_code_stats, run_data


@pytest.fixture(scope="module")
def dgm(trained):
    trainer, run_dir = trained("dgm-vae")
    return load_run(run_dir), trainer.data


def _block(model):
    return next(b for b in model.latents if b.has_code)


def test_procedures_and_errors():
    assert PROCEDURES == ("prior", "mode", "aggregate", "nucleus", "rerank")
    assert Procedure.named("rerank").label == "rerank-t0-p0.9" and Procedure.named("rerank").needs_stats
    assert Procedure.named("rerank").unfiltered == Procedure("nucleus", 0.0, 0.9) and DEFAULT.unfiltered is not None
    assert Procedure("aggregate").unfiltered is None and PAPER.unfiltered is None
    nucleus = Procedure.named("nucleus")
    assert nucleus == Procedure("nucleus", 0.0, 0.9) and nucleus.label == "nucleus-t0-p0.9"
    assert nucleus.needs_stats and nucleus.samples_words and not Procedure("aggregate").samples_words
    assert "top-p 0.9" in nucleus.describe() and "top-p" not in Procedure("aggregate").describe()
    assert Procedure.named("aggregate", 1.0, 0.5).label == "aggregate-t1"  # greedy: no top-p
    assert DEFAULT == Procedure("rerank", 0.0, 0.9) and DEFAULT.label == "rerank-t0-p0.9"
    assert Procedure("aggregate", 0.5).label == "aggregate-t0.5"
    assert PAPER.label == "prior" and Procedure("mode", 0.3).label == "mode"
    assert "best of 4" in DEFAULT.describe() and "temperature 0, top-p 0.9" in DEFAULT.describe()
    with pytest.raises(ConfigError, match="unknown generation procedure 'nope'; known: prior, mode, aggregate"):
        Procedure("nope")
    with pytest.raises(ConfigError, match=">= 0"):
        Procedure("prior", -1.0)
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="top-p"):
            Procedure("nucleus", 0.5, bad)


def test_nucleus_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.15, 0.5, 0.05, 0.3]])
    # sorted 0.5, 0.3, 0.15, 0.05: the mass before each is 0, 0.5, 0.8, 0.95
    assert torch.equal(nucleus(probs, 0.7), torch.tensor([[0.0, 0.5, 0.0, 0.3]]))
    assert torch.equal(nucleus(probs, 0.5), torch.tensor([[0.0, 0.5, 0.0, 0.0]]))  # the most probable always
    assert torch.equal(nucleus(probs, 0.9), torch.tensor([[0.15, 0.5, 0.0, 0.3]]))


def test_word_sampling_without_a_nucleus_is_the_earlier_loop():
    # top_p = 1 (what every procedure but nucleus/rerank uses when it samples words) draws exactly as before
    torch.manual_seed(0)
    table = torch.randn(6, 7)

    def step(word, state):
        return table[word.squeeze(1) % 6] + state, state

    def earlier(rows):  # the loop before top-p existed, without its early stop
        word, out = torch.full((rows, 1), 1), []
        for _ in range(9):
            logits, _ = step(word, torch.zeros(rows, 7))
            word = torch.multinomial(torch.softmax(logits.float(), -1), 1)
            out.append(word)
        return torch.cat(out, 1)

    torch.manual_seed(4)
    new = sample_decode(step, torch.zeros(5, 7), 5, Decoding(bos_id=1, eos_id=99, max_len=10, greedy=False))
    torch.manual_seed(4)
    assert torch.equal(new, earlier(5))


def test_nucleus_procedure_is_deterministic_and_samples_words(dgm):
    run, data = dgm
    model = run.model
    stats = code_stats(model, data.splits["train"])
    codes = torch.tensor([list(max(stats.joint, key=lambda c: stats.joint[c][2]))] * 40)
    procedure = Procedure.named("nucleus")

    def generate(seed: int, proc: Procedure) -> torch.Tensor:
        torch.manual_seed(seed)
        return generate_from_codes(model, codes, proc, stats)

    assert torch.equal(generate(5, procedure), generate(5, procedure))
    assert not torch.equal(generate(5, procedure), generate(6, procedure))
    # the same z as aggregate (drawn first): a nucleus of only the most probable word is greedy decoding
    assert torch.equal(generate(5, Procedure("nucleus", 0.5, 1e-9)), generate(5, Procedure("aggregate", 0.5)))


def test_stats_equal_an_independent_computation(dgm):
    run, data = dgm
    model, train = run.model, data.splits["train"]
    stats = code_stats(model, train)
    block = _block(model)
    m, k = block.n_variables, block.n_values
    assert stats.family == "gaussian" and stats.mean_params.shape == (m, k, block.n_units, 2)
    # one sentence at a time: its argmax code and its posterior's mean and variance
    sums, members = {}, {}
    with torch.no_grad():
        for i in range(len(train)):
            h = model.encode(train.batch([i]))
            code = block.code_probs(h)[0].argmax(-1)
            mean, var = Gaussian.moments_from_natural(block.posterior_natural(h)[0])  # [M, U]
            members.setdefault(tuple(code.tolist()), []).append((mean.flatten().double(), var.flatten().double()))
            for v in range(m):
                key = (v, int(code[v]))
                n, s1, s2 = sums.get(key, (0, 0.0, 0.0))
                sums[key] = (n + 1, s1 + mean[v].double(), s2 + (var[v] + mean[v] ** 2).double())
    # per joint code: the moment-matched Gaussian of its members' posteriors, over the whole z
    assert set(stats.joint) == set(members)
    for code, rows in members.items():
        means, variances = torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])
        mu, chol, n = stats.joint[code]
        assert n == len(rows)
        cov = torch.cov(means.T, correction=0).reshape(means.shape[1], -1) + torch.diag(variances.mean(0))
        torch.testing.assert_close(mu, means.mean(0).float(), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(chol @ chol.T, cov.float(), atol=1e-4, rtol=1e-3)
    assert int(stats.counts.sum()) == m * len(train)
    for v in range(m):
        for value in range(k):
            n, s1, s2 = sums.get((v, value), (0, 0.0, 0.0))
            assert int(stats.counts[v, value]) == n
            if n:
                torch.testing.assert_close(stats.mean_params[v, value, :, 0], (s1 / n).float(), atol=1e-5, rtol=1e-4)
                torch.testing.assert_close(stats.mean_params[v, value, :, 1], (s2 / n).float(), atol=1e-5, rtol=1e-4)


def test_temperature_zero_gives_the_mean_and_prior_at_one_is_the_papers(dgm):
    run, data = dgm
    model, block = run.model, _block(run.model)
    stats = code_stats(model, data.splits["train"])
    largest = max(stats.joint, key=lambda c: stats.joint[c][2])
    unseen = next(c for c in ((a, b) for a in range(3) for b in range(3)) if c not in stats.joint)
    codes = torch.tensor([list(largest), list(unseen), [1, 1]])
    z = code_features(block, codes, Procedure("aggregate", 0.0), stats).view(3, block.n_variables, -1)
    variables = torch.arange(block.n_variables)
    expected = stats.mean_params[variables.unsqueeze(0), codes][..., 0]  # [3, M, U]: per variable
    seen = stats.counts[variables.unsqueeze(0), codes] > 0
    prior_mean = block.prior.mode(codes)
    expected = torch.where(seen[..., None], expected, prior_mean)  # a value no train sentence took: the prior's
    for i, code in enumerate(codes.tolist()):  # a joint code with members: its own mean
        if tuple(code) in stats.joint:
            expected[i] = stats.joint[tuple(code)][0].view(block.n_variables, -1)
    torch.testing.assert_close(z, expected)
    torch.testing.assert_close(z[0].flatten(), stats.joint[largest][0])
    # mode = the prior component's mean; prior at temperature 1 = TextVAE.sample_prior, bit for bit
    torch.testing.assert_close(code_features(block, codes, Procedure("mode"), stats).view_as(z), prior_mean)
    torch.manual_seed(3)
    a = generate_from_codes(model, codes, PAPER)
    torch.manual_seed(3)
    assert torch.equal(a, model.sample_prior(3, codes=codes))
    # a temperature spreads z around the mean, as many times wider as it says
    torch.manual_seed(0)
    many = torch.stack([code_features(block, codes[:1], Procedure("aggregate", 0.5), stats)[0] for _ in range(4000)])
    chol = stats.joint[largest][1]
    torch.testing.assert_close(torch.cov(many.T), 0.25 * chol @ chol.T, atol=0.02, rtol=0.15)


def test_rerank_keeps_the_candidate_its_code_fits_best(dgm):
    from demvae.data.batching import EncodedSplit
    from demvae.data.types import Example

    run, data = dgm
    model = run.model
    stats = code_stats(model, data.splits["train"])
    codes = torch.tensor([list(c) for c in sorted(stats.joint)][:3] * 4)  # [12, M]
    procedure = Procedure.named("rerank")
    torch.manual_seed(2)
    chosen = generate_from_codes(model, codes, procedure, stats)
    torch.manual_seed(2)
    assert torch.equal(generate_from_codes(model, codes, procedure, stats), chosen)  # deterministic for a seed
    # the candidates: nucleus sentences from the same random state, RERANK_CANDIDATES per row
    rows = codes.repeat_interleave(RERANK_CANDIDATES, 0)
    torch.manual_seed(2)
    candidates = generate_from_codes(model, rows, Procedure.named("nucleus"), stats)
    # scored as the control metric re-encodes sentences (through words), not through _rerank's own batching
    words = [Example(tuple(run.vocab.decode(r))) for r in candidates.tolist()]
    split = EncodedSplit.from_examples(words, run.vocab, max_len=None)
    with torch.no_grad():
        q = model.code_probs(split.full())  # [R, M, K]
    score = q.gather(-1, rows.unsqueeze(-1)).squeeze(-1).log().sum(-1).view(len(codes), -1)
    best = score.argmax(1)
    width = chosen.shape[1]
    expected = candidates.view(len(codes), RERANK_CANDIDATES, -1)[torch.arange(len(codes)), best][:, :width]
    assert torch.equal(chosen, expected)


def test_aggregate_needs_stats(dgm):
    run, _ = dgm
    with pytest.raises(ConfigError, match="statistics"):
        generate_from_codes(run.model, torch.tensor([[0, 0]]), DEFAULT, None)


def test_stats_cached_in_the_run_folder(dgm, tmp_path):
    import shutil

    run, data = dgm
    folder = tmp_path / "run"
    shutil.copytree(run.folder.path, folder)
    (folder / CODE_STATS).unlink(missing_ok=True)  # a run trained before the file existed
    copy = load_run(folder)
    first = load_code_stats(copy, run_data(copy))
    record = json.loads((folder / CODE_STATS).read_text())
    assert record["version"] == STATS_VERSION and record["split"] == "train"
    assert record["n_examples"] == len(data.splits["train"])
    again = load_code_stats(copy)  # read back, not recomputed (no data needed)
    torch.testing.assert_close(again.mean_params, first.mean_params)
    assert torch.equal(again.counts, first.counts)
    # a stale file (another model's) is recomputed
    record["model_sha256"] = "0" * 64
    record["mean_params"] = (torch.tensor(record["mean_params"]) + 1).tolist()
    (folder / CODE_STATS).write_text(json.dumps(record))
    torch.testing.assert_close(load_code_stats(copy).mean_params, first.mean_params)
    back = CodeStats.from_dict(first.to_dict())
    assert back.family == "gaussian" and set(back.joint) == set(first.joint)


def test_a_discrete_code_needs_no_statistics(trained):
    from demvae.evaluation.control import ControlOptions, control_scores

    trainer, run_dir = trained("di-vae")
    run = load_run(run_dir)
    assert load_code_stats(run) is None and not (run_dir / CODE_STATS).exists()
    test, train = trainer.data.splits["test"], trainer.data.splits["train"]
    result = control_scores(run.model, run.vocab, test, train, ControlOptions(n_per_code=2))  # default: rerank
    assert result.procedure == "rerank-t0-p0.9" and 0 <= result.recovery <= 1
    codes = torch.tensor([[0] * run.model.code_shape()[0]] * 2)
    torch.manual_seed(0)
    a = generate_from_codes(run.model, codes, Procedure("aggregate", 0.5))
    torch.manual_seed(0)
    assert torch.equal(a, run.model.sample_prior(2, codes=codes))  # the code is all the decoder sees
