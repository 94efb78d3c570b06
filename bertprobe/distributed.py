"""Many texts over several processes: started by ``torchrun`` or ``accelerate launch``, split and merged here.

The launcher sets ``RANK``, ``WORLD_SIZE`` (and ``LOCAL_RANK``, ``MASTER_ADDR``...);
``torch.distributed`` does the talking (gloo on CPU, NCCL on GPUs). Every process reads the
same input in the same chunks; process r takes texts r, r + W, r + 2W, ... of each chunk (so
long and short texts spread evenly), and ``gather_object`` brings the results to rank 0,
which puts them back in input order and is the only one that writes. Nothing else is shared.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def world(device: str = "auto") -> World:
    """This process's place: one process unless a launcher set ``WORLD_SIZE`` > 1 (then join the group).

    On GPUs each process takes the GPU ``LOCAL_RANK`` before the model loads, so ``--device
    auto`` / ``cuda`` puts each process on its own device.
    """
    if not launched():
        return World()
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return World(rank, size, local_rank)


def ordered(
    chunks: Iterable[Sequence[Item]],
    compute: Callable[[list[Item]], list[Result]],
    place: World,
) -> Iterator[tuple[Item, Result]]:
    """(item, result) for every item, in input order, on rank 0; other ranks compute their share and yield nothing."""
    for chunk in chunks:
        if place.size == 1:
            yield from zip(chunk, compute(list(chunk)), strict=True)
            continue
        import torch.distributed as dist

        share = list(chunk[place.rank :: place.size])
        results = compute(share) if share else []
        gathered: list[Any] | None = [None] * place.size if place.main else None
        dist.gather_object(results, gathered, dst=0)
        if place.main:
            assert gathered is not None
            for position, item in enumerate(chunk):
                yield item, gathered[position % place.size][position // place.size]


def finish(place: World) -> None:
    """Wait for every process (rank 0 has written), then leave the group."""
    if place.size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
