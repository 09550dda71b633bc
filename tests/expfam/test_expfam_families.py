"""Single exponential families: Gaussian, Categorical (minimal), and a Poisson given only by A(η).

Every check compares against an independent computation: a closed form written here,
``torch.distributions``, or Monte Carlo.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical as TCategorical
from torch.distributions import Normal, Poisson, kl_divergence

from demvae.expfam import AutogradFamily, Categorical, ExponentialFamily, Gaussian

DT = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gauss_moments(shape, seed=0):
    g = _gen(seed)
    m = torch.randn(shape, generator=g, dtype=DT) * 1.5
    logvar = torch.randn(shape, generator=g, dtype=DT) * 0.7
    return m, logvar


# ------------------------------------------------------------------------------------------------
# Gaussian
# ------------------------------------------------------------------------------------------------


def test_gaussian_natural_parameters_are_the_textbook_ones():
    m, logvar = _gauss_moments((4, 3))
    var = logvar.exp()
    eta = Gaussian.natural_from_moments(m, logvar)
    assert eta.shape == (4, 3, 2)
    torch.testing.assert_close(eta[..., 0], m / var, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(eta[..., 1], -1 / (2 * var), rtol=1e-12, atol=1e-12)
    # raw = (mean, log-variance) goes through the same map
    torch.testing.assert_close(Gaussian().natural_from_raw(torch.stack((m, logvar), -1)), eta)


def test_gaussian_natural_moment_round_trip():
    m, logvar = _gauss_moments((5, 2), seed=1)
    m2, var2 = Gaussian.moments_from_natural(Gaussian.natural_from_moments(m, logvar))
    torch.testing.assert_close(m2, m, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var2, logvar.exp(), rtol=1e-12, atol=1e-12)
    # and the other way: natural -> moments -> natural
    eta = torch.stack((torch.randn(7, dtype=DT), -torch.rand(7, dtype=DT) - 0.1), -1)
    mm, vv = Gaussian.moments_from_natural(eta)
    torch.testing.assert_close(Gaussian.natural_from_moments(mm, vv.log()), eta, rtol=1e-12, atol=1e-12)


def test_gaussian_log_partition_closed_form():
    m, logvar = _gauss_moments((6, 3), seed=2)
    var = logvar.exp()
    eta = Gaussian.natural_from_moments(m, logvar)
    expected = m.square() / (2 * var) + 0.5 * torch.log(var)
    torch.testing.assert_close(Gaussian().log_partition(eta), expected, rtol=1e-12, atol=1e-12)


def test_gaussian_mean_params_closed_and_generic():
    m, logvar = _gauss_moments((6, 3), seed=3)
    var = logvar.exp()
    eta = Gaussian.natural_from_moments(m, logvar)
    expected = torch.stack((m, m.square() + var), -1)
    torch.testing.assert_close(Gaussian().mean_params(eta), expected, rtol=1e-12, atol=1e-12)
    generic = AutogradFamily(Gaussian().log_partition, 2)
    torch.testing.assert_close(generic.mean_params(eta), expected, rtol=1e-10, atol=1e-10)
    # and the base-class method applied to the Gaussian itself
    torch.testing.assert_close(ExponentialFamily.mean_params(Gaussian(), eta), expected, rtol=1e-10, atol=1e-10)


def test_gaussian_mean_params_match_monte_carlo_sufficient_stats():
    fam = Gaussian()
    eta = Gaussian.natural_from_moments(torch.tensor([0.7], dtype=DT), torch.tensor([0.4], dtype=DT))
    x = fam.sample(eta.expand(200_000, 1, 2), generator=_gen(4))
    mc = fam.sufficient_stats(x).mean(0)
    torch.testing.assert_close(mc, fam.mean_params(eta), rtol=0, atol=0.03)


def test_gaussian_kl_closed_and_generic_vs_torch():
    mq, lq = _gauss_moments((5, 4), seed=5)
    mp, lp = _gauss_moments((5, 4), seed=6)
    eq, ep = Gaussian.natural_from_moments(mq, lq), Gaussian.natural_from_moments(mp, lp)
    ref = kl_divergence(Normal(mq, (0.5 * lq).exp()), Normal(mp, (0.5 * lp).exp()))
    torch.testing.assert_close(Gaussian().kl(eq, ep), ref, rtol=1e-10, atol=1e-10)
    generic = AutogradFamily(Gaussian().log_partition, 2)
    torch.testing.assert_close(generic.kl(eq, ep), ref, rtol=1e-9, atol=1e-10)
    # KL(q||q) = 0
    torch.testing.assert_close(generic.kl(eq, eq), torch.zeros_like(ref), rtol=0, atol=1e-10)


def test_gaussian_kl_broadcasts_like_the_mixture_uses_it():
    mq, lq = _gauss_moments((3, 1, 2), seed=7)  # [B, 1, U]
    mp, lp = _gauss_moments((1, 4, 2), seed=8)  # [1, K, U]
    eq, ep = Gaussian.natural_from_moments(mq, lq), Gaussian.natural_from_moments(mp, lp)
    ref = kl_divergence(Normal(mq, (0.5 * lq).exp()), Normal(mp, (0.5 * lp).exp()))
    assert Gaussian().kl(eq, ep).shape == (3, 4, 2)
    torch.testing.assert_close(Gaussian().kl(eq, ep), ref, rtol=1e-10, atol=1e-10)
    generic = AutogradFamily(Gaussian().log_partition, 2)
    torch.testing.assert_close(generic.kl(eq, ep), ref, rtol=1e-9, atol=1e-10)


def test_generic_kl_gradients_match_closed_form():
    """The generic KL keeps ∇A(η_q) in the graph, so its gradients w.r.t. BOTH arguments are right."""
    mq, lq = _gauss_moments((4, 2), seed=9)
    mp, lp = _gauss_moments((4, 2), seed=10)
    grads = []
    for fam in (Gaussian(), AutogradFamily(Gaussian().log_partition, 2)):
        eq = Gaussian.natural_from_moments(mq, lq).requires_grad_(True)
        ep = Gaussian.natural_from_moments(mp, lp).requires_grad_(True)
        grads.append(torch.autograd.grad(fam.kl(eq, ep).sum(), (eq, ep)))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_gaussian_log_prob_closed_and_generic_vs_torch():
    m, logvar = _gauss_moments((5, 3), seed=11)
    x = torch.randn((5, 3), generator=_gen(12), dtype=DT) * 2
    eta = Gaussian.natural_from_moments(m, logvar)
    ref = Normal(m, (0.5 * logvar).exp()).log_prob(x)
    torch.testing.assert_close(Gaussian().log_prob(x, eta), ref, rtol=1e-10, atol=1e-10)
    # <η, T(x)> − A(η) + log h(x) with the family's own T and h
    torch.testing.assert_close(ExponentialFamily.log_prob(Gaussian(), x, eta), ref, rtol=1e-10, atol=1e-10)


def test_gaussian_sample_moments():
    m = torch.tensor([-1.0, 2.0], dtype=DT)
    logvar = torch.tensor([0.5, -1.0], dtype=DT)
    eta = Gaussian.natural_from_moments(m, logvar)
    x = Gaussian().sample(eta.expand(100_000, 2, 2), generator=_gen(13))
    torch.testing.assert_close(x.mean(0), m, rtol=0, atol=0.02)
    torch.testing.assert_close(x.var(0), logvar.exp(), rtol=0.03, atol=0)


# ------------------------------------------------------------------------------------------------
# Categorical (minimal parameterisation, last logit fixed at 0)
# ------------------------------------------------------------------------------------------------


def _cat_eta(shape, d, seed=0):
    return torch.randn((*shape, d - 1), generator=_gen(seed), dtype=DT) * 1.5


def _full_logits(eta):
    return torch.cat((eta, torch.zeros((*eta.shape[:-1], 1), dtype=eta.dtype)), -1)


def test_categorical_rejects_single_value():
    with pytest.raises(ValueError):
        Categorical(1)


def test_categorical_log_partition_closed_form():
    eta = _cat_eta((4, 3), 5, seed=20)
    expected = torch.log(1 + eta.exp().sum(-1))
    torch.testing.assert_close(Categorical(5).log_partition(eta), expected, rtol=1e-12, atol=1e-12)
    assert Categorical(5).n_params == 4


def test_categorical_natural_from_logits_is_shift_invariant():
    logits = torch.randn(3, 6, generator=_gen(21), dtype=DT)
    fam = Categorical(6)
    eta = fam.natural_from_logits(logits)
    assert eta.shape == (3, 5)
    torch.testing.assert_close(fam.log_probs(eta), torch.log_softmax(logits, -1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fam.natural_from_logits(logits + 3.7), eta, rtol=1e-12, atol=1e-12)


def test_categorical_mean_params_closed_and_generic():
    eta = _cat_eta((4, 2), 4, seed=22)
    probs = torch.softmax(_full_logits(eta), -1)
    fam = Categorical(4)
    torch.testing.assert_close(fam.mean_params(eta), probs[..., :-1], rtol=1e-12, atol=1e-12)
    generic = AutogradFamily(fam.log_partition, 3)
    torch.testing.assert_close(generic.mean_params(eta), probs[..., :-1], rtol=1e-10, atol=1e-12)


def test_categorical_kl_closed_and_generic_vs_torch():
    eq, ep = _cat_eta((5, 3), 4, seed=23), _cat_eta((5, 3), 4, seed=24)
    ref = kl_divergence(TCategorical(logits=_full_logits(eq)), TCategorical(logits=_full_logits(ep)))
    fam = Categorical(4)
    torch.testing.assert_close(fam.kl(eq, ep), ref, rtol=1e-10, atol=1e-12)
    generic = AutogradFamily(fam.log_partition, 3)
    torch.testing.assert_close(generic.kl(eq, ep), ref, rtol=1e-9, atol=1e-12)


def test_categorical_log_prob_of_one_hot_samples():
    fam = Categorical(5)
    eta = _cat_eta((6,), 5, seed=25)
    idx = torch.randint(5, (6,), generator=_gen(26))
    x = F.one_hot(idx, 5).to(DT)
    ref = TCategorical(logits=_full_logits(eta)).log_prob(idx)
    torch.testing.assert_close(fam.log_prob(x, eta), ref, rtol=1e-12, atol=1e-12)
    # the generic <η, T(x)> − A(η) + log h(x) with the family's T (first D−1 entries) and h = 1
    torch.testing.assert_close(ExponentialFamily.log_prob(fam, x, eta), ref, rtol=1e-10, atol=1e-12)
    # and the per-value log-probabilities normalise
    torch.testing.assert_close(fam.log_probs(eta).exp().sum(-1), torch.ones(6, dtype=DT))


def test_categorical_sample_frequencies():
    fam = Categorical(4)
    eta = torch.tensor([[1.0, -0.5, 0.3], [-2.0, 0.0, 1.0]], dtype=DT)  # two units
    n = 40_000
    x = fam.sample(eta.expand(n, 2, 3), generator=_gen(27))
    assert x.shape == (n, 2, 4)
    assert torch.all((x == 0) | (x == 1)) and torch.all(x.sum(-1) == 1)
    freq = x.mean(0)
    probs = torch.softmax(_full_logits(eta), -1)
    torch.testing.assert_close(freq, probs, rtol=0, atol=0.015)


# ------------------------------------------------------------------------------------------------
# A family defined only by A(η): Poisson, A(η) = exp η
# ------------------------------------------------------------------------------------------------


def test_poisson_mean_params_and_kl_vs_torch(make_poisson):
    fam = make_poisson()
    eq = torch.randn(6, 1, generator=_gen(30), dtype=DT)
    ep = torch.randn(6, 1, generator=_gen(31), dtype=DT)
    lq, lp = eq[..., 0].exp(), ep[..., 0].exp()
    torch.testing.assert_close(fam.mean_params(eq)[..., 0], lq, rtol=1e-12, atol=1e-12)
    ref = kl_divergence(Poisson(lq), Poisson(lp))
    torch.testing.assert_close(fam.kl(eq, ep), ref, rtol=1e-10, atol=1e-12)
    # the textbook closed form, independently of torch: λq log(λq/λp) − λq + λp
    closed = lq * torch.log(lq / lp) - lq + lp
    torch.testing.assert_close(fam.kl(eq, ep), closed, rtol=1e-10, atol=1e-12)


def test_poisson_log_prob_vs_torch(make_poisson):
    fam = make_poisson()
    eta = torch.randn(8, 1, generator=_gen(32), dtype=DT)
    x = torch.randint(0, 7, (8,), generator=_gen(33)).to(DT)
    ref = Poisson(eta[..., 0].exp()).log_prob(x)
    torch.testing.assert_close(fam.log_prob(x, eta), ref, rtol=1e-10, atol=1e-12)


def test_autograd_family_without_stats_raises():
    fam = AutogradFamily(lambda eta: eta[..., 0].exp(), 1)
    with pytest.raises(NotImplementedError):
        fam.sufficient_stats(torch.zeros(2))
    with pytest.raises(NotImplementedError):
        fam.log_base_measure(torch.zeros(2))


def test_generic_mean_params_under_no_grad_and_for_leaf_parameters():
    fam = AutogradFamily(Gaussian().log_partition, 2)
    eta = Gaussian.natural_from_moments(torch.tensor([0.3], dtype=DT), torch.tensor([0.2], dtype=DT))
    with torch.no_grad():
        mu = fam.mean_params(eta)
    torch.testing.assert_close(mu, Gaussian().mean_params(eta), rtol=1e-10, atol=1e-12)
    # A parameter that requires grad: the result stays differentiable (second derivative of A).
    p = eta.clone().requires_grad_(True)
    mu = fam.mean_params(p)
    assert mu.requires_grad
    (g,) = torch.autograd.grad(mu[..., 0].sum(), p)
    # d m / d η for m = −η1/(2η2): (−1/(2η2), η1/(2η2²)) = (σ², m·2σ²)
    m, var = Gaussian.moments_from_natural(eta)
    torch.testing.assert_close(g, torch.stack((var, 2 * m * var), -1), rtol=1e-10, atol=1e-12)
    assert math.isfinite(float(g.sum()))
