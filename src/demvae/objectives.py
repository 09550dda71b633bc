r"""The training objective, assembled in one place from the typed loss terms (:class:`Terms`).

With annealing weight ``w(step)`` the loss minimised is

``loss = rec + w·κ·[ fb(kl_c) + kl_z_avg + (1 − β)·dispersion − λ·mutual_info ] + γ·supervision``

* ``rec``         −log p(x|z), summed over tokens;
* ``kl_c``        KL(q(c|x) ‖ U(K)) per discrete variable;
* ``kl_z_avg``    KL(q(z|x) ‖ p̂) to the average prior (for a N(0, I) prior: the usual KL);
* ``dispersion``  L_d = E_q(c|x) A(η_c) − A(η̄) ≥ 0, so ``kl_z_avg + dispersion`` is the exact KL;
* ``β``           the paper's dispersion weight (objective = ELBO + β·L_d; β = 0: plain ELBO; §3.3);
* ``κ``           a β-VAE weight on the whole KL (``kl_weight``; 1 = ELBO);
* ``λ``           weight of the batch estimate of I(x; c) (``mi_weight``; 1 = the paper's "+Lmi", §3.3);
* ``fb``          optional free bits: a per-example, per-variable hinge ``1[KL > λ/M]·KL``
                  (the original code's variant), applied to ``kl_c`` and, when ``free_bits_z > 0``,
                  to the exact z-KL ``kl_z_avg + dispersion``, which then replaces the two z terms
                  (β unused: the paper's free-bits baseline has no dispersion term);
* ``supervision`` cross-entropy of supervised latent variables against labels (weight γ, not annealed).

Why κ scales the MI bonus too: the original writes the +Lmi objective as
``w·κ_c·KL(q̄(c) ‖ U)`` with the batch-aggregate q̄, and ``mean_b KL(q(c|x_b) ‖ U) = KL(q̄ ‖ U) + MI``;
so its β-GM-VAE weight (``klw_for_ckl``) multiplies the MI bonus as well. −ELBO is ``Terms.neg_elbo``.

Stage 2 of the dialog model (:func:`dialog_objective`) minimises the original's
``nll/token + mean_{b,i} CE(policy) + α·mean_{b,i} CE(attribute)`` (α = ``dialog.attribute_weight``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from demvae.config import ObjectiveConfig
from demvae.terms import DialogTerms, Terms

# --- discrete-code terms -------------------------------------------------------------------------


def kl_to_uniform(q: Tensor, eps: float = 1e-20) -> Tensor:
    """``KL(q ‖ U(K)) = Σ_k q_k log(K q_k)`` over the last axis."""
    k = q.shape[-1]
    return (q * torch.log(q * k + eps)).sum(-1)


def entropy(q: Tensor, eps: float = 1e-20) -> Tensor:
    return -(q * torch.log(q + eps)).sum(-1)


def mutual_info(q: Tensor) -> Tensor:
    """Batch estimate of ``I(x; c_i) = H(q̄(c_i)) − E_x H(q(c_i|x))``, with
    ``q̄ = mean_b q(c_i|x_b)``: q [B, M, K] -> [M].

    Note ``mean_b kl_to_uniform(q) = kl_to_uniform(q̄) + mutual_info(q)``.
    """
    return entropy(q.mean(0)) - entropy(q).mean(0)


def perplexity(total_nll: float, n_tokens: int) -> float:
    """``exp(total NLL / predicted tokens)``, or inf where it would overflow (a diverged model)."""
    try:
        return math.exp(total_nll / max(1, n_tokens))
    except OverflowError:
        return math.inf


# --- annealing -----------------------------------------------------------------------------------


def kl_anneal_weight(step: int, kind: str = "logistic", k: float = 0.0025, x0: int = 2500) -> float:
    """``w(step) = 1 / (1 + exp(−k (step − x0)))`` (paper §4.1), or 1 with ``kind="none"``."""
    if kind == "none":
        return 1.0
    if kind == "logistic":
        return 1.0 / (1.0 + math.exp(-k * (step - x0)))
    if kind == "linear":
        return 1.0 if step >= x0 else step / x0
    raise ValueError(f"unknown annealing {kind!r}")


# --- the objective -------------------------------------------------------------------------------


def _free_bits(term: Tensor, total: float) -> Tensor:
    """Zero a per-example, per-variable term at or below its share ``total / M`` of the budget."""
    if total <= 0:
        return term
    return term * (term > total / term.shape[-1]).to(term.dtype)


def objective(terms: Terms, cfg: ObjectiveConfig, weight: float = 1.0, example_scale: float | None = None) -> Tensor:
    """The scalar loss above, averaged over the batch; ``weight`` is the annealing ``w(step)``.

    ``example_scale`` multiplies the per-example terms' sum: ``1/B`` (the default) is the batch mean;
    a data-parallel rank passes ``N/B_global`` (see :mod:`demvae.distributed`). The batch-level MI
    bonus is not scaled: it is already a statistic of the (global) batch."""
    assert terms.rec is not None, "the objective needs the reconstruction term"
    scale = 1.0 / terms.rec.shape[0] if example_scale is None else example_scale
    kl = torch.zeros_like(terms.rec)  # [B]
    if terms.kl_c is not None:
        kl = kl + _free_bits(terms.kl_c, cfg.free_bits_c).sum(-1)
    if terms.kl_z_avg is not None:
        if cfg.free_bits_z > 0:  # the hinge needs the exact per-variable KL
            exact = terms.kl_z_avg if terms.dispersion is None else terms.kl_z_avg + terms.dispersion
            kl = kl + _free_bits(exact, cfg.free_bits_z).sum(-1)
        else:
            kl = kl + terms.kl_z_avg.sum(-1)
            if terms.dispersion is not None:
                kl = kl + (1.0 - cfg.beta) * terms.dispersion.sum(-1)
    kl = kl.sum() * scale
    if cfg.mi_weight and terms.mutual_info is not None:
        kl = kl - cfg.mi_weight * terms.mutual_info.sum()
    loss = terms.rec.sum() * scale + weight * cfg.kl_weight * kl
    if terms.supervision is not None:
        loss = loss + cfg.supervision_weight * terms.supervision.sum() * scale
    return loss


def dialog_objective(terms: DialogTerms, attribute_weight: float = 0.1) -> Tensor:
    """Stage 2's loss: the batch's NLL per predicted token, plus the policy's cross-entropy against the
    stage-1 code and ``attribute_weight`` × the attribute cross-entropy, each averaged over the B·M variables."""
    nll = terms.nll.sum() / terms.n_tokens.sum()
    return nll + terms.policy.mean() + attribute_weight * terms.attribute.mean()
