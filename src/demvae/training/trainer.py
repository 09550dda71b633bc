"""The training loop shared by every model.

Adam, gradient clipping, logistic KL annealing, S posterior samples per sentence, validation every
``eval_every`` steps with model selection, learning-rate decay and patience-based early stopping as
the original code (reference §4), optional aggressive encoder updates (He et al. 2019), bf16
autocast, a resumable run folder. Loss terms are accumulated on the device and read back only every
``log_every`` steps (no per-step host synchronisation).

One step, in order (``fit`` → ``train_step``): anneal weight w(step) → model(batch) → Terms →
``objective`` → backward → clip → Adam.

Extension points (the dialog model's stage 2, :mod:`demvae.training.dialog`, overrides them; the loop,
:class:`TrainState`, checkpoints, learning-rate decay and patience stay this class's):

* :meth:`build_model` the model to train (frozen parameters, ``requires_grad=False``, stay out of Adam);
* :meth:`anneal_weight` the annealing weight w(step) handed to the loss;
* :meth:`compute_loss` a batch's scalar loss and the values the log records;
* :meth:`validation_stats` the statistics of one validation, of which ``select_metric`` is minimised;
* ``max_steps`` the step at which training ends, ``progress_keys`` the values the progress bar shows.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from demvae import distributed
from demvae.config import RunConfig
from demvae.data.batching import BucketBatchSampler
from demvae.data.prepare import PreparedData, prepare
from demvae.data.types import Batch
from demvae.data.vocab import Vocab
from demvae.device import autocast, resolve_device, resolve_precision, seed_everything
from demvae.errors import ConfigError, DemvaeWarning, Interrupted, TrainingError
from demvae.metrics import title
from demvae.models import TextVAE, build_for
from demvae.objectives import kl_anneal_weight, objective
from demvae.terms import Terms
from demvae.training import run_folder as rf
from demvae.training.aggressive import AggressiveSchedule, AggressiveState
from demvae.training.tensorboard import TensorBoardLogger
from demvae.training.validation import PosteriorStats, ValidationStats, collapse_warning, posterior_stats

SELECTION = {"elbo": "neg_elbo", "loss": "loss", "rec": "rec"}
"""train.select_metric -> the validation statistic it minimises."""


@dataclass
class TrainState:
    """Everything the loop needs to resume where it stopped (saved as ``last/trainer_state.json``)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best: float = math.inf
    best_step: int = -1
    validations: int = 0
    patience: float = 10
    patience_best: float = math.inf
    history: list[float] = field(default_factory=list)
    lr: float = 1e-3
    done: bool = False
    aggressive: AggressiveState | None = None
    meter: dict[str, Any] = field(default_factory=dict)
    """The training log's running sums since its last record (so a resumed log matches an uninterrupted one)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainState:
        d = dict(d)
        if "aggressive_mi" in d:  # written before TrainState existed
            active, best_mi = d.pop("aggressive"), d.pop("aggressive_mi")
            d["aggressive"] = {"active": active, "best_mi": best_mi}
        aggressive = d.pop("aggressive", None)
        return cls(**d, aggressive=AggressiveState(**aggressive) if aggressive else None)


class Trainer:
    progress_keys: tuple[str, ...] = ("loss", "rec", "kl_c", "kl_z_avg", "dispersion")
    """Logged values shown on the progress bar."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, data: PreparedData | None = None,
                 resume: bool = False, force: bool = False):
        """``resume`` continues the run in ``run_dir``; a fresh run refuses a folder that holds one
        unless ``force`` (which deletes that run's files). The folder is locked against a second
        writer from here until :meth:`fit` returns (or :meth:`close`)."""
        self.cfg = cfg
        self.folder = rf.RunFolder(run_dir)
        tc = cfg.train
        self.max_steps = tc.max_steps
        self.select_metric = SELECTION[tc.select_metric]
        """The validation statistic that model selection, decay and patience minimise."""
        self.device = resolve_device(tc.device)
        self.world = distributed.init(self.device.type)
        if self.world.size > 1:
            if tc.batch_size % self.world.size:
                raise ConfigError(f"train.batch_size {tc.batch_size} (the global batch) does not divide over "
                                  f"{self.world.size} ranks; use a multiple of {self.world.size}")
            if self.device.type == "cuda":
                self.device = torch.device("cuda", self.world.local_rank)
                torch.cuda.set_device(self.device)
        if tc.threads:
            torch.set_num_threads(tc.threads)
        bf16 = distributed.on_every_rank(resolve_precision(tc.amp, self.device) == "bf16", self.world, self.device)
        self.precision = "bf16" if bf16 else "fp32"
        """``bf16`` (autocast, float32 latent terms) or ``fp32``: what ``train.amp`` means on this device
        (timed on the threads it trains with)."""
        seed_everything(tc.seed)
        if data is None:
            vocab = Vocab.load(self.folder.vocab) if resume else None
            data = prepare(cfg.data, vocab, cfg.dialog)
        self.data = data
        self.vocab = data.vocab
        missing = sorted(set(cfg.model.supervise) - set(data.corpus.label_names))
        if missing:
            raise ConfigError(
                f"model.supervise names label(s) {', '.join(missing)} that corpus {cfg.data.corpus!r} lacks "
                f"(its labels: {', '.join(sorted(data.corpus.label_names)) or 'none'})"
            )
        self.model = self.build_model().to(self.device)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=tc.lr)
        self.sampler = BucketBatchSampler(data.splits["train"].lengths, tc.batch_size, shuffle=True, seed=tc.seed)
        if len(self.sampler) == 0:
            raise TrainingError("the training split is empty")
        self.aggressive = AggressiveSchedule(tc, cast(TextVAE, self.model)) if tc.aggressive else None
        self.state = TrainState(patience=tc.patience, lr=tc.lr,
                                aggressive=AggressiveState() if tc.aggressive else None)
        self.meter = _Meter(self.world)
        self._lock = self.folder.lock()
        if self.world.main:  # rank 0 alone writes the run folder
            self._lock.acquire()  # nothing in the folder was touched before this
        try:
            self._open_run_dir(resume, force)
        except BaseException:
            self.close()
            raise
        # data parallel: DDP averages the ranks' gradients (after the run folder's weights are loaded)
        self.ddp = self.model if self.world.size == 1 else DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _open_run_dir(self, resume: bool, force: bool) -> None:
        cfg = self.cfg
        if resume:
            self.state = TrainState.from_dict(self.folder.load_training_state(self.model, self.optimizer))
            self.state.done = False
            if cfg.train.aggressive and self.state.aggressive is None:  # resumed with train.aggressive switched on:
                self.state.aggressive = AggressiveState()  # its phase starts here (and ends at aggressive_max_steps)
            self.meter.load(self.state.meter)
            if self.world.main:
                self.folder.clean_leftovers()
                self.folder.truncate_metrics(self.state.step)
                self.folder.mark_derived()  # before training replaces model.safetensors
                self.folder.write_config(cfg)  # train.* may have changed
        elif self.world.main:
            self.folder.claim(force)
            self.folder.write_start(cfg, self.vocab, str(self.device), self.precision)
        # optional TensorBoard logging (train.tensorboard): the same records as metrics.jsonl
        self.tensorboard = TensorBoardLogger(self.folder.path) if cfg.train.tensorboard and self.world.main else None

    def close(self) -> None:
        """Release the run folder's lock (and close the TensorBoard writer)."""
        self._lock.release()
        tensorboard = getattr(self, "tensorboard", None)
        if tensorboard is not None:
            tensorboard.close()
            self.tensorboard = None

    # --- run folder ---
    def _log(self, record: dict[str, Any]) -> None:
        if not self.world.main:
            return
        with open(self.folder.metrics_log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            self.tensorboard.log(record)

    def _last_good(self) -> str:
        if self.folder.last.is_dir():
            return f"the last good checkpoint is in {self.folder.last}"
        return "no checkpoint was written yet"

    def _save(self) -> None:
        self.state.meter = self.meter.state()
        if self.world.main:
            self.folder.save_training_state(self.model, self.optimizer, asdict(self.state))

    # --- what a subclass may change ---
    def build_model(self) -> torch.nn.Module:
        """The model of ``cfg`` for the vocabulary (called once, after seeding)."""
        return build_for(self.cfg, self.vocab)

    def anneal_weight(self, step: int) -> float:
        """The KL annealing weight w(step) of the objective (paper §4.1)."""
        obj = self.cfg.objective
        return kl_anneal_weight(step, obj.anneal, obj.anneal_k, obj.anneal_x0)

    def compute_loss(self, batch: Batch, weight: float) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss to minimise on ``batch`` (this rank's shard of the global batch) at annealing weight
        ``weight``, and the batch's values to log (scalar tensors; averaged over the steps between two
        log records). Runs inside :func:`demvae.distributed.global_batch` and autocast."""
        noise = distributed.Noise(self.world, batch.global_size or batch.size)  # this rank's rows of the global draw
        terms = self.ddp(batch, self.cfg.train.n_samples, noise)  # the latent blocks run in float32 inside
        loss = objective(terms, self.cfg.objective, weight, distributed.example_scale(batch.size))
        return loss, _term_means(terms)

    def validation_stats(self) -> ValidationStats:
        """The statistics of one validation (posterior statistics of the validation split)."""
        return posterior_stats(cast(TextVAE, self.model), self.data.splits["valid"], self.cfg.objective,
                               self.cfg.train.eval_batch_size)

    # --- batches ---
    def _batches(self):
        """Endless training batches, resumable at (epoch, batch_in_epoch); with N ranks, this rank's
        shard of each global batch (a final batch smaller than N is skipped)."""
        st, split = self.state, self.data.splits["train"]
        while True:
            for indices in self.sampler.batches(st.epoch)[st.batch_in_epoch:]:
                st.batch_in_epoch += 1
                if len(indices) < self.world.size:
                    continue
                batch = split.batch(distributed.shard(indices, self.world) if self.world.size > 1 else indices)
                batch.global_size = len(indices)
                yield batch.to(self.device)
            st.epoch += 1
            st.batch_in_epoch = 0

    # --- one update ---
    def train_step(self, batch: Batch, weight: float,
                   frozen: Sequence[torch.nn.Parameter] = ()) -> tuple[Tensor, dict[str, Tensor]]:
        """One Adam update on ``batch`` with annealing weight ``weight``; ``frozen`` parameters keep
        their values and their Adam moments. Returns the (detached) loss and logged values."""
        rows = batch.global_size or batch.size
        with distributed.global_batch(self.world, rows), autocast(self.device, self.precision == "bf16"):
            loss, values = self.compute_loss(batch, weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for p in frozen:  # None, not zero: Adam skips a parameter without a gradient (its moments do not drift)
            p.grad = None
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.optimizer.step()
        # autocast keeps the bf16 copies of the weights it cast until the outermost autocast region ends; inside an
        # enclosing one (an evaluation training its rPPL language model) they would outlive this update, and every
        # later step would compute with the first step's weights (measured: the LM diverged, rPPL 10^15 for 200)
        torch.clear_autocast_cache()
        return loss.detach(), {k: v.detach() for k, v in values.items()}

    # --- validation and stopping (the original's schedule) ---
    def validate(self) -> ValidationStats:
        """Posterior statistics on the validation split, in the training's precision. Its own fixed seed
        (the same noise at every validation) and a forked RNG, so validating never changes the training
        stream."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), autocast(self.device, self.precision == "bf16"):
            torch.manual_seed(self.cfg.train.seed + 1)
            return self.validation_stats()

    def _after_validation(self, stats: ValidationStats) -> None:
        tc, st = self.cfg.train, self.state
        metric = self.select_metric
        value = stats.value(metric)
        if not math.isfinite(value):
            raise TrainingError(
                f"validation {metric} is {value} at step {st.step}; {self._last_good()} (try a lower train.lr)"
            )
        st.validations += 1
        st.history.append(value)
        since_best = len(st.history) - 1 - st.history.index(st.best) if st.best in st.history else 0
        if value < st.best:
            st.best, st.best_step = value, st.step
            if self.world.main:
                rf.save_model(self.model, self.folder.best)
        elif value > st.best and since_best >= tc.lr_hold - 1:
            # the original's rule: decay from the (lr_hold−1)-th validation in a row without a new
            # best, and at every validation after it; the best model is not reloaded
            st.lr *= tc.lr_decay
            for group in self.optimizer.param_groups:
                group["lr"] = st.lr
        if value < tc.improve_threshold * st.patience_best:  # a real improvement extends patience
            st.patience = max(st.patience, st.validations * tc.patience_increase)
            st.patience_best = value
        if st.validations >= st.patience or st.lr <= tc.min_lr:
            st.done = True
        if self.aggressive and isinstance(stats, PosteriorStats):
            assert st.aggressive is not None  # the state has one with train.aggressive
            if st.aggressive.active:
                self.aggressive.after_validation(st.aggressive, stats.mutual_info or 0.0, st.step)
        record = stats.record()
        self._log({"kind": "valid", "step": st.step, "metric": metric, "lr": st.lr, **record})
        if tc.progress and self.world.main:
            shown = "  ".join(f"{title(key)} {record[key]:.3f}" for key in ("kl_c", "mutual_info", "param_var")
                              if key in record)
            tqdm.write(f"step {st.step}: valid {metric} {value:.3f} (best {st.best:.3f} at step {st.best_step})  "
                       f"{shown}  lr {st.lr:.2g}")

    # --- the loop ---
    def fit(self, until_step: int | None = None, interruptible: bool = True,
            keep_lock: bool = False) -> dict[str, Any]:
        """Train to ``max_steps`` or early stopping. With ``until_step`` stop after that step as an
        interruption would (resumable checkpoint, no extra validation): training in slices gives
        the same result as one uninterrupted run. Ctrl-C finishes the current step, saves a
        resumable checkpoint and raises :class:`~demvae.errors.Interrupted` (a second Ctrl-C stops
        at once); a killed run resumes from its last checkpoint, written at every validation.
        ``interruptible=False`` (a throwaway run, e.g. evaluation's language model): Ctrl-C stops at once.
        ``keep_lock``: the caller still writes into the folder and calls :meth:`close` itself."""
        tc, st = self.cfg.train, self.state
        if tc.progress and self.world.main:  # the log's first line: what this run computes in
            tqdm.write(f"{self.cfg.model_name}: training on {self.device} in {self.precision} (train.amp: "
                       f"{str(tc.amp).lower()}), step {st.step} of at most {self.max_steps}")
        batches = self._batches()
        bar = tqdm(total=self.max_steps, initial=st.step, disable=not (tc.progress and self.world.main),
                   dynamic_ncols=True, desc=self.cfg.model_name)
        self.model.train()
        try:
            with _stop_on_sigint() if interruptible else contextlib.nullcontext(threading.Event()) as stop:
                while st.step < self.max_steps and not st.done and st.step != until_step:
                    weight = self.anneal_weight(st.step)
                    frozen: list[torch.nn.Parameter] = []
                    if self.aggressive:
                        assert st.aggressive is not None  # the state has one with train.aggressive
                        if st.aggressive.active:
                            def inner_step(b: Batch, f: list[torch.nn.Parameter], w: float = weight) -> Tensor:
                                return self.train_step(b, w, f)[0]  # a def: mypy cannot type a lambda with a default

                            self.aggressive.encoder_phase(inner_step, batches)
                            frozen = self.aggressive.inference  # then one generative-side step
                    batch = next(batches)
                    loss, values = self.train_step(batch, weight, frozen)
                    st.step += 1
                    self.meter.add(loss, values, batch)
                    bar.update(1)
                    if st.step % tc.log_every == 0 or st.step == self.max_steps:
                        self._log_train(self.meter.read(), weight, bar)
                    if st.step % tc.eval_every == 0 or st.step == self.max_steps:
                        self._after_validation(self.validate())
                        self.model.train()
                        self._save()
                    elif st.step == until_step or stop.is_set():
                        self._save()
                    if stop.is_set():
                        raise Interrupted(self.folder.path, st.step)
        finally:
            bar.close()
            if not keep_lock:
                self.close()
        if (st.done or st.step >= self.max_steps) and self.world.main:
            self._report_selection()
        return {"best": st.best, "best_step": st.best_step, "step": st.step, "done": st.done}

    def _report_selection(self) -> None:
        """The collapse guard: print the selected checkpoint's codes used and MI, and warn when they collapsed
        (what a second stage or a table would otherwise build on silently)."""
        record = self.folder.validation_record(self.state.best_step)
        if record is None or "mutual_info" not in record:
            return
        print(f"selected checkpoint: step {self.state.best_step}, {record.get('codes_used', '?')} joint codes used "
              f"on the validation split, MI {record['mutual_info']:.3f} nats per variable", file=sys.stderr)
        warning = collapse_warning(record["mutual_info"], record.get("codes_used"), self.state.best_step)
        if warning:
            warnings.warn(warning, DemvaeWarning, stacklevel=2)

    def _log_train(self, record: dict[str, float], weight: float, bar) -> None:
        if not math.isfinite(record["loss"]):
            raise TrainingError(
                f"the loss became {record['loss']} near step {self.state.step}; {self._last_good()} "
                "(try a lower train.lr or grad_clip)"
            )
        record.update(step=self.state.step, kl_weight=weight)
        self._log({"kind": "train", **record})
        shown = {k: f"{record[k]:.2f}" for k in self.progress_keys if k in record}
        bar.set_postfix(shown | {"tok/s": f"{record['tokens_per_s']:.0f}"})


def _term_means(terms: Terms) -> dict[str, Tensor]:
    """A batch's logged values: every per-example term's mean, every per-batch statistic."""
    return {**{k: v.mean() for k, v in terms.example_totals().items()}, **terms.batch_totals()}


class _Meter:
    """Running means of the logged values, kept on the device until read (no per-step host sync); with
    N ranks, averaged over the ranks when read."""

    def __init__(self, world: distributed.World | None = None):
        self.world = world or distributed.World()
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.steps = self.sentences = self.tokens = 0
        self.t0 = time.perf_counter()

    def add(self, loss: Tensor, values: dict[str, Tensor], batch: Batch) -> None:
        for k, v in {"loss": loss, **values}.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.float()
        self.steps += 1
        self.sentences += batch.size
        self.tokens += batch.n_targets  # from the batch's CPU copy of the lengths: no sync

    def state(self) -> dict[str, Any]:
        """The running sums as plain numbers (float32 values survive the round trip exactly)."""
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "steps": self.steps,
                "sentences": self.sentences, "tokens": self.tokens}

    def load(self, state: dict[str, Any]) -> None:
        self.reset()
        if state:
            self.sums = {k: torch.tensor(v, dtype=torch.float32) for k, v in state["sums"].items()}
            self.steps, self.sentences, self.tokens = state["steps"], state["sentences"], state["tokens"]

    def read(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.t0
        record = {k: float(distributed.mean_over_ranks(v, self.world)) / self.steps for k, v in self.sums.items()}
        n = self.world.size  # every rank saw about 1/N of the sentences in the same time
        record.update(tokens_per_s=n * self.tokens / elapsed, sentences_per_s=n * self.sentences / elapsed,
                      seconds=elapsed)  # the window's wall time: their sum over a run is its training time
        self.reset()
        return record


@contextlib.contextmanager
def _stop_on_sigint():
    """While training: the first Ctrl-C sets a flag that the loop reads after its step; the second
    one interrupts at once. (Only the main thread may install signal handlers.)"""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        tqdm.write("Ctrl-C: finishing this step and saving a checkpoint (press again to stop at once)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
