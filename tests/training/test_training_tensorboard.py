"""Optional TensorBoard logging (``train.tensorboard``): the same scalars as metrics.jsonl, a clear error
when the package is missing."""

from __future__ import annotations

import json
import sys

import pytest

from demvae.errors import ConfigError
from demvae.training import Trainer
from demvae.training import tensorboard as tb


class FakeWriter:
    """Records ``add_scalar`` calls like torch's SummaryWriter would write them."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.scalars: list[tuple[str, float, int]] = []
        self.flushed = 0

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def flush(self) -> None:
        self.flushed = len(self.scalars)

    def close(self) -> None:
        pass


def _expected(run_dir) -> list[tuple[str, float, int]]:
    """Every number of every metrics.jsonl record as (kind/key, value, step), read independently."""
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        out += [(f"{record['kind']}/{k}", v, record["step"]) for k, v in record.items()
                if k not in ("kind", "step", "metric")]
    return out


def test_tensorboard_gets_the_metrics_records(tmp_path, tiny_cfg, monkeypatch):
    writers: list[FakeWriter] = []
    monkeypatch.setattr(tb, "_summary_writer", lambda log_dir: writers.append(FakeWriter(log_dir)) or writers[-1])
    run = tmp_path / "run"
    Trainer(tiny_cfg(train={"tensorboard": True}), run).fit()
    (writer,) = writers
    assert writer.log_dir == str(run / "tensorboard")
    assert writer.scalars == _expected(run)
    assert {"train/loss", "valid/neg_elbo", "train/kl_weight"} <= {tag for tag, _, _ in writer.scalars}
    assert writer.flushed == len(writer.scalars)  # nothing left in a buffer


def test_tensorboard_off_by_default(tmp_path, tiny_cfg, monkeypatch):
    monkeypatch.setattr(tb, "_summary_writer", lambda log_dir: pytest.fail("no writer without train.tensorboard"))
    trainer = Trainer(tiny_cfg(train={"max_steps": 10}), tmp_path / "run")
    trainer.fit()
    assert trainer.tensorboard is None and not (tmp_path / "run" / "tensorboard").exists()


def test_missing_tensorboard_package_is_one_clear_error(tmp_path, tiny_cfg, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r"tensorboard package is not installed .*demvae\[tensorboard\]"):
        Trainer(tiny_cfg(train={"tensorboard": True}), tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # failed before training


def test_real_tensorboard_event_files(tmp_path, tiny_cfg):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    Trainer(tiny_cfg(train={"tensorboard": True}), run).fit()
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    written = sorted((tag, e.step, e.value) for tag in events.Tags()["scalars"] for e in events.Scalars(tag))
    expected = sorted((tag, step, value) for tag, value, step in _expected(run))
    assert [(t, s) for t, s, _ in written] == [(t, s) for t, s, _ in expected]
    assert [v for _, _, v in written] == pytest.approx([v for _, _, v in expected], rel=1e-6)  # float32 on disk
