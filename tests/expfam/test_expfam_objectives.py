"""objectives.py: KL to uniform, the batch mutual-information estimate, annealing, and the loss.

References: brute-force loops, an exact I(x; c) from a joint table, torch.distributions, and the
loss formula of the module docstring written out independently here.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical as TCategorical
from torch.distributions import kl_divergence

from demvae.models.latents import code_terms
from demvae.objectives import (
    ObjectiveConfig,
    entropy,
    kl_anneal_weight,
    kl_to_uniform,
    mutual_info,
    objective,
)
from demvae.terms import Terms

DT = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _q(b, g, k, seed, scale=1.5):
    return torch.softmax(torch.randn(b, g, k, generator=_gen(seed), dtype=DT) * scale, -1)


# ------------------------------------------------------------------------------------------------
# KL to uniform, entropy, mutual information
# ------------------------------------------------------------------------------------------------


def test_kl_to_uniform_brute_force_and_torch():
    q = _q(5, 3, 4, seed=0)
    got = kl_to_uniform(q)
    assert got.shape == (5, 3)
    for b, g in itertools.product(range(5), range(3)):
        ref = sum(float(q[b, g, k]) * math.log(float(q[b, g, k]) / 0.25) for k in range(4))
        assert abs(float(got[b, g]) - ref) < 1e-12
    uniform = TCategorical(probs=torch.full((4,), 0.25, dtype=DT))
    torch.testing.assert_close(got, kl_divergence(TCategorical(probs=q), uniform), rtol=1e-10, atol=1e-12)


def test_kl_to_uniform_edge_cases():
    k = 5
    torch.testing.assert_close(kl_to_uniform(torch.full((k,), 1 / k, dtype=DT)), torch.tensor(0.0, dtype=DT))
    one_hot = F.one_hot(torch.tensor(2), k).to(DT)
    torch.testing.assert_close(kl_to_uniform(one_hot), torch.tensor(math.log(k), dtype=DT))
    assert torch.isfinite(kl_to_uniform(one_hot))


def test_entropy_vs_torch():
    q = _q(4, 2, 6, seed=1)
    torch.testing.assert_close(entropy(q), TCategorical(probs=q).entropy(), rtol=1e-10, atol=1e-12)


def test_mutual_info_is_entropy_of_mean_minus_mean_entropy():
    q = _q(7, 3, 4, seed=2)
    got = mutual_info(q)
    assert got.shape == (3,)
    for g in range(3):
        qbar = [sum(float(q[b, g, k]) for b in range(7)) / 7 for k in range(4)]
        h_bar = -sum(p * math.log(p) for p in qbar)
        mean_h = sum(-sum(float(q[b, g, k]) * math.log(float(q[b, g, k])) for k in range(4)) for b in range(7)) / 7
        assert abs(float(got[g]) - (h_bar - mean_h)) < 1e-12
    assert torch.all(got >= -1e-12)


def test_mutual_info_decomposes_the_kl_to_uniform():
    q = _q(9, 2, 5, seed=3)
    lhs = kl_to_uniform(q).mean(0)
    rhs = kl_to_uniform(q.mean(0)) + mutual_info(q)
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-12)


def test_mutual_info_equals_exact_mi_of_a_joint_table():
    """x uniform over N points, q(c|x) = p(c|x): the batch estimate is the exact I(x; c)."""
    n, k = 6, 4
    cond = torch.softmax(torch.randn(n, k, generator=_gen(4), dtype=DT) * 2, -1)  # p(c | x)
    joint = cond / n  # p(x, c)
    px = joint.sum(1, keepdim=True)
    pc = joint.sum(0, keepdim=True)
    exact = float((joint * torch.log(joint / (px * pc))).sum())
    got = mutual_info(cond.unsqueeze(1))  # [B=N, G=1, K]
    assert abs(float(got[0]) - exact) < 1e-12
    assert exact > 0.05  # the table is informative, so the check is not vacuous


def test_mutual_info_zero_when_codes_ignore_x():
    row = torch.softmax(torch.randn(1, 2, 5, generator=_gen(5), dtype=DT), -1)
    q = row.expand(8, 2, 5)
    torch.testing.assert_close(mutual_info(q), torch.zeros(2, dtype=DT), rtol=0, atol=1e-12)


def test_mutual_info_log_k_for_balanced_one_hot_codes():
    k = 4
    idx = torch.arange(3 * k) % k  # every code equally often
    q = torch.stack((F.one_hot(idx, k), F.one_hot(idx.flip(0), k)), 1).to(DT)  # [B, G=2, K]
    torch.testing.assert_close(mutual_info(q), torch.full((2,), math.log(k), dtype=DT), rtol=0, atol=1e-12)


def test_code_terms():
    logits = torch.randn(6, 2, 3, generator=_gen(6), dtype=DT) * 2
    q, terms = code_terms(logits)
    ref_q = torch.softmax(logits, -1)
    torch.testing.assert_close(q, ref_q)
    assert set(terms.present()) == {"kl_c", "mutual_info"}
    uniform = TCategorical(probs=torch.full((3,), 1 / 3, dtype=DT))
    expected = kl_divergence(TCategorical(logits=logits), uniform)
    torch.testing.assert_close(terms.kl_c, expected, rtol=1e-10, atol=1e-12)
    ent = TCategorical(logits=logits).entropy()
    ent_bar = TCategorical(probs=ref_q.mean(0)).entropy()
    torch.testing.assert_close(terms.mutual_info, ent_bar - ent.mean(0), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# annealing
# ------------------------------------------------------------------------------------------------


def test_logistic_anneal_values():
    assert kl_anneal_weight(0) == pytest.approx(1 / (1 + math.exp(6.25)), rel=1e-12)
    assert kl_anneal_weight(0) == pytest.approx(0.0019267, abs=1e-6)
    assert kl_anneal_weight(2500) == pytest.approx(0.5, abs=1e-15)
    assert kl_anneal_weight(5000) == pytest.approx(0.9980733, abs=1e-6)
    ws = [kl_anneal_weight(s) for s in range(0, 10_001, 500)]
    assert all(a < b for a, b in zip(ws, ws[1:]))
    assert kl_anneal_weight(100, k=0.01, x0=100) == pytest.approx(0.5)


def test_other_anneal_kinds():
    assert kl_anneal_weight(0, kind="none") == 1.0
    assert kl_anneal_weight(123_456, kind="none") == 1.0
    assert kl_anneal_weight(1250, kind="linear") == pytest.approx(0.5)
    assert kl_anneal_weight(10_000, kind="linear") == 1.0
    assert kl_anneal_weight(0, kind="linear", x0=0) == 1.0  # no warm-up: full weight from the first step
    with pytest.raises(ValueError):
        kl_anneal_weight(0, kind="cosine")


# ------------------------------------------------------------------------------------------------
# the loss
# ------------------------------------------------------------------------------------------------

BATCH, NG = 4, 2


def _terms(seed=7, supervision=True) -> Terms:
    g = _gen(seed)
    t = Terms(
        rec=torch.rand(BATCH, generator=g, dtype=DT) * 50 + 10,
        kl_c=torch.rand(BATCH, NG, generator=g, dtype=DT) * 2,
        kl_z_avg=torch.rand(BATCH, NG, generator=g, dtype=DT) * 3,
        dispersion=torch.rand(BATCH, NG, generator=g, dtype=DT) + 0.1,
        mutual_info=torch.rand(NG, generator=g, dtype=DT),
    )
    if supervision:
        t.supervision = torch.rand(BATCH, generator=g, dtype=DT) * 4
    return t


def test_beta_changes_only_the_dispersion_coefficient():
    t, w = _terms(), 0.37
    diff = objective(t, ObjectiveConfig(beta=0.0), w) - objective(t, ObjectiveConfig(beta=0.8), w)
    expected = 0.8 * w * t.dispersion.sum(-1).mean()
    torch.testing.assert_close(diff, expected, rtol=1e-12, atol=1e-12)
    # without a dispersion term β has no effect at all
    t2 = dataclasses.replace(t, dispersion=None)
    torch.testing.assert_close(objective(t2, ObjectiveConfig(beta=0.0), w), objective(t2, ObjectiveConfig(beta=0.8), w))


def test_mi_weight_subtracts_weighted_mutual_info():
    t, w = _terms(), 0.6
    diff = objective(t, ObjectiveConfig(), w) - objective(t, ObjectiveConfig(mi_weight=1.5), w)
    torch.testing.assert_close(diff, w * 1.5 * t.mutual_info.sum(), rtol=1e-12, atol=1e-12)


def test_kl_weight_scales_every_kl_term():
    t, w = _terms(supervision=False), 0.9
    base = objective(t, ObjectiveConfig(beta=0.3), w)
    scaled = objective(t, ObjectiveConfig(beta=0.3, kl_weight=0.25), w)
    kl = (t.kl_c + t.kl_z_avg + 0.7 * t.dispersion).sum(-1).mean()
    torch.testing.assert_close(base - t.rec.mean(), w * kl, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(scaled - t.rec.mean(), 0.25 * w * kl, rtol=1e-12, atol=1e-12)


def test_supervision_added_with_its_weight_and_not_annealed():
    t = _terms()
    without = dataclasses.replace(t, supervision=None)
    for w in (0.01, 1.0):
        diff = objective(t, ObjectiveConfig(supervision_weight=3.0), w) - objective(without, ObjectiveConfig(), w)
        torch.testing.assert_close(diff, 3.0 * t.supervision.mean(), rtol=1e-12, atol=1e-12)


def test_annealing_weight_multiplies_kl_and_mi_only():
    t = _terms()
    cfg = ObjectiveConfig(beta=0.4, mi_weight=1.0)
    w0 = objective(t, cfg, 0.0)
    torch.testing.assert_close(w0, t.rec.mean() + t.supervision.mean(), rtol=1e-12, atol=1e-12)


def test_free_bits_hinge_on_kl_c():
    t = Terms(
        rec=torch.zeros(2, dtype=DT),
        # threshold 4 over M = 2 variables: per-variable share 2.0; 2.0 exactly is zeroed, 2.5 kept
        kl_c=torch.tensor([[2.0, 2.5], [1.0, 3.0]], dtype=DT),
    )
    got = objective(t, ObjectiveConfig(free_bits_c=4.0), 1.0)
    expected = (2.5 + 3.0) / 2
    assert float(got) == pytest.approx(expected, abs=1e-12)
    # with no free bits everything counts
    assert float(objective(t, ObjectiveConfig(), 1.0)) == pytest.approx((2.0 + 2.5 + 1.0 + 3.0) / 2, abs=1e-12)


def test_free_bits_on_z_use_the_exact_kl():
    t = Terms(
        rec=torch.zeros(2, dtype=DT),
        kl_z_avg=torch.tensor([[1.5, 0.5], [2.5, 1.0]], dtype=DT),
        dispersion=torch.tensor([[1.0, 1.5], [0.25, 0.5]], dtype=DT),
    )
    # share = 4/2 = 2. exact = [[2.5, 2.0], [2.75, 1.5]] -> kept, zeroed (= 2), kept, zeroed.
    # kl_z_avg alone would have been below the share for (0, 0) -- the exact KL must decide.
    got = objective(t, ObjectiveConfig(free_bits_z=4.0), 1.0)
    assert float(got) == pytest.approx((2.5 + 2.75) / 2, abs=1e-12)
    # all terms above the share: free bits change nothing (β = 0)
    t_big = dataclasses.replace(t, kl_z_avg=t.kl_z_avg + 10, dispersion=t.dispersion + 10)
    torch.testing.assert_close(
        objective(t_big, ObjectiveConfig(free_bits_z=4.0), 0.5), objective(t_big, ObjectiveConfig(), 0.5)
    )
    # a budget below one nat still hinges: share 0.9/2 = 0.45; exact [[0.3, 1.0], [0.5, 0.2]] -> 0, 1, 0.5, 0
    t_small = Terms(rec=torch.zeros(2, dtype=DT), kl_z_avg=torch.tensor([[0.2, 0.5], [0.5, 0.1]], dtype=DT),
                    dispersion=torch.tensor([[0.1, 0.5], [0.0, 0.1]], dtype=DT))
    got = objective(t_small, ObjectiveConfig(free_bits_z=0.9), 1.0)
    assert float(got) == pytest.approx((1.0 + 0.5) / 2, abs=1e-12)


def test_neg_elbo_sums_all_terms():
    t = _terms()
    expected = t.rec + t.kl_c.sum(-1) + t.kl_z_avg.sum(-1) + t.dispersion.sum(-1)
    torch.testing.assert_close(t.neg_elbo(), expected, rtol=1e-12, atol=1e-12)
    # supervision and MI are not part of the ELBO; absent terms are skipped
    torch.testing.assert_close(Terms(rec=t.rec, kl_c=t.kl_c).neg_elbo(), t.rec + t.kl_c.sum(-1))
    # −ELBO is the loss at β = 0, κ = 1, w = 1, λ = 0, without supervision
    no_sup = dataclasses.replace(t, supervision=None, mutual_info=None)
    torch.testing.assert_close(objective(no_sup, ObjectiveConfig(), 1.0), no_sup.neg_elbo().mean())


# ------------------------------------------------------------------------------------------------
# the loss in the original code's form (reference §3.5, SM:772-797)
# ------------------------------------------------------------------------------------------------


def _original_loss(logits, rec, zkl, disp, *, beta, mutual, kappa, w):
    """The original: ``nll + w·[a_c·(agg_ckl + 1[¬mutual]·mi) + a_z·(zkl + β_code·L_d)]`` with
    ``agg_ckl = Σ_g KL(q̄_g ‖ U)`` from the batch-aggregate posterior q̄, ``mi = Σ_g [H(q̄_g) − mean_b H(q_bg)]``,
    ``β_code = 1 − β`` and ``a_c = a_z = κ`` (``klw_for_ckl``/``klw_for_zkl``, the β-GM-VAE of Table 7).
    Computed here with plain loops from the probabilities, not with the module's helpers."""
    q = torch.softmax(logits, -1)
    b_size, n_variables, k = q.shape
    agg_ckl = mi = 0.0
    for g in range(n_variables):
        q_bar = [sum(float(q[b, g, j]) for b in range(b_size)) / b_size for j in range(k)]
        agg_ckl += sum(p * math.log(p * k) for p in q_bar)
        h_bar = -sum(p * math.log(p) for p in q_bar)
        mean_h = sum(-sum(float(q[b, g, j]) * math.log(float(q[b, g, j])) for j in range(k))
                     for b in range(b_size)) / b_size
        mi += h_bar - mean_h
    z_part = float(zkl.sum(-1).mean() + (1 - beta) * disp.sum(-1).mean())
    return float(rec.mean()) + w * (kappa * (agg_ckl + (0.0 if mutual else mi)) + kappa * z_part)


