"""The posterior heads follow the original code (issue 10, item 3).

(D)GM-VAE: q(z|x) is one Linear, q(c|x) is Linear-ReLU-Linear (reference §3.5).
(D)CM-VAE: both q(z|x) and q(c|x) are Linear-tanh-Linear with a 512-wide hidden layer (reference §3.7).
"""

from __future__ import annotations

import pytest
from torch import nn

from demvae.config import compose
from demvae.models import build_model


def _layers(module) -> list[type]:
    return [type(m) for m in module] if isinstance(module, nn.Sequential) else [type(module)]


def _heads(name):
    cfg = compose(model=name)
    model = build_model(cfg.model, 50, bos_id=2, eos_id=3)
    block = next(b for b in model.latents if b.has_code)
    return block


@pytest.mark.parametrize("name", ["cm-vae", "dcm-vae"])
def test_categorical_mixture_heads_are_linear_tanh_linear(name):
    block = _heads(name)
    z_head, c_head = block.posterior, block.code_net
    assert _layers(z_head) == [nn.Linear, nn.Tanh, nn.Linear]
    assert _layers(c_head) == [nn.Linear, nn.Tanh, nn.Linear]
    assert z_head[0].out_features == 512 and c_head[0].out_features == 512
    assert z_head[-1].out_features == 30 * 7  # 30 categorical variables, 8 values (7 natural parameters)
    assert c_head[-1].out_features == 30  # one code variable, 30 components


@pytest.mark.parametrize("name", ["gm-vae", "dgm-vae"])
def test_gaussian_mixture_heads_are_linear_and_linear_relu_linear(name):
    block = _heads(name)
    assert _layers(block.posterior) == [nn.Linear]
    assert _layers(block.code_net) == [nn.Linear, nn.ReLU, nn.Linear]
