r"""Latent blocks: each maps the encoder summary ``h`` to a posterior, draws decoder features, and
returns its ELBO terms. A model is an encoder, a list of latent blocks and a decoder, so every
baseline of the paper is a choice of blocks (see :mod:`demvae.models.build`):

* :class:`MixtureLatent`  ``p(c) p(z|c)`` with an exponential-family mixture prior and a mean-field
  posterior ``q(c|x) q(z|x)``: GM-VAE / DGM-VAE (Gaussian), CM-VAE / DCM-VAE (categorical), and with a
  single fixed N(0, I) component the plain VAE / AE.
* :class:`DiscreteLatent` ``c ~ Gumbel-softmax(q(c|x))`` with a uniform prior: DAE, DVAE, DI-VAE.

Both have M discrete variables with K values each (``n_variables``, ``n_values``). A block knows
nothing of its family beyond the :class:`~demvae.expfam.ExponentialFamily` contract.

Shapes: ``h`` [B, H]; features [B, S, F] for S samples. A training draw's noise comes from the
:class:`~demvae.distributed.Noise` the caller passes (a data-parallel rank's rows of the global batch's).
Every method computes in float32 even under autocast (:func:`demvae.device.float32`): these are cheap, and
the dispersion is not safe in bf16.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from demvae.device import float32
from demvae.distributed import Noise, gather_rows
from demvae.expfam import ExponentialFamily, MixturePrior
from demvae.nn.gumbel import gumbel_softmax
from demvae.objectives import kl_to_uniform, mutual_info
from demvae.terms import Terms


def head(in_dim: int, out_dim: int, kind: str) -> nn.Module:
    """A posterior head: ``linear`` (one Linear) or an MLP ``Linear-act-Linear`` whose hidden layer
    is as wide as the encoder summary (``relu``/``tanh``), as the original's heads are."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[kind]()
    return nn.Sequential(nn.Linear(in_dim, in_dim), act, nn.Linear(in_dim, out_dim))


def code_terms(logits: Tensor) -> tuple[Tensor, Terms]:
    """``q(c|x)`` from logits [B, M, K] with its terms ``kl_c`` [B, M] and ``mutual_info`` [M] (of the
    global batch in data-parallel training: its q̄(c) needs every rank's rows)."""
    q = torch.softmax(logits, -1)
    return q, Terms(kl_c=kl_to_uniform(q), mutual_info=mutual_info(gather_rows(q)))


