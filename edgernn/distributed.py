"""Data-parallel training with PyTorch's own engine: torchrun starts the ranks, this joins them.

``torchrun --nproc-per-node N -m edgernn train ...`` (or ``edgernn train --nproc N``) starts N
processes and tells each its place through the environment (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``). ``session`` turns that into a process group (gloo on CPU, NCCL on CUDA, one
GPU per rank) and ``fit`` wraps the model in ``DistributedDataParallel`` while one is active.
Without ``WORLD_SIZE`` (or with 1) nothing here does anything: no process group is made.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Place:
    """Where this process stands among the ranks torchrun started."""

    world: int = 1  # processes in all, on every machine
    rank: int = 0  # this process, 0 .. world - 1
    local_rank: int = 0  # this process among those on its machine: its GPU
    local_world: int = 1  # processes on this machine


def place() -> Place:
    """This process's place, read from torchrun's environment (one process when unset)."""
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1"))
    return Place(
        world=world,
        rank=int(env.get("RANK", "0")),
        local_rank=int(env.get("LOCAL_RANK", "0")),
        local_world=int(env.get("LOCAL_WORLD_SIZE", str(world))),
    )


def active() -> bool:
    """Whether a process group is up: ``fit`` then trains data-parallel."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """Rank 0 (or the only process): the one that validates, prints and writes files."""
    return rank() == 0


@contextmanager
def session(device: str) -> Iterator[Place]:
    """Join the ranks torchrun started for the duration of the block; no-op for one process.

    CPU ranks use gloo and split the machine's cores between them (torchrun would leave each
    at one thread); CUDA ranks use NCCL, one GPU each, chosen by ``LOCAL_RANK``.
    """
    here = place()
    if here.world <= 1:
        yield here
        return
    if device == "cuda":
        torch.cuda.set_device(here.local_rank)
        backend = "nccl"
    else:
        torch.set_num_threads(max(1, _cores() // here.local_world))
        backend = "gloo"
    dist.init_process_group(backend=backend)
    try:
        yield here
    finally:
        destroy()


def destroy() -> None:
    """Leave the process group (safe to call when there is none)."""
    if active():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here (e.g. after rank 0 removed a stale file)."""
    if active():
        dist.barrier()


def broadcast_float(value: float | None, device: str = "cpu") -> float:
    """Rank 0's ``value`` on every rank (the others pass anything, e.g. None)."""
    if not active():
        return value
    # NCCL only moves CUDA tensors; float64 keeps a validation score exact.
    tensor = torch.tensor([value if is_main() else 0.0], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.item()


def shard(indices: Sequence[int], rank: int, world: int) -> list[int]:
    """Rank ``rank``'s share of one global batch: examples ``rank::world``.

    Interleaving keeps each shard's lengths alike (batches are length-sorted), so every rank
    pads about as much as the others and none waits long for the slowest.
    """
    return list(indices[rank::world])


def _cores() -> int:
    # The cores this process may run on (a container or taskset may allow fewer than exist).
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
