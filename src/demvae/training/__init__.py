"""Training: the loop, run folders and checkpoints, validation statistics, aggressive encoder updates,
the two-stage dialog run."""

from demvae.training.dialog import DialogTrainer, Stage2Trainer
from demvae.training.run_folder import DialogRun, LoadedRun, RunFolder, load_run
from demvae.training.trainer import Trainer, TrainState

__all__ = ["DialogRun", "DialogTrainer", "LoadedRun", "RunFolder", "Stage2Trainer", "TrainState", "Trainer", "load_run"]
