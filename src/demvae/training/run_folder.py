"""A run folder: everything ``demvae eval/sample/encode DIR`` and ``train --resume DIR`` need.

```
run/
  config.yaml          the full, validated RunConfig
  vocab.json           the vocabulary built on the training split
  versions.json        python / torch / demvae versions and the device used
  model.safetensors    the best model on validation (what evaluation loads)
  metrics.jsonl        one JSON record per log step and per validation
  tensorboard/         the same records as TensorBoard event files (only with train.tensorboard: true)
  last/                the latest training state, for --resume:
    model.safetensors  optimizer.safetensors  trainer_state.json   (no pickles: :mod:`.state_file`)
  corpus.json          where the corpus was read from and the SHA-256 of its files
  code_stats.json      per code value, its train members' aggregate posterior (the ``aggregate``
                       generation procedure, :mod:`demvae.models.generation`); written after training,
                       or on first use for older runs, and recomputed when model.safetensors changes
  metrics-<split>.json ``demvae eval``'s results; like code_stats.json they record the SHA-256 of the
                       model.safetensors they measured, so that a resumed run's are known to be stale
  .lock                held (flock) by the one process that trains into the folder
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
  corpus.json  .lock   as above (stage 2's; stage1/ has its own)
  stages.json          wall time, final step and best step of each stage
```
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from demvae._version import __version__
from demvae.config import RunConfig, from_dict, load_yaml
from demvae.data.fingerprint import fingerprint, locate
from demvae.data.prepare import PreparedData, prepare
from demvae.data.vocab import Vocab
from demvae.device import rng_state, set_rng_state
from demvae.errors import CheckpointError, DemvaeError, DemvaeWarning, RunInUse
from demvae.io import atomic_write, new_folder, write_json, write_text
from demvae.models import DialogModel, TextVAE, build_for
from demvae.models.generation import DEFAULT, STATS_VERSION, CodeStats, code_stats, uses_stats
from demvae.training import state_file

CONFIG, VOCAB, VERSIONS, METRICS, MODEL, LAST, CORPUS, CODE_STATS = (
    "config.yaml", "vocab.json", "versions.json", "metrics.jsonl", "model.safetensors", "last", "corpus.json",
    "code_stats.json")
RUN_FILES = (CONFIG, VOCAB, VERSIONS, METRICS, MODEL, LAST, CORPUS, CODE_STATS)
OPTIMIZER, LEGACY_OPTIMIZER, TRAINER_STATE = "optimizer.safetensors", "optimizer.pt", "trainer_state.json"
"""Files of ``last/``: the optimizer's and RNGs' state (the pickle ``optimizer.pt`` of older runs is read
without running code), and the loop's :class:`~demvae.training.trainer.TrainState`."""
METRICS_FILES = "metrics-*.json"
"""``demvae eval``'s results, one file per split (derived from the model: they record its SHA-256)."""
STAGE1, STAGES = "stage1", "stages.json"
"""A dialog run's stage-1 folder and its per-stage timings (not in RUN_FILES: stage 2 starts by clearing the
dialog run's own files, never stage 1's)."""


