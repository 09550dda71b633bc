r"""The Poisson distribution as an exponential family: ``η = log λ``, ``T(x) = x``,
``h(x) = 1/x!``, ``A(η) = exp η``.

It shows what a new family costs: this file, and one line in the shared contract tests. Its
counts cannot be reparameterised, so a mixture prior can use it for densities, KL and dispersion,
but a latent block cannot train through it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from demvae.expfam.family import ExponentialFamily


class Poisson(ExponentialFamily):
    n_params = 1
    name = "poisson"
    discrete = True

    def log_partition(self, eta: Tensor) -> Tensor:
        return eta[..., 0].exp()

    def mean_params(self, eta: Tensor) -> Tensor:
        return eta.exp()

    def kl(self, eta_q: Tensor, eta_p: Tensor) -> Tensor:
        """Closed form ``λq log(λq/λp) − λq + λp``."""
        lam_q, lam_p = eta_q[..., 0].exp(), eta_p[..., 0].exp()
        return lam_q * (eta_q[..., 0] - eta_p[..., 0]) - lam_q + lam_p

    def sufficient_stats(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1)

    def log_base_measure(self, x: Tensor) -> Tensor:
        return -torch.lgamma(x + 1)

    def sample(self, eta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return torch.poisson(eta[..., 0].exp(), generator=generator)

    def mode(self, eta: Tensor) -> Tensor:
        return eta[..., 0].exp().floor()

    def from_index(self, y: Tensor) -> Tensor:
        return y.float()

    def to_index(self, x: Tensor) -> Tensor:
        return x.long()
