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


_LAUNCH_HINT = (
    "Start the processes with torchrun or accelerate launch (they set RANK, WORLD_SIZE, MASTER_ADDR and "
    "MASTER_PORT), or unset WORLD_SIZE to run one process."
)


def _env_int(name: str, default: int | None = None) -> int:
    """A launcher's whole-number variable; a missing or malformed one is a user error, not a traceback."""
    from bertprobe.errors import InputError

    value = os.environ.get(name, "").strip()
    if not value:
        if default is None:
            raise InputError(f"WORLD_SIZE is {os.environ.get('WORLD_SIZE')} but {name} is not set", hint=_LAUNCH_HINT)
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{name}={value!r} is not a whole number", hint=_LAUNCH_HINT) from None


def launched() -> bool:
    return _env_int("WORLD_SIZE", 1) > 1


def world(device: str = "auto") -> World:
    """This process's place: one process unless a launcher set ``WORLD_SIZE`` > 1 (then join the group).

    On GPUs each process takes the GPU ``LOCAL_RANK`` before the model loads, so ``--device
    auto`` / ``cuda`` puts each process on its own device.
    """
    if not launched():
        return World()
    import torch
    import torch.distributed as dist

    from bertprobe.errors import InputError

    rank = _env_int("RANK")
    size = _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", rank)
    if not 0 <= rank < size:
        raise InputError(f"RANK={rank} is outside WORLD_SIZE={size}", hint=_LAUNCH_HINT)
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise InputError(
            f"WORLD_SIZE is {size} but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
            hint=_LAUNCH_HINT,
        )
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
