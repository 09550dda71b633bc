"""The mixture-prior terms stay in float32 under bf16 autocast (issue 10, item 1).

Autocast casts matmul-like ops (einsum → bmm, linear) to bf16. The dispersion is a small difference
of two large log-partitions, so computed in bf16 near collapse it can even come out negative. The
latent blocks therefore run with autocast disabled: under CPU bf16 autocast every term and every
gradient of a latent block must equal its float32 value, near collapse and with spread components.
"""

from __future__ import annotations

import pytest
import torch

from demvae.expfam import Categorical, Gaussian
from demvae.models.latents import MixtureLatent

TERMS = ("kl_c", "kl_z_avg", "dispersion", "param_var", "mutual_info")


def _block(family, scale: float, seed: int = 0) -> MixtureLatent:
    torch.manual_seed(seed)
    block = MixtureLatent(family, in_dim=16, n_variables=3, n_values=5, n_units=4)
    with torch.no_grad():
        block.prior.raw.mul_(scale)  # × 0.01: every component ≈ N(0, 1), the collapse regime
    return block


def _run(block, h, amp: bool):
    block.zero_grad(set_to_none=True)
    h = h.clone().requires_grad_(True)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        features, terms = block(h, 2)
    loss = sum(v.sum() for k, v in terms.present().items() if k in TERMS)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in block.named_parameters() if p.grad is not None}
    return terms, grads, h.grad.clone()


@pytest.mark.parametrize("family", [Gaussian(), Categorical(4)], ids=["gaussian", "categorical"])
@pytest.mark.parametrize("scale", [0.01, 0.03, 1.0], ids=["collapsed", "near-collapse", "spread"])
def test_latent_terms_and_gradients_equal_float32_under_bf16_autocast(family, scale):
    block = _block(family, scale)
    h = torch.randn(8, 16, generator=torch.Generator().manual_seed(2))
    ref_terms, ref_grads, ref_hgrad = _run(block, h, amp=False)
    amp_terms, amp_grads, amp_hgrad = _run(block, h, amp=True)
    for name in TERMS:
        amp, ref = getattr(amp_terms, name), getattr(ref_terms, name)
        assert amp.dtype == torch.float32, name
        torch.testing.assert_close(amp, ref, rtol=1e-6, atol=1e-7, msg=name)
    assert (amp_terms.dispersion >= 0).all()
    assert ref_grads.keys() == amp_grads.keys()
    for name in ref_grads:
        torch.testing.assert_close(amp_grads[name], ref_grads[name], rtol=1e-5, atol=1e-7, msg=name)
    torch.testing.assert_close(amp_hgrad, ref_hgrad, rtol=1e-5, atol=1e-7)
