"""The contract every exponential family of the library keeps, run on each of them.

Adding a family = one file under ``src/demvae/expfam/``, one line in the registry
(``demvae.expfam.FAMILIES``) and one line in ``FAMILIES`` below. Every check compares the family with an
independent computation: the generic autograd/Bregman path of the base class, brute-force sums over the
support, quadrature, or Monte Carlo.
"""

from __future__ import annotations

import math

import pytest
import torch

from demvae.distributed import Noise, World
from demvae.expfam import FAMILIES as REGISTRY
from demvae.expfam import Categorical, ExponentialFamily, Gaussian, Poisson, make_family

DT = torch.float64


def _gaussian_eta(shape, g):
    m = torch.randn(shape, generator=g, dtype=DT)
    logvar = torch.randn(shape, generator=g, dtype=DT) * 0.5
    return Gaussian.natural_from_moments(m, logvar)


def _categorical_eta(shape, g):
    return torch.randn((*shape, 3), generator=g, dtype=DT)


def _poisson_eta(shape, g):
    return torch.randn((*shape, 1), generator=g, dtype=DT) * 0.5 + 1.0


FAMILIES = {
    "gaussian": (Gaussian(), _gaussian_eta, None),
    "categorical": (Categorical(4), _categorical_eta, lambda: torch.eye(4, dtype=DT)),
    "poisson": (Poisson(), _poisson_eta, lambda: torch.arange(0, 80, dtype=DT)),
}
"""name -> (family, η generator, the support enumerated (discrete families) or None)."""

pytestmark = pytest.mark.parametrize("name", list(FAMILIES))


def _setup(name, shape=(5, 2), seed=0):
    family, make_eta, support = FAMILIES[name]
    return family, make_eta(shape, torch.Generator().manual_seed(seed)), support


def test_closed_forms_equal_the_generic_path(name):
    family, eta, _ = _setup(name)
    eta_p = FAMILIES[name][1]((5, 2), torch.Generator().manual_seed(1))
    torch.testing.assert_close(family.mean_params(eta), ExponentialFamily.mean_params(family, eta),
                               rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(family.kl(eta, eta_p), ExponentialFamily.kl(family, eta, eta_p), rtol=1e-9, atol=1e-10)
    assert (family.kl(eta, eta_p) > 0).all()
    torch.testing.assert_close(family.kl(eta, eta), torch.zeros(5, 2, dtype=DT), rtol=0, atol=1e-12)


def test_log_prob_is_normalised_and_matches_the_generic_formula(name):
    family, eta, support = _setup(name)
    if support is None:  # Gaussian: trapezoidal quadrature on a wide grid
        mean, var = Gaussian.moments_from_natural(eta)
        grid = torch.linspace(-12, 12, 20_001, dtype=DT)
        x = mean.unsqueeze(-1) + var.sqrt().unsqueeze(-1) * grid  # [5, 2, N]
        density = family.log_prob(x, eta.unsqueeze(-2)).exp()
        total = torch.trapezoid(density, x, dim=-1)
        sample = x[..., 7]
    else:
        values = support()  # [V, *event]
        ev = family.event_dims
        x = values.view(values.shape[0], *([1] * (eta.dim() - 1)), *values.shape[1:])
        total = family.log_prob(x, eta.unsqueeze(0)).exp().sum(0)
        sample = values[2].expand(*eta.shape[:-1], *values.shape[1:]) if ev else values[2].expand(eta.shape[:-1])
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-6)
    generic = ExponentialFamily.log_prob(family, sample, eta)
    torch.testing.assert_close(family.log_prob(sample, eta), generic, rtol=1e-10, atol=1e-10)


def test_samples_have_the_mean_parameters_and_the_event_size(name):
    family, eta, _ = _setup(name, shape=(3,))
    n = 40_000
    x = family.sample(eta.expand(n, *eta.shape), generator=torch.Generator().manual_seed(2))
    assert x.shape == (n, 3, *([family.event_size] if family.event_dims else []))
    stats = family.sufficient_stats(x).mean(0)
    expected = family.mean_params(eta)
    torch.testing.assert_close(stats, expected, rtol=0.05, atol=0.05)


def test_mode_is_the_most_probable_value(name):
    family, eta, support = _setup(name)
    mode = family.mode(eta)
    best = family.log_prob(mode, eta)
    if support is None:
        for delta in (-1e-2, 1e-2):
            assert (family.log_prob(mode + delta, eta) < best).all()
    else:
        values = support()
        x = values.view(values.shape[0], *([1] * (eta.dim() - 1)), *values.shape[1:])
        assert (family.log_prob(x, eta.unsqueeze(0)) <= best.unsqueeze(0) + 1e-12).all()


def test_the_registry_builds_the_family_under_its_name(name):
    family = FAMILIES[name][0]
    built = make_family(name, z_values=family.event_size)
    assert REGISTRY[name] is type(family) and built.name == name and type(built) is type(family)
    assert built.n_params == family.n_params and built.event_size == family.event_size


def test_sample_puts_the_sample_dimensions_first(name):
    family, eta, _ = _setup(name, shape=(2, 3))
    event = (family.event_size,) if family.event_dims else ()
    assert family.sample(eta, (4, 5), generator=torch.Generator().manual_seed(0)).shape == (4, 5, 2, 3, *event)
    assert family.sample(eta, generator=torch.Generator().manual_seed(0)).shape == (2, 3, *event)


