"""Gumbel-softmax, and the importance samplers of the latent blocks (log p − log q weights).

References: softmax(logits) frequencies (Gumbel-max trick), torch.distributions densities, a
brute-force mixture density by enumerating codes, and E_q[p/q] = 1.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical as TCategorical
from torch.distributions import Normal

from demvae.expfam import Categorical, Gaussian
from demvae.models.latents import DiscreteLatent, MixtureLatent
from demvae.nn.gumbel import gumbel_softmax

DT = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# Gumbel-softmax
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_hard_gumbel_is_one_hot_with_softmax_frequencies(temperature):
    torch.manual_seed(0)
    logits = torch.tensor([1.0, -0.5, 0.2, 0.0], dtype=DT)
    n = 40_000
    y = gumbel_softmax(logits.expand(n, 4), temperature, hard=True)
    assert y.shape == (n, 4)
    # forward values are the one-hot of the argmax (up to the rounding of one_hot + y − y)
    torch.testing.assert_close(y, F.one_hot(y.argmax(-1), 4).to(DT), rtol=0, atol=1e-12)
    torch.testing.assert_close(y.mean(0), torch.softmax(logits, -1), rtol=0, atol=0.015)


def test_soft_gumbel_is_a_distribution_and_sharpens_with_low_temperature():
    torch.manual_seed(1)
    logits = torch.randn(1000, 5, generator=_gen(1), dtype=DT)
    y = gumbel_softmax(logits, 1.0)
    assert torch.all(y > 0)
    torch.testing.assert_close(y.sum(-1), torch.ones(1000, dtype=DT))
    cold = gumbel_softmax(logits, 0.01)
    assert float(cold.max(-1).values.mean()) > 0.95
    assert float(y.max(-1).values.mean()) < 0.9


def test_straight_through_forward_is_argmax_and_gradient_is_the_soft_one():
    logits = torch.randn(6, 4, generator=_gen(2), dtype=DT)
    weights = torch.randn(6, 4, generator=_gen(3), dtype=DT)

    torch.manual_seed(7)
    lh = logits.clone().requires_grad_(True)
    hard = gumbel_softmax(lh, 0.7, hard=True)
    (g_hard,) = torch.autograd.grad((hard * weights).sum(), lh)

    torch.manual_seed(7)  # the same noise
    ls = logits.clone().requires_grad_(True)
    soft = gumbel_softmax(ls, 0.7, hard=False)
    (g_soft,) = torch.autograd.grad((soft * weights).sum(), ls)

    torch.testing.assert_close(hard.detach(), F.one_hot(soft.argmax(-1), 4).to(DT))
    assert g_hard.abs().sum() > 0
    torch.testing.assert_close(g_hard, g_soft, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# importance sampling
# ------------------------------------------------------------------------------------------------

B, IN, G, K, U = 2, 3, 2, 3, 2


def _set_posterior_bias(block, bias: torch.Tensor):
    with torch.no_grad():
        block.posterior.weight.zero_()
        block.posterior.bias.copy_(bias.flatten())


def _brute_gauss_mixture_log_prob(prior, z):
    """z [..., G, U]; log Σ_c p(c) Π_g N(z_g; m_{g,c_g}, σ²_{g,c_g}) by enumerating codes."""
    m = prior.raw[..., 0].detach()
    s = (0.5 * prior.raw[..., 1].detach()).exp()
    out = []
    for codes in itertools.product(range(K), repeat=G):
        lp = -G * math.log(K)
        for g, k in enumerate(codes):
            lp = lp + Normal(m[g, k], s[g, k]).log_prob(z[..., g, :]).sum(-1)
        out.append(lp)
    return torch.logsumexp(torch.stack(out), 0)


def test_gaussian_mixture_latent_importance_weights():
    torch.manual_seed(10)
    init = torch.stack(
        (torch.randn(G, K, U, generator=_gen(11), dtype=DT), torch.zeros(G, K, U, dtype=DT)), -1
    )  # prior components N(m, 1)
    block = MixtureLatent(Gaussian(), IN, G, K, U, prior_init=init).double()
    mean = torch.randn(G, U, generator=_gen(12), dtype=DT) * 0.5
    _set_posterior_bias(block, torch.stack((mean, torch.full((G, U), 0.6, dtype=DT)), -1))  # q wider than p
    h = torch.randn(B, IN, generator=_gen(13), dtype=DT)
    n = 10_000
    feats, logw = block.importance_sample(h, n)
    assert feats.shape == (B, n, G * U) and logw.shape == (B, n)
    z = feats.view(B, n, G, U)
    # the weights are exactly log p(z) − log q(z|x)
    log_q = Normal(mean, math.exp(0.3)).log_prob(z).sum((-1, -2))
    torch.testing.assert_close(logw, _brute_gauss_mixture_log_prob(block.prior, z) - log_q, rtol=1e-9, atol=1e-9)
    # the samples follow q(z|x)
    torch.testing.assert_close(z.mean((0, 1)), mean, rtol=0, atol=0.05)
    torch.testing.assert_close(z.var(1).mean(0), torch.full((G, U), math.exp(0.6), dtype=DT), rtol=0.05, atol=0)
    # E_q[p/q] = ∫ p = 1
    wts = logw.exp()
    se = wts.std(1) / math.sqrt(n)
    assert torch.all((wts.mean(1) - 1).abs() < 5 * se + 1e-3), (wts.mean(1), se)


def test_categorical_mixture_latent_importance_weights():
    torch.manual_seed(20)
    d = 3
    block = MixtureLatent(
        Categorical(d), IN, G, K, 1, prior_init=torch.randn(G, K, 1, d - 1, generator=_gen(21), dtype=DT)
    ).double()
    bias = torch.randn(G, 1, d - 1, generator=_gen(22), dtype=DT) * 0.5
    _set_posterior_bias(block, bias)
    h = torch.randn(B, IN, generator=_gen(23), dtype=DT)
    n = 10_000
    feats, logw = block.importance_sample(h, n)
    assert feats.shape == (B, n, G * d)
    z = feats.view(B, n, G, 1, d)
    idx = z.argmax(-1)  # [B, n, G, 1]
    log_q = TCategorical(logits=F.pad(bias, (0, 1))).log_prob(idx).sum((-1, -2))
    eta = block.prior.natural_params().detach()
    terms = []
    for codes in itertools.product(range(K), repeat=G):
        lp = -G * math.log(K)
        for g, k in enumerate(codes):
            lp = lp + TCategorical(logits=F.pad(eta[g, k], (0, 1))).log_prob(idx[..., g, :]).sum(-1)
        terms.append(lp)
    log_p = torch.logsumexp(torch.stack(terms), 0)
    torch.testing.assert_close(logw, log_p - log_q, rtol=1e-10, atol=1e-10)
    # exact: Σ_z q(z) p(z)/q(z) = 1
    assert torch.all((logw.exp().mean(1) - 1).abs() < 0.05)


def test_discrete_latent_importance_weights_and_frequencies():
    torch.manual_seed(30)
    block = DiscreteLatent(IN, G, K).double()
    logits = torch.randn(G, K, generator=_gen(31), dtype=DT) * 0.8
    with torch.no_grad():
        block.logits.weight.zero_()
        block.logits.bias.copy_(logits.flatten())
    h = torch.randn(B, IN, generator=_gen(32), dtype=DT)
    n = 30_000
    feats, logw = block.importance_sample(h, n)
    assert feats.shape == (B, n, G * K) and logw.shape == (B, n)
    onehot = feats.view(B, n, G, K)
    assert torch.all(onehot.sum(-1) == 1)
    idx = onehot.argmax(-1)  # [B, n, G]
    log_q = torch.log_softmax(logits, -1)
    expected = -G * math.log(K) - log_q[torch.arange(G), idx].sum(-1)
    torch.testing.assert_close(logw, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(onehot.mean((0, 1)), log_q.exp(), rtol=0, atol=0.01)
    assert torch.all((logw.exp().mean(1) - 1).abs() < 0.05)


def test_mixture_latent_terms_split_the_exact_kl():
    """The block's kl_z_avg + dispersion equals the prior's exact component-wise KL for its own q(c|x)."""
    torch.manual_seed(40)
    block = MixtureLatent(Gaussian(), IN, G, K, U, prior_init=torch.randn(G, K, U, 2, dtype=DT) * 0.5).double()
    h = torch.randn(B, IN, dtype=DT)
    _, terms = block(h, 1)
    q_c = block.code_probs(h)
    exact = block.prior.kl_exact(block.posterior_natural(h), q_c)
    torch.testing.assert_close(terms.kl_z_avg + terms.dispersion, exact, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(terms.param_var, block.prior.param_variance(q_c))
