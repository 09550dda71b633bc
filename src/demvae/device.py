"""Where and how tensors compute: the device, seeds and RNG state, and float32 islands under autocast."""

from __future__ import annotations

import contextlib
import functools
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from demvae.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])
_HALF = (torch.bfloat16, torch.float16)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; a named device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but this torch build sees no CUDA device (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG a training step draws from (Python, torch CPU, CUDA), for a bit-exact resume."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def has_bf16_matmul(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware: a CUDA device of compute capability ≥ 8,
    or a CPU with AVX512-BF16 or AMX (what oneDNN's bf16 kernels need).

    Why it matters: without them, bf16 matrix products fall back to scalar code. Measured on an AVX2-only
    CPU (this project's 2-core machines, torch 2.13): a [1024 × 10,002] × [10,002 × 512] product at
    0.8 GFLOP/s in bf16 against ~140 in fp32, so a bf16 training step took more than 50 s against 3.6.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


PRECISIONS = ("fp32", "bf16")
"""The precisions a run computes in: float32, or bf16 autocast with float32 latent terms."""
BF16_MARGIN = 1.25
"""``auto`` picks bf16 on a CPU only if its timed product is at least this many times faster than float32's."""


def matmul_seconds(dtype: torch.dtype, device: torch.device, size: int = 512, repeats: int = 3) -> float:
    """The best of ``repeats`` timed ``size``³ matrix products in ``dtype`` on ``device`` (after one
    untimed product, which creates the kernels). At 512 on a CPU with bf16 units: about 1-3 ms each."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return best


def auto_precision(device: torch.device,
                   time_matmul: Callable[[torch.dtype, torch.device], float] | None = None) -> str:
    """What ``train.amp: auto`` means on ``device``: ``bf16`` where it multiplies bf16 matrices in
    hardware, else ``fp32``.

    A CUDA device of compute capability ≥ 8 is trusted. A CPU must also prove it: its flags can
    claim bf16 units that multiply slowly (an emulating hypervisor, a build whose kernels lack
    them), so a product is timed in both precisions (``time_matmul``, default :func:`matmul_seconds`: a
    few ms) and bf16 chosen only if it is :data:`BF16_MARGIN` times faster. Without the flags nothing
    is timed.
    """
    if not has_bf16_matmul(device):
        return "fp32"
    if device.type == "cuda":
        return "bf16"
    time_matmul = time_matmul or matmul_seconds
    fast = time_matmul(torch.bfloat16, device) * BF16_MARGIN <= time_matmul(torch.float32, device)
    return "bf16" if fast else "fp32"


def resolve_precision(amp: bool | str, device: torch.device, fix: str = "--set train.amp=false (or auto)") -> str:
    """The precision of ``amp`` on ``device``: ``bf16`` or ``fp32``. ``amp`` is ``train.amp``'s value
    (``True``, ``False`` or ``auto``) or a precision's name (``bf16``, ``fp32``, ``auto``); bf16 asked
    for on a device without bf16 matrix units is a :class:`ConfigError` that names ``fix``."""
    amp = {"bf16": True, "fp32": False}.get(amp, amp) if isinstance(amp, str) else amp
    if amp == "auto":
        return auto_precision(device)
    if amp is True and not has_bf16_matmul(device):
        raise ConfigError(
            f"bf16 autocast asked for, but {device.type} here has no bf16 matrix units "
            "(a CPU needs AVX512-BF16 or AMX, a GPU compute capability 8 or newer): its bf16 products "
            f"would run one to two orders of magnitude slower than float32. Use {fix}.")
    if not isinstance(amp, bool):
        raise ConfigError(f"precision {amp!r} is not one of auto, {', '.join(PRECISIONS)}")
    return "bf16" if amp else "fp32"


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled`` (CUDA, or a CPU with bf16 matrix units: the
    caller checks :func:`has_bf16_matmul`)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def float32(fn: F) -> F:
    """Run ``fn`` with autocast switched off and half-precision tensor arguments cast to float32.

    Why: autocast runs matmul-like ops (``einsum`` → bmm, ``linear``) in bf16. The dispersion
    ``E_q A(η_c) − A(η̄)`` is a small difference of large log-partitions; in bf16 it comes out
    negative near collapse. The latent blocks are cheap next to the decoder, so they stay float32.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        args = tuple(a.float() if torch.is_tensor(a) and a.dtype in _HALF else a for a in args)
        kwargs = {k: v.float() if torch.is_tensor(v) and v.dtype in _HALF else v for k, v in kwargs.items()}
        with contextlib.ExitStack() as stack:
            for device_type in ("cpu", "cuda"):
                if torch.is_autocast_enabled(device_type):
                    stack.enter_context(torch.autocast(device_type, enabled=False))
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
