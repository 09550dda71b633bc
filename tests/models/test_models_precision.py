"""The mixture-prior terms stay in float32 under bf16 autocast (issue 10, item 1); what ``train.amp: auto``
decides on a device (issue 22, item 1).

Autocast casts matmul-like ops (einsum → bmm, linear) to bf16. The dispersion is a small difference
of two large log-partitions, so computed in bf16 near collapse it can even come out negative. The
latent blocks therefore run with autocast disabled: under CPU bf16 autocast every term and every
gradient of a latent block must equal its float32 value, near collapse and with spread components.
"""

from __future__ import annotations

import pytest
import torch

import demvae.device as device_module
from demvae.device import auto_precision, has_bf16_matmul, resolve_precision
from demvae.errors import ConfigError
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


@pytest.mark.parametrize("grad", [True, False], ids=["training", "evaluation"])
def test_sentence_nll_under_bf16_autocast_is_summed_in_float32(grad):
    """The decoder's states come out in bf16 under autocast (its initial state is a bf16 product of z); a
    sentence's NLL is still a float32 sum (in bf16 a sum near 100 nats rounds to steps of 0.5), and
    evaluation's softmax runs in float32 too."""
    from demvae.config import ModelConfig
    from demvae.data.types import Batch
    from demvae.models import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(latent="gaussian", gaussian_dim=4, embed_dim=16, hidden_size=16,
                                    recurrence="gru", dropout=0.0), 40, 2, 3)
    tokens = torch.randint(4, 40, (6, 30))
    tokens[:, 0], tokens[:, -1] = 2, 3
    batch = Batch(tokens, torch.full((6,), 30), {})
    with torch.set_grad_enabled(grad):
        torch.manual_seed(1)
        ref = model(batch, 2).rec
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.manual_seed(1)
            bf16 = model(batch, 2).rec
    assert bf16.dtype == torch.float32
    assert 0 < (bf16 - ref).abs().max() < (0.2 if grad else 0.05)  # of ≈ 110 nats a sentence


# --- train.amp: auto ---------------------------------------------------------------------------------------


def _fake_timer(bf16: float, fp32: float):
    """A ``time_matmul`` that reports the given seconds per dtype and records what it was asked."""
    calls = []

    def time_matmul(dtype, device):
        calls.append(dtype)
        return {torch.bfloat16: bf16, torch.float32: fp32}[dtype]

    return time_matmul, calls


@pytest.mark.parametrize(("bf16", "fp32", "expected"), [(1.0, 2.0, "bf16"), (1.0, 1.1, "fp32"), (3.0, 1.0, "fp32")],
                         ids=["bf16-twice-as-fast", "bf16-faster-within-margin", "bf16-slower"])
def test_auto_on_a_cpu_claiming_bf16_units_decides_by_the_timed_product(monkeypatch, bf16, fp32, expected):
    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: True)
    timer, calls = _fake_timer(bf16, fp32)
    assert auto_precision(torch.device("cpu"), timer) == expected
    assert sorted(calls, key=str) == [torch.bfloat16, torch.float32]


def test_auto_without_bf16_units_is_fp32_and_times_nothing(monkeypatch):
    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: False)
    timer, calls = _fake_timer(0.0, 1.0)
    assert auto_precision(torch.device("cpu"), timer) == "fp32"
    assert calls == []


def test_auto_on_a_cuda_device_of_compute_capability_8_is_bf16_untimed(monkeypatch):
    # has_bf16_matmul's own CUDA test (compute capability >= 8, no emulation), answered yes
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    timer, calls = _fake_timer(9.0, 1.0)
    assert auto_precision(torch.device("cuda"), timer) == "bf16"
    assert calls == []


def test_auto_on_this_cpu_is_what_its_units_allow():
    """The real decision, nothing mocked: fp32 on a CPU without bf16 units (an AVX2-only one)."""
    cpu = torch.device("cpu")
    if has_bf16_matmul(cpu):
        assert resolve_precision("auto", cpu) in ("bf16", "fp32")  # a timed decision on this machine
    else:
        assert resolve_precision("auto", cpu) == "fp32"


def test_true_and_false_keep_their_meaning(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision(False, cpu) == resolve_precision("fp32", cpu) == "fp32"
    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: False)
    with pytest.raises(ConfigError, match="train.amp=false"):
        resolve_precision(True, cpu)
    with pytest.raises(ConfigError, match="--precision fp32"):
        resolve_precision("bf16", cpu, fix="--precision fp32")
    monkeypatch.setattr(device_module, "has_bf16_matmul", lambda device: True)
    assert resolve_precision(True, cpu) == resolve_precision("bf16", cpu) == "bf16"
