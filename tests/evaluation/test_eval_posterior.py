"""``posterior_stats`` on a tiny GM-VAE over a small built-in split, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from demvae.config import DataConfig, ModelConfig
from demvae.data.prepare import prepare
from demvae.evaluation.posterior import posterior_stats
from demvae.models import build_model
from demvae.objectives import ObjectiveConfig


@pytest.fixture(scope="module")
def data():
    return prepare(DataConfig(options={"n_train": 300, "n_valid": 60, "n_test": 60}))


def _gm(vocab, n_codes=2, code_size=3, seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(latent="gm", n_codes=n_codes, code_size=code_size, z_dim=2, embed_dim=16,
                      hidden_size=16, dropout=0.0)
    model = build_model(cfg, len(vocab), bos_id=vocab.bos_id, eos_id=vocab.eos_id)
    with torch.no_grad():  # spread q(c|x) so that the mutual information is far from 0
        model.latents[0].code_net[-1].weight.mul_(100.0)
    return model.eval()


@pytest.fixture(scope="module")
def model(data):
    return _gm(data.vocab)


@pytest.fixture(scope="module")
def stats(model, data):
    torch.manual_seed(0)
    return posterior_stats(model, data.splits["test"], ObjectiveConfig(), batch_size=17)


def test_all_keys_finite(stats):
    for key in ("rec", "kl_c", "kl_z_avg", "dispersion", "kl_z", "neg_elbo", "loss", "param_var", "ppl",
                "mutual_info", "mutual_info_sum", "components_used"):
        assert key in stats and math.isfinite(stats[key]), key
    assert stats["dispersion"] >= 0 and stats["kl_c"] >= 0 and stats["kl_z_avg"] >= 0
    assert 0 < stats["components_used"] <= 2 * 3


def test_kl_decomposition(stats):
    assert stats["kl_z"] == pytest.approx(stats["kl_z_avg"] + stats["dispersion"], rel=1e-9)
    assert stats["neg_elbo"] == pytest.approx(
        stats["rec"] + stats["kl_c"] + stats["kl_z_avg"] + stats["dispersion"], rel=1e-6)


def test_ppl_from_rec(stats, data):
    split = data.splits["test"]
    n = len(split)
    n_targets = int(split.lengths.sum()) - n
    assert stats["ppl"] == pytest.approx(math.exp(stats["rec"] * n / n_targets), rel=1e-9)


def _per_sentence(model, split):
    """q(c|x) one sentence at a time (no padding at all) -> [N, G, K] float64."""
    return torch.cat([model.code_probs(split.batch([i])).double() for i in range(len(split))])


def test_mutual_info_by_hand(stats, model, data):
    split = data.splits["test"]
    q = _per_sentence(model, split).numpy()  # [N, G, K]

    def h(p):
        return -(p * np.log(p + 1e-20)).sum(-1)

    mi = h(q.mean(0)) - h(q).mean(0)  # [G]
    assert mi.mean() > 0.05  # a non-trivial value
    assert stats["mutual_info"] == pytest.approx(mi.mean(), abs=1e-5)
    assert stats["mutual_info_sum"] == pytest.approx(mi.sum(), abs=1e-5)
    assert stats["components_used"] == int((q.mean(0) > 0.01).sum())


def test_kl_terms_by_hand(stats, model, data):
    """kl_c = Σ_g KL(q(c_g|x) ‖ U(K)); kl_z = Σ_g Σ_k q_k KL(q(z_g|x) ‖ p(z_g|c_g=k)) (exact, per component)."""
    split = data.splits["test"]
    block = model.latents[0]
    q = _per_sentence(model, split)
    k = q.shape[-1]
    kl_c = (q * (torch.log(q + 1e-20) + math.log(k))).sum((-1, -2))
    with torch.no_grad():
        eta_q = torch.cat([block.posterior_natural(model.encode(split.batch([i]))) for i in range(len(split))])
        kl_exact = block.prior.kl_exact(eta_q, q.float()).sum(-1)
    assert stats["kl_c"] == pytest.approx(float(kl_c.mean()), abs=1e-4)
    assert stats["kl_z"] == pytest.approx(float(kl_exact.mean()), rel=1e-4)


def test_deterministic_parts_invariant_to_batch_size(stats, model, data):
    split = data.splits["test"]
    torch.manual_seed(1)
    other = posterior_stats(model, split, ObjectiveConfig(), batch_size=60)
    torch.manual_seed(2)
    ones = posterior_stats(model, split, ObjectiveConfig(), batch_size=1)
    for key in ("kl_c", "kl_z_avg", "dispersion", "kl_z", "param_var", "mutual_info", "components_used"):
        assert other[key] == pytest.approx(stats[key], rel=1e-5, abs=1e-6), key
        assert ones[key] == pytest.approx(stats[key], rel=1e-5, abs=1e-6), key
    # rec is a one-sample Monte-Carlo term: close, not equal
    assert other["rec"] == pytest.approx(stats["rec"], rel=0.05)


def test_reproducible_with_seed_and_restores_train_mode(model, data):
    split = data.splits["valid"]
    model.train()
    torch.manual_seed(3)
    a = posterior_stats(model, split, ObjectiveConfig(), batch_size=25)
    assert model.training  # the mode is restored
    model.eval()
    torch.manual_seed(3)
    b = posterior_stats(model, split, ObjectiveConfig(), batch_size=25)
    assert a == b


def test_more_samples_reduce_rec_noise(model, data):
    split = data.splits["valid"]
    recs = []
    for seed in range(4):
        torch.manual_seed(seed)
        recs.append(posterior_stats(model, split, ObjectiveConfig(), n_samples=1)["rec"])
    torch.manual_seed(9)
    many = posterior_stats(model, split, ObjectiveConfig(), n_samples=40)
    assert many["rec"] == pytest.approx(np.mean(recs), rel=0.03)
    assert many["kl_c"] == pytest.approx(posterior_stats(model, split, ObjectiveConfig())["kl_c"], rel=1e-6)


def test_rnnlm_has_only_rec_and_ppl(data):
    torch.manual_seed(0)
    lm = build_model(ModelConfig(latent="none", embed_dim=16, hidden_size=16, dropout=0.0), len(data.vocab),
                     bos_id=2, eos_id=3).eval()
    split = data.splits["test"]
    out = posterior_stats(lm, split, ObjectiveConfig(), batch_size=13)
    assert "mutual_info" not in out and "kl_z" not in out
    with torch.no_grad():
        exact = -float(lm.decoder.log_likelihood(split.ids, split.lengths).double().mean())
    assert out["rec"] == pytest.approx(exact, rel=1e-5)
    assert out["neg_elbo"] == pytest.approx(out["rec"], rel=1e-9)
    n_targets = int(split.lengths.sum()) - len(split)
    assert out["ppl"] == pytest.approx(math.exp(exact * len(split) / n_targets), rel=1e-4)
