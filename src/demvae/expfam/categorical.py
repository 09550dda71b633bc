r"""The categorical distribution over D values as an exponential family (one unit = one variable).

Minimal parameterisation with the last logit fixed at zero (the paper's multivariate categorical
mixture): ``η ∈ R^{D−1}``, ``p(x = j) = softmax([η, 0])_j``, ``T(x) = onehot(x)[:D−1]``, ``h = 1``,
``A(η) = log(1 + Σ_j exp η_j) = logsumexp([η, 0])``.

Samples are one-hot vectors of length D (so they can feed a decoder directly); reparameterised
samples are Gumbel-softmax straight-through draws (one-hot forward, soft gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from demvae.expfam.family import ExponentialFamily
from demvae.nn.gumbel import gumbel_softmax


def _with_zero(eta: Tensor) -> Tensor:
    return F.pad(eta, (0, 1))


class Categorical(ExponentialFamily):
    name = "categorical"
    event_dims = 1
    discrete = True

    def __init__(self, n_values: int):
        if n_values < 2:
            raise ValueError("a categorical variable needs at least 2 values")
        self.n_values = n_values
        self.n_params = n_values - 1
        self.event_size = n_values

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
    def sample(self, eta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        probs = self.log_probs(eta).exp()
        idx = torch.multinomial(probs.reshape(-1, self.n_values), 1, generator=generator).view(probs.shape[:-1])
        return self.from_index(idx).to(eta.dtype)

    def rsample(self, eta: Tensor, n: int, temperature: float = 1.0) -> Tensor:
        logits = self.log_probs(eta).unsqueeze(1).expand(-1, n, *eta.shape[1:-1], -1)
        return gumbel_softmax(logits, temperature, hard=True)

    def mode(self, eta: Tensor) -> Tensor:
        return self.from_index(self.log_probs(eta).argmax(-1)).to(eta.dtype)

    def from_index(self, y: Tensor) -> Tensor:
        return F.one_hot(y, self.n_values).float()

    def to_index(self, x: Tensor) -> Tensor:
        return x.argmax(-1)
