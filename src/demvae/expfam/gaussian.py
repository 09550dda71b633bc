r"""The univariate Gaussian as an exponential family (one unit = one latent dimension).

``η = (m/σ², −1/(2σ²))``, ``T(x) = (x, x²)``, ``h(x) = (2π)^{-1/2}``,
``A(η) = −η₁²/(4η₂) − ½ log(−2η₂)``  (= m²/(2σ²) + ½ log σ²).

Networks and the prior hold ``raw = (mean, log-variance)``; :meth:`natural_from_raw` maps it to η.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from demvae.distributed import Noise
from demvae.expfam.family import ExponentialFamily, SampleShape

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Gaussian(ExponentialFamily):
    n_params = 2
    name = "gaussian"
    has_rsample = True
    has_relaxed_rsample = True

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
    def moments(self, mean_params: Tensor) -> tuple[Tensor, Tensor]:
        """(E[x], E[x²]) -> (m, σ²), the variance floored at 1e-8 (an average of mean parameters may round below)."""
        mean = mean_params[..., 0]
        return mean, (mean_params[..., 1] - mean.square()).clamp(min=1e-8)

    def sample(self, eta: Tensor, sample_shape: SampleShape = (), generator: torch.Generator | None = None) -> Tensor:
        mean, var = self.moments_from_natural(eta)
        shape = (*sample_shape, *mean.shape)
        noise = torch.randn(shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + var.sqrt() * noise

    def rsample(self, eta: Tensor, sample_shape: SampleShape = (), noise: Noise | None = None) -> Tensor:
        """``m + σ·ε``: [B, ..., 2] -> [*sample_shape, B, ...]."""
        mean, var = self.moments_from_natural(eta)
        lead = len(sample_shape)
        # drawn and computed batch-major ([B, *sample_shape, ...]: the rows a data-parallel rank keeps), then
        # moved: the numbers of the earlier batch-major sampler, bit for bit
        at = (mean.shape[0], *([1] * lead), *mean.shape[1:])
        eps = (noise or Noise()).normal((mean.shape[0], *sample_shape, *mean.shape[1:]), mean)
        return (mean.view(at) + var.sqrt().view(at) * eps).movedim(0, lead)

    def tempered_sample(self, mean_params: Tensor, temperature: float,
                        generator: torch.Generator | None = None) -> Tensor:
        """``m + t·σ·ε``: the temperature scales the standard deviation."""
        mean, var = self.moments(mean_params)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + temperature * var.sqrt() * noise

    def mode(self, eta: Tensor) -> Tensor:
        return self.moments_from_natural(eta)[0]
