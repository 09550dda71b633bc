"""The objective variants change what is optimised: losses and gradients of a tiny GM-VAE under
β (dispersion), free bits, the β-VAE kl_weight and the mutual-information bonus."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.testing import assert_close

from demvae.config import compose
from demvae.objectives import ObjectiveConfig, objective
from demvae.training import Trainer

W = 0.7  # an annealing weight other than 1, so its placement is checked too


@pytest.fixture(scope="module")
def gm(tmp_path_factory, tiny_cfg):
    cfg = tiny_cfg("gm-vae")
    trainer = Trainer(cfg, tmp_path_factory.mktemp("obj") / "run")
    model = trainer.model.eval()  # no dropout: the only randomness is the seeded posterior sample
    batch = trainer.data.splits["train"].batch(list(range(16)))
    return trainer, model, batch


def _terms(model, batch):
    torch.manual_seed(0)
    return model(batch, 2)


def _grad(loss, params):
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _code_net(model):
    return list(model.latents[0].code_net.parameters())


def test_beta_zero_is_the_elbo(gm):
    _, model, batch = gm
    terms = _terms(model, batch)
    loss = objective(terms, ObjectiveConfig(beta=0.0, anneal="none"), 1.0)
    assert_close(loss, terms.neg_elbo().mean())


def test_beta_adds_dispersion_to_the_elbo(gm):
    _, model, batch = gm
    terms = _terms(model, batch)
    raw = model.latents[0].prior.raw
    assert raw.requires_grad
    loss0 = objective(terms, ObjectiveConfig(beta=0.0), W)
    loss8 = objective(terms, ObjectiveConfig(beta=0.8), W)
    dispersion = terms.dispersion.sum(-1).mean()
    assert dispersion > 0
    assert_close(loss0 - loss8, 0.8 * W * dispersion, rtol=1e-5, atol=1e-5)
    (g0,), (g8,), (gd,) = _grad(loss0, [raw]), _grad(loss8, [raw]), _grad(dispersion, [raw])
    assert not torch.allclose(g0, g8)
    assert_close(g0 - g8, 0.8 * W * gd, rtol=1e-4, atol=1e-6)
    # the dispersion gradient also reaches q(c|x) (as the original)
    assert any(g.abs().sum() > 0 for g in _grad(dispersion, _code_net(model)))


def test_dgm_vae_preset_objective_is_used_by_the_trainer(gm):
    trainer, model, batch = gm
    saved, weights = trainer.cfg.objective, copy.deepcopy(model.state_dict())
    try:  # train_step returns the loss before its update: restore the weights between the two calls
        trainer.cfg.objective = compose(model="gm-vae").objective
        torch.manual_seed(0)
        loss_gm, values = trainer.train_step(batch, W)
        model.load_state_dict(weights)
        trainer.cfg.objective = compose(model="dgm-vae").objective
        assert trainer.cfg.objective.beta == pytest.approx(0.8)
        torch.manual_seed(0)
        loss_dgm, _ = trainer.train_step(batch, W)
    finally:
        trainer.cfg.objective = saved
        model.load_state_dict(weights)
    assert_close(loss_gm - loss_dgm, 0.8 * W * values["dispersion"], rtol=1e-5, atol=1e-5)


def test_free_bits_that_zero_everything_leave_the_reconstruction_gradient(gm):
    _, model, batch = gm
    params = [p for p in model.parameters() if p.requires_grad]
    terms = _terms(model, batch)
    rec = terms.rec.mean()
    loss_fb = objective(terms, ObjectiveConfig(free_bits_c=1e6, free_bits_z=1e6, beta=0.5, mi_weight=0.0), W)
    assert torch.equal(loss_fb.detach(), rec.detach())
    for g_fb, g_rec in zip(_grad(loss_fb, params), _grad(rec, params)):
        assert torch.equal(g_fb, g_rec)
    # q(c|x) is not seen by the decoder: its gradient is zero under free bits, non-zero without
    assert all(torch.equal(g, torch.zeros_like(g)) for g in _grad(loss_fb, _code_net(model)))
    loss = objective(terms, ObjectiveConfig(), W)
    assert any(g.abs().sum() > 0 for g in _grad(loss, _code_net(model)))


def test_free_bits_hinge_per_example_and_variable(gm):
    _, model, batch = gm
    terms = _terms(model, batch)
    g = terms.kl_c.shape[-1]
    exact_z = terms.kl_z_avg + terms.dispersion
    # thresholds at the medians, so some entries are kept and some are zeroed
    fb_c = float(terms.kl_c.detach().median()) * g
    fb_z = float(exact_z.detach().median()) * g
    keep_c, keep_z = terms.kl_c > fb_c / g, exact_z > fb_z / g
    assert keep_c.any() and not keep_c.all() and keep_z.any() and not keep_z.all()
    expected = terms.rec.mean() + W * (
        (terms.kl_c * keep_c).sum(-1) + (exact_z * keep_z).sum(-1)
    ).mean()
    cfg = ObjectiveConfig(free_bits_c=fb_c, free_bits_z=fb_z, beta=0.8)  # β plays no part under free bits
    assert_close(objective(terms, cfg, W), expected, rtol=1e-5, atol=1e-5)


def test_kl_weight_scales_the_kl_part(gm):
    _, model, batch = gm
    assert compose(model="beta-gm-vae").objective.kl_weight == pytest.approx(0.5)
    terms = _terms(model, batch)
    rec = terms.rec.mean()
    full = objective(terms, ObjectiveConfig(), W)
    half = objective(terms, ObjectiveConfig(kl_weight=0.5), W)
    assert_close(half - rec, 0.5 * (full - rec), rtol=1e-5, atol=1e-5)
    # q(c|x) only gets gradient from the KL part: it is exactly halved
    for g_half, g_full in zip(_grad(half, _code_net(model)), _grad(full, _code_net(model))):
        assert_close(g_half, 0.5 * g_full, rtol=1e-4, atol=1e-7)


def test_mi_weight_subtracts_weighted_mutual_info(gm):
    _, model, batch = gm
    terms = _terms(model, batch)
    mi = terms.mutual_info
    assert mi.shape == (model.latents[0].n_variables,)
    base = objective(terms, ObjectiveConfig(), W)
    with_mi = objective(terms, ObjectiveConfig(mi_weight=1.5), W)
    assert_close(base - with_mi, W * 1.5 * mi.sum(), rtol=1e-5, atol=1e-6)
    g_base, g_mi = _grad(base, _code_net(model)), _grad(with_mi, _code_net(model))
    assert any(not torch.allclose(a, b) for a, b in zip(g_base, g_mi))
