"""Atomic file writes: a temporary file in the same folder, then a rename over the target.

Readers (and a later run after a crash or Ctrl-C) see the old file or the new one, never
half of one. Used for caches, saved probes, checkpoints, plots and HTML pages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write to; it replaces ``target`` only if the block succeeds.

    The folder must exist: a mistyped output path is an error, not a new directory.
    """
    target = Path(target)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; the result is an ordinary file
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write(target: str | Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``target`` atomically, flushed to disk, creating its folder."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary, temporary.open("wb") as file:
        file.write(payload)
        file.flush()
        os.fsync(file.fileno())


def crash_point(name: str) -> None:
    """Test hook: die at once (SIGKILL, no clean-up) right after the write step ``name``.

    Set ``BERTPROBE_TEST_KILL_AFTER=name`` to make a crash test deterministic; a no-op otherwise.
    """
    if os.environ.get("BERTPROBE_TEST_KILL_AFTER") == name:
        os.kill(os.getpid(), signal.SIGKILL)
