r"""The categorical distribution over D values as an exponential family (one unit = one variable; D is the
config's ``model.z_values``, not K: K is the project's number of values of a discrete code variable c).

Minimal parameterisation with the last logit fixed at zero (the paper's multivariate categorical
mixture): ``η ∈ R^{D−1}``, ``p(x = j) = softmax([η, 0])_j``, ``T(x) = onehot(x)[:D−1]``, ``h = 1``,
``A(η) = log(1 + Σ_j exp η_j) = logsumexp([η, 0])``.

Samples are one-hot vectors of length D (so they can feed a decoder directly); reparameterised
samples (:meth:`Categorical.relaxed_rsample`) are Gumbel-softmax straight-through draws (one-hot forward,
soft gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from demvae.distributed import Noise
from demvae.expfam.family import ExponentialFamily, SampleShape
from demvae.nn.gumbel import gumbel_softmax


def _with_zero(eta: Tensor) -> Tensor:
    return F.pad(eta, (0, 1))


class Categorical(ExponentialFamily):
    name = "categorical"
    event_dims = 1
    discrete = True
    has_relaxed_rsample = True

    def __init__(self, z_values: int):
        if z_values < 2:
            raise ValueError("a categorical variable needs at least 2 values")
        self.z_values = z_values
        """D: the values of the variable."""
        self.n_params = z_values - 1
        self.event_size = z_values

    @staticmethod
    def natural_from_logits(logits: Tensor) -> Tensor:
        """Any logits [..., D] -> minimal η [..., D−1] (shift so the last logit is zero)."""
        return logits[..., :-1] - logits[..., -1:]

    def log_probs(self, eta: Tensor) -> Tensor:
        """log p(x = j) for every j: [..., D]."""
        return torch.log_softmax(_with_zero(eta), dim=-1)

    # --- the family ---
    def log_partition(self, eta: Tensor) -> Tensor:
        return torch.logsumexp(_with_zero(eta), dim=-1)

    def mean_params(self, eta: Tensor) -> Tensor:
        return torch.softmax(_with_zero(eta), dim=-1)[..., :-1]

    def kl(self, eta_q: Tensor, eta_p: Tensor) -> Tensor:
        """Closed form ``Σ_j q_j (log q_j − log p_j)``."""
        log_q, log_p = self.log_probs(eta_q), self.log_probs(eta_p)
        return (log_q.exp() * (log_q - log_p)).sum(-1)

    def sufficient_stats(self, x: Tensor) -> Tensor:
        return x[..., :-1]

    def log_base_measure(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)

    def log_prob(self, x: Tensor, eta: Tensor) -> Tensor:
        return (x * self.log_probs(eta)).sum(-1)

    # --- as a latent variable ---
    def moments(self, mean_params: Tensor) -> tuple[Tensor, Tensor]:
        """The one-hot value's mean (the D probabilities) and variance ``p(1 − p)``."""
        probs = self._probs(mean_params)
        return probs, probs * (1 - probs)

    @staticmethod
    def _probs(mean_params: Tensor) -> Tensor:
        """The first D−1 probabilities -> all D, floored at 1e-12 (an average may round below zero)."""
        return torch.cat([mean_params, (1 - mean_params.sum(-1, keepdim=True)).clamp(min=0)], -1).clamp(min=1e-12)

    def sample(self, eta: Tensor, sample_shape: SampleShape = (), generator: torch.Generator | None = None) -> Tensor:
        probs = self.log_probs(eta).exp().expand(*sample_shape, *eta.shape[:-1], self.z_values)
        idx = torch.multinomial(probs.reshape(-1, self.z_values), 1, generator=generator).view(probs.shape[:-1])
        return self.from_index(idx).to(eta.dtype)

    def relaxed_rsample(self, eta: Tensor, temperature: float, sample_shape: SampleShape = (),
                        noise: Noise | None = None) -> Tensor:
        """Gumbel-softmax at ``temperature``, straight-through: [B, ..., D−1] -> [*sample_shape, B, ..., D]."""
        lead = len(sample_shape)
        log_p = self.log_probs(eta)
        logits = log_p.view(log_p.shape[0], *([1] * lead), *log_p.shape[1:]).expand(
            log_p.shape[0], *sample_shape, *log_p.shape[1:])  # batch-major, as the noise
        return gumbel_softmax(logits, temperature, hard=True, noise=noise).movedim(0, lead)

    def tempered_sample(self, mean_params: Tensor, temperature: float,
                        generator: torch.Generator | None = None) -> Tensor:
        """A draw from the probabilities to the power 1/t (renormalised); t = 0 the most probable value."""
        probs = self._probs(mean_params)
        if temperature == 0:
            index = probs.argmax(-1)
        else:
            flat = torch.softmax(probs.log() / temperature, -1).reshape(-1, probs.shape[-1])
            index = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
        return self.from_index(index).to(probs.dtype)

    def mode(self, eta: Tensor) -> Tensor:
        return self.from_index(self.log_probs(eta).argmax(-1)).to(eta.dtype)

    def from_index(self, y: Tensor) -> Tensor:
        return F.one_hot(y, self.z_values).float()

    def to_index(self, x: Tensor) -> Tensor:
        return x.argmax(-1)
