r"""The exponential-family mixture prior of DEM-VAE and the terms of its ELBO.

``p(c) = Π_i U(K)``, ``p(z_i | c_i = k) = Π_u f(z_{i,u} | η_{i,k,u})`` for M independent discrete
variables with K values each; each value k of variable i selects a component, a product of U units
of family f.

With a mean-field posterior ``q(c|x) q(z|x)`` (``q(z_i|x)`` in the same family, natural parameters λ)
the regularisation R_z of the ELBO (paper Eq. 1) splits exactly (§3.2, with Eq. 2):

``E_q(c|x) KL(q(z|x) ‖ p(z|c)) = KL(q(z|x) ‖ p̂) + L_d``  with  ``η̄ = E_q(c|x) η_c``  and

``L_d = E_q(c|x) A(η_c) − A(η̄) ≥ 0``   (the *dispersion*, ≥ 0 by convexity of A),

where ``p̂`` is the "average prior" with natural parameters ``η̄``. Every method below is generic over
the family and computes in float32 under autocast; shapes: ``q_c`` [B, M, K], posterior ``eta_q``
[B, M, U, P], prior η [M, K, U, P].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from demvae.device import float32
from demvae.expfam.family import ExponentialFamily


class MixturePrior(nn.Module):
    """Learned (or fixed) mixture-of-exponential-family prior over ``z = (z_1, ..., z_M)``."""

    def __init__(
        self,
        family: ExponentialFamily,
        n_variables: int,
        n_values: int,
        n_units: int,
        learn_prior: bool = True,
        init: Tensor | None = None,
    ):
        super().__init__()
        self.family = family
        self.n_variables, self.n_values, self.n_units = n_variables, n_values, n_units
        shape = (n_variables, n_values, n_units, family.n_params)
        raw = torch.randn(shape) if init is None else init.expand(shape).clone()
        if learn_prior:
            self.raw = nn.Parameter(raw)
        else:
            self.register_buffer("raw", raw)

    def natural_params(self) -> Tensor:
        """η of every component: [M, K, U, P]."""
        return self.family.natural_from_raw(self.raw)

    # --- the ELBO's z-terms ---
    @float32
    def average_natural(self, q_c: Tensor, eta: Tensor | None = None) -> Tensor:
        """``η̄_{b,i} = Σ_k q(c_i = k | x_b) η_{i,k}``: [B, M, U, P]."""
        eta = self.natural_params() if eta is None else eta
        return torch.einsum("bik,ikup->biup", q_c, eta)

    @float32
    def dispersion(self, q_c: Tensor) -> Tensor:
        """``L_d = Σ_u [Σ_k q_k A(η_k) − A(η̄)]`` per example and variable: [B, M]."""
        eta = self.natural_params()
        a_components = self.family.log_partition(eta).sum(-1)  # [M, K]
        a_average = self.family.log_partition(self.average_natural(q_c, eta)).sum(-1)  # [B, M]
        return (q_c * a_components).sum(-1) - a_average

    @float32
    def kl_average(self, eta_q: Tensor, q_c: Tensor) -> Tensor:
        """``KL(q(z_i|x) ‖ p̂_i)`` against the average prior: [B, M]."""
        return self.family.kl(eta_q, self.average_natural(q_c)).sum(-1)

    @float32
    def kl_exact(self, eta_q: Tensor, q_c: Tensor) -> Tensor:
        """``Σ_k q_k KL(q(z_i|x) ‖ p(z_i|c_i=k))`` computed component by component: [B, M]."""
        eta = self.natural_params()
        per_component = self.family.kl(eta_q.unsqueeze(2), eta.unsqueeze(0)).sum(-1)  # [B, M, K]
        return (q_c * per_component).sum(-1)

    @float32
    def param_variance(self, q_c: Tensor) -> Tensor:
        """The tables' "Var": ``Σ_{i,u,p} Var_{q(c_i|x)}[η_{i,c,u,p}]`` per example: [B]."""
        eta = self.natural_params()
        mean = self.average_natural(q_c, eta)  # [B, M, U, P]
        sq = torch.einsum("bik,ikup->biup", q_c, eta.square())
        return (sq - mean.square()).clamp_min(0).sum((1, 2, 3))

    # --- densities and sampling ---
    @float32
    def component_log_prob(self, z: Tensor) -> Tensor:
        """``log p(z_i | c_i = k)`` for every k: z [..., M, U, *event] -> [..., M, K]."""
        z = z.unsqueeze(-2 - self.family.event_dims)  # [..., M, 1, U, *event]
        return self.family.log_prob(z, self.natural_params()).sum(-1)

    @float32
    def log_prob(self, z: Tensor) -> Tensor:
        """``log p(z) = Σ_i log (1/K) Σ_k p(z_i | c_i = k)``, c marginalised exactly: [...]."""
        return (torch.logsumexp(self.component_log_prob(z), dim=-1) - math.log(self.n_values)).sum(-1)

    def chosen(self, codes: Tensor) -> Tensor:
        """η of the components that codes [N, M] select: [N, M, U, P]."""
        variables = torch.arange(self.n_variables, device=codes.device)
        return self.natural_params()[variables.unsqueeze(0), codes]

    def sample(self, codes: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``z ~ p(z | c)`` for codes [N, M] -> [N, M, U, *event]."""
        return self.family.sample(self.chosen(codes), generator=generator)

    def mode(self, codes: Tensor) -> Tensor:
        """The most probable z of each chosen component: [N, M, U, *event]."""
        return self.family.mode(self.chosen(codes))

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``c ~ p(c)`` (uniform): [n, M]."""
        return torch.randint(self.n_values, (n, self.n_variables), generator=generator, device=self.raw.device)