class RunLock:
    """An exclusive ``flock`` on ``RUN/.lock``: one writer per run folder. The kernel drops it when
    the holder exits, even on SIGKILL, so a crashed run never leaves a stale lock behind."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask applies
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunInUse(f"{self.path.parent} is being trained by another process (pid {holder}); "
                           "wait for it, or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __del__(self):
        self.release()


def holds_run(run_dir: Path) -> bool:
    return any((Path(run_dir) / name).exists() for name in RUN_FILES)


def clear_run(run_dir: Path) -> None:
    """Delete a run's files (``train --force``), leaving anything else in the folder alone."""
    for name in RUN_FILES:
        path = Path(run_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    clean_leftovers(run_dir)


def claim(run_dir: Path, force: bool, nested: tuple[str, ...] = ()) -> None:
    """Make ``run_dir`` ready for a fresh run: refuse a folder that holds one (its files, or ``nested`` entries:
    a dialog run's ``stage1/`` and ``stages.json``) unless ``force``, which deletes them first."""
    run_dir = Path(run_dir)
    if not holds_run(run_dir) and not any((run_dir / name).exists() for name in nested):
        return
    if not force:
        raise CheckpointError(f"{run_dir} already holds a run; continue it with `demvae train --resume {run_dir}`, "
                              "train elsewhere (--out), or replace it with --force")
    clear_run(run_dir)
    for name in nested:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def write_start(run_dir: Path, cfg: RunConfig, vocab: Vocab, device: str, precision: str) -> None:
    """The files a fresh run starts with: ``config.yaml``, ``vocab.json``, ``versions.json``, ``corpus.json``."""
    write_text(run_dir / CONFIG, cfg.to_yaml())
    vocab.save(run_dir / VOCAB)
    write_json(run_dir / VERSIONS, versions(device, precision))
    write_json(run_dir / CORPUS, fingerprint(cfg.data))


def clean_leftovers(run_dir: Path) -> None:
    """Remove what an interrupted atomic write leaves: ``.last.*`` folders and ``.*.tmp`` files."""
    for path in Path(run_dir).glob(".*"):
        if path.is_dir() and path.name.startswith(f".{LAST}."):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop the records a killed run wrote after its last checkpoint (``step``): the resumed run
    writes them again, so the log reads as one uninterrupted run. A torn last line (the run was killed,
    or the disk filled up, while appending it) is dropped with a warning; a bad line elsewhere is an error."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return
    lines = [(n, line) for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if line.strip()]
    kept = []
    for n, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            if n != lines[-1][0]:
                raise CheckpointError(f"{path}:{n} is not a JSON record; delete that line, then resume again")
            warnings.warn(f"{path}:{n}: dropped a half-written last record (the run stopped while writing it)",
                          DemvaeWarning, stacklevel=2)
            continue
        if record.get("step", 0) <= step:
            kept.append(line)
    write_text(path, "".join(line + "\n" for line in kept))


def validation_record(run_dir: Path, step: int) -> dict[str, Any] | None:
    """The validation record that ``metrics.jsonl`` holds for ``step`` (None if there is none)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a torn last line
            continue
        if record.get("kind") == "valid" and record.get("step") == step:
            return record
    return None


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

    atomic_write(path, lambda tmp: state_file.save_tensors(state, tmp))


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


def versions(device: str, precision: str = "fp32") -> dict[str, str]:
    """``versions.json``: the software, the device and the precision (``bf16`` or ``fp32``) the run trained in
    (``train.amp: auto`` in its config is resolved here)."""
    return {
        "demvae": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device,
        "precision": precision,
        "cuda": str(torch.version.cuda),
    }


def save_training_state(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        state: dict[str, Any]) -> None:
    """Write ``last/`` atomically (build it beside, then swap folders)."""
    tmp = new_folder(run_dir, f".{LAST}.")
    try:
        save_model(model, tmp / MODEL)
        atomic_write(tmp / OPTIMIZER, lambda path: state_file.write(path, optimizer.state_dict(), rng_state()))
        write_json(tmp / TRAINER_STATE, state)
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
    """The trainer state of ``run_dir/last/`` (None before the first checkpoint); a
    :class:`CheckpointError` naming the file when it is not one this program wrote."""
    path = run_dir / LAST / TRAINER_STATE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("step"), int) or "done" not in state:
            raise ValueError("no step or done field")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not a trainer state this program wrote ({exc}); resume from another copy "
                              f"of the run, or start it again: demvae train --force --out {run_dir}") from None
    return state


def has_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a resumable checkpoint: ``last/``, or the previous one that a swap interrupted
    between its two renames left as ``.last.old`` (:func:`load_training_state` puts it back)."""
    return any((Path(run_dir) / name).is_dir() for name in (LAST, f".{LAST}.old"))


def finished(state: dict[str, Any] | None, max_steps: int) -> bool:
    """Whether a trainer state has ended its training: the step budget reached, or stopped early."""
    return state is not None and (state["done"] or state["step"] >= max_steps)


def load_training_state(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load ``last/`` into ``model`` and ``optimizer``, restore the RNGs, and return the trainer state. Nothing
    in the folder is unpickled into code (:mod:`.state_file`)."""
    last = run_dir / LAST
    if not last.is_dir() and (run_dir / f".{LAST}.old").is_dir():  # interrupted between the two renames
        os.replace(run_dir / f".{LAST}.old", last)
    state = last_state(run_dir)
    if state is None:
        raise CheckpointError(f"no resumable checkpoint in {run_dir} (expected {last / TRAINER_STATE})")
    load_model_weights(model, last / MODEL)
    if (last / OPTIMIZER).is_file():
        optimizer_state, rng = state_file.read(last / OPTIMIZER)
    elif (last / LEGACY_OPTIMIZER).is_file():
        optimizer_state, rng = state_file.read_legacy(last / LEGACY_OPTIMIZER)
    else:
        raise CheckpointError(f"missing {last / OPTIMIZER}; start the run again: demvae train --force --out {run_dir}")
    try:
        optimizer.load_state_dict(optimizer_state)
        set_rng_state(rng)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # another model's optimizer, a foreign RNG state
        raise CheckpointError(f"{last / OPTIMIZER} does not match this run's model ({exc}); start the run again: "
                              f"demvae train --force --out {run_dir}") from None
    return state


def read_corpus_record(run_dir: Path) -> dict[str, Any] | None:
    """What ``corpus.json`` recorded at training (None for runs made before it existed)."""
    path = Path(run_dir) / CORPUS
    return json.loads(path.read_text()) if path.is_file() else None


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


def run_data(run: LoadedRun, corpus: str | None = None, data_dir: str | None = None, force: bool = False,
             max_examples: dict[str, int] | None = None) -> PreparedData:
    """The run's corpus encoded with its vocabulary: found where ``corpus.json`` recorded it (or at
    ``corpus``/``data_dir``), refused if its files changed since training unless ``force`` (then a
    warning). ``max_examples`` replaces the run's limits (``{}``: every example of every split). A
    dialog run's splits are dialog splits (responses and contexts)."""
    cfg, notes = locate(run.config.data, read_corpus_record(run.run_dir), corpus, data_dir, force)
    for note in notes:
        warnings.warn(note, DemvaeWarning, stacklevel=2)
    if max_examples is not None:
        cfg.max_examples = dict(max_examples)
    return prepare(cfg, run.vocab, run.config.dialog)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_sha256(run_dir: Path) -> str | None:
    """The SHA-256 of the run's ``model.safetensors`` (None before its first validation): what a file derived from
    the model records (``code_stats.json``, ``metrics-<split>.json``), so that a resumed run's new model is not
    shown beside numbers of the old one."""
    path = Path(run_dir) / MODEL
    return _digest(path) if path.is_file() else None


def measured(record: dict[str, Any], run_dir: Path) -> bool | None:
    """Whether a derived file's ``record`` describes the run's current model (None: it does not say which
    model it describes, as files written by demvae 0.1 before this record)."""
    if not record.get("model_sha256"):
        return None
    return record["model_sha256"] == model_sha256(run_dir)


def mark_derived(run_dir: Path) -> None:
    """Before a resumed run replaces ``model.safetensors``: stamp each ``metrics-*.json`` that does not say which
    model it measured with the current model's SHA-256, so that it reads as stale once the model changes."""
    unmarked = {}
    for path in sorted(Path(run_dir).glob(METRICS_FILES)):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # unreadable: whoever reads it says so
        if isinstance(record, dict) and not record.get("model_sha256"):
            unmarked[path] = record
    digest = model_sha256(run_dir) if unmarked else None
    for path, record in unmarked.items():
        if digest is not None:
            write_json(path, {**record, "model_sha256": digest})


def load_code_stats(run: LoadedRun, data: PreparedData | None = None, corpus: str | None = None,
                    data_dir: str | None = None, force: bool = False) -> CodeStats | None:
    """The codes' aggregate posterior statistics of a sentence run (None: no mixture code): read from
    ``code_stats.json`` if it was computed for the current ``model.safetensors``, else computed on the run's
    train split (``data``: its prepared corpus, with the run's own ``max_examples``; else located as
    :func:`run_data` does) and written there (atomic; skipped in a read-only folder)."""
    if run.is_dialog or not uses_stats(run.model, DEFAULT):
        return None
    path = run.run_dir / CODE_STATS
    digest = model_sha256(run.run_dir)
    if path.is_file():
        record = json.loads(path.read_text())
        if digest is not None and record.get("model_sha256") == digest and record.get("version") == STATS_VERSION:
            return CodeStats.from_dict(record)
    if data is None:
        data = run_data(run, corpus, data_dir, force)
    stats = code_stats(run.model, data.splits["train"])
    if stats is not None and digest is not None and os.access(run.run_dir, os.W_OK):
        write_json(path, {"version": STATS_VERSION, "model_sha256": digest, "split": "train",
                          "n_examples": len(data.splits["train"]), **stats.to_dict()})
    return stats