def test_relaxed_rsample_is_differentiable_and_draws_values_of_the_family(name):
    family, eta, _ = _setup(name, shape=(2, 3))
    assert family.has_relaxed_rsample  # every registered family can be trained as a latent
    eta = eta.clone().requires_grad_(True)
    torch.manual_seed(3)
    z = family.relaxed_rsample(eta, 0.5, (4000,))
    assert z.shape == (4000, 2, 3, *([family.event_size] if family.event_dims else []))
    torch.testing.assert_close(family.sufficient_stats(z).mean(0), family.mean_params(eta.detach()),
                               rtol=0.08, atol=0.08)
    if family.discrete:  # a straight-through sample is a value of the support, not a relaxed one
        torch.testing.assert_close(z.detach(), z.detach().round(), rtol=0, atol=1e-12)
        assert torch.isfinite(family.log_prob(z.detach(), eta.detach())).all()
    (z * torch.randn_like(z)).sum().backward()
    assert eta.grad is not None and eta.grad.abs().sum() > 0


def test_rsample_exists_exactly_where_has_rsample_says(name):
    family, eta, _ = _setup(name, shape=(2, 3))
    if not family.has_rsample:
        with pytest.raises(NotImplementedError, match=name):
            family.rsample(eta, (2,))
        return
    torch.manual_seed(4)
    exact = family.rsample(eta, (3,))
    torch.manual_seed(4)  # a family with an exact rsample trains with it, whatever the temperature
    torch.testing.assert_close(family.relaxed_rsample(eta, 0.1, (3,)), exact, rtol=0, atol=0)


def test_a_data_parallel_rank_draws_its_rows_of_the_global_batch(name):
    """Noise passed explicitly: rank r of 2, given its shard η[r::2] and the global batch's row count, draws
    exactly rows r::2 of what one process draws for the whole batch from the same seed."""
    family, eta, _ = _setup(name, shape=(6, 3))
    torch.manual_seed(5)
    whole = family.relaxed_rsample(eta, 0.7, (2,))
    for rank in range(2):
        torch.manual_seed(5)
        part = family.relaxed_rsample(eta[rank::2], 0.7, (2,), Noise(World(rank, 2), rows=6))
        torch.testing.assert_close(part, whole[:, rank::2], rtol=0, atol=0)


def test_moments_match_the_samples(name):
    family, eta, _ = _setup(name, shape=(3,))
    x = family.sample(eta, (40_000,), generator=torch.Generator().manual_seed(6))
    mean, var = family.moments(family.mean_params(eta))
    torch.testing.assert_close(mean, x.mean(0), rtol=0.05, atol=0.02)
    torch.testing.assert_close(var, x.var(0), rtol=0.06, atol=0.02)


def test_tempered_sample_is_the_mode_at_zero_and_a_draw_at_one(name):
    family, eta, _ = _setup(name, shape=(3,))
    mean_params = family.mean_params(eta)
    torch.testing.assert_close(family.tempered_sample(mean_params, 0.0), family.mode(eta))
    n = 20_000
    draws = family.tempered_sample(mean_params.expand(n, *mean_params.shape), 1.0,
                                   generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(family.sufficient_stats(draws).mean(0), mean_params, rtol=0.05, atol=0.05)
    if family.discrete:  # a colder temperature concentrates the draws on the mode
        cold = family.tempered_sample(mean_params.expand(n, *mean_params.shape), 0.3,
                                      generator=torch.Generator().manual_seed(8))
        mode = family.to_index(family.mode(eta))
        hit = lambda d: float((family.to_index(d) == mode).double().mean())
        assert hit(cold) > hit(draws) + 0.05


def test_labels_round_trip_on_discrete_families(name):
    family, eta, support = _setup(name)
    y = torch.tensor([0, 2, 1])
    if not family.discrete:
        with pytest.raises(NotImplementedError):
            family.from_index(y)
        return
    x = family.from_index(y)
    assert torch.equal(family.to_index(x), y)
    grid = torch.tensor([[0, 2, 3], [1, 3, 0]])  # [B, M] labels: the event axis is the last one
    assert torch.equal(family.to_index(family.from_index(grid)), grid)
    # a label's log-probability is the log-probability of its sample
    values = support()
    assert torch.equal(family.from_index(torch.tensor(3)).to(DT), values[3])


def test_log_partition_is_convex_along_a_line(name):
    """Convexity of A is what makes the dispersion non-negative (paper §3.2)."""
    family, eta, _ = _setup(name)
    other = FAMILIES[name][1]((5, 2), torch.Generator().manual_seed(5))
    for t in (0.2, 0.5, 0.9):
        mix = family.log_partition(t * eta + (1 - t) * other)
        chord = t * family.log_partition(eta) + (1 - t) * family.log_partition(other)
        assert (mix <= chord + 1e-12).all()
    assert math.isfinite(float(family.log_partition(eta).sum()))


def test_shapes_of_the_statistics(name):
    """T(x) has n_params entries, log h(x) and log p(x) one value per variable."""
    family, eta, _ = _setup(name)
    x = family.sample(eta, generator=torch.Generator().manual_seed(4))
    assert family.sufficient_stats(x).shape == eta.shape
    assert eta.shape[-1] == family.n_params
    assert family.log_base_measure(x).shape == eta.shape[:-1]
    assert family.log_prob(x, eta).shape == eta.shape[:-1]
