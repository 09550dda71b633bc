r"""The exponential-family mixture prior of DEM-VAE and the terms of its ELBO.

``p(c) = Π_g U(K)``, ``p(z_g | c_g = k) = Π_u f(z_{g,u} | η_{g,k,u})`` for G independent discrete
variables (groups) with K components each, every component a product of U units of family f.

With a mean-field posterior ``q(c|x) q(z|x)`` (``q(z_g|x)`` in the same family, natural parameters λ)
the z-part of the ELBO splits exactly (paper §3.2):

``E_q(c|x) KL(q(z|x) ‖ p(z|c)) = KL(q(z|x) ‖ p̂) + L_d``  with  ``η̄ = E_q(c|x) η_c``  and

``L_d = E_q(c|x) A(η_c) − A(η̄) ≥ 0``   (the *dispersion*, ≥ 0 by convexity of A),

where ``p̂`` is the "average prior" with natural parameters ``η̄``. Every method below is generic over
the family; shapes: ``q_c`` [B, G, K], posterior ``eta_q`` [B, G, U, P], prior η [G, K, U, P].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from demvae.expfam.family import ExponentialFamily


class MixturePrior(nn.Module):
    """Learned (or fixed) mixture-of-exponential-family prior over ``z = (z_1, ..., z_G)``."""

    def __init__(
        self,
        family: ExponentialFamily,
        n_groups: int,
        n_components: int,
        n_units: int,
        learnable: bool = True,
        init: Tensor | None = None,
    ):
        super().__init__()
        self.family = family
        self.n_groups, self.n_components, self.n_units = n_groups, n_components, n_units
        shape = (n_groups, n_components, n_units, family.n_params)
        raw = torch.randn(shape) if init is None else init.expand(shape).clone()
        if learnable:
            self.raw = nn.Parameter(raw)
        else:
            self.register_buffer("raw", raw)

    def natural_params(self) -> Tensor:
        """η of every component: [G, K, U, P]."""
        return self.family.natural_from_raw(self.raw)

    # --- the ELBO's z-terms ---
    def average_natural(self, q_c: Tensor, eta: Tensor | None = None) -> Tensor:
        """``η̄_{b,g} = Σ_k q(c_g = k | x_b) η_{g,k}``: [B, G, U, P]."""
        eta = self.natural_params() if eta is None else eta
        return torch.einsum("bgk,gkup->bgup", q_c, eta)

    def dispersion(self, q_c: Tensor) -> Tensor:
        """``L_d = Σ_u [Σ_k q_k A(η_k) − A(η̄)]`` per example and group: [B, G]."""
        eta = self.natural_params()
        a_components = self.family.log_partition(eta).sum(-1)  # [G, K]
        a_average = self.family.log_partition(self.average_natural(q_c, eta)).sum(-1)  # [B, G]
        return (q_c * a_components).sum(-1) - a_average

    def kl_average(self, eta_q: Tensor, q_c: Tensor) -> Tensor:
        """``KL(q(z_g|x) ‖ p̂_g)`` against the average prior: [B, G]."""
        return self.family.kl(eta_q, self.average_natural(q_c)).sum(-1)

    def kl_exact(self, eta_q: Tensor, q_c: Tensor) -> Tensor:
        """``Σ_k q_k KL(q(z_g|x) ‖ p(z_g|c_g=k))`` computed component by component: [B, G]."""
        eta = self.natural_params()
        per_component = self.family.kl(eta_q.unsqueeze(2), eta.unsqueeze(0)).sum(-1)  # [B, G, K]
        return (q_c * per_component).sum(-1)

    def param_variance(self, q_c: Tensor) -> Tensor:
        """The tables' "Var": ``Σ_{g,u,p} Var_{q(c_g|x)}[η_{g,c,u,p}]`` per example: [B]."""
        eta = self.natural_params()
        mean = self.average_natural(q_c, eta)  # [B, G, U, P]
        sq = torch.einsum("bgk,gkup->bgup", q_c, eta.square())
        return (sq - mean.square()).clamp_min(0).sum((1, 2, 3))

    # --- densities and sampling ---
    def component_log_prob(self, z: Tensor) -> Tensor:
        """``log p(z_g | c_g = k)`` for every k: z [..., G, U, *event] -> [..., G, K]."""
        ev = self.family.event_dims
        z = z.unsqueeze(-2 - ev)  # [..., G, 1, U, *event]
        return self.family.log_prob(z, self.natural_params()).sum(-1)

    def log_prob(self, z: Tensor) -> Tensor:
        """``log p(z) = Σ_g log (1/K) Σ_k p(z_g | c_g = k)``, c marginalised exactly: [...]."""
        log_k = math.log(self.n_components)
        return (torch.logsumexp(self.component_log_prob(z), dim=-1) - log_k).sum(-1)

    def sample(self, codes: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``z ~ p(z | c)`` for given codes [N, G] -> [N, G, U, *event]."""
        eta = self.natural_params()  # [G, K, U, P]
        g = torch.arange(self.n_groups, device=codes.device)
        chosen = eta[g.unsqueeze(0), codes]  # [N, G, U, P]
        return self.family.sample(chosen, generator=generator)

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``c ~ p(c)`` (uniform): [n, G]."""
        return torch.randint(
            self.n_components, (n, self.n_groups), generator=generator, device=self.raw.device
        )
