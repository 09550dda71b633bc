"""Data parallelism: N processes (``torchrun``) train one model on shards of every global batch.

N ranks train exactly what one process trains with the same global batch:

* every rank takes rows ``rank, rank + N, ...`` of each global batch (the sampler is the same on all
  ranks: deterministic per (seed, epoch));
* per-example terms are summed and scaled by ``N / B_global``, so that DDP's averaging of the N
  gradients gives the single-process mean over ``B_global``;
* batch-level terms — the mutual information, which needs the aggregate posterior q̄(c) of the whole
  batch — are computed from the gathered global batch (:func:`gather_rows`, differentiable); a rank
  that used only its shard's q̄ would train a different, noisier objective (I(x; c) of B/N examples);
* the posterior samples' noise is drawn for the global batch on every rank from the same per-step
  seed, and each rank keeps its rows (:class:`Noise`, which the trainer passes to the model
  explicitly), so rank count changes no random draw.

Dropout masks are drawn per rank for its shard: with dropout > 0 the N-rank run is statistically,
not numerically, the single-process run. Outside :func:`global_batch` (validation, evaluation, one
process) everything here is the identity, and a default :class:`Noise` draws a batch's own noise.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from demvae.errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0


def init(device_type: str) -> World:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, NCCL on
    GPUs, gloo on CPUs), or a world of one without it."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shard(indices: list[int], world: World) -> list[int]:
    """This rank's rows of a global batch (strided, so length-bucketed shards stay alike)."""
    if len(indices) < world.size:
        raise ConfigError(f"a batch of {len(indices)} cannot be split over {world.size} ranks")
    return indices[world.rank::world.size]


_ACTIVE: World | None = None
_GLOBAL_ROWS = 0


@contextlib.contextmanager
def global_batch(world: World, rows: int):
    """Within a data-parallel training step of a global batch of ``rows`` examples."""
    global _ACTIVE, _GLOBAL_ROWS
    if world.size == 1:
        yield
        return
    _ACTIVE, _GLOBAL_ROWS = world, rows
    try:
        yield
    finally:
        _ACTIVE, _GLOBAL_ROWS = None, 0


def example_scale(local_rows: int) -> float:
    """What each example's per-example term is multiplied by in the loss: ``1 / B`` in one process,
    ``N / B_global`` in a data-parallel step (DDP divides the summed gradients by N)."""
    if _ACTIVE is None:
        return 1.0 / local_rows
    return _ACTIVE.size / _GLOBAL_ROWS


@dataclass(frozen=True)
class Noise:
    """Where a training step's sampling noise comes from, passed down to the samplers (never read from module
    state). Shapes are batch-major: dimension 0 indexes the batch's examples.

    One process (the default) draws its batch's noise. In a data-parallel step every rank draws the noise of
    the global batch of ``rows`` examples (the same per-step seed on every rank) and keeps its rows, the
    rows :func:`shard` gave it, so the rank count changes no random draw."""

    world: World = World()
    rows: int = 0
    """Examples in the global batch (used only with more than one rank)."""

    def normal(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        return self._draw(torch.randn, shape, like)

    def uniform(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        return self._draw(torch.rand, shape, like)

    def _draw(self, draw, shape: tuple[int, ...], like: Tensor) -> Tensor:
        if self.world.size == 1:
            return draw(shape, device=like.device, dtype=like.dtype)
        full = draw((self.rows, *shape[1:]), device=like.device, dtype=like.dtype)
        return full[self.world.rank::self.world.size]


class _GatherRows(torch.autograd.Function):
    """all_gather of equal-sized shards whose backward gives each rank the sum, over ranks, of the
    gradients with respect to its own rows (every rank's loss reads every rank's rows)."""

    @staticmethod
    def forward(ctx, t: Tensor) -> Tensor:
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        ctx.rows = slice(dist.get_rank() * t.shape[0], (dist.get_rank() + 1) * t.shape[0])
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rows]


def gather_rows(t: Tensor) -> Tensor:
    """The global batch's rows of a per-example tensor (rank 0's shard first), differentiable: its
    backward sums the ranks' gradients, which DDP's averaging then turns into the single-process one.
    The shards are equal in size (the global batch divides over the ranks)."""
    if _ACTIVE is None:
        return t
    return _GatherRows.apply(t)


def mean_over_ranks(value: Tensor, world: World) -> Tensor:
    if world.size > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= world.size
    return value


def on_every_rank(flag: bool, world: World, device: torch.device) -> bool:
    """Whether ``flag`` holds on every rank (e.g. each rank's timed choice of bf16: the ranks must agree)."""
    if world.size == 1:
        return flag
    value = torch.tensor(int(flag), device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value)

