r"""Exponential families in natural parameters.

A family is ``p(x | η) = h(x) exp(<η, T(x)> − A(η))``. One *unit* (a scalar Gaussian dimension, one
categorical variable, one Poisson count, ...) has ``n_params`` natural parameters, so parameter
tensors have shape ``[..., n_params]`` and every reduction below returns ``[...]``.

Everything the DEM-VAE objective needs follows from the log-partition ``A(η)`` alone:

* mean parameters      ``μ(η) = ∇A(η) = E[T(x)]``
* KL divergence        ``KL(p_λ ‖ p_η) = A(η) − A(λ) − <η − λ, ∇A(λ)>``   (a Bregman divergence of A)

so :class:`ExponentialFamily` computes both by autograd from :meth:`log_partition`; the concrete
families override them with closed forms only for speed (the tests check the two agree).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


class ExponentialFamily:
    """Base class: subclasses give ``n_params`` and ``log_partition``; the rest has generic defaults."""

    n_params: int
    name: str = "family"
    event_dims: int = 0
    """Trailing dimensions of one sample of one unit (0 for scalars, 1 for one-hot vectors)."""

    def natural_from_raw(self, raw: Tensor) -> Tensor:
        """Map unconstrained network/prior outputs [..., n_params] to natural parameters."""
        return raw

    def log_partition(self, eta: Tensor) -> Tensor:
        """``A(η)``: [..., P] -> [...]."""
        raise NotImplementedError

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
        return (
            self.log_partition(eta_p)
            - self.log_partition(eta_q)
            - ((eta_p - eta_q) * mu_q).sum(-1)
        )

    def sufficient_stats(self, x: Tensor) -> Tensor:
        """``T(x)``: a sample (in the family's sample layout) -> [..., P]."""
        raise NotImplementedError

    def log_base_measure(self, x: Tensor) -> Tensor:
        """``log h(x)`` per unit."""
        raise NotImplementedError

    def log_prob(self, x: Tensor, eta: Tensor) -> Tensor:
        """``log p(x | η) = <η, T(x)> − A(η) + log h(x)`` per unit."""
        return (eta * self.sufficient_stats(x)).sum(-1) - self.log_partition(eta) + self.log_base_measure(x)

    def sample(self, eta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One draw per unit (not reparameterised)."""
        raise NotImplementedError


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
            raise NotImplementedError(f"{self.name}: no sufficient statistics given")
        return self._sufficient_stats(x)

    def log_base_measure(self, x: Tensor) -> Tensor:
        if self._log_base_measure is None:
            raise NotImplementedError(f"{self.name}: no base measure given")
        return self._log_base_measure(x)
