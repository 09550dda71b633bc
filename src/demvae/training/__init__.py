"""Training: the loop, run folders and checkpoints, aggressive encoder updates."""

from demvae.training.checkpoint import LoadedRun, load_run
from demvae.training.trainer import Trainer

__all__ = ["LoadedRun", "Trainer", "load_run"]