class Latent(nn.Module):
    """Interface of a latent block."""

    n_variables: int
    """M: discrete variables of the block's code (1 for a code-less Gaussian)."""
    n_values: int
    """K: values per discrete variable (1 for a code-less Gaussian)."""
    feature_dim: int
    """F: width of the features the decoder reads."""
    concat_latent: bool
    """Whether the decoder reads the features at every step too (not only in h0)."""
    supervisable: bool = False
    """Whether class labels can supervise the block's categorical variables."""

    @property
    def has_code(self) -> bool:
        """Whether the block has a discrete code c (K > 1 values per variable)."""
        return self.n_values > 1

    def forward(self, h: Tensor, n_samples: int, noise: Noise | None = None) -> tuple[Tensor, Terms]:
        """Reparameterised features [B, S, F] and the block's ELBO terms; ``noise``: where the draws' noise
        comes from (default: this batch's own)."""
        raise NotImplementedError

    def importance_sample(self, h: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """Exact posterior samples: features [B, n, F] and ``log p(latent) − log q(latent|x)`` [B, n]."""
        raise NotImplementedError

    def mode_features(self, h: Tensor) -> Tensor:
        """Features of the posterior's mode (mean for Gaussians, argmax for categoricals): [B, F]."""
        raise NotImplementedError

    def posterior_features(self, h: Tensor, sample: bool = True) -> Tensor:
        """Features of one draw from the posterior (not reparameterised), or of its mode: [B, F]."""
        raise NotImplementedError

    def prior_features(self, n: int, codes: Tensor | None = None, mode: bool = False) -> Tensor:
        """Features of ``n`` draws from the prior, optionally for given codes [n, M]: [n, F]. With ``mode``
        the chosen components' modes (a Gaussian's mean) instead of draws."""
        raise NotImplementedError

    def code_probs(self, h: Tensor) -> Tensor | None:
        """``q(c|x)`` [B, M, K] of the block's discrete code, if it has one."""
        return None

    def code_log_probs(self, h: Tensor) -> Tensor | None:
        """``log q(c|x)`` [B, M, K] of the block's discrete code, if it has one."""
        return None

    def label_log_prob(self, h: Tensor, variable: int, labels: Tensor) -> Tensor:
        """``log q(v = label | x)`` of categorical variable ``variable`` [B] (labels ≥ 0)."""
        raise NotImplementedError(f"{type(self).__name__} has no variable that labels can supervise")

    def predict_label(self, h: Tensor, variable: int) -> Tensor:
        """The most probable value of categorical variable ``variable``: [B] long."""
        raise NotImplementedError(f"{type(self).__name__} has no variable that labels can supervise")


class MixtureLatent(Latent):
    r"""``z = (z_1..z_M)``, ``z_i | c_i ~`` an exponential-family mixture with K components of U units.

    ``q(z_i|x)`` is in the same family (natural parameters from a head on h) and ``q(c_i|x)`` is a
    softmax head; the decoder sees z only (the paper's graphical model: x depends on z). With K = 1
    there is no code: a fixed N(0, I) component makes the plain VAE (``deterministic``: the AE).
    """

    def __init__(
        self,
        family: ExponentialFamily,
        in_dim: int,
        n_variables: int,
        n_values: int,
        n_units: int,
        learn_prior: bool = True,
        prior_init: Tensor | None = None,
        deterministic: bool = False,
        concat_latent: bool = True,
        temperature: float = 1.0,
        z_head: str = "linear",
        code_head: str = "relu",
        decode_code: bool = False,
    ):
        super().__init__()
        if decode_code and n_values == 1:
            raise ValueError("decode_code needs a discrete code (K > 1 values per variable)")
        if not (deterministic or family.has_relaxed_rsample):
            raise ValueError(f"{family.name}: cannot be reparameterised, so it cannot be trained as a latent")
        self.family = family
        self.n_variables, self.n_values, self.n_units = n_variables, n_values, n_units
        self.deterministic = deterministic
        self.concat_latent = concat_latent
        self.temperature = temperature
        self.supervisable = family.discrete
        self.prior = MixturePrior(family, n_variables, n_values, n_units, learn_prior, prior_init)
        self.posterior = head(in_dim, n_variables * n_units * family.n_params, z_head)
        self.code_net = head(in_dim, n_variables * n_values, code_head) if n_values > 1 else None
        self.decode_code = decode_code
        self.feature_dim = n_variables * n_units * family.event_size + (n_variables * n_values if decode_code else 0)

    # --- posterior ---
    def posterior_natural(self, h: Tensor) -> Tensor:
        """η of q(z|x): [B, M, U, P]."""
        raw = self.posterior(h).view(h.shape[0], self.n_variables, self.n_units, self.family.n_params)
        return self.family.natural_from_raw(raw)

    def _code_logits(self, h: Tensor) -> Tensor:
        assert self.code_net is not None, "a block without a code (K = 1) has no code logits"
        return self.code_net(h).view(h.shape[0], self.n_variables, self.n_values)

    @float32
    def code_probs(self, h: Tensor) -> Tensor | None:
        return None if self.code_net is None else torch.softmax(self._code_logits(h), -1)

    @float32
    def code_log_probs(self, h: Tensor) -> Tensor | None:
        return None if self.code_net is None else torch.log_softmax(self._code_logits(h), -1)

    def features(self, z: Tensor, codes: Tensor | None = None) -> Tensor:
        """The decoder's features of values z [..., M, U, *event] (the values themselves, flattened): [..., F].
        With ``decode_code`` the code follows them: ``codes`` [..., M] indices or [..., M, K] one-hot/relaxed."""
        z_features = z.flatten(z.dim() - 2 - self.family.event_dims)
        if not self.decode_code:
            return z_features
        if codes is None:
            raise ValueError("this block's decoder reads the code c: pass the codes with z")
        if not codes.is_floating_point():
            codes = F.one_hot(codes, self.n_values)
        return torch.cat([z_features, codes.flatten(-2).to(z_features.dtype)], -1)

    # --- training ---
    @float32
    def forward(self, h: Tensor, n_samples: int, noise: Noise | None = None) -> tuple[Tensor, Terms]:
        eta_q = self.posterior_natural(h)
        if self.deterministic:  # the auto-encoder: z = mode of q, no KL
            return self.features(self.family.mode(eta_q)).unsqueeze(1).expand(-1, n_samples, -1), Terms()
        if self.code_net is None:  # one component: q(c|x) = 1
            q_c, terms = torch.ones(h.shape[0], self.n_variables, 1, device=h.device, dtype=h.dtype), Terms()
        else:
            logits = self._code_logits(h)  # [B, M, K]; a decode_code block draws its code from them too
            q_c, terms = code_terms(logits)
            terms.dispersion = self.prior.dispersion(q_c)
            terms.param_var = self.prior.param_variance(q_c)
        terms.kl_z_avg = self.prior.kl_average(eta_q, q_c)
        z = self.family.relaxed_rsample(eta_q, self.temperature, (n_samples,), noise)  # [S, B, M, U, *event]
        z = z.transpose(0, 1)  # [B, S, M, U, *event]
        if not self.decode_code:
            return self.features(z), terms
        per_sample = logits.unsqueeze(1).expand(-1, n_samples, -1, -1)  # [B, S, M, K] (decode_code implies K > 1)
        return self.features(z, gumbel_softmax(per_sample, self.temperature, hard=True, noise=noise)), terms

    # --- evaluation ---
    @float32
    def importance_sample(self, h: Tensor, n: int) -> tuple[Tensor, Tensor]:
        if self.deterministic:
            raise ValueError("a deterministic latent has no density")
        eta_q = self.posterior_natural(h)
        expanded = eta_q.unsqueeze(1).expand(-1, n, *eta_q.shape[1:])
        z = self.family.sample(expanded)  # [B, n, M, U, *event]
        log_q = self.family.log_prob(z, expanded).sum((-1, -2))
        if not self.decode_code:
            return self.features(z), self.prior.log_prob(z) - log_q
        # x reads c too, so c is sampled with z: weight p(c) p(z|c) / q(c|x) q(z|x), c ~ q(c|x)
        log_q_c = torch.log_softmax(self._code_logits(h), -1).unsqueeze(1).expand(-1, n, -1, -1)  # [B, n, M, K]
        codes = torch.distributions.Categorical(logits=log_q_c).sample()  # [B, n, M]
        log_p_z_c = self.prior.component_log_prob(z).gather(-1, codes.unsqueeze(-1)).squeeze(-1)  # [B, n, M]
        log_q_picked = log_q_c.gather(-1, codes.unsqueeze(-1)).squeeze(-1)
        log_ratio = (log_p_z_c - math.log(self.n_values) - log_q_picked).sum(-1) - log_q
        return self.features(z, codes), log_ratio

    def _posterior_codes(self, h: Tensor, sample: bool) -> Tensor | None:
        """The code the decoder reads beside z (None where it reads none): a draw of q(c|x) or its argmax [B, M]."""
        if not self.decode_code:
            return None
        logits = self._code_logits(h)
        return torch.distributions.Categorical(logits=logits).sample() if sample else logits.argmax(-1)

    @float32
    def mode_features(self, h: Tensor) -> Tensor:
        return self.features(self.family.mode(self.posterior_natural(h)), self._posterior_codes(h, sample=False))

    @float32
    def posterior_features(self, h: Tensor, sample: bool = True) -> Tensor:
        if not sample or self.deterministic:
            return self.mode_features(h)
        return self.features(self.family.sample(self.posterior_natural(h)), self._posterior_codes(h, sample=True))

    def prior_features(self, n: int, codes: Tensor | None = None, mode: bool = False) -> Tensor:
        if codes is None:
            codes = self.prior.sample_codes(n)
        return self.features(self.prior.mode(codes) if mode else self.prior.sample(codes), codes)

    # --- supervision of categorical units ---
    def _unit_natural(self, h: Tensor, variable: int) -> Tensor:
        """η of q(z_v|x) for unit ``variable`` of the flattened [M·U] units: [B, P]."""
        return self.posterior_natural(h).flatten(1, 2)[:, variable]

    @float32
    def label_log_prob(self, h: Tensor, variable: int, labels: Tensor) -> Tensor:
        if not self.supervisable:
            return super().label_log_prob(h, variable, labels)
        return self.family.log_prob(self.family.from_index(labels).to(h.dtype), self._unit_natural(h, variable))

    @float32
    def predict_label(self, h: Tensor, variable: int) -> Tensor:
        if not self.supervisable:
            return super().predict_label(h, variable)
        return self.family.to_index(self.family.mode(self._unit_natural(h, variable)))


class DiscreteLatent(Latent):
    r"""``c = (c_1..c_M)``, ``c_i ∈ {1..K}``, prior ``U(K)``, fed to the decoder as Gumbel-softmax
    relaxations (soft in training, hard straight-through otherwise) of ``q(c|x)``."""

    supervisable = True

    def __init__(self, in_dim: int, n_variables: int, n_values: int, concat_latent: bool = True,
                 temperature: float = 1.0):
        super().__init__()
        self.n_variables, self.n_values = n_variables, n_values
        self.concat_latent = concat_latent
        self.temperature = temperature
        self.logits = nn.Linear(in_dim, n_variables * n_values)
        self.feature_dim = n_variables * n_values

    def _logits(self, h: Tensor) -> Tensor:
        return self.logits(h).view(h.shape[0], self.n_variables, self.n_values)

    @float32
    def forward(self, h: Tensor, n_samples: int, noise: Noise | None = None) -> tuple[Tensor, Terms]:
        logits = self._logits(h)
        _, terms = code_terms(logits)
        expanded = logits.unsqueeze(1).expand(-1, n_samples, -1, -1)
        sample = gumbel_softmax(expanded, self.temperature, hard=not self.training, noise=noise)
        return sample.flatten(2), terms

    @float32
    def code_probs(self, h: Tensor) -> Tensor:
        return torch.softmax(self._logits(h), -1)

    @float32
    def code_log_probs(self, h: Tensor) -> Tensor:
        return torch.log_softmax(self._logits(h), -1)

    @float32
    def mode_features(self, h: Tensor) -> Tensor:
        return F.one_hot(self._logits(h).argmax(-1), self.n_values).flatten(1).float()

    @float32
    def posterior_features(self, h: Tensor, sample: bool = True) -> Tensor:
        if not sample:
            return self.mode_features(h)
        probs = torch.softmax(self._logits(h), -1).flatten(0, 1)  # [B·M, K]
        codes = torch.multinomial(probs, 1).view(h.shape[0], self.n_variables)
        return F.one_hot(codes, self.n_values).flatten(1).float()

    @float32
    def importance_sample(self, h: Tensor, n: int) -> tuple[Tensor, Tensor]:
        log_q = torch.log_softmax(self._logits(h), -1)  # [B, M, K]
        idx = torch.multinomial(log_q.exp().flatten(0, 1), n, replacement=True)  # [B·M, n]
        idx = idx.view(h.shape[0], self.n_variables, n).transpose(1, 2)  # [B, n, M]
        picked = log_q.unsqueeze(1).expand(-1, n, -1, -1).gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        log_prior = -self.n_variables * math.log(self.n_values)
        features = F.one_hot(idx, self.n_values).flatten(2).to(h.dtype)
        return features, log_prior - picked.sum(-1)

    def prior_features(self, n: int, codes: Tensor | None = None, mode: bool = False) -> Tensor:
        if codes is None:
            codes = torch.randint(self.n_values, (n, self.n_variables), device=self.logits.weight.device)
        return F.one_hot(codes, self.n_values).flatten(1).float()

    @float32
    def label_log_prob(self, h: Tensor, variable: int, labels: Tensor) -> Tensor:
        return torch.log_softmax(self._logits(h)[:, variable], -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)

    @float32
    def predict_label(self, h: Tensor, variable: int) -> Tensor:
        return self._logits(h)[:, variable].argmax(-1)
