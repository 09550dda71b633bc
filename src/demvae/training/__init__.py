"""Training: the loop, run folders and checkpoints, validation statistics, aggressive encoder updates,
the two-stage dialog run."""

from demvae.training.dialog import DialogTrainer, Stage2Trainer
from demvae.training.run_folder import LoadedRun, load_run
from demvae.training.trainer import Trainer, TrainState

__all__ = ["DialogTrainer", "LoadedRun", "Stage2Trainer", "TrainState", "Trainer", "load_run"]
