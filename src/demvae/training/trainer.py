"""The training loop shared by every model.

Adam, gradient clipping, logistic KL annealing, S posterior samples per sentence, validation every
``eval_every`` steps with model selection, learning-rate decay and patience-based early stopping as
the original code (reference §4), optional aggressive encoder updates (He et al. 2019), bf16
autocast on CUDA, a resumable run folder. Loss terms are accumulated on the device and read back
only every ``log_every`` steps (no per-step host synchronisation).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from demvae.config import RunConfig
from demvae.data.batching import BucketBatchSampler, iterate
from demvae.data.prepare import PreparedData, prepare
from demvae.data.vocab import Vocab
from demvae.errors import CheckpointError, ConfigError, TrainingError
from demvae.evaluation.posterior import posterior_stats
from demvae.objectives import kl_anneal_weight, objective
from demvae.training import checkpoint as ckpt
from demvae.training.aggressive import AggressiveSchedule, encoder_parameters
from demvae.training.tensorboard import TensorBoardLogger  # [tensorboard hook, issue 16]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: str | Path, data: PreparedData | None = None,
                 resume: bool = False):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        tc = cfg.train
        self.device = resolve_device(tc.device)
        seed_everything(tc.seed)
        if resume:
            vocab = Vocab.load(self.run_dir / "vocab.json")
            self.data = data if data is not None else prepare(cfg.data, vocab)
        else:
            self.data = data if data is not None else prepare(cfg.data)
        self.vocab = self.data.vocab
        missing = sorted(set(cfg.model.supervise) - set(self.data.corpus.label_names))
        if missing:
            raise ConfigError(
                f"model.supervise names label(s) {', '.join(missing)} that corpus {cfg.data.corpus!r} lacks "
                f"(its labels: {', '.join(sorted(self.data.corpus.label_names)) or 'none'})"
            )
        self.model = ckpt.build_for(cfg, self.vocab).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        self.sampler = BucketBatchSampler(self.data.splits["train"].lengths, tc.batch_size, shuffle=True, seed=tc.seed)
        if len(self.sampler) == 0:
            raise TrainingError("the training split is empty")
        self.aggressive = AggressiveSchedule(tc) if tc.aggressive else None
        self.state: dict[str, Any] = {
            "step": 0, "epoch": 0, "batch_in_epoch": 0, "best": math.inf, "best_step": -1,
            "validations": 0, "patience": tc.patience, "patience_best": math.inf, "history": [],
            "lr": tc.lr, "done": False, "aggressive": bool(tc.aggressive), "aggressive_mi": -math.inf,
        }
        if resume:
            self.state = ckpt.load_training_state(self.run_dir, self.model, self.optimizer)
            self.state["done"] = False
            ckpt.write_text(self.run_dir / "config.yaml", _yaml(cfg))  # train.* may have changed
        else:
            self._init_run_dir()
        # [tensorboard hook, issue 16] optional TensorBoard logging; built here so a missing package fails early
        self.tensorboard = TensorBoardLogger(self.run_dir) if tc.tensorboard else None

    # --- run folder ---
    def _init_run_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if (self.run_dir / ckpt.LAST).exists():
            raise CheckpointError(f"{self.run_dir} already holds a run; use --resume or another --out")
        ckpt.write_text(self.run_dir / "config.yaml", _yaml(self.cfg))
        self.vocab.save(self.run_dir / "vocab.json")
        ckpt.write_text(self.run_dir / "versions.json", json.dumps(ckpt.versions(str(self.device)), indent=1))
        (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:  # [tensorboard hook, issue 16] the same record as TensorBoard scalars
            self.tensorboard.log(record)

    def _last_good(self) -> str:
        if (self.run_dir / ckpt.LAST).is_dir():
            return f"the last good checkpoint is in {self.run_dir / ckpt.LAST}"
        return "no checkpoint was written yet"

    def _save(self) -> None:
        ckpt.save_training_state(self.run_dir, self.model, self.optimizer, self.state)

    # --- batches ---
    def _batches(self):
        """Endless training batches, resumable at (epoch, batch_in_epoch)."""
        while True:
            start = self.state["batch_in_epoch"]
            for batch in iterate(self.data.splits["train"], self.sampler, self.state["epoch"], start):
                self.state["batch_in_epoch"] += 1
                yield batch.to(self.device)
            self.state["epoch"] += 1
            self.state["batch_in_epoch"] = 0

    def _autocast(self):
        """bf16 autocast (``train.amp``) on CUDA, and on CPUs with bf16 matrix units; the loss is
        still accumulated in float32 (cross-entropy and the KL terms autocast to float32)."""
        if self.cfg.train.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # --- one update ---
    def _loss(self, batch, weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with self._autocast():
            terms = self.model(batch, self.cfg.train.n_samples)
            loss = objective(terms, self.cfg.objective, weight)
        return loss, terms

    def _update(self, loss: torch.Tensor, frozen: list[torch.nn.Parameter] | None = None) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if frozen:  # Adam skips parameters without a gradient
            for p in frozen:
                p.grad = None
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.optimizer.step()

    # --- validation and stopping (the original's schedule) ---
    def validate(self) -> dict[str, float]:
        """Posterior statistics on the validation split. Its own fixed seed (the same noise at
        every validation) and a forked RNG, so validating never changes the training stream."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.cfg.train.seed + 1)
            return posterior_stats(self.model, self.data.splits["valid"], self.cfg.objective,
                                   self.cfg.train.eval_batch_size)

    def _after_validation(self, stats: dict[str, float]) -> None:
        tc, st = self.cfg.train, self.state
        metric_name = {"elbo": "neg_elbo", "loss": "loss", "rec": "rec"}[tc.select_metric]
        value = stats[metric_name]
        if not math.isfinite(value):
            raise TrainingError(
                f"validation {metric_name} is {value} at step {st['step']}; {self._last_good()} "
                "(try a lower train.lr)"
            )
        st["validations"] += 1
        st["history"].append(value)
        if value < st["best"]:
            st["best"], st["best_step"] = value, st["step"]
            ckpt.save_model(self.model, self.run_dir / "model.safetensors")
        elif value > st["best"] and len(st["history"]) - 1 - st["history"].index(st["best"]) >= tc.lr_hold - 1:
            st["lr"] *= tc.lr_decay
            for group in self.optimizer.param_groups:
                group["lr"] = st["lr"]
        if value < tc.improve_threshold * st["patience_best"]:
            st["patience"] = max(st["patience"], st["validations"] * tc.patience_increase)
            st["patience_best"] = value
        if st["validations"] >= st["patience"] or st["lr"] <= tc.min_lr:
            st["done"] = True
        if self.aggressive and st["aggressive"]:
            st["aggressive"] = self.aggressive.keep_going(stats, st)
        self._log({"kind": "valid", "step": st["step"], "metric": metric_name, "lr": st["lr"], **stats})

    # --- the loop ---
    def fit(self, until_step: int | None = None) -> dict[str, Any]:
        """Train to ``max_steps`` or early stopping. With ``until_step`` stop after that step as an
        interruption would (resumable checkpoint, no extra validation): training in slices gives
        the same result as one uninterrupted run. An interrupted run (Ctrl-C, a kill) resumes from
        its last checkpoint, written at every validation."""
        tc, st = self.cfg.train, self.state
        batches = self._batches()
        enc_params = encoder_parameters(self.model)
        enc_ids = {id(p) for p in enc_params}
        dec_params = [p for p in self.model.parameters() if id(p) not in enc_ids]
        meter = _Meter()
        bar = tqdm(total=tc.max_steps, initial=st["step"], disable=not tc.progress, dynamic_ncols=True,
                   desc=self.cfg.model_name)
        self.model.train()
        try:
            while st["step"] < tc.max_steps and not st["done"] and st["step"] != until_step:
                obj = self.cfg.objective
                weight = kl_anneal_weight(st["step"], obj.anneal, obj.anneal_k, obj.anneal_x0)
                frozen = None
                if self.aggressive and st["aggressive"]:
                    self.aggressive.encoder_phase(self, batches, weight, dec_params)
                    frozen = enc_params  # then one decoder-only step
                batch = next(batches)
                loss, terms = self._loss(batch, weight)
                self._update(loss, frozen)
                st["step"] += 1
                meter.add(loss, terms, batch)
                bar.update(1)
                if st["step"] % tc.log_every == 0 or st["step"] == tc.max_steps:
                    self._log_train(meter.read(), weight, bar)
                if st["step"] % tc.eval_every == 0 or st["step"] == tc.max_steps:
                    self._after_validation(self.validate())
                    self.model.train()
                    self._save()
                elif st["step"] == until_step:
                    self._save()
        finally:
            bar.close()
        return {"best": st["best"], "best_step": st["best_step"], "step": st["step"]}

    def _log_train(self, record: dict[str, float], weight: float, bar) -> None:
        if not math.isfinite(record["loss"]):
            raise TrainingError(
                f"the loss became {record['loss']} near step {self.state['step']}; {self._last_good()} "
                "(try a lower train.lr or grad_clip)"
            )
        record.update(step=self.state["step"], kl_weight=weight)
        self._log({"kind": "train", **record})
        shown = {k: f"{record[k]:.2f}" for k in ("loss", "rec", "kl_c", "kl_z_avg", "dispersion") if k in record}
        bar.set_postfix(shown | {"tok/s": f"{record['tokens_per_s']:.0f}"})


class _Meter:
    """Running means of the loss terms, kept on the device until read (no per-step host sync)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = self.sentences = self.tokens = 0
        self.t0 = time.perf_counter()

    def add(self, loss: torch.Tensor, terms: dict[str, torch.Tensor], batch) -> None:
        values = {"loss": loss}
        for k, v in terms.items():  # per-example terms: sum over variables, mean over the batch
            values[k] = v.sum() if k == "mutual_info" else (v.sum(-1) if v.dim() > 1 else v).mean()
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.detach().float()
        self.steps += 1
        self.sentences += batch.size
        self.tokens += batch.n_targets  # from the batch's CPU copy of the lengths: no sync

    def read(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.t0
        record = {k: float(v) / self.steps for k, v in self.sums.items()}
        record.update(tokens_per_s=self.tokens / elapsed, sentences_per_s=self.sentences / elapsed)
        self.reset()
        return record


def _yaml(cfg: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
