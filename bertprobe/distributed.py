"""Many texts over several processes: started by ``torchrun`` or ``accelerate launch``, split and merged here.

The launcher sets ``RANK``, ``WORLD_SIZE`` (and ``LOCAL_RANK``, ``MASTER_ADDR``...);
``torch.distributed`` does the talking (gloo on CPU, NCCL on GPUs). Every process reads the
same input in the same chunks; process r takes texts r, r + W, r + 2W, ... of each chunk (so
long and short texts spread evenly), and ``gather_object`` brings the results to rank 0,
which puts them back in input order and is the only one that writes. Nothing else is shared.

When the run stops, the terminal still reads as one process's: the process that stops first says why
(``first_to_stop``), a process whose collective fails because another one left exits quietly with status 1,
and on Ctrl-C (torchrun passes SIGINT to every process) only rank 0 says "interrupted".
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
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
    if rank != 0:
        _leave_quietly_on_interrupt()  # before importing torch, which takes seconds a Ctrl-C can fall in
    import torch
    import torch.distributed as dist

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
        with _collective():
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
            with _collective():
                dist.barrier()
            dist.destroy_process_group()
    _restore_interrupt()


_STOPPED_KEY = "bertprobe/stopped"
_first_to_stop: bool | None = None


def first_to_stop() -> bool:
    """Whether this process is the one to print the error it stops with; never raises.

    Alone: yes. Under torchrun every process parses the same arguments and reads the same input, so an
    error is usually met by all of them at once: before they join the group rank 0 says it; after, the
    first process to stop does (a counter in the launcher's store), so an error only one process meets
    (in its share of the texts) is still said, once.
    """
    global _first_to_stop
    try:
        size = int(os.environ.get("WORLD_SIZE") or 1)
        rank = int(os.environ.get("RANK") or 0)
    except ValueError:
        return True  # a malformed launcher environment: every process says so, as one process would
    if size <= 1 or not 0 <= rank < size or not os.environ.get("TORCHELASTIC_RUN_ID"):
        return True  # started by hand, not by one launcher: nobody else may say it
    dist = sys.modules.get("torch.distributed")  # never import torch here: a usage error stops before it
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return rank == 0
    if _first_to_stop is None:
        try:
            # The store lives in torchrun's agent, so it outlives a process that stopped; keyed by the
            # restart count, as a restarted group keeps the agent's store.
            key = f"{_STOPPED_KEY}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
            _first_to_stop = dist.distributed_c10d._get_default_store().add(key, 1) == 1
        except Exception:  # no store to ask (another torch, a store gone): better said twice than never
            _first_to_stop = True
    return _first_to_stop


@contextlib.contextmanager
def _collective() -> Iterator[None]:
    """A gather or barrier that fails because another process left: that one said why, so leave quietly (exit 1).

    The backend's own message ("Connection closed by peer") and its traceback would only bury that
    reason; BERTPROBE_DEBUG=1 shows them.
    """
    try:
        yield
    except RuntimeError:  # gloo's lost peer is a bare RuntimeError; torch's DistError family derives from it
        if os.environ.get("BERTPROBE_DEBUG"):
            raise
        raise SystemExit(1) from None


_interrupt_handler: Any = None


def _quiet_interrupt(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _leave_quietly_on_interrupt() -> None:
    """On Ctrl-C torchrun passes SIGINT to every process: rank 0 says "interrupted", the others leave silently."""
    global _interrupt_handler
    if threading.current_thread() is threading.main_thread() and _interrupt_handler is None:
        _interrupt_handler = signal.signal(signal.SIGINT, _quiet_interrupt)


def _restore_interrupt() -> None:
    global _interrupt_handler
    if _interrupt_handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt_handler)
        _interrupt_handler = None
