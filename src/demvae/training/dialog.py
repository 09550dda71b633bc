"""The two-stage dialog run (paper §4.4; the original's ``main_stanford.py``).

Stage 1 trains the sentence VAE of the config on the responses with the ordinary :class:`Trainer` into
``RUN/stage1/`` (a complete sentence run folder; its config has ``dialog.enabled: false``) for
``train.max_steps`` steps, the original's freeze step, or until its patience runs out. Stage 2 reloads stage 1's
*best* checkpoint (``RUN/stage1/model.safetensors``) into a :class:`~demvae.models.DialogModel`, freezes it, and
trains the context encoder, policy and attention decoder with a new Adam (learning rate reset), its own
:class:`TrainState` (steps counted from 0, up to ``dialog.max_steps``) and its own model selection
(``dialog.select_metric``), into ``RUN/`` itself. Both stages read the same responses (``dialog.speakers``).

:class:`Stage2Trainer` is the :class:`Trainer` with its extension points overridden (the model, the
annealing weight, the loss, the validation statistics, the selection statistic and the step budget); the loop,
checkpoints, learning-rate decay and patience are the Trainer's. :class:`DialogTrainer` runs the two in order and
resumes whichever was interrupted: ``RUN/last/`` present means stage 2 has started; otherwise ``RUN/stage1/last/``
tells how far stage 1 got. ``fit(until_step)`` counts steps over both stages (stage 1's final step + stage 2's
steps), so a run stopped anywhere and resumed ends exactly where an uninterrupted one ends. Wall time per stage
accumulates in ``RUN/stages.json``. Ctrl-C in either stage saves that stage's checkpoint and reports ``RUN`` as
the folder to resume. Dialog runs train in one process (data-parallel training covers sentence models).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, cast

from torch import Tensor

from demvae import distributed
from demvae.config import RunConfig, replace
from demvae.data.prepare import PreparedData, prepare
from demvae.data.types import Batch
from demvae.data.vocab import Vocab
from demvae.device import resolve_device, resolve_precision
from demvae.errors import CheckpointError, ConfigError, Interrupted
from demvae.io import write_json
from demvae.models import DialogModel
from demvae.objectives import dialog_objective
from demvae.training import run_folder as rf
from demvae.training.trainer import Trainer
from demvae.training.validation import DialogStats, dialog_stats


def stage1_config(cfg: RunConfig) -> RunConfig:
    """The config of stage 1: the same run as a sentence VAE (the dialog section off)."""
    return replace(cfg, dialog={"enabled": False})


class Stage2Trainer(Trainer):
    """Stage 2 of a dialog run: the Trainer's loop on a :class:`~demvae.models.DialogModel` whose stage 1 is
    loaded from ``stage1_weights`` and frozen (its parameters never reach Adam)."""

    progress_keys = ("loss", "nll", "policy", "attribute")

    def __init__(self, cfg: RunConfig, run_dir: str | Path, data: PreparedData, stage1_weights: Path,
                 resume: bool = False):
        self.stage1_weights = Path(stage1_weights)
        # a fresh stage 2 clears the dialog run's own files (config, vocabulary, an interrupted start's log)
        # and writes them again; stage1/ and stages.json are not among them
        super().__init__(cfg, run_dir, data, resume, force=not resume)
        self.max_steps = cfg.dialog.max_steps
        self.select_metric = cfg.dialog.select_metric

    def build_model(self):
        model = super().build_model()  # the DialogModel: stage 1 built frozen
        rf.load_model_weights(model.stage1, self.stage1_weights)
        return model

    def anneal_weight(self, step: int) -> float:
        return 1.0  # the original sets kl_w = 1 at the freeze; stage 2's loss has no KL term anyway

    def compute_loss(self, batch: Batch, weight: float) -> tuple[Tensor, dict[str, Tensor]]:
        terms = self.model(batch)
        return dialog_objective(terms, self.cfg.dialog.attribute_weight), terms.batch_means()

    def validation_stats(self) -> DialogStats:
        return dialog_stats(cast(DialogModel, self.model), self.data.splits["valid"], self.cfg.dialog,
                            self.cfg.train.eval_batch_size)


class DialogTrainer:
    """Stage 1 then stage 2 into one run folder (see the module's docstring). ``resume`` continues the run in
    ``run_dir``; a fresh run refuses a folder that holds one unless ``force`` (which deletes it, stage 1 too)."""

    world = distributed.World()  # one process (data parallelism is refused below), which writes the folder

    def __init__(self, cfg: RunConfig, run_dir: str | Path, resume: bool = False, force: bool = False):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError("a dialog run trains in one process: data-parallel training (torchrun) covers "
                              "sentence models only")
        self.cfg = cfg
        self.folder = rf.DialogRun(run_dir)
        self.stage2: Stage2Trainer | None = None
        self._lock = self.folder.lock().acquire()  # until stage 2's trainer takes it over
        try:
            self._open(resume, force)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, resume: bool, force: bool) -> None:
        cfg, folder = self.cfg, self.folder
        device = resolve_device(cfg.train.device)
        precision = resolve_precision(cfg.train.amp, device)  # (true may be refused: before any write)
        if resume and not folder.resumable():
            raise CheckpointError(f"no resumable checkpoint in {folder.path} (expected {folder.stage1.last} "
                                  f"or {folder.last})")
        if not resume:
            folder.claim(force)
        self.data = prepare(cfg.data, Vocab.load(folder.vocab) if resume else None, cfg.dialog)
        if resume:
            folder.write_config(cfg)  # train.* may have changed
        else:
            folder.write_start(cfg, self.data.vocab, str(device), precision)

    def fit(self, until_step: int | None = None, keep_lock: bool = False) -> dict[str, Any]:
        """Train what is left of both stages; ``until_step`` stops after that many steps of both stages
        together, as an interruption would; ``keep_lock``: stage 2's trainer keeps the folder locked until
        :meth:`close` (as :meth:`Trainer.fit`)."""
        stage1, cfg1 = self.folder.stage1, stage1_config(self.cfg)
        try:
            state1 = stage1.last_state()
            if not stage1.finished(cfg1):
                resume1 = stage1.resumable()
                trainer1 = Trainer(cfg1, stage1.path, self.data, resume=resume1, force=not resume1)
                self._timed("stage1", trainer1, until_step)
                state1 = {"step": trainer1.state.step}
                if trainer1.state.step == until_step:
                    return {"stage": 1, "step": trainer1.state.step}
            assert state1 is not None  # stage 1 had finished, or has just now
            offset = state1["step"]
            if until_step is not None and until_step <= offset:
                return {"stage": 1, "step": offset}
            state2 = self.folder.last_state()
            if state2 is not None and self.folder.finished(self.cfg):
                return {"stage": 2, "step": state2["step"]}
        finally:
            self._lock.release()  # stage 2's trainer locks the folder itself
        self.stage2 = Stage2Trainer(self.cfg, self.folder.path, self.data, stage1.best,
                                    resume=self.folder.stage2.resumable())
        result = self._timed("stage2", self.stage2, None if until_step is None else until_step - offset, keep_lock)
        return {"stage": 2, **result}

    def close(self) -> None:
        """Release the run folder's lock (stage 2's trainer's, kept by ``fit(keep_lock=True)``)."""
        self._lock.release()
        if self.stage2 is not None:
            self.stage2.close()

    def _timed(self, stage: str, trainer: Trainer, until_step: int | None = None,
               keep_lock: bool = False) -> dict[str, Any]:
        stages = self.folder.stage_times()
        t = time.perf_counter()
        try:
            return trainer.fit(until_step, keep_lock=keep_lock)
        except Interrupted as exc:  # Ctrl-C: the stage saved its checkpoint; the dialog run is what resumes
            raise Interrupted(self.folder.path, exc.step) from None
        finally:
            seconds = stages.get(stage, {}).get("seconds", 0.0) + time.perf_counter() - t
            stages[stage] = {"seconds": seconds, "step": trainer.state.step, "best_step": trainer.state.best_step}
            write_json(self.folder.stages, stages)


__all__ = ["DialogTrainer", "Stage2Trainer", "stage1_config"]
