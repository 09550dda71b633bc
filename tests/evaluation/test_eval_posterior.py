"""``posterior_stats`` on a tiny GM-VAE over a small built-in split, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from demvae.config import DataConfig, ModelConfig
from demvae.data.prepare import prepare
from demvae.models import build_model
from demvae.objectives import ObjectiveConfig
from demvae.training.validation import posterior_stats


@pytest.fixture(scope="module")
def data():
    return prepare(DataConfig(options={"n_train": 300, "n_valid": 60, "n_test": 60}))


def _gm(vocab, n_variables=2, n_values=3, seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(latent="gm", n_variables=n_variables, n_values=n_values, n_units=2, embed_dim=16,
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
    return posterior_stats(model, data.splits["test"], ObjectiveConfig(), batch_size=17).record()


def test_all_keys_finite(stats):
    for key in ("rec", "kl_c", "kl_z_avg", "dispersion", "kl_z", "neg_elbo", "loss", "param_var", "ppl",
                "mutual_info", "mutual_info_sum", "components_used"):
        assert key in stats and math.isfinite(stats[key]), key
    assert stats["dispersion"] >= 0 and stats["kl_c"] >= 0 and stats["kl_z_avg"] >= 0
    assert 0 < stats["components_used"] <= 2 * 3


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
    assert stats["codes_used"] == len({tuple(row) for row in q.argmax(-1).tolist()})


def _hand_kl_terms(model, split):
    """Per sentence, from the raw head outputs and torch.distributions (not the library's families):
    kl_c = Σ_g KL(q(c_g|x) ‖ U(K)); kl_z = Σ_g Σ_k q_k KL(q(z_g|x) ‖ N(m_gk, s_gk)) (the exact KL);
    dispersion = Σ_g [Σ_k q_k A(η_gk) − A(Σ_k q_k η_gk)] with the Gaussian A(η) = −η1²/4η2 − ½log(−2η2)."""
    from torch.distributions import Categorical, Normal, kl_divergence

    block = model.latents[0]
    with torch.no_grad():
        h = torch.cat([model.encode(split.batch([i])) for i in range(len(split))]).double()
        logits = block.code_net.double()(h).view(len(split), block.n_variables, block.n_values)
        raw_q = block.posterior.double()(h).view(len(split), block.n_variables, 1, block.n_units, 2)
        block.float()
    raw_p = block.prior.raw.detach().double()  # [G, K, U, 2]: mean, log-variance
    q = torch.softmax(logits, -1)
    k = q.shape[-1]
    kl_c = kl_divergence(Categorical(probs=q), Categorical(probs=torch.full_like(q, 1 / k))).sum(-1)
    post = Normal(raw_q[..., 0], (0.5 * raw_q[..., 1]).exp())
    prior = Normal(raw_p[..., 0], (0.5 * raw_p[..., 1]).exp())
    kl_comp = kl_divergence(post, prior).sum(-1)  # [N, G, K]
    kl_z = (q * kl_comp).sum((-1, -2))
    var = raw_p[..., 1].exp()
    eta = torch.stack((raw_p[..., 0] / var, -0.5 / var), -1)  # [G, K, U, 2]

    def a(e):
        return -e[..., 0] ** 2 / (4 * e[..., 1]) - 0.5 * torch.log(-2 * e[..., 1])

    eta_bar = (q[..., None, None] * eta).sum(2)  # [N, G, U, 2]
    dispersion = ((q * a(eta).sum(-1)).sum(-1) - a(eta_bar).sum(-1)).sum(-1)
    return kl_c, kl_z, dispersion


def test_kl_terms_by_hand(stats, model, data):
    kl_c, kl_z, dispersion = _hand_kl_terms(model, data.splits["test"])
    assert float(dispersion.mean()) > 1e-3  # the components differ: the check is not vacuous
    assert stats["kl_c"] == pytest.approx(float(kl_c.mean()), rel=1e-4, abs=1e-5)
    assert stats["kl_z"] == pytest.approx(float(kl_z.mean()), rel=1e-4)
    assert stats["dispersion"] == pytest.approx(float(dispersion.mean()), rel=1e-4, abs=1e-5)
    assert stats["kl_z_avg"] == pytest.approx(float((kl_z - dispersion).mean()), rel=1e-4, abs=1e-5)
    # −ELBO = rec + KL(c) + exact KL(z), with the KLs recomputed by hand
    assert stats["neg_elbo"] - stats["rec"] == pytest.approx(float((kl_c + kl_z).mean()), rel=1e-4)


def test_deterministic_parts_invariant_to_batch_size(stats, model, data):
    split = data.splits["test"]
    torch.manual_seed(1)
    other = posterior_stats(model, split, ObjectiveConfig(), batch_size=60).record()
    torch.manual_seed(2)
    ones = posterior_stats(model, split, ObjectiveConfig(), batch_size=1).record()
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
        recs.append(posterior_stats(model, split, ObjectiveConfig(), n_samples=1).rec)
    torch.manual_seed(9)
    many = posterior_stats(model, split, ObjectiveConfig(), n_samples=40)
    assert many.rec == pytest.approx(np.mean(recs), rel=0.03)
    assert many.kl_c == pytest.approx(posterior_stats(model, split, ObjectiveConfig()).kl_c, rel=1e-6)


def test_rnnlm_has_only_rec_and_ppl(data):
    torch.manual_seed(0)
    lm = build_model(ModelConfig(latent="none", embed_dim=16, hidden_size=16, dropout=0.0), len(data.vocab),
                     bos_id=2, eos_id=3).eval()
    split = data.splits["test"]
    out = posterior_stats(lm, split, ObjectiveConfig(), batch_size=13)
    assert out.mutual_info is None and out.kl_z is None
    assert set(out.record()) == {"rec", "neg_elbo", "loss", "ppl"}
    with torch.no_grad():
        exact = -float(lm.decoder.log_likelihood(split.ids, split.lengths).double().mean())
    assert out.rec == pytest.approx(exact, rel=1e-5)
    assert out.neg_elbo == pytest.approx(out.rec, rel=1e-9)
    n_targets = int(split.lengths.sum()) - len(split)
    assert out.ppl == pytest.approx(math.exp(exact * len(split) / n_targets), rel=1e-4)


def test_loss_is_the_objective_at_full_weight(stats, model, data):
    """Model selection's ``loss``: the objective at w = 1, per sentence. With β = 0 and no MI it is −ELBO; β
    takes β·L_d off it; the MI bonus takes λ × (the batches' MI) off it (batches of 17, not the split)."""
    assert stats["loss"] == pytest.approx(stats["neg_elbo"], rel=1e-6)
    torch.manual_seed(0)
    dispersed = posterior_stats(model, data.splits["test"], ObjectiveConfig(beta=0.5), batch_size=17)
    assert dispersed.rec == pytest.approx(stats["rec"], rel=1e-9)  # the same noise: the same samples
    assert dispersed.loss == pytest.approx(stats["neg_elbo"] - 0.5 * stats["dispersion"], rel=1e-6)
    torch.manual_seed(0)
    with_mi = posterior_stats(model, data.splits["test"], ObjectiveConfig(mi_weight=1.0), batch_size=17)
    assert 0 < stats["neg_elbo"] - with_mi.loss < stats["mutual_info_sum"] * 2


@pytest.mark.parametrize("mi,codes,collapsed", [
    (0.5, 12, False), (0.009, 12, True), (0.5, 1, True), (0.01, 2, False), (0.0, 1, True)])
def test_collapse_warning_thresholds(mi, codes, collapsed):
    from demvae.training.validation import MIN_MUTUAL_INFO, collapse_warning

    warning = collapse_warning(mi, codes, step=700)
    assert (warning is not None) == collapsed
    if collapsed:
        assert "step 700" in warning and f"{codes} joint code" in warning and str(MIN_MUTUAL_INFO) in warning
        assert "train.max_steps" in warning and "objective.anneal_x0" in warning  # the fix names real keys
    assert (collapse_warning(mi, None, step=1) is not None) == (mi < MIN_MUTUAL_INFO)  # a record without the count
