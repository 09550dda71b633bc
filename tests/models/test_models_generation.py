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
    CodeStats,
    Procedure,
    code_features,
    code_stats,
    generate_from_codes,
)
from demvae.training import load_run
from demvae.training.run_folder import CODE_STATS, load_code_stats, run_data


@pytest.fixture(scope="module")
def dgm(trained):
    trainer, run_dir = trained("dgm-vae")
    return load_run(run_dir), trainer.data


def _block(model):
    return next(b for b in model.latents if b.has_code)


def test_procedures_and_errors():
    assert PROCEDURES == ("prior", "mode", "aggregate")
    assert DEFAULT == Procedure("aggregate", 0.5) and DEFAULT.label == "aggregate-t0.5"
    assert PAPER.label == "prior" and Procedure("mode", 0.3).label == "mode"
    assert "aggregate" in DEFAULT.describe() and "temperature 0.5" in DEFAULT.describe()
    with pytest.raises(ConfigError, match="unknown generation procedure 'nope'; known: prior, mode, aggregate"):
        Procedure("nope")
    with pytest.raises(ConfigError, match=">= 0"):
        Procedure("prior", -1.0)


def test_stats_equal_an_independent_computation(dgm):
    run, data = dgm
    model, train = run.model, data.splits["train"]
    stats = code_stats(model, train)
    block = _block(model)
    m, k = block.n_variables, block.n_values
    assert stats.family == "gaussian" and stats.mean_params.shape == (m, k, block.n_units, 2)
    # one sentence at a time: its argmax code and its posterior's mean and variance
    sums = {}
    with torch.no_grad():
        for i in range(len(train)):
            h = model.encode(train.batch([i]))
            code = block.code_probs(h)[0].argmax(-1)
            mean, var = Gaussian.moments_from_natural(block.posterior_natural(h)[0])  # [M, U]
            for v in range(m):
                key = (v, int(code[v]))
                n, s1, s2 = sums.get(key, (0, 0.0, 0.0))
                sums[key] = (n + 1, s1 + mean[v].double(), s2 + (var[v] + mean[v] ** 2).double())
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
    codes = torch.tensor([[0, 1], [2, 0], [1, 1]])
    z = code_features(block, codes, Procedure("aggregate", 0.0), stats).view(3, block.n_variables, -1)
    variables = torch.arange(block.n_variables)
    expected = stats.mean_params[variables.unsqueeze(0), codes][..., 0]  # [3, M, U]
    seen = stats.counts[variables.unsqueeze(0), codes] > 0
    prior_mean = block.prior.mode(codes)
    torch.testing.assert_close(z, torch.where(seen[..., None], expected, prior_mean))  # unseen: the prior's
    # mode = the prior component's mean; prior at temperature 1 = TextVAE.sample_prior, bit for bit
    torch.testing.assert_close(code_features(block, codes, Procedure("mode"), stats).view_as(z), prior_mean)
    torch.manual_seed(3)
    a = generate_from_codes(model, codes, PAPER)
    torch.manual_seed(3)
    assert torch.equal(a, model.sample_prior(3, codes=codes))
    # a temperature spreads z around the mean, as many times wider as it says
    torch.manual_seed(0)
    many = torch.stack([code_features(block, codes, Procedure("aggregate", 0.5), stats) for _ in range(2000)])
    _, var = Gaussian.moments_from_natural(Gaussian.natural_from_moments(
        stats.mean_params[..., 0], (stats.mean_params[..., 1] - stats.mean_params[..., 0] ** 2).log()))
    want = (0.5 * var[variables.unsqueeze(0), codes].sqrt()).view(3, -1)
    got = many.std(0)
    assert torch.allclose(got[seen.repeat_interleave(block.n_units, 1)], want[seen.repeat_interleave(
        block.n_units, 1)], rtol=0.1)


def test_aggregate_needs_stats(dgm):
    run, _ = dgm
    with pytest.raises(ConfigError, match="statistics"):
        generate_from_codes(run.model, torch.tensor([[0, 0]]), DEFAULT, None)


def test_stats_cached_in_the_run_folder(dgm, tmp_path):
    import shutil

    run, data = dgm
    folder = tmp_path / "run"
    shutil.copytree(run.run_dir, folder)
    (folder / CODE_STATS).unlink(missing_ok=True)  # a run trained before the file existed
    copy = load_run(folder)
    first = load_code_stats(copy, run_data(copy))
    record = json.loads((folder / CODE_STATS).read_text())
    assert record["split"] == "train" and record["n_examples"] == len(data.splits["train"])
    again = load_code_stats(copy)  # read back, not recomputed (no data needed)
    torch.testing.assert_close(again.mean_params, first.mean_params)
    assert torch.equal(again.counts, first.counts)
    # a stale file (another model's) is recomputed
    record["model_sha256"] = "0" * 64
    record["mean_params"] = (torch.tensor(record["mean_params"]) + 1).tolist()
    (folder / CODE_STATS).write_text(json.dumps(record))
    torch.testing.assert_close(load_code_stats(copy).mean_params, first.mean_params)
    assert CodeStats.from_dict(first.to_dict()).family == "gaussian"
