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
from typing import Any, ClassVar, cast

import torch
from safetensors.torch import load_file

from demvae._version import __version__
from demvae.config import RunConfig, from_dict, load_yaml
from demvae.data.fingerprint import fingerprint, locate
from demvae.data.prepare import PreparedData, prepare
from demvae.data.vocab import Vocab
from demvae.device import rng_state, set_rng_state
from demvae.errors import CheckpointError, ConfigError, DemvaeError, DemvaeWarning, RunInUse
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


class RunFolder:
    """A sentence run's folder, and the files one :class:`~demvae.training.trainer.Trainer` writes (stage 2 of a
    dialog run: the dialog run's own); :class:`DialogRun` is the other kind of run. What differs between the kinds
    is a method of the kind, never a switch of its callers."""

    kind: ClassVar[str] = "sentence"
    """The kind's name, by which a layer above keys what it does differently (its trainer, its metric groups)."""
    name: ClassVar[str] = "a sentence model"  # what the folder holds, as a message says it
    nested: ClassVar[tuple[str, ...]] = ()  # the run's entries beside RUN_FILES (a fresh run clears them too)

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config, self.vocab, self.versions, self.metrics_log, self.best, self.last, self.corpus = (
            self.path / name for name in (CONFIG, VOCAB, VERSIONS, METRICS, MODEL, LAST, CORPUS))
        """The files of the module's docstring (``best``: ``model.safetensors``, ``last``: the ``last/`` folder)."""
        self.code_stats: Path | None = self.path / CODE_STATS  # None: the kind generates no sentence from a code

    def metrics_file(self, split: str) -> Path:
        """``demvae eval``'s results on ``split``."""
        return self.path / METRICS_FILES.replace("*", split)

    @staticmethod
    def kind_for(cfg: RunConfig) -> type[RunFolder]:
        """The kind of run ``cfg`` trains (the one place that reads ``dialog.enabled`` for it)."""
        return DialogRun if cfg.dialog.enabled else RunFolder

    @staticmethod
    def open(path: str | Path) -> RunFolder:
        """The run in ``path``, as its kind (a :class:`CheckpointError` when it is not a run folder)."""
        return RunFolder.kind_for(RunFolder(path).read_config())(path)

    def is_run(self) -> bool:
        return self.config.is_file() and self.vocab.is_file()

    def read_config(self) -> RunConfig:
        """The run's config; a :class:`CheckpointError` when the folder is missing or is not a run's."""
        if not self.path.is_dir():
            raise CheckpointError(f"run folder not found: {self.path}")
        if not self.config.is_file():
            raise CheckpointError(f"{self.path} is not a run folder: {CONFIG} is missing")
        return from_dict(load_yaml(self.config))

    # --- what differs between the kinds ---
    @classmethod
    def budgets(cls, cfg: RunConfig) -> list[tuple[str, int]]:
        """Each stage's step budget: (its setting, its value); the last one bounds ``last/``."""
        return [("train.max_steps", cfg.train.max_steps)]

    def resumable(self) -> bool:
        """Whether the folder holds a resumable checkpoint: ``last/``, or the previous one that a swap interrupted
        between its two renames left as ``.last.old`` (:meth:`load_training_state` puts it back)."""
        return any((self.path / name).is_dir() for name in (LAST, f".{LAST}.old"))

    elsewhere = "a dialog run is trained from a config with dialog.enabled (e.g. smd/dgm-vae-mi)"
    """Where a model of the other kind is (for messages)."""

    def stage_times(self) -> dict[str, dict[str, Any]]:
        """Wall time, final step and best step of each stage (none recorded for a run of one stage)."""
        return {}

    def train_seconds(self) -> float:
        """The training's wall time: the sum of its logged windows' (0 for a run trained before the trainer logged
        it)."""
        return sum(r.get("seconds", 0.0) for r in self.records("train"))

    # --- questions every kind answers alike ---
    def expect(self, kind: str, job: str) -> None:
        """Refuse a run of another kind for ``job`` (who needs which kind, e.g. "`demvae respond` needs a dialog
        run"), saying where a model of the other kind is."""
        if kind != self.kind:
            raise ConfigError(f"{self.path} holds {self.name}: {job}; {self.elsewhere}")

    def finished(self, cfg: RunConfig) -> bool:
        """Whether ``last/`` has ended its training: the step budget reached, or stopped early."""
        state = self.last_state()
        return state is not None and (state["done"] or state["step"] >= self.budgets(cfg)[-1][1])

    def last_state(self) -> dict[str, Any] | None:
        """The trainer state of ``last/`` (None before the first checkpoint); a :class:`CheckpointError` naming
        the file when it is not one this program wrote."""
        path = self.last / TRAINER_STATE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(state, dict) or not isinstance(state.get("step"), int) or "done" not in state:
                raise ValueError("no step or done field")
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path} is not a trainer state this program wrote ({exc}); resume from another copy "
                                  f"of the run, or start it again: demvae train --force --out {self.path}") from None
        return state

    def holds_run(self) -> bool:
        return any((self.path / name).exists() for name in RUN_FILES)

    def corpus_record(self) -> dict[str, Any] | None:
        """What ``corpus.json`` recorded at training (None for runs made before it existed)."""
        return json.loads(self.corpus.read_text()) if self.corpus.is_file() else None

    def model_sha256(self) -> str | None:
        """The SHA-256 of ``model.safetensors`` (None before its first validation): what a file derived from the
        model records (``code_stats.json``, ``metrics-<split>.json``), so that a resumed run's new model is not
        shown beside numbers of the old one."""
        return hashlib.sha256(self.best.read_bytes()).hexdigest() if self.best.is_file() else None

    def measured(self, record: dict[str, Any]) -> bool | None:
        """Whether a derived file's ``record`` describes the run's current model (None: it does not say which
        model it describes, as files written by demvae 0.1 before this record)."""
        if not record.get("model_sha256"):
            return None
        return record["model_sha256"] == self.model_sha256()

    # --- what a trainer writes ---
    def lock(self) -> RunLock:
        return RunLock(self.path)

    def claim(self, force: bool) -> None:
        """Make the folder ready for a fresh run: refuse one that holds a run (its files, or its kind's
        :attr:`nested` entries) unless ``force``, which deletes them first, leaving anything else alone."""
        entries = [self.path / name for name in (*RUN_FILES, *self.nested)]
        if not any(path.exists() for path in entries):
            return
        if not force:
            raise CheckpointError(f"{self.path} already holds a run; continue it with `demvae train --resume "
                                  f"{self.path}`, train elsewhere (--out), or replace it with --force")
        for path in entries:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        self.clean_leftovers()

    def write_start(self, cfg: RunConfig, vocab: Vocab, device: str, precision: str) -> None:
        """The files a fresh run starts with: ``config.yaml``, ``vocab.json``, ``versions.json``, ``corpus.json``."""
        self.write_config(cfg)
        vocab.save(self.vocab)
        write_json(self.versions, versions(device, precision))
        write_json(self.corpus, fingerprint(cfg.data))

    def write_config(self, cfg: RunConfig) -> None:
        write_text(self.config, cfg.to_yaml())

    def clean_leftovers(self) -> None:
        """Remove what an interrupted atomic write leaves: ``.last.*`` folders and ``.*.tmp`` files."""
        for path in self.path.glob(".*"):
            if path.is_dir() and path.name.startswith(f".{LAST}."):
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_file() and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)

    def truncate_metrics(self, step: int) -> None:
        """Drop the records a killed run wrote after its last checkpoint (``step``): the resumed run writes them
        again, so the log reads as one uninterrupted run. A torn last line (the run was killed, or the disk filled
        up, while appending it) is dropped with a warning; a bad line elsewhere is an error."""
        path = self.metrics_log
        if not path.is_file():
            return
        lines = [(n, line) for n, line in
                 enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1) if line.strip()]
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

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` in order (of one ``kind``: train / valid); none without the file."""
        if not self.metrics_log.is_file():
            return []
        out = []
        for line in self.metrics_log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # a torn last line (or a blank one)
                continue
            if kind is None or record.get("kind") == kind:
                out.append(record)
        return out

    def validation_record(self, step: int) -> dict[str, Any] | None:
        """The validation record that ``metrics.jsonl`` holds for ``step`` (None if there is none)."""
        return next((r for r in self.records("valid") if r.get("step") == step), None)

    def save_training_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                            state: dict[str, Any]) -> None:
        """Write ``last/`` atomically (build it beside, then swap folders)."""
        tmp = new_folder(self.path, f".{LAST}.")
        try:
            save_model(model, tmp / MODEL)
            atomic_write(tmp / OPTIMIZER, lambda path: state_file.write(path, optimizer.state_dict(), rng_state()))
            write_json(tmp / TRAINER_STATE, state)
            old = self.path / f".{LAST}.old"
            if self.last.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(self.last, old)
            os.replace(tmp, self.last)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def load_training_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Load ``last/`` into ``model`` and ``optimizer``, restore the RNGs, and return the trainer state.
        Nothing in the folder is unpickled into code (:mod:`.state_file`)."""
        last, old = self.last, self.path / f".{LAST}.old"
        if not last.is_dir() and old.is_dir():  # interrupted between the two renames
            os.replace(old, last)
        state = self.last_state()
        if state is None:
            raise CheckpointError(f"no resumable checkpoint in {self.path} (expected {last / TRAINER_STATE})")
        load_model_weights(model, last / MODEL)
        if (last / OPTIMIZER).is_file():
            optimizer_state, rng = state_file.read(last / OPTIMIZER)
        elif (last / LEGACY_OPTIMIZER).is_file():
            optimizer_state, rng = state_file.read_legacy(last / LEGACY_OPTIMIZER)
        else:
            raise CheckpointError(f"missing {last / OPTIMIZER}; start the run again: demvae train --force --out "
                                  f"{self.path}")
        try:
            optimizer.load_state_dict(optimizer_state)
            set_rng_state(rng)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # another model's optimizer, a foreign RNG
            raise CheckpointError(f"{last / OPTIMIZER} does not match this run's model ({exc}); start the run "
                                  f"again: demvae train --force --out {self.path}") from None
        return state

    def mark_derived(self) -> None:
        """Before a resumed run replaces ``model.safetensors``: stamp each ``metrics-*.json`` that does not say
        which model it measured with the current model's SHA-256, so that it reads as stale once the model
        changes."""
        unmarked = {}
        for path in sorted(self.path.glob(METRICS_FILES)):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # unreadable: whoever reads it says so
            if isinstance(record, dict) and not record.get("model_sha256"):
                unmarked[path] = record
        digest = self.model_sha256() if unmarked else None
        for path, record in unmarked.items():
            if digest is not None:
                write_json(path, {**record, "model_sha256": digest})


class DialogRun(RunFolder):
    """A dialog run's folder (:mod:`demvae.training.dialog`): stage 1 a sentence run of its own in ``stage1/``,
    stage 2's files the run's own (``last/`` is stage 2's), ``stages.json`` the time of each stage."""

    kind = "dialog"
    name = "a dialog run"
    nested = (STAGE1, STAGES)

    def __init__(self, path: str | Path):
        super().__init__(path)
        self.stage1 = RunFolder(self.path / STAGE1)
        self.stage2 = RunFolder(self.path)  # stage 2's files (the run's own) as its trainer's: its checkpoint alone
        self.stages = self.path / STAGES
        self.elsewhere = f"its stage 1 ({self.stage1.path}) holds the sentence model"
        self.code_stats = None  # the dialog model responds to a context: it generates no sentence from a code

    @classmethod
    def budgets(cls, cfg: RunConfig) -> list[tuple[str, int]]:
        return [*super().budgets(cfg), ("dialog.max_steps", cfg.dialog.max_steps)]

    def resumable(self) -> bool:  # a checkpoint of either stage
        return self.stage1.resumable() or self.stage2.resumable()

    def stage_times(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.stages.read_text()) if self.stages.is_file() else {}

    def train_seconds(self) -> float:  # both stages
        return sum(info["seconds"] for info in self.stage_times().values())


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


@dataclass
class LoadedRun:
    folder: RunFolder
    """The run's folder, as its kind."""
    config: RunConfig
    vocab: Vocab
    model: TextVAE | DialogModel

    def sentence_model(self, job: str = "this reads a sentence model") -> TextVAE:
        """The model of a sentence run; for a dialog run a :class:`ConfigError` that says ``job`` and where its
        sentence model is (``stage1/``)."""
        self.folder.expect("sentence", job)
        return cast(TextVAE, self.model)  # a sentence run's folder holds a TextVAE (build_for)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", weights: str = "best") -> LoadedRun:
    """Read a run folder; ``weights`` = "best" (model.safetensors) or "last". A dialog run gives its
    :class:`~demvae.models.DialogModel` (its ``stage1/`` folder is a sentence run of its own)."""
    folder = RunFolder.open(run_dir)
    if not folder.vocab.is_file():
        raise CheckpointError(f"{folder.path} is not a run folder: {VOCAB} is missing")
    cfg = folder.read_config()
    try:
        vocab = Vocab.load(folder.vocab)
    except DemvaeError as exc:
        raise CheckpointError(str(exc)) from None
    model = build_for(cfg, vocab)
    load_model_weights(model, folder.best if weights == "best" else folder.last / MODEL)
    return LoadedRun(folder, cfg, vocab, model.to(device).eval())


def run_data(run: LoadedRun, corpus: str | None = None, data_dir: str | None = None, force: bool = False,
             max_examples: dict[str, int] | None = None) -> PreparedData:
    """The run's corpus encoded with its vocabulary: found where ``corpus.json`` recorded it (or at
    ``corpus``/``data_dir``), refused if its files changed since training unless ``force`` (then a
    warning). ``max_examples`` replaces the run's limits (``{}``: every example of every split). A
    dialog run's splits are dialog splits (responses and contexts)."""
    cfg, notes = locate(run.config.data, run.folder.corpus_record(), corpus, data_dir, force)
    for note in notes:
        warnings.warn(note, DemvaeWarning, stacklevel=2)
    if max_examples is not None:
        cfg.max_examples = dict(max_examples)
    return prepare(cfg, run.vocab, run.config.dialog)


def load_code_stats(run: LoadedRun, data: PreparedData | None = None, corpus: str | None = None,
                    data_dir: str | None = None, force: bool = False) -> CodeStats | None:
    """The codes' aggregate posterior statistics of a sentence run (None: no mixture code, or a dialog run): read
    from ``code_stats.json`` if it was computed for the current ``model.safetensors``, else computed on the run's
    train split (``data``: its prepared corpus, with the run's own ``max_examples``; else located as
    :func:`run_data` does) and written there (atomic; skipped in a read-only folder)."""
    path = run.folder.code_stats
    if path is None or not uses_stats(run.model, DEFAULT):
        return None
    model = run.sentence_model()  # (a kind that keeps the statistics holds a sentence model)
    digest = run.folder.model_sha256()
    if path.is_file():
        record = json.loads(path.read_text())
        if digest is not None and record.get("model_sha256") == digest and record.get("version") == STATS_VERSION:
            return CodeStats.from_dict(record)
    if data is None:
        data = run_data(run, corpus, data_dir, force)
    stats = code_stats(model, data.splits["train"])
    if stats is not None and digest is not None and os.access(run.folder.path, os.W_OK):
        write_json(path, {"version": STATS_VERSION, "model_sha256": digest, "split": "train",
                          "n_examples": len(data.splits["train"]), **stats.to_dict()})
    return stats
