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

import json
import os
import time
from pathlib import Path
from typing import Any

from torch import Tensor

from demvae.config import RunConfig, replace
from demvae.data.prepare import PreparedData, prepare
from demvae.data.types import Batch
from demvae.data.vocab import Vocab
from demvae.device import resolve_device, resolve_precision
from demvae.errors import CheckpointError, ConfigError, Interrupted
from demvae.io import write_json, write_text
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
        return dialog_stats(self.model, self.data.splits["valid"], self.cfg.dialog, self.cfg.train.eval_batch_size)


class DialogTrainer:
    """Stage 1 then stage 2 into one run folder (see the module's docstring). ``resume`` continues the run in
    ``run_dir``; a fresh run refuses a folder that holds one unless ``force`` (which deletes it, stage 1 too)."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, resume: bool = False, force: bool = False):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError("a dialog run trains in one process: data-parallel training (torchrun) covers "
                              "sentence models only")
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.stage1_dir = self.run_dir / rf.STAGE1
        self._lock = rf.RunLock(self.run_dir).acquire()  # until stage 2's trainer takes it over
        try:
            self._open(resume, force)
        except BaseException:
            self._lock.release()
            raise

    @staticmethod
    def has_checkpoint(run_dir: Path) -> bool:
        """Whether either stage of the dialog run in ``run_dir`` wrote a resumable checkpoint."""
        return rf.has_checkpoint(run_dir) or rf.has_checkpoint(run_dir / rf.STAGE1)

    def _open(self, resume: bool, force: bool) -> None:
        cfg, run_dir = self.cfg, self.run_dir
        device = resolve_device(cfg.train.device)
        precision = resolve_precision(cfg.train.amp, device)  # (true may be refused: before any write)
        if resume and not self.has_checkpoint(run_dir):
            raise CheckpointError(f"no resumable checkpoint in {run_dir} (expected {self.stage1_dir / rf.LAST} "
                                  f"or {run_dir / rf.LAST})")
        if not resume:
            rf.claim(run_dir, force, nested=(rf.STAGE1, rf.STAGES))
        self.data = prepare(cfg.data, Vocab.load(run_dir / rf.VOCAB) if resume else None, cfg.dialog)
        if resume:
            write_text(run_dir / rf.CONFIG, cfg.to_yaml())  # train.* may have changed
        else:
            rf.write_start(run_dir, cfg, self.data.vocab, str(device), precision)

    def fit(self, until_step: int | None = None) -> dict[str, Any]:
        """Train what is left of both stages; ``until_step`` stops after that many steps of both stages
        together, as an interruption would."""
        try:
            state1 = rf.last_state(self.stage1_dir)
            if not rf.finished(state1, self.cfg.train.max_steps):
                resume1 = rf.has_checkpoint(self.stage1_dir)
                stage1 = Trainer(stage1_config(self.cfg), self.stage1_dir, self.data, resume=resume1,
                                 force=not resume1)
                self._timed("stage1", stage1, until_step)
                state1 = {"step": stage1.state.step}
                if stage1.state.step == until_step:
                    return {"stage": 1, "step": stage1.state.step}
            offset = state1["step"]
            if until_step is not None and until_step <= offset:
                return {"stage": 1, "step": offset}
            state2 = rf.last_state(self.run_dir)
            if rf.finished(state2, self.cfg.dialog.max_steps):
                return {"stage": 2, "step": state2["step"]}
        finally:
            self._lock.release()  # stage 2's trainer locks the folder itself
        stage2 = Stage2Trainer(self.cfg, self.run_dir, self.data, self.stage1_dir / rf.MODEL,
                               resume=rf.has_checkpoint(self.run_dir))
        result = self._timed("stage2", stage2, None if until_step is None else until_step - offset)
        return {"stage": 2, **result}

    def _timed(self, stage: str, trainer: Trainer, until_step: int | None = None) -> dict[str, Any]:
        path = self.run_dir / rf.STAGES
        stages = json.loads(path.read_text()) if path.is_file() else {}
        t = time.perf_counter()
        try:
            return trainer.fit(until_step)
        except Interrupted as exc:  # Ctrl-C: the stage saved its checkpoint; the dialog run is what resumes
            raise Interrupted(self.run_dir, exc.step) from None
        finally:
            seconds = stages.get(stage, {}).get("seconds", 0.0) + time.perf_counter() - t
            stages[stage] = {"seconds": seconds, "step": trainer.state.step, "best_step": trainer.state.best_step}
            write_json(path, stages)


__all__ = ["DialogTrainer", "Stage2Trainer", "stage1_config"]
