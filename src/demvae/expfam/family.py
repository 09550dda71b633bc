r"""Exponential families in natural parameters.

A family is ``p(x | η) = h(x) exp(<η, T(x)> − A(η))``. One *unit* (a scalar Gaussian dimension, one
categorical variable, one Poisson count, ...) has ``n_params`` natural parameters, so parameter
tensors have shape ``[..., n_params]`` and every reduction below returns ``[...]``. A unit's sample
has ``event_size`` numbers (1 for a scalar, D for a one-hot categorical) in ``event_dims`` trailing
dimensions (0 or 1).

Everything the DEM-VAE objective needs follows from the log-partition ``A(η)`` alone:

* mean parameters      ``μ(η) = ∇A(η) = E[T(x)]``
* KL divergence        ``KL(p_λ ‖ p_η) = A(η) − A(λ) − <η − λ, ∇A(λ)>``   (a Bregman divergence of A)

so :class:`ExponentialFamily` computes both by autograd from :meth:`log_partition`; concrete
families override them with closed forms only for speed (the tests check the two agree).

To serve as a latent variable a family also draws samples, torch.distributions-style with the sample
dimensions first (``sample``; ``rsample`` when it can be reparameterised exactly, ``relaxed_rsample``
when it can be trained through a relaxation at a temperature), draws from a member given by its mean
parameters at a generation temperature (``tempered_sample``), gives a unit's mean and variance from
its mean parameters (``moments``), names its most probable value (``mode``), and — if its values can
be class labels — converts between labels and samples (``from_index``/``to_index``). The capability
flags ``has_rsample``, ``has_relaxed_rsample`` and ``discrete`` say which of these a family has, so
callers never ask which family they hold.

The noise of a training draw comes from an explicit :class:`~demvae.distributed.Noise` (a
data-parallel rank draws its rows of the global batch's noise); η's first dimension indexes the
batch's examples. Adding a family is one file, one line in :data:`demvae.expfam.registry.FAMILIES`
(which makes it a ``model.family`` of the config) and one line in the shared contract tests
(``tests/expfam/test_expfam_contract.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from demvae.distributed import Noise

SampleShape = tuple[int, ...] | torch.Size


class ExponentialFamily:
    """Base class: subclasses give ``n_params`` and ``log_partition``; the rest has generic defaults
    or raises :class:`NotImplementedError` naming what the family lacks."""

    n_params: int
    name: str = "family"
    event_size: int = 1
    """Numbers in one unit's sample (1 for scalars, D for one-hot vectors)."""
    event_dims: int = 0
    """Trailing dimensions of one unit's sample (0 for scalars, 1 for one-hot vectors)."""
    discrete: bool = False
    """Whether values are class indices (then ``from_index``/``to_index`` work and labels can supervise it)."""
    has_rsample: bool = False
    """Whether :meth:`rsample` draws exact reparameterised samples (a continuous family)."""
    has_relaxed_rsample: bool = False
    """Whether :meth:`relaxed_rsample` exists, i.e. whether a latent block can train through the family."""

    # --- the family ---
    def natural_from_raw(self, raw: Tensor) -> Tensor:
        """Map unconstrained network/prior outputs [..., n_params] to natural parameters."""
        return raw

    def log_partition(self, eta: Tensor) -> Tensor:
        """``A(η)``: [..., P] -> [...]."""
        raise NotImplementedError(f"{self.name}: no log-partition")

    def mean_params(self, eta: Tensor) -> Tensor:
        """``∇A(η) = E_η[T(x)]`` by autograd (kept in the graph so it can be differentiated again)."""
        with torch.enable_grad():
            eta_ = eta if eta.requires_grad else eta.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(
                self.log_partition(eta_).sum(), eta_, create_graph=eta.requires_grad
            )
        return grad

    def kl(self, eta_q: Tensor, eta_p: Tensor) -> Tensor:
        """``KL(p_{η_q} ‖ p_{η_p}) = A(η_p) − A(η_q) − <η_p − η_q, ∇A(η_q)>``, per unit."""
        mu_q = self.mean_params(eta_q)
        return self.log_partition(eta_p) - self.log_partition(eta_q) - ((eta_p - eta_q) * mu_q).sum(-1)

    def sufficient_stats(self, x: Tensor) -> Tensor:
        """``T(x)``: a sample [..., *event] -> [..., P]."""
        raise NotImplementedError(f"{self.name}: no sufficient statistics")

    def log_base_measure(self, x: Tensor) -> Tensor:
        """``log h(x)`` per unit."""
        raise NotImplementedError(f"{self.name}: no base measure")

    def log_prob(self, x: Tensor, eta: Tensor) -> Tensor:
        """``log p(x | η) = <η, T(x)> − A(η) + log h(x)`` per unit."""
        return (eta * self.sufficient_stats(x)).sum(-1) - self.log_partition(eta) + self.log_base_measure(x)

    # --- as a latent variable ---
    def moments(self, mean_params: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of a unit's value from its mean parameters ``E[T(x)]``: [..., P] -> ([..., *event],
        [..., *event]). Averages of mean parameters (an aggregate posterior) are mixtures' moments."""
        raise NotImplementedError(f"{self.name}: no moments")

    def sample(self, eta: Tensor, sample_shape: SampleShape = (), generator: torch.Generator | None = None) -> Tensor:
        """Exact draws (no gradient): [..., P] -> [*sample_shape, ..., *event]."""
        raise NotImplementedError(f"{self.name}: no sampler")

    def rsample(self, eta: Tensor, sample_shape: SampleShape = (), noise: Noise | None = None) -> Tensor:
        """Exact reparameterised draws, differentiable in η: [B, ..., P] -> [*sample_shape, B, ..., *event]
        (``has_rsample``)."""
        raise NotImplementedError(f"{self.name}: cannot be reparameterised exactly")

    def relaxed_rsample(self, eta: Tensor, temperature: float, sample_shape: SampleShape = (),
                        noise: Noise | None = None) -> Tensor:
        """Differentiable draws for training: [B, ..., P] -> [*sample_shape, B, ..., *event]. A discrete family
        relaxes its draw at ``temperature`` (straight-through: exact values forward, the relaxation's
        gradient); a family with an exact :meth:`rsample` returns it and ignores the temperature."""
        if self.has_rsample:
            return self.rsample(eta, sample_shape, noise)
        raise NotImplementedError(f"{self.name}: cannot be reparameterised, so it cannot be trained as a latent")

    def tempered_sample(self, mean_params: Tensor, temperature: float,
                        generator: torch.Generator | None = None) -> Tensor:
        """One draw per unit from the member with mean parameters [..., P] at a generation temperature t:
        t = 0 its mode, larger t a wider spread (t = 1 an exact draw): [..., *event]."""
        raise NotImplementedError(f"{self.name}: no tempered sampler")

    def mode(self, eta: Tensor) -> Tensor:
        """The most probable value of each unit: [..., P] -> [..., *event]."""
        raise NotImplementedError(f"{self.name}: no mode")

    def from_index(self, y: Tensor) -> Tensor:
        """Class labels [...] (long) as samples [..., *event] (discrete families)."""
        raise NotImplementedError(f"{self.name}: its values are not class labels")

    def to_index(self, x: Tensor) -> Tensor:
        """Samples [..., *event] as class labels [...] (long): the inverse of :meth:`from_index`."""
        raise NotImplementedError(f"{self.name}: its values are not class labels")


class AutogradFamily(ExponentialFamily):
    """A family given only by its log-partition function ``A(η)`` (plus, optionally, T and h).

    This is the generic path of the paper's claim: dispersion and KL need nothing else.
    """

    def __init__(
        self,
        log_partition: Callable[[Tensor], Tensor],
        n_params: int,
        sufficient_stats: Callable[[Tensor], Tensor] | None = None,
        log_base_measure: Callable[[Tensor], Tensor] | None = None,
        name: str = "autograd",
    ):
        self._log_partition = log_partition
        self._sufficient_stats = sufficient_stats
        self._log_base_measure = log_base_measure
        self.n_params = n_params
        self.name = name

    def log_partition(self, eta: Tensor) -> Tensor:
        return self._log_partition(eta)

    def sufficient_stats(self, x: Tensor) -> Tensor:
        if self._sufficient_stats is None:
            return super().sufficient_stats(x)
        return self._sufficient_stats(x)

    def log_base_measure(self, x: Tensor) -> Tensor:
        if self._log_base_measure is None:
            return super().log_base_measure(x)
        return self._log_base_measure(x)
