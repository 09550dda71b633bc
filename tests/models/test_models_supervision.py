"""Supervised presets (cm-vae, dcm-vae, dvae-sup) on a corpus with other labels."""

from __future__ import annotations

import pytest
import torch

from demvae.errors import DemvaeError
from demvae.runs import compose
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
    assert "supervision" in terms and (terms["supervision"] > 0).all()
    terms["supervision"].mean().backward()
    grad = model.latents[0].logits.weight.grad
    assert grad is not None and grad.abs().sum() > 0