@pytest.mark.parametrize("beta", [0.0, 0.8, 0.9])
@pytest.mark.parametrize("mutual", [False, True])
@pytest.mark.parametrize("kappa,w", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.1, 0.7)])
def test_objective_equals_the_original_loss(beta, mutual, kappa, w):
    g = _gen(11)
    logits = torch.randn(BATCH, NG, 5, generator=g, dtype=DT) * 1.5
    rec = torch.rand(BATCH, generator=g, dtype=DT) * 50 + 10
    zkl = torch.rand(BATCH, NG, generator=g, dtype=DT) * 3
    disp = torch.rand(BATCH, NG, generator=g, dtype=DT) + 0.1
    _, code = code_terms(logits)
    terms = Terms(rec=rec, kl_z_avg=zkl, dispersion=disp) + code
    cfg = ObjectiveConfig(beta=beta, mi_weight=1.0 if mutual else 0.0, kl_weight=kappa)
    expected = _original_loss(logits, rec, zkl, disp, beta=beta, mutual=mutual, kappa=kappa, w=w)
    assert float(objective(terms, cfg, w)) == pytest.approx(expected, rel=1e-12, abs=1e-10)


def test_kl_weight_scales_the_mi_bonus_too():
    """κ multiplies agg_ckl = mean kl_c − MI in the original, so the MI bonus is −w·κ·λ·MI."""
    t, w = _terms(supervision=False), 0.8
    cfg = dict(kl_weight=0.5)
    diff = objective(t, ObjectiveConfig(mi_weight=1.0, **cfg), w) - objective(t, ObjectiveConfig(**cfg), w)
    torch.testing.assert_close(diff, -w * 0.5 * t.mutual_info.sum(), rtol=1e-12, atol=1e-12)


def test_beta_outside_the_papers_range_is_rejected():
    from demvae.config import from_dict
    from demvae.errors import ConfigError

    for beta in (-0.5, 1.5):
        with pytest.raises(ConfigError, match="beta"):
            from_dict({"objective": {"beta": beta}})


def test_perplexity_against_the_definition():
    import math

    from demvae.objectives import perplexity

    assert perplexity(230.0, 100) == pytest.approx(math.exp(2.3), rel=1e-12)
    assert perplexity(1.5, 0) == pytest.approx(math.exp(1.5), rel=1e-12)  # no token: the NLL itself
    assert perplexity(800.0, 1) == math.inf  # exp(800) overflows a float: a diverged model, not an error
    assert perplexity(709.0, 1) == pytest.approx(math.exp(709.0), rel=1e-12)
