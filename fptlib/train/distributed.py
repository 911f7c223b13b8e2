"""Data-parallel training with ``torchrun`` and ``torch.distributed`` (DDP).

Launch any training command under torchrun and the Trainer notices:

    python -m torch.distributed.run --nproc_per_node 4 -m fptlib train --task bit-memory ...

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; we join the process group (NCCL on CUDA, gloo on
CPU), give each process its GPU, and wrap the model in DistributedDataParallel. Every process
draws the same global batch (tasks are deterministic in (seed, step)) and keeps its own
1/world_size slice, so the averaged gradient, and hence the update, is the one a single process
computes on the whole batch. Only rank 0 shows progress, writes checkpoints and result records.
Dropout masks differ from a one-process run (each process has its own RNG stream).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from fptlib import env


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def context() -> DistContext:
    """The process group this process belongs to: joins it if torchrun started us and nobody has yet."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def device_for(ctx: DistContext, device: str = "auto") -> torch.device:
    """Each process gets its own GPU (cuda:LOCAL_RANK) under DDP; otherwise env.pick_device."""
    dev = env.pick_device(device)
    if ctx.enabled and dev.type == "cuda":
        dev = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(dev)
    return dev


def wrap(model: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    if not ctx.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shard(batch, ctx: DistContext):
    """This process's contiguous slice of the global batch (same type, same fields)."""
    if not ctx.enabled:
        return batch
    n = batch.x.shape[0]
    per = n // ctx.world_size
    sl = slice(ctx.rank * per, (ctx.rank + 1) * per)
    mask = batch.mask[sl] if batch.mask is not None else None
    return type(batch)(x=batch.x[sl], y=batch.y[sl], mask=mask)


def from_main(value, ctx: DistContext | None = None):
    """``value`` as rank 0 has it, on every process (one broadcast under DDP; ``value`` itself
    otherwise): decisions that must agree, such as which runs to train or when to stop. The
    other processes may pass None."""
    ctx = ctx if ctx is not None else context()
    if not ctx.enabled:
        return value
    box = [value if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def maybe_no_sync(model: torch.nn.Module, sync: bool):
    """Skip DDP's gradient all-reduce on accumulation micro-steps; only the last one syncs."""
    if sync or not isinstance(model, DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
