"""Supervised presets (cm-vae, dcm-vae, dvae-sup) on a corpus with other labels."""

from __future__ import annotations

import pytest
import torch

from demvae.config import compose
from demvae.errors import DemvaeError
from demvae.training import Trainer


@pytest.mark.parametrize("value", [{}, {"intent": 0}])
def test_supervise_override_replaces_the_preset_mapping(value):
    cfg = compose(model="cm-vae", overrides={"model": {"supervise": value}})
    assert cfg.model.supervise == value


def test_supervising_a_missing_label_is_a_clear_error(tiny_cfg, tmp_path):
    cfg = tiny_cfg("cm-vae", train={"max_steps": 1})
    cfg.model.supervise = {"emotion": 0}  # the built-in corpus has intent and style only
    with pytest.raises(DemvaeError, match="emotion"):
        Trainer(cfg, tmp_path / "run").fit()


def test_supervision_trains_the_supervised_variable(tiny_cfg, tmp_path):
    """The cross-entropy term of the supervised latent variable is in the loss: its gradient
    reaches the posterior network of the categorical latent."""
    cfg = tiny_cfg("dvae-sup")
    trainer = Trainer(cfg, tmp_path / "run")
    model = trainer.model.eval()
    batch = trainer.data.splits["train"].batch(list(range(16)))
    torch.manual_seed(0)
    terms = model(batch, 1)
    assert terms.supervision is not None and (terms.supervision > 0).all()
    terms.supervision.mean().backward()
    grad = model.latents[0].logits.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def _hand_ce(log_probs_fn, labels):
    """Σ_labels −log q(v_index = label | x), one example at a time (label −1: not counted)."""
    total = []
    for b in range(len(next(iter(labels.values()))[1])):
        value = 0.0
        for index, ys in labels.values():
            if int(ys[b]) >= 0:
                value -= float(log_probs_fn(b, index)[int(ys[b])].detach())
        total.append(value)
    return torch.tensor(total, dtype=torch.float64)


def test_supervision_is_the_cross_entropy_of_each_labelled_variable(tiny_cfg, tmp_path):
    """dvae-sup with intent on variable 0 and style on variable 1: the term equals the summed CE of
    q(c_0|x) against intent and q(c_1|x) against style, computed by hand from the posterior logits;
    swapping the two variables changes it."""
    cfg = tiny_cfg("dvae-sup")
    cfg.model.supervise = {"intent": 0, "style": 1}
    trainer = Trainer(cfg, tmp_path / "run")
    batch = trainer.data.splits["train"].batch(list(range(12)))
    model = trainer.model.eval()
    h = model.encode(batch)
    block = model.latents[0]
    logits = block.logits(h).view(12, cfg.model.n_variables, cfg.model.n_values).double()
    log_q = torch.log_softmax(logits, -1)
    labels = {name: (index, batch.labels[name]) for name, index in cfg.model.supervise.items()}
    expected = _hand_ce(lambda b, i: log_q[b, i], labels)
    got = model(batch, 1).supervision.double()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    swapped = _hand_ce(lambda b, i: log_q[b, 1 - i], labels)
    assert not torch.allclose(got, swapped, atol=1e-3)


def test_cm_supervision_reads_the_categorical_z_variables(tiny_cfg, tmp_path):
    """dcm-vae: labels supervise the categorical z variables (z_0 intent, z_1 style), whose
    q(z_i|x) = softmax([η_i, 0]) comes from the posterior head's output."""
    cfg = tiny_cfg("dcm-vae")
    cfg.model.supervise = {"intent": 0, "style": 1}
    trainer = Trainer(cfg, tmp_path / "run")
    batch = trainer.data.splits["train"].batch(list(range(12)))
    model = trainer.model.eval()
    h = model.encode(batch)
    block = model.latents[0]
    n_z, n_values = cfg.model.n_units, cfg.model.z_values
    eta = block.posterior(h).view(12, n_z, n_values - 1).double()
    log_q = torch.log_softmax(torch.cat([eta, torch.zeros(12, n_z, 1, dtype=eta.dtype)], -1), -1)
    labels = {name: (index, batch.labels[name]) for name, index in cfg.model.supervise.items()}
    expected = _hand_ce(lambda b, i: log_q[b, i], labels)
    got = model(batch, 1).supervision.double()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
