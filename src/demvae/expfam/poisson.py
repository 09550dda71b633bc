r"""The Poisson distribution as an exponential family: ``η = log λ``, ``T(x) = x``,
``h(x) = 1/x!``, ``A(η) = exp η``.

It shows what a new family costs: this file, one line in :data:`demvae.expfam.registry.FAMILIES` (then
``model.latent: mixture, model.family: poisson`` trains a Poisson-mixture VAE) and one line in the shared
contract tests. Counts cannot be reparameterised exactly; training draws them relaxed, as the categorical
does: a Gumbel-softmax straight-through draw over the counts ``0..max_count`` (the truncated pmf), so the
forward value is an exact count and the gradient is the relaxation's (Joo et al., 2020, "Generalized
Gumbel-Softmax Gradient Estimator"). The truncation matters only for rates near ``max_count``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from demvae.distributed import Noise
from demvae.expfam.family import ExponentialFamily, SampleShape
from demvae.nn.gumbel import gumbel_softmax


class Poisson(ExponentialFamily):
    n_params = 1
    name = "poisson"
    discrete = True
    has_relaxed_rsample = True

    def __init__(self, max_count: int = 63):
        self.max_count = max_count
        """The largest count a relaxed or tempered draw takes."""

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

    # --- as a latent variable ---
    def moments(self, mean_params: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance are both λ."""
        return mean_params[..., 0], mean_params[..., 0]

    def _count_logits(self, log_rate: Tensor) -> Tensor:
        """``log p(x) + A(η)`` of the counts 0..max_count: [...] -> [..., max_count + 1]."""
        counts = torch.arange(self.max_count + 1, device=log_rate.device, dtype=log_rate.dtype)
        return log_rate.unsqueeze(-1) * counts - torch.lgamma(counts + 1)

    def sample(self, eta: Tensor, sample_shape: SampleShape = (), generator: torch.Generator | None = None) -> Tensor:
        rate = eta[..., 0].exp().expand(*sample_shape, *eta.shape[:-1])
        return torch.poisson(rate, generator=generator)

    def relaxed_rsample(self, eta: Tensor, temperature: float, sample_shape: SampleShape = (),
                        noise: Noise | None = None) -> Tensor:
        """Gumbel-softmax over the truncated pmf at ``temperature``, straight-through, as a count:
        [B, ..., 1] -> [*sample_shape, B, ...]."""
        lead = len(sample_shape)
        logits = self._count_logits(eta[..., 0])  # [B, ..., N + 1]
        logits = logits.view(logits.shape[0], *([1] * lead), *logits.shape[1:]).expand(
            logits.shape[0], *sample_shape, *logits.shape[1:])  # batch-major, as the noise
        one_hot = gumbel_softmax(logits, temperature, hard=True, noise=noise)
        counts = torch.arange(self.max_count + 1, device=eta.device, dtype=one_hot.dtype)
        return (one_hot * counts).sum(-1).movedim(0, lead)

    def tempered_sample(self, mean_params: Tensor, temperature: float,
                        generator: torch.Generator | None = None) -> Tensor:
        """A count from the truncated pmf to the power 1/t (renormalised); t = 0 the mode."""
        rate = mean_params[..., 0]
        if temperature == 0:
            return rate.floor()
        logits = self._count_logits(rate.clamp(min=1e-30).log()) / temperature
        flat = torch.softmax(logits, -1).reshape(-1, self.max_count + 1)
        return torch.multinomial(flat, 1, generator=generator).view(rate.shape).to(rate.dtype)

    def mode(self, eta: Tensor) -> Tensor:
        return eta[..., 0].exp().floor()

    def from_index(self, y: Tensor) -> Tensor:
        return y.float()

    def to_index(self, x: Tensor) -> Tensor:
        return x.long()
