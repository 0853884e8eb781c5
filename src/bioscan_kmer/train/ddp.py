"""Data-parallel training helpers: the process group under ``torchrun`` (NCCL on GPUs, gloo on CPUs).

Not to be confused with :mod:`bioscan_kmer.distributed` (Dask, for the data layer).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup_distributed", "teardown_distributed", "all_reduce_sum", "all_reduce_max",
           "gather_objects", "broadcast_object", "barrier"]


@dataclass
class DistInfo:
    """Where this process stands: rank, world size, its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialized_here: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _pick_device(requested: str | None, local_rank: int) -> torch.device:
    if requested is None:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def setup_distributed(requested_device: str | None = None) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    An already initialised group (e.g. from ``torch.multiprocessing.spawn`` in a test) is
    used as it is. Returns a single-process :class:`DistInfo` otherwise.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistInfo(rank, world, local, _pick_device(requested_device, local), False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0, _pick_device(requested_device, 0), False)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    device = _pick_device(requested_device, local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend=backend, rank=rank, world_size=world, **kwargs)
    return DistInfo(rank, world, local, device, True)


def teardown_distributed(info: DistInfo) -> None:
    """Leave the process group if :func:`setup_distributed` created it.

    ``destroy_process_group`` only forgets c10d's own references; a DDP module that is still
    alive keeps the group, its gloo threads and their pending work. An object in a
    reference cycle (a frame kept by a traceback, a module and its hooks) may live until
    interpreter shutdown, and gloo work freed there can abort the process after the run
    has finished (pytorch/pytorch#179291). Collecting first ends the group while the
    interpreter is fully alive; the caller must have dropped its own references.
    """
    if info.initialized_here and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over processes in place (no-op for one process)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every process's ``obj``, in rank order (a one-element list for one process)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_max(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Element-wise maximum of ``tensor`` over processes, in place (no-op for one process)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor
