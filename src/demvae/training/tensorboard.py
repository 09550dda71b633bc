"""Optional TensorBoard logging (``train.tensorboard: true``): the same scalars as ``metrics.jsonl``.

Each record's numbers are written as ``<kind>/<key>`` at the record's step (``train/loss``,
``valid/neg_elbo``, ...). The event files go to ``<run>/tensorboard``; view them with
``tensorboard --logdir <run>/tensorboard``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from demvae.errors import ConfigError

__all__ = ["TensorBoardLogger", "TENSORBOARD_DIR"]

TENSORBOARD_DIR = "tensorboard"


def _summary_writer(log_dir: str):
    try:  # torch's writer needs the tensorboard package, an optional extra
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("train.tensorboard is set but the tensorboard package is not installed "
                          "(pip install 'demvae[tensorboard]', or set train.tensorboard=false)") from None
    return SummaryWriter(log_dir=log_dir)


class TensorBoardLogger:
    """Forwards metrics records to a TensorBoard ``SummaryWriter`` (``make_writer(log_dir)`` builds one; by
    default torch's, which raises a :class:`ConfigError` when the package is missing)."""

    def __init__(self, run_dir: str | Path, make_writer: Callable[[str], Any] | None = None):
        self.writer = (make_writer or _summary_writer)(str(Path(run_dir) / TENSORBOARD_DIR))

    def log(self, record: dict[str, Any]) -> None:
        """Write one ``metrics.jsonl`` record (``kind`` and ``step`` plus numbers; other values are skipped)."""
        kind, step = record["kind"], record["step"]
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(f"{kind}/{key}", value, step)
        self.writer.flush()  # records are rare (every log_every steps): keep the files current for a live board

    def close(self) -> None:
        self.writer.close()
