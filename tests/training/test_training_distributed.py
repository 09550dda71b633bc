"""Data-parallel training (issue 17): 2 gloo ranks on the CPU train what one process trains with the
same global batch — with and without the mutual-information term, whose q̄(c) needs the global
batch — and a run stopped on 2 ranks resumes on 1 to where an uninterrupted run ends."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from demvae.config import compose
from demvae.training import Trainer

STEPS = 4


def _config(name: str, **train):
    return compose(config=f"builtin/{name}", overrides={
        "data": {"options": {"n_train": 160, "n_valid": 40, "n_test": 40}, "max_len": 16},
        "model": {"embed_dim": 16, "hidden_size": 16, "dropout": 0.0},
        # fp32: under bf16 (train.amp: auto on a CPU with bf16 units) two ranks' different reduction order
        # rounds differently, so the runs agree only to bf16's precision, not to the tolerance below
        "train": {"batch_size": 16, "n_samples": 2, "max_steps": STEPS, "eval_every": 2, "log_every": 2,
                  "progress": False, "device": "cpu", "amp": False, **train},
    })


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, cfg, run_dir: str, until: int | None, resume: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        Trainer(cfg, run_dir, resume=resume).fit(until_step=until)
    finally:
        dist.destroy_process_group()


def _train(cfg, run_dir, world: int, until: int | None = None, resume: bool = False) -> dict[str, torch.Tensor]:
    if world == 1:
        Trainer(cfg, run_dir, resume=resume).fit(until_step=until)
    else:
        mp.spawn(_rank, args=(world, _free_port(), cfg, str(run_dir), until, resume), nprocs=world, join=True)
    return load_file(str(run_dir / "last" / "model.safetensors"))


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=2e-5, msg=key)


@pytest.mark.parametrize("name", ["dgm-vae", "dgm-vae-mi"])
def test_two_ranks_train_what_one_process_trains(tmp_path, name):
    cfg = _config(name)
    assert (cfg.objective.mi_weight > 0) == name.endswith("-mi")
    one = _train(cfg, tmp_path / "one", 1)
    two = _train(cfg, tmp_path / "two", 2)
    init = Trainer(cfg, tmp_path / "init").model.state_dict()  # the weights did move: the check is not vacuous
    assert any(not torch.allclose(init[k], one[k]) for k in one if k in init)
    _assert_same(one, two)
    # rank 0 alone wrote the run folder, with the global batch's log
    records = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(records) == len((tmp_path / "one" / "metrics.jsonl").read_text().splitlines())


def test_a_run_stopped_on_two_ranks_resumes_on_one(tmp_path):
    cfg = _config("dgm-vae-mi")
    uninterrupted = _train(cfg, tmp_path / "ref", 1)
    _train(cfg, tmp_path / "run", 2, until=2)
    resumed = _train(cfg, tmp_path / "run", 1, resume=True)
    _assert_same(uninterrupted, resumed)


def test_the_global_batch_must_divide_over_the_ranks(tmp_path, monkeypatch):
    from demvae.errors import ConfigError

    monkeypatch.setattr("demvae.distributed.init", lambda device_type: __import__(
        "demvae.distributed", fromlist=["World"]).World(rank=0, size=3))
    with pytest.raises(ConfigError, match="does not divide over 3 ranks"):
        Trainer(_config("dgm-vae"), tmp_path / "r")
