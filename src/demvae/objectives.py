r"""The training objective, assembled in one place from named loss terms.

Every model returns per-example terms (``[B, G]``: one column per latent variable) and batch-level
terms. With annealing weight ``w(step)`` the loss minimised is

``loss = rec + w·κ·[ fb(kl_c) + kl_z_avg + (1 − β)·dispersion ] − w·λ·mutual_info + γ·supervision``

* ``rec``         −log p(x|z), summed over tokens;
* ``kl_c``        KL(q(c|x) ‖ U(K)) per discrete variable;
* ``kl_z_avg``    KL(q(z|x) ‖ p̂) to the average prior (for a N(0, I) prior: the usual KL);
* ``dispersion``  L_d = E_q(c|x) A(η_c) − A(η̄) ≥ 0, so ``kl_z_avg + dispersion`` is the exact KL;
* ``β``           the paper's dispersion weight (objective = ELBO + β·L_d; β = 0: plain ELBO);
* ``κ``           a β-VAE weight on the whole KL (``kl_weight``; 1 = ELBO);
* ``λ``           weight of the batch estimate of I(x; c) (``mi_weight``; 1 = the paper's "+Lmi");
* ``fb``          optional free bits: a per-example, per-variable hinge ``1[KL > λ/G]·KL``
                  (the original code's variant), applied to ``kl_c`` and, when ``free_bits_z > 0``,
                  to the exact z-KL ``kl_z_avg + dispersion``, which then replaces the two z terms
                  (β unused: the paper's free-bits baseline has no dispersion term);
* ``supervision`` cross-entropy of supervised latent variables against labels (weight γ).

−ELBO itself is ``rec + kl_c + kl_z_avg + dispersion``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

# --- discrete-code terms -------------------------------------------------------------------------


def kl_to_uniform(q: Tensor, eps: float = 1e-20) -> Tensor:
    """``KL(q ‖ U(K)) = Σ_k q_k log(K q_k)`` over the last axis."""
    k = q.shape[-1]
    return (q * torch.log(q * k + eps)).sum(-1)


def entropy(q: Tensor, eps: float = 1e-20) -> Tensor:
    return -(q * torch.log(q + eps)).sum(-1)


def mutual_info(q: Tensor) -> Tensor:
    """Batch estimate of ``I(x; c_g) = H(q̄(c_g)) − E_x H(q(c_g|x))``, with
    ``q̄ = mean_b q(c_g|x_b)``: q [B, G, K] -> [G].

    Note ``mean_b kl_to_uniform(q) = kl_to_uniform(q̄) + mutual_info(q)``.
    """
    return entropy(q.mean(0)) - entropy(q).mean(0)


# --- annealing -----------------------------------------------------------------------------------


def kl_anneal_weight(step: int, kind: str = "logistic", k: float = 0.0025, x0: int = 2500) -> float:
    """``w(step) = 1 / (1 + exp(−k (step − x0)))`` (paper §4.1), or 1 with ``kind="none"``."""
    if kind == "none":
        return 1.0
    if kind == "logistic":
        return 1.0 / (1.0 + math.exp(-k * (step - x0)))
    if kind == "linear":
        return min(1.0, step / max(1, x0))
    raise ValueError(f"unknown annealing {kind!r}")


# --- the objective -------------------------------------------------------------------------------


@dataclass
class ObjectiveConfig:
    beta: float = 0.0
    """Dispersion weight in the paper's convention (objective = ELBO + β·L_d)."""
    mi_weight: float = 0.0
    kl_weight: float = 1.0
    free_bits_c: float = 0.0
    free_bits_z: float = 0.0
    supervision_weight: float = 1.0
    anneal: str = "logistic"
    anneal_k: float = 0.0025
    anneal_x0: int = 2500


def _free_bits(term: Tensor, total: float) -> Tensor:
    """Zero a per-example, per-variable term at or below its share ``total / G`` of the budget."""
    if total <= 0:
        return term
    return term * (term > total / term.shape[-1]).to(term.dtype)


def _per_example(terms: dict[str, Tensor], name: str) -> Tensor | None:
    t = terms.get(name)
    return None if t is None else t.sum(-1)


def neg_elbo(terms: dict[str, Tensor]) -> Tensor:
    """``−ELBO = rec + kl_c + kl_z_avg + dispersion`` per example [B]."""
    total = terms["rec"]
    for name in ("kl_c", "kl_z_avg", "dispersion"):
        t = _per_example(terms, name)
        if t is not None:
            total = total + t
    return total


def objective(terms: dict[str, Tensor], cfg: ObjectiveConfig, weight: float = 1.0) -> Tensor:
    """The scalar loss above, averaged over the batch; ``weight`` is the annealing ``w(step)``."""
    kl = 0.0
    if "kl_c" in terms:
        kl = kl + _free_bits(terms["kl_c"], cfg.free_bits_c).sum(-1)
    if "kl_z_avg" in terms:
        if cfg.free_bits_z > 0:  # the hinge needs the exact per-variable KL
            exact = terms["kl_z_avg"] + terms.get("dispersion", 0.0)
            kl = kl + _free_bits(exact, cfg.free_bits_z).sum(-1)
        else:
            kl = kl + terms["kl_z_avg"].sum(-1)
            if "dispersion" in terms:
                kl = kl + (1.0 - cfg.beta) * terms["dispersion"].sum(-1)
    loss = terms["rec"].mean() + weight * cfg.kl_weight * (kl.mean() if torch.is_tensor(kl) else kl)
    if cfg.mi_weight and "mutual_info" in terms:
        loss = loss - weight * cfg.mi_weight * terms["mutual_info"].sum()
    if "supervision" in terms:
        loss = loss + cfg.supervision_weight * terms["supervision"].mean()
    return loss
