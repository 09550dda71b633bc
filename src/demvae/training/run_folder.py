"""A run folder: everything ``demvae eval/sample/encode DIR`` and ``train --resume DIR`` need.

```
run/
  config.yaml          the full, validated RunConfig
  vocab.json           the vocabulary built on the training split
  versions.json        python / torch / demvae versions and the device used
  model.safetensors    the best model on validation (what evaluation loads)
  metrics.jsonl        one JSON record per log step and per validation
  last/                the latest training state, for --resume:
    model.safetensors  optimizer.pt  trainer_state.json
```

Every file is written to a temporary name and renamed (atomic on POSIX); ``last/`` is written as a
new folder and swapped in, so an interrupted write never leaves a half-written checkpoint.

A dialog run (``dialog.enabled``; :mod:`demvae.training.dialog`) nests its stage 1:

```
run/
  config.yaml  vocab.json  versions.json   the dialog run's (one vocabulary for both stages)
  stage1/              stage 1: a complete sentence-VAE run folder as above, trained on the responses
                       (its config.yaml has dialog.enabled: false; `demvae eval run/stage1` reads it as
                       any sentence model)
  model.safetensors    the best stage-2 model on validation, the frozen stage-1 weights included (they
                       equal stage1/model.safetensors bit for bit): what respond / eval / clusters load
  metrics.jsonl        stage 2's records (stage 1's are in stage1/metrics.jsonl)
  last/                stage 2's latest training state; absent while stage 1 is still training
  stages.json          wall time, final step and best step of each stage
```
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from demvae import __version__
from demvae.config import RunConfig, from_dict, load_yaml
from demvae.data.vocab import Vocab
from demvae.device import rng_state, set_rng_state
from demvae.errors import CheckpointError, DemvaeError
from demvae.io import atomic_write, write_json
from demvae.models import DialogModel, TextVAE, build_for

CONFIG, VOCAB, VERSIONS, METRICS, MODEL, LAST = (
    "config.yaml", "vocab.json", "versions.json", "metrics.jsonl", "model.safetensors", "last")
STAGE1, STAGES = "stage1", "stages.json"
"""A dialog run's stage-1 folder and its per-stage timings."""


def save_model(model: torch.nn.Module, path: Path) -> None:
    # tied/shared weights appear under several names; safetensors stores each tensor once
    state = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        key = tensor.data_ptr()
        if key in seen and tensor.numel() > 0:
            continue
        seen.add(key)
        state[name] = tensor.detach().cpu().contiguous()
    atomic_write(path, lambda p: save_file(state, str(p)))


def load_model_weights(model: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"model weights not found: {path}")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch: weights of another configuration
        raise CheckpointError(f"{path} does not match the model's configuration: {exc}") from None
    # shared tensors are stored once; the aliases are filled by the shared module
    really_missing = [k for k in missing if not _is_alias(model, k, state)]
    if really_missing or unexpected:
        raise CheckpointError(f"{path} does not match the model: missing {really_missing}, unexpected {unexpected}")


def _is_alias(model: torch.nn.Module, name: str, state: dict[str, torch.Tensor]) -> bool:
    tensors = model.state_dict()
    ptr = tensors[name].data_ptr()
    return any(tensors[k].data_ptr() == ptr for k in state if k in tensors)


def versions(device: str) -> dict[str, str]:
    return {
        "demvae": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device,
        "cuda": str(torch.version.cuda),
    }


def save_training_state(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        state: dict[str, Any]) -> None:
    """Write ``last/`` atomically (build it beside, then swap folders)."""
    tmp = Path(tempfile.mkdtemp(dir=run_dir, prefix=f".{LAST}."))
    try:
        save_model(model, tmp / MODEL)
        torch.save({"optimizer": optimizer.state_dict(), "rng": rng_state()}, tmp / "optimizer.pt")
        write_json(tmp / "trainer_state.json", state)
        os.chmod(tmp, 0o755)
        last, old = run_dir / LAST, run_dir / f".{LAST}.old"
        if last.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(last, old)
        os.replace(tmp, last)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def last_state(run_dir: Path) -> dict[str, Any] | None:
    """The trainer state of ``run_dir/last/`` (None before the first checkpoint)."""
    path = run_dir / LAST / "trainer_state.json"
    return json.loads(path.read_text()) if path.is_file() else None


def finished(state: dict[str, Any] | None, max_steps: int) -> bool:
    """Whether a trainer state has ended its training: the step budget reached, or stopped early."""
    return state is not None and (state["done"] or state["step"] >= max_steps)


def load_training_state(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    last = run_dir / LAST
    if not last.is_dir() and (run_dir / f".{LAST}.old").is_dir():
        last = run_dir / f".{LAST}.old"  # interrupted between the two renames
    if not (last / "trainer_state.json").is_file():
        raise CheckpointError(f"no resumable checkpoint in {run_dir} (expected {run_dir / LAST}/trainer_state.json)")
    load_model_weights(model, last / MODEL)
    try:
        blob = torch.load(last / "optimizer.pt", map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise CheckpointError(f"missing {last / 'optimizer.pt'}") from None
    optimizer.load_state_dict(blob["optimizer"])
    set_rng_state(blob["rng"])
    return json.loads((last / "trainer_state.json").read_text())


@dataclass
class LoadedRun:
    run_dir: Path
    config: RunConfig
    vocab: Vocab
    model: TextVAE | DialogModel

    @property
    def is_dialog(self) -> bool:
        return isinstance(self.model, DialogModel)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", weights: str = "best") -> LoadedRun:
    """Read a run folder; ``weights`` = "best" (model.safetensors) or "last". A dialog run gives its
    :class:`~demvae.models.DialogModel` (its ``stage1/`` folder is a sentence run of its own)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder not found: {run_dir}")
    for name in (CONFIG, VOCAB):
        if not (run_dir / name).is_file():
            raise CheckpointError(f"{run_dir} is not a run folder: {name} is missing")
    cfg = from_dict(load_yaml(run_dir / CONFIG))
    try:
        vocab = Vocab.load(run_dir / VOCAB)
    except DemvaeError as exc:
        raise CheckpointError(str(exc)) from None
    model = build_for(cfg, vocab)
    load_model_weights(model, run_dir / MODEL if weights == "best" else run_dir / LAST / MODEL)
    return LoadedRun(run_dir, cfg, vocab, model.to(device).eval())
