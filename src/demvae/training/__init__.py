"""Training: the loop, run folders and checkpoints, validation statistics, aggressive encoder updates."""

from demvae.training.run_folder import LoadedRun, load_run
from demvae.training.trainer import Trainer, TrainState

__all__ = ["LoadedRun", "TrainState", "Trainer", "load_run"]
