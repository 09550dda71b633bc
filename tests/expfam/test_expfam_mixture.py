"""MixturePrior: the DEM-VAE z-terms (dispersion, average/exact KL, Var) and the mixture density.

Independent references: torch.distributions, brute-force loops/enumeration, closed forms from the
paper (§3.2), and Monte Carlo.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical as TCategorical
from torch.distributions import Normal, Poisson, kl_divergence

from demvae.expfam import AutogradFamily, Categorical, Gaussian, MixturePrior

DT = torch.float64
B, G, K, U = 4, 2, 3, 2
D = 4  # categorical values


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


FAMILIES = {
    "gaussian": lambda: Gaussian(),
    "categorical": lambda: Categorical(D),
    "poisson": None,  # the shared ``make_poisson`` fixture (tests/conftest.py), filled in below
}


@pytest.fixture(autouse=True, scope="module")
def _poisson_family(make_poisson):
    FAMILIES["poisson"] = make_poisson


def _raw(name: str, shape, seed: int) -> torch.Tensor:
    """Random raw parameters of the right layout (Gaussian raw = (mean, log-variance))."""
    g = _gen(seed)
    if name == "gaussian":
        return torch.stack(
            (torch.randn(shape, generator=g, dtype=DT) * 1.5, torch.randn(shape, generator=g, dtype=DT) * 0.6), -1
        )
    if name == "categorical":
        return torch.randn((*shape, D - 1), generator=g, dtype=DT) * 1.5
    return torch.randn((*shape, 1), generator=g, dtype=DT) * 0.8


def _q_c(seed: int, b=B, g=G, k=K) -> torch.Tensor:
    return torch.softmax(torch.randn(b, g, k, generator=_gen(seed), dtype=DT) * 1.5, -1)


def _prior(name: str, seed: int, **kw) -> MixturePrior:
    fam = FAMILIES[name]()
    return MixturePrior(fam, G, K, U, init=_raw(name, (G, K, U), seed), **kw)


def _posterior(name: str, seed: int) -> torch.Tensor:
    fam = FAMILIES[name]()
    return fam.natural_from_raw(_raw(name, (B, G, U), seed))


def _torch_dist(name: str, eta: torch.Tensor):
    """The torch.distributions object of a unit with natural parameters η [..., P]."""
    if name == "gaussian":
        m, v = Gaussian.moments_from_natural(eta)
        return Normal(m, v.sqrt())
    if name == "categorical":
        return TCategorical(logits=F.pad(eta, (0, 1)))
    return Poisson(eta[..., 0].exp())


# ------------------------------------------------------------------------------------------------
# dispersion
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FAMILIES))
def test_dispersion_nonnegative(name):
    for seed in range(5):
        prior = _prior(name, seed)
        q = _q_c(100 + seed)
        d = prior.dispersion(q)
        assert d.shape == (B, G)
        assert torch.all(d >= -1e-12), d
        assert torch.all(d > 1e-6)  # distinct components, non-degenerate q: strictly positive


@pytest.mark.parametrize("name", list(FAMILIES))
def test_dispersion_zero_when_components_equal(name):
    fam = FAMILIES[name]()
    one = _raw(name, (G, 1, U), 7)
    prior = MixturePrior(fam, G, K, U, init=one.expand(G, K, U, -1))
    d = prior.dispersion(_q_c(8))
    torch.testing.assert_close(d, torch.zeros(B, G, dtype=DT), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_dispersion_zero_when_code_is_one_hot(name):
    prior = _prior(name, 9)
    idx = torch.randint(K, (B, G), generator=_gen(10))
    q = F.one_hot(idx, K).to(DT)
    torch.testing.assert_close(prior.dispersion(q), torch.zeros(B, G, dtype=DT), rtol=0, atol=1e-6)


def test_dispersion_brute_force_from_log_partition():
    """Σ_u [Σ_k q_k A(η_k) − A(Σ_k q_k η_k)] by loops, with A written out here (Gaussian)."""
    prior = _prior("gaussian", 11)
    q = _q_c(12)
    eta = prior.natural_params().detach()

    def a(e):  # m²/(2σ²) + ½ log σ²
        var = -0.5 / e[1]
        m = e[0] * var
        return m * m / (2 * var) + 0.5 * math.log(var)

    d = prior.dispersion(q).detach()
    for b, g in itertools.product(range(B), range(G)):
        total = 0.0
        for u in range(U):
            avg = sum(q[b, g, k] * eta[g, k, u] for k in range(K))
            total += sum(float(q[b, g, k]) * a(eta[g, k, u]) for k in range(K)) - a(avg)
        assert abs(float(d[b, g]) - total) < 1e-10


def test_gaussian_dispersion_known_variance_is_weighted_variance_of_means():
    """Paper §3.3: equal variances σ² ⇒ L_d = Var_q(μ_c) / (2σ²) per unit."""
    logvar = 0.4
    means = torch.randn(G, K, U, generator=_gen(13), dtype=DT)
    init = torch.stack((means, torch.full_like(means, logvar)), -1)
    prior = MixturePrior(Gaussian(), G, K, U, init=init)
    q = _q_c(14)
    mean_mu = torch.einsum("bgk,gku->bgu", q, means)
    var_mu = torch.einsum("bgk,gku->bgu", q, means.square()) - mean_mu.square()
    expected = (var_mu / (2 * math.exp(logvar))).sum(-1)
    torch.testing.assert_close(prior.dispersion(q), expected, rtol=1e-10, atol=1e-12)


def test_bernoulli_dispersion_matches_paper_formula():
    """Paper §3.2, categorical (Bernoulli) mixture: L_d = −log(Π p_c^{q_c} + Π (1 − p_c)^{q_c})."""
    p = torch.rand(1, K, 1, generator=_gen(15), dtype=DT) * 0.9 + 0.05  # P(x = value 0)
    eta = torch.log(p / (1 - p)).unsqueeze(-1)  # [1, K, 1, 1]: logit of value 0 vs the fixed last one
    prior = MixturePrior(Categorical(2), 1, K, 1, init=eta)
    q = _q_c(16, g=1)
    pk = p[:, :, 0]  # [1, K]
    expected = -torch.log((pk ** q).prod(-1) + ((1 - pk) ** q).prod(-1))
    torch.testing.assert_close(prior.dispersion(q), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["gaussian_generic", "categorical"])
def test_dispersion_gradient_is_q_times_mean_parameter_gap(name):
    """∂L_d/∂η_k = Σ_b q_bk (∇A(η_k) − ∇A(η̄_b)) (paper §3.2), with ∇A written here in moments."""
    q = _q_c(18)
    if name == "gaussian_generic":
        eta = Gaussian().natural_from_raw(_raw("gaussian", (G, K, U), 17))
        fam = AutogradFamily(Gaussian().log_partition, 2)  # raw is η itself

        def grad_a(e):
            m, v = Gaussian.moments_from_natural(e)
            return torch.stack((m, m.square() + v), -1)

    else:
        eta = _raw("categorical", (G, K, U), 17)
        fam = Categorical(D)

        def grad_a(e):
            return torch.softmax(F.pad(e, (0, 1)), -1)[..., :-1]

    prior = MixturePrior(fam, G, K, U, init=eta)
    (got,) = torch.autograd.grad(prior.dispersion(q).sum(), prior.raw)
    eta_bar = torch.einsum("bgk,gkup->bgup", q, eta)
    gap = grad_a(eta).unsqueeze(0) - grad_a(eta_bar).unsqueeze(2)  # [B, G, K, U, P]
    expected = (q[..., None, None] * gap).sum(0)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# KL terms
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FAMILIES))
def test_exact_kl_is_average_kl_plus_dispersion(name):
    for seed in range(3):
        prior = _prior(name, 20 + seed)
        eta_q = _posterior(name, 30 + seed)
        q = _q_c(40 + seed)
        exact, avg, disp = prior.kl_exact(eta_q, q), prior.kl_average(eta_q, q), prior.dispersion(q)
        assert exact.shape == avg.shape == disp.shape == (B, G)
        torch.testing.assert_close(exact, avg + disp, rtol=0, atol=1e-6)
        assert torch.all(exact >= avg - 1e-12)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_exact_kl_brute_force_with_torch_distributions(name):
    prior = _prior(name, 50)
    eta_q = _posterior(name, 51)
    q = _q_c(52)
    eta = prior.natural_params().detach()
    got = prior.kl_exact(eta_q, q).detach()
    for b, g in itertools.product(range(B), range(G)):
        total = 0.0
        for k in range(K):
            kl_k = kl_divergence(_torch_dist(name, eta_q[b, g]), _torch_dist(name, eta[g, k])).sum()
            total += float(q[b, g, k]) * float(kl_k)
        assert abs(float(got[b, g]) - total) < 1e-9, (b, g)


def test_gaussian_average_prior_parameters_are_precision_weighted():
    prior = _prior("gaussian", 60)
    q = _q_c(61)
    m = prior.raw[..., 0].detach()  # [G, K, U]
    var = prior.raw[..., 1].detach().exp()
    prec_bar = torch.einsum("bgk,gku->bgu", q, 1 / var)
    var_bar = 1 / prec_bar
    mu_bar = var_bar * torch.einsum("bgk,gku->bgu", q, m / var)
    eta_bar = prior.average_natural(q)
    assert eta_bar.shape == (B, G, U, 2)
    m2, v2 = Gaussian.moments_from_natural(eta_bar)
    torch.testing.assert_close(v2, var_bar, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m2, mu_bar, rtol=1e-12, atol=1e-12)


def test_gaussian_average_kl_monte_carlo():
    prior = _prior("gaussian", 62)
    eta_q = _posterior("gaussian", 63)
    q = _q_c(64)
    m = prior.raw[..., 0].detach()
    var = prior.raw[..., 1].detach().exp()
    var_bar = 1 / torch.einsum("bgk,gku->bgu", q, 1 / var)
    mu_bar = var_bar * torch.einsum("bgk,gku->bgu", q, m / var)
    mq, vq = Gaussian.moments_from_natural(eta_q)
    qz, phat = Normal(mq, vq.sqrt()), Normal(mu_bar, var_bar.sqrt())
    z = mq + vq.sqrt() * torch.randn((60_000, B, G, U), generator=_gen(65), dtype=DT)
    terms = (qz.log_prob(z) - phat.log_prob(z)).sum(-1)  # [N, B, G]
    est, se = terms.mean(0), terms.std(0) / math.sqrt(terms.shape[0])
    got = prior.kl_average(eta_q, q)
    assert torch.all((got - est).abs() < 5 * se + 1e-3), (got, est, se)


def test_param_variance_brute_force():
    for name in FAMILIES:
        prior = _prior(name, 70)
        q = _q_c(71)
        eta = prior.natural_params().detach()
        got = prior.param_variance(q).detach()
        assert got.shape == (B,)
        for b in range(B):
            total = 0.0
            for g in range(G):
                eta_bar = sum(q[b, g, k] * eta[g, k] for k in range(K))  # [U, P]
                total += float(sum(q[b, g, k] * ((eta[g, k] - eta_bar) ** 2).sum() for k in range(K)))
            assert abs(float(got[b]) - total) < 1e-10, (name, b)


def test_param_variance_zero_for_equal_components_or_one_hot():
    one = _raw("gaussian", (G, 1, U), 72)
    prior = MixturePrior(Gaussian(), G, K, U, init=one.expand(G, K, U, 2))
    torch.testing.assert_close(prior.param_variance(_q_c(73)), torch.zeros(B, dtype=DT), rtol=0, atol=1e-10)
    prior = _prior("gaussian", 74)
    q = F.one_hot(torch.randint(K, (B, G), generator=_gen(75)), K).to(DT)
    torch.testing.assert_close(prior.param_variance(q), torch.zeros(B, dtype=DT), rtol=0, atol=1e-10)


# ------------------------------------------------------------------------------------------------
# density and sampling
# ------------------------------------------------------------------------------------------------


def _brute_log_prob(name, prior, z, n_lead):
    """log Σ_{c ∈ [K]^G} p(c) Π_g p(z_g | c_g), by enumeration of all joint codes."""
    eta = prior.natural_params()
    terms = []
    for codes in itertools.product(range(K), repeat=G):
        lp = torch.full(z.shape[:n_lead], -G * math.log(K), dtype=DT)
        for g, k in enumerate(codes):
            zg = z[(slice(None),) * n_lead + (g,)]  # [..., U, *event]
            if name == "categorical":
                lp = lp + _torch_dist(name, eta[g, k]).log_prob(zg.argmax(-1)).sum(-1)
            else:
                lp = lp + _torch_dist(name, eta[g, k]).log_prob(zg).sum(-1)
        terms.append(lp)
    return torch.logsumexp(torch.stack(terms), 0)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_log_prob_marginalises_codes_exactly(name):
    prior = _prior(name, 80)
    n = 5
    g = _gen(81)
    if name == "gaussian":
        z = torch.randn(n, G, U, generator=g, dtype=DT) * 2
    elif name == "categorical":
        z = F.one_hot(torch.randint(D, (n, G, U), generator=g), D).to(DT)
    else:
        z = torch.randint(0, 6, (n, G, U), generator=g).to(DT)
    got = prior.log_prob(z)
    assert got.shape == (n,)
    torch.testing.assert_close(got, _brute_log_prob(name, prior, z, 1), rtol=1e-10, atol=1e-10)
    # extra leading dimensions (as importance sampling uses: [B, n, G, U, *event])
    torch.testing.assert_close(prior.log_prob(z.unsqueeze(0)), got.unsqueeze(0), rtol=1e-12, atol=1e-12)


def test_categorical_mixture_density_normalises():
    """Σ over every one-hot configuration of exp log p(z) = 1 (G=2, U=1, D=3: 9 configurations)."""
    fam = Categorical(3)
    prior = MixturePrior(fam, 2, K, 1, init=torch.randn(2, K, 1, 2, generator=_gen(82), dtype=DT))
    idx = torch.tensor(list(itertools.product(range(3), repeat=2)))  # [9, G]
    z = F.one_hot(idx, 3).to(DT).unsqueeze(-2)  # [9, G, U=1, D]
    torch.testing.assert_close(prior.log_prob(z).exp().sum(), torch.tensor(1.0, dtype=DT), rtol=0, atol=1e-12)


def test_gaussian_sample_moments_follow_the_chosen_component():
    prior = _prior("gaussian", 90)
    n = 40_000
    codes = torch.tensor([[0, 2], [1, 0]])  # two code patterns
    for pattern in codes:
        z = prior.sample(pattern.expand(n, G), generator=_gen(91))
        assert z.shape == (n, G, U)
        for g in range(G):
            k = int(pattern[g])
            m = prior.raw[g, k, :, 0].detach()
            v = prior.raw[g, k, :, 1].detach().exp()
            torch.testing.assert_close(z[:, g].mean(0), m, rtol=0, atol=5 * (v / n).sqrt().max().item() + 1e-3)
            torch.testing.assert_close(z[:, g].var(0), v, rtol=0.05, atol=0)


def test_categorical_sample_frequencies_follow_the_chosen_component():
    prior = _prior("categorical", 92)
    n = 30_000
    codes = torch.randint(K, (n, G), generator=_gen(93))
    z = prior.sample(codes, generator=_gen(94))
    assert z.shape == (n, G, U, D)
    assert torch.all(z.sum(-1) == 1)
    eta = prior.natural_params()
    for g in range(G):
        for k in range(K):
            sel = codes[:, g] == k
            freq = z[sel, g].mean(0)  # [U, D]
            probs = torch.softmax(F.pad(eta[g, k], (0, 1)), -1)
            torch.testing.assert_close(freq, probs, rtol=0, atol=0.03)


def test_sample_codes_uniform():
    prior = _prior("gaussian", 95)
    c = prior.sample_codes(30_000, generator=_gen(96))
    assert c.shape == (30_000, G)
    freq = F.one_hot(c, K).double().mean(0)
    torch.testing.assert_close(freq, torch.full((G, K), 1 / K, dtype=DT), rtol=0, atol=0.015)


# ------------------------------------------------------------------------------------------------
# fixed N(0, I) prior: the plain VAE
# ------------------------------------------------------------------------------------------------


def test_fixed_standard_normal_prior_gives_standard_vae_kl():
    prior = MixturePrior(Gaussian(), G, 1, U, learn_prior=False, init=torch.zeros(2, dtype=DT))
    assert list(prior.parameters()) == []
    assert "raw" in dict(prior.named_buffers())
    m, v = Gaussian.moments_from_natural(prior.natural_params())
    torch.testing.assert_close(m, torch.zeros(G, 1, U, dtype=DT))
    torch.testing.assert_close(v, torch.ones(G, 1, U, dtype=DT))
    mu = torch.randn(B, G, U, generator=_gen(100), dtype=DT)
    logvar = torch.randn(B, G, U, generator=_gen(101), dtype=DT) * 0.5
    eta_q = Gaussian.natural_from_moments(mu, logvar)
    q_c = torch.ones(B, G, 1, dtype=DT)
    expected = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(-1)
    torch.testing.assert_close(prior.kl_average(eta_q, q_c), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(prior.kl_exact(eta_q, q_c), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(prior.dispersion(q_c), torch.zeros(B, G, dtype=DT), rtol=0, atol=1e-12)


def test_fixed_prior_with_equal_components_is_still_standard_normal():
    prior = MixturePrior(Gaussian(), G, K, U, learn_prior=False, init=torch.zeros(2, dtype=DT))
    mu = torch.randn(B, G, U, generator=_gen(102), dtype=DT)
    logvar = torch.randn(B, G, U, generator=_gen(103), dtype=DT) * 0.5
    eta_q = Gaussian.natural_from_moments(mu, logvar)
    expected = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(-1)
    q = _q_c(104)
    torch.testing.assert_close(prior.kl_average(eta_q, q), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(prior.dispersion(q), torch.zeros(B, G, dtype=DT), rtol=0, atol=1e-12)


def test_learnable_prior_receives_gradients():
    prior = _prior("gaussian", 105)
    assert [n for n, _ in prior.named_parameters()] == ["raw"]
    eta_q = _posterior("gaussian", 106)
    q = _q_c(107)
    loss = prior.kl_average(eta_q, q).sum() + prior.dispersion(q).sum()
    loss.backward()
    assert prior.raw.grad is not None and torch.all(torch.isfinite(prior.raw.grad))
    assert prior.raw.grad.abs().sum() > 0
