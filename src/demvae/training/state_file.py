"""The optimizer's and the RNGs' state in a file that cannot carry code.

A pickle (``torch.save``) can name any callable to run on load, so a crafted ``last/optimizer.pt`` ran a
command on ``train --resume``. Here every tensor goes into a safetensors file and everything else
(the optimizer's param groups and non-tensor state, Python's RNG state) into that file's JSON metadata.
Reading it parses bytes and JSON only.

Layout of ``last/optimizer.safetensors``:

```
tensors   optimizer.state.<param index>.<key>   Adam's exp_avg, exp_avg_sq, step, ...
          rng.torch, rng.cuda.<device>           torch's CPU and CUDA generator states
metadata  format                                 FORMAT
          param_groups, optimizer_plain_state    JSON: the optimizer's non-tensor state
          rng_python                             JSON: random.getstate()
```

Runs written before this format hold ``optimizer.pt``; it is read with ``torch.load(weights_only=True)``,
which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from demvae.errors import CheckpointError

FORMAT = "demvae-training-state-1"
_STATE, _CUDA = "optimizer.state.", "rng.cuda."


def write(path: Path, optimizer_state: dict[str, Any], rng: dict[str, Any]) -> None:
    """Write ``optimizer.state_dict()`` and :func:`demvae.device.rng_state` to ``path`` (not atomic:
    the caller writes into a fresh folder it swaps in)."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, entries in optimizer_state["state"].items():
        plain[str(index)] = {}
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{_STATE}{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[str(index)][key] = value
    tensors["rng.torch"] = rng["torch"]
    for device, state in enumerate(rng.get("cuda", [])):
        tensors[f"{_CUDA}{device}"] = state
    metadata = {
        "format": FORMAT,
        "param_groups": json.dumps(optimizer_state["param_groups"]),
        "optimizer_plain_state": json.dumps(plain),
        "rng_python": json.dumps(rng["python"]),
    }
    save_tensors(tensors, path, metadata)


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """``safetensors.save_file`` with a failed write (a full disk) raised as the ``OSError`` it is."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except OSError:
        raise
    except Exception as exc:  # safetensors reports a failed write as its own error type
        raise OSError(getattr(exc, "errno", None) or 28, f"cannot write {path.name} ({exc})", str(path)) from None


def read(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(optimizer_state, rng)`` that :func:`write` wrote; a :class:`CheckpointError` for anything else."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is no mapping)
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}, expected {FORMAT!r}")
        plain = json.loads(metadata["optimizer_plain_state"])
        state: dict[int, dict[str, Any]] = {int(index): dict(entries) for index, entries in plain.items()}
        for key, tensor in tensors.items():
            if key.startswith(_STATE):
                index, name = key[len(_STATE):].split(".", 1)
                state.setdefault(int(index), {})[name] = tensor
        version, internal, gauss = json.loads(metadata["rng_python"])
        rng: dict[str, Any] = {"torch": tensors["rng.torch"], "python": (version, tuple(internal), gauss)}
        cuda = sorted((int(k[len(_CUDA):]), t) for k, t in tensors.items() if k.startswith(_CUDA))
        if cuda:
            rng["cuda"] = [t for _, t in cuda]
        optimizer_state = {"state": state, "param_groups": json.loads(metadata["param_groups"])}
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors, JSON and unpacking each raise their own types
        raise _unreadable(path, exc) from None
    return optimizer_state, rng


def read_legacy(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``optimizer.pt`` of runs made before :data:`FORMAT`, loaded without running code."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return blob["optimizer"], blob["rng"]
    except Exception as exc:  # UnpicklingError for a crafted or corrupt pickle, KeyError/TypeError for a foreign one
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    run_dir = Path(path).parent.parent
    return CheckpointError(
        f"{path} is not a training state this program wrote ({reason[:200]}); it was not loaded. "
        f"Resume from another copy of the run, or start it again: demvae train --force --out {run_dir}")
