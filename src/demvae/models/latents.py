r"""Latent blocks: each maps the encoder summary ``h`` to a posterior, samples decoder features, and
returns its named ELBO terms. A model is an encoder, a list of latent blocks and a decoder, so every
baseline of the paper is a choice of blocks (see :mod:`demvae.models.build`):

* :class:`MixtureLatent`  ``p(c) p(z|c)`` with an exponential-family mixture prior and a mean-field
  posterior ``q(c|x) q(z|x)``: GM-VAE / DGM-VAE (Gaussian), CM-VAE / DCM-VAE (categorical), and with a
  single fixed N(0, I) component the plain VAE / AE.
* :class:`DiscreteLatent` ``c ~ Gumbel-softmax(q(c|x))`` with a uniform prior: DAE, DVAE, DI-VAE.

Shapes: ``h`` [B, H]; features [B, S, F] for S samples; terms [B, G] per example and variable
(batch-level terms such as ``mutual_info`` are [G]).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from demvae.expfam import Categorical, ExponentialFamily, Gaussian, MixturePrior
from demvae.nn.gumbel import gumbel_softmax
from demvae.objectives import kl_to_uniform, mutual_info


class Latent(nn.Module):
    """Interface of a latent block."""

    feature_dim: int
    concat_input: bool
    n_groups: int
    n_components: int

    @property
    def has_code(self) -> bool:
        """Whether the block has a discrete code c (K > 1 values per variable)."""
        return self.n_components > 1

    def forward(self, h: Tensor, n_samples: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Reparameterised features [B, S, F] and the block's ELBO terms."""
        raise NotImplementedError

    def importance_sample(self, h: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """Exact posterior samples: features [B, n, F] and ``log p(latent) − log q(latent|x)`` [B, n]."""
        raise NotImplementedError

    def mean_features(self, h: Tensor) -> Tensor:
        """Deterministic features from the posterior (mean / argmax): [B, F]."""
        raise NotImplementedError

    def prior_features(self, n: int, codes: Tensor | None = None) -> Tensor:
        """Features of ``n`` draws from the prior, optionally for given codes [n, G]: [n, F]."""
        raise NotImplementedError

    def code_probs(self, h: Tensor) -> Tensor | None:
        """``q(c|x)`` [B, G, K] for the block's discrete code, if it has one."""
        return None

    def variable_log_probs(self, h: Tensor) -> Tensor | None:
        """``log q`` of the block's categorical variables [B, V, D] (for supervision), if any."""
        return None


def code_terms(logits: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """``q(c|x)`` from logits [B, G, K] with its terms ``kl_c`` [B, G] and ``mutual_info`` [G]."""
    q = torch.softmax(logits, -1)
    return q, {"kl_c": kl_to_uniform(q), "mutual_info": mutual_info(q)}


class MixtureLatent(Latent):
    r"""``z = (z_1..z_G)``, ``z_g | c_g ~`` an exponential-family mixture with K components of U units.

    ``q(z_g|x)`` is in the same family (natural parameters from a linear map of h) and ``q(c_g|x)``
    is a small MLP; the decoder sees z only (the paper's graphical model: x depends on z).
    """

    def __init__(
        self,
        family: ExponentialFamily,
        in_dim: int,
        n_groups: int,
        n_components: int,
        n_units: int,
        learn_prior: bool = True,
        prior_init: Tensor | None = None,
        deterministic: bool = False,
        concat_input: bool = True,
        temperature: float = 1.0,
    ):
        super().__init__()
        self.family = family
        self.n_groups, self.n_components, self.n_units = n_groups, n_components, n_units
        self.deterministic = deterministic
        self.concat_input = concat_input
        self.temperature = temperature
        self.prior = MixturePrior(family, n_groups, n_components, n_units, learn_prior, prior_init)
        self.posterior = nn.Linear(in_dim, n_groups * n_units * family.n_params)
        self.code_net = (
            nn.Sequential(
                nn.Linear(in_dim, in_dim), nn.ReLU(), nn.Linear(in_dim, n_groups * n_components)
            )
            if n_components > 1
            else None
        )
        event = family.n_values if isinstance(family, Categorical) else 1
        self.feature_dim = n_groups * n_units * event

    # --- posterior ---
    def posterior_natural(self, h: Tensor) -> Tensor:
        raw = self.posterior(h).view(h.shape[0], self.n_groups, self.n_units, self.family.n_params)
        return self.family.natural_from_raw(raw)

    def code_probs(self, h: Tensor) -> Tensor | None:
        if self.code_net is None:
            return None
        return torch.softmax(self._code_logits(h), -1)

    def _code_logits(self, h: Tensor) -> Tensor:
        return self.code_net(h).view(h.shape[0], self.n_groups, self.n_components)

    def _flat(self, z: Tensor) -> Tensor:
        """[..., G, U, *event] -> [..., F]."""
        return z.reshape(*z.shape[: z.dim() - 2 - self.family.event_dims], self.feature_dim)

    def _rsample(self, eta_q: Tensor, n: int) -> Tensor:
        """Reparameterised draws [B, n, G, U, *event]."""
        if isinstance(self.family, Gaussian):
            mean, var = Gaussian.moments_from_natural(eta_q)
            return Gaussian.rsample(mean, var.log(), n)
        logits = self.family.log_probs(eta_q).unsqueeze(1).expand(-1, n, *eta_q.shape[1:-1], -1)
        return gumbel_softmax(logits, self.temperature, hard=True)

    def forward(self, h: Tensor, n_samples: int) -> tuple[Tensor, dict[str, Tensor]]:
        eta_q = self.posterior_natural(h)
        if self.deterministic:  # the auto-encoder: z = E_q[z], no KL
            return self._flat(self._mean(eta_q)).unsqueeze(1).expand(-1, n_samples, -1), {}
        terms: dict[str, Tensor] = {}
        if self.code_net is None:
            q_c = torch.ones(h.shape[0], self.n_groups, 1, device=h.device, dtype=h.dtype)
        else:
            q_c, terms = code_terms(self._code_logits(h))
            terms["dispersion"] = self.prior.dispersion(q_c)
            terms["param_var"] = self.prior.param_variance(q_c).unsqueeze(-1)
        terms["kl_z_avg"] = self.prior.kl_average(eta_q, q_c)
        return self._flat(self._rsample(eta_q, n_samples)), terms

    def _mean(self, eta_q: Tensor) -> Tensor:
        if isinstance(self.family, Gaussian):
            return Gaussian.moments_from_natural(eta_q)[0]
        return F.one_hot(self.family.log_probs(eta_q).argmax(-1), self.family.n_values).to(eta_q.dtype)

    def mean_features(self, h: Tensor) -> Tensor:
        return self._flat(self._mean(self.posterior_natural(h)))

    def importance_sample(self, h: Tensor, n: int) -> tuple[Tensor, Tensor]:
        eta_q = self.posterior_natural(h)
        if self.deterministic:
            raise ValueError("a deterministic latent has no density")
        expanded = eta_q.unsqueeze(1).expand(-1, n, *eta_q.shape[1:])
        z = self.family.sample(expanded)  # [B, n, G, U, *event]
        log_q = self.family.log_prob(z, expanded).sum((-1, -2))
        return self._flat(z), self.prior.log_prob(z) - log_q

    def prior_features(self, n: int, codes: Tensor | None = None) -> Tensor:
        if codes is None:
            codes = self.prior.sample_codes(n)
        if self.deterministic:  # AE: decode "random vectors" from N(0, I), as the paper
            return torch.randn(n, self.feature_dim, device=codes.device)
        return self._flat(self.prior.sample(codes))

    def variable_log_probs(self, h: Tensor) -> Tensor | None:
        if not isinstance(self.family, Categorical):
            return None
        return self.family.log_probs(self.posterior_natural(h)).flatten(1, 2)


class DiscreteLatent(Latent):
    r"""``c = (c_1..c_G)``, ``c_g ∈ {1..K}``, prior ``U(K)``, fed to the decoder as Gumbel-softmax
    relaxations (soft in training, hard straight-through otherwise) of ``q(c|x)``."""

    def __init__(
        self,
        in_dim: int,
        n_groups: int,
        n_components: int,
        concat_input: bool = True,
        temperature: float = 1.0,
    ):
        super().__init__()
        self.n_groups, self.n_components = n_groups, n_components
        self.concat_input = concat_input
        self.temperature = temperature
        self.logits = nn.Linear(in_dim, n_groups * n_components)
        self.feature_dim = n_groups * n_components

    def _logits(self, h: Tensor) -> Tensor:
        return self.logits(h).view(h.shape[0], self.n_groups, self.n_components)

    def forward(self, h: Tensor, n_samples: int) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self._logits(h)
        _, terms = code_terms(logits)
        expanded = logits.unsqueeze(1).expand(-1, n_samples, -1, -1)
        sample = gumbel_softmax(expanded, self.temperature, hard=not self.training)
        return sample.flatten(2), terms

    def code_probs(self, h: Tensor) -> Tensor:
        return torch.softmax(self._logits(h), -1)

    def variable_log_probs(self, h: Tensor) -> Tensor:
        return torch.log_softmax(self._logits(h), -1)

    def mean_features(self, h: Tensor) -> Tensor:
        return F.one_hot(self._logits(h).argmax(-1), self.n_components).flatten(1).float()

    def importance_sample(self, h: Tensor, n: int) -> tuple[Tensor, Tensor]:
        log_q = torch.log_softmax(self._logits(h), -1)  # [B, G, K]
        idx = torch.multinomial(log_q.exp().flatten(0, 1), n, replacement=True)  # [B·G, n]
        idx = idx.view(h.shape[0], self.n_groups, n).transpose(1, 2)  # [B, n, G]
        picked = log_q.unsqueeze(1).expand(-1, n, -1, -1).gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        log_prior = -self.n_groups * math.log(self.n_components)
        features = F.one_hot(idx, self.n_components).flatten(2).to(h.dtype)
        return features, log_prior - picked.sum(-1)

    def prior_features(self, n: int, codes: Tensor | None = None) -> Tensor:
        if codes is None:
            codes = torch.randint(self.n_components, (n, self.n_groups), device=self.logits.weight.device)
        return F.one_hot(codes, self.n_components).flatten(1).float()
