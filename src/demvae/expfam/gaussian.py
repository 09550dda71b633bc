r"""The univariate Gaussian as an exponential family (one unit = one latent dimension).

``η = (m/σ², −1/(2σ²))``, ``T(x) = (x, x²)``, ``h(x) = (2π)^{-1/2}``,
``A(η) = −η₁²/(4η₂) − ½ log(−2η₂)``  (= m²/(2σ²) + ½ log σ²).

Networks and the prior hold ``raw = (mean, log-variance)``; :meth:`natural_from_raw` maps it to η.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from demvae.distributed import batch_noise
from demvae.expfam.family import ExponentialFamily

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Gaussian(ExponentialFamily):
    n_params = 2
    name = "gaussian"

    # --- conversions ---
    @staticmethod
    def natural_from_moments(mean: Tensor, logvar: Tensor) -> Tensor:
        """(m, log σ²) -> η = (m/σ², −1/(2σ²)), stacked on a new last axis."""
        precision = torch.exp(-logvar)
        return torch.stack((mean * precision, -0.5 * precision), dim=-1)

    @staticmethod
    def moments_from_natural(eta: Tensor) -> tuple[Tensor, Tensor]:
        """η -> (m, σ²)."""
        var = -0.5 / eta[..., 1]
        return eta[..., 0] * var, var

    def natural_from_raw(self, raw: Tensor) -> Tensor:
        return self.natural_from_moments(raw[..., 0], raw[..., 1])

    # --- the family ---
    def log_partition(self, eta: Tensor) -> Tensor:
        eta1, eta2 = eta[..., 0], eta[..., 1]
        return -eta1.square() / (4 * eta2) - 0.5 * torch.log(-2 * eta2)

    def mean_params(self, eta: Tensor) -> Tensor:
        mean, var = self.moments_from_natural(eta)
        return torch.stack((mean, mean.square() + var), dim=-1)

    def kl(self, eta_q: Tensor, eta_p: Tensor) -> Tensor:
        """Closed form ``½[log σp²/σq² + (σq² + (mq − mp)²)/σp² − 1]``."""
        mq, vq = self.moments_from_natural(eta_q)
        mp, vp = self.moments_from_natural(eta_p)
        return 0.5 * (torch.log(vp / vq) + (vq + (mq - mp).square()) / vp - 1)

    def sufficient_stats(self, x: Tensor) -> Tensor:
        return torch.stack((x, x.square()), dim=-1)

    def log_base_measure(self, x: Tensor) -> Tensor:
        return torch.full_like(x, -_HALF_LOG_2PI)

    def log_prob(self, x: Tensor, eta: Tensor) -> Tensor:
        mean, var = self.moments_from_natural(eta)
        return -0.5 * ((x - mean).square() / var + torch.log(var)) - _HALF_LOG_2PI

    # --- as a latent variable ---
    def sample(self, eta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mean, var = self.moments_from_natural(eta)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + var.sqrt() * noise

    def rsample(self, eta: Tensor, n: int, temperature: float = 1.0) -> Tensor:
        """``m + σ·ε``: [B, ..., 2] -> [B, n, ...]."""
        mean, var = self.moments_from_natural(eta)
        eps = batch_noise((mean.shape[0], n, *mean.shape[1:]), mean)
        return mean.unsqueeze(1) + var.sqrt().unsqueeze(1) * eps

    def mode(self, eta: Tensor) -> Tensor:
        return self.moments_from_natural(eta)[0]
