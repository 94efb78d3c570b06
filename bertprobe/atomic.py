"""Atomic writes: a file, or a whole directory, is replaced in one rename and is on disk before it counts.

Readers (and a later run after a crash, Ctrl-C or SIGKILL) see the old file or the new one,
never half of one. A file is written to a temporary name in the same folder, flushed and
fsynced, renamed over the target, and then the folder itself is fsynced so the rename
survives a power cut. A multi-file artefact (a saved probe, a checkpoint) is written into a
new staging directory and swapped in whole by ``atomic_directory``: the old directory stays
until the new one is complete. Two processes writing the same directory take turns (an
advisory lock beside it), and a reader's clean-up of a killed save never touches a live one's.

``crash_point(name)`` is a test hook: with ``BERTPROBE_TEST_KILL_AFTER=name`` (or ``name#N``
for the N-th time that point is reached) the process SIGKILLs itself right there, so crash
tests can stop a write at each step deterministically. A write that happens only sometimes (the
fingerprint memo) names its own steps (``step=``), so it never shifts another write's count. The
steps of an atomic file write also answer to ``name@GLOB``, GLOB matched against the target's
file name, so a test can stop one writer (``atomic-write:renamed@*.safetensors``) alone.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

KILL_VARIABLE = "BERTPROBE_TEST_KILL_AFTER"
_reached: dict[str, int] = {}


def crash_point(name: str, target: str | Path | None = None) -> None:
    """Kill this process now (SIGKILL: no cleanup, no flush) if the test hook names this step."""
    wanted = os.environ.get(KILL_VARIABLE)
    if not wanted:
        return
    step, _, nth = wanted.partition("#")
    step, _, pattern = step.partition("@")
    if step != name or (pattern and (target is None or not fnmatch.fnmatch(Path(target).name, pattern))):
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == (int(nth) if nth else 1):
        if hasattr(signal, "SIGKILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)  # pragma: no cover - platforms without SIGKILL


def fsync_file(path: str | Path) -> None:
    """Flush a written file's contents to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_directory(path: str | Path) -> None:
    """Make renames and new names in ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some file systems refuse fsync on a directory; the rename itself still happened
        pass
    finally:
        os.close(handle)


def _plain_permissions(path: Path, mode: int) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)  # mkstemp / mkdtemp make 0600 / 0700; the result is ordinary


def plain_file(path: str | Path) -> None:
    """Give a written file the permissions the umask gives any new file: safetensors' ``save_file`` makes
    0600 files, which a colleague reading a shared probe or checkpoint could not open."""
    _plain_permissions(Path(path), 0o666)


@contextlib.contextmanager
def atomic_path(target: str | Path, step: str = "atomic-write") -> Iterator[Path]:
    """Yield a temporary path to write to; it replaces ``target`` only if the block succeeds.

    The temporary file is fsynced before the rename and the folder after it. The folder must
    exist: a mistyped output path is an error, not a new directory. A symlinked target is replaced where
    it points, and the link kept.
    """
    target = through_links(target)
    prefix, suffix = f".{target.name}.", f".tmp{target.suffix}"
    _remove_stale_temporaries(target.parent, prefix, suffix)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        _plain_permissions(temporary, 0o666)
        fsync_file(temporary)
        crash_point(f"{step}:temp-written", target)
        os.replace(temporary, target)
        crash_point(f"{step}:renamed", target)
        fsync_directory(target.parent)
    finally:
        temporary.unlink(missing_ok=True)


_MKSTEMP_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def _remove_stale_temporaries(folder: Path, prefix: str, suffix: str, older_than_s: float = 3600.0) -> None:
    """Delete this target's temporary files that a killed write left (an hour old: no live writer owns them)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            name = entry.name
            middle = name[len(prefix) : len(name) - len(suffix)]
            # mkstemp's names: the prefix, 8 characters of [a-z0-9_], the suffix; nothing else is touched.
            if (
                name.startswith(prefix)
                and name.endswith(suffix)
                and len(middle) == 8
                and set(middle) <= _MKSTEMP_CHARACTERS
            ):
                with contextlib.suppress(OSError):
                    if entry.is_file() and now - entry.stat().st_mtime > older_than_s:
                        entry.unlink()


def atomic_write(target: str | Path, data: bytes | str, step: str = "atomic-write") -> None:
    """Write ``data`` (text as UTF-8) to ``target`` atomically and durably, creating its folder."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, step) as temporary, temporary.open("wb") as file:
        file.write(payload)
        file.flush()
        os.fsync(file.fileno())


# --------------------------------------------------------------------------------------------
# Whole directories.
# --------------------------------------------------------------------------------------------


def _staging_names(target: Path) -> tuple[str, str, str]:
    """Prefixes of a directory being written, a complete one waiting to be swapped in, and the old one."""
    return f".{target.name}.tmp-", f".{target.name}.new-", f".{target.name}.old-"


@contextlib.contextmanager
def directory_lock(target: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the advisory lock of ``target`` (a hidden file beside it); yields whether it is held.

    Writers wait for each other; a reader's recovery does not wait: if the lock is taken, a live
    writer owns the staging folders and will finish its own swap. Where ``fcntl`` is missing
    (Windows) there is no lock and one writer at a time is the user's to ensure.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield True
        return
    handle = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(handle)  # closing releases the lock; so does the death of the process


def recover_directory(target: str | Path) -> None:
    """Finish or undo a directory swap that a crash interrupted, and remove stray staging folders.

    After this, ``target`` is the newest *complete* version (or absent if there never was one).
    A save in progress in another process is left alone.
    """
    target = through_links(target)
    if not target.parent.is_dir():
        return
    # Nothing staged, nothing to recover: a read takes no lock, so it leaves no lock file beside what it read
    # (say, a data file given as --probe by mistake) and works in a folder it cannot write to.
    if not any(entry.name.startswith(_staging_names(target)) for entry in target.parent.iterdir()):
        return
    with directory_lock(target, wait=False) as held:
        if held:
            _recover(target)


def through_links(target: str | Path) -> Path:
    """The real path of a target: a symlinked one is replaced where it points, and the link kept.

    Swapping the link itself would turn it into a plain file or directory and leave the one it points
    to holding the old version, where anyone reading through it would still find it.
    """
    return Path(os.path.realpath(target))


def _recover(target: Path) -> None:
    parent = target.parent
    writing, ready, old = _staging_names(target)
    entries = sorted(parent.iterdir(), key=lambda p: p.name)
    ready_dirs = [p for p in entries if p.name.startswith(ready) and p.is_dir()]
    old_dirs = [p for p in entries if p.name.startswith(old) and p.is_dir()]
    if not target.exists():
        # Killed between "old moved aside" and "new moved in": the new one is complete, take it;
        # with no complete new one, put the old one back.
        if ready_dirs:
            os.rename(ready_dirs.pop(), target)
        elif old_dirs:
            os.rename(old_dirs.pop(), target)
        fsync_directory(parent)
    for stray in [p for p in entries if p.name.startswith(writing)] + ready_dirs + old_dirs:
        if stray.exists():
            shutil.rmtree(stray, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            fsync_file(Path(folder) / name)
        fsync_directory(folder)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unavailable."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return result == 0  # EINVAL / ENOSYS (file system or kernel without it): use the two-rename path


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory; when the block succeeds it replaces ``target`` as one unit.

    Every file in it is fsynced first. An existing ``target`` is kept until the new directory is
    complete and then swapped out (one atomic exchange on Linux; elsewhere two renames that
    ``recover_directory`` finishes if a crash falls between them). The parent folder is created.
    """
    target = through_links(target)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with directory_lock(target):
        _recover(target)
        yield from _swap_in(target)


def _swap_in(target: Path) -> Iterator[Path]:
    parent = target.parent
    writing, ready, old = _staging_names(target)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=writing))
    try:
        yield staging
        _plain_permissions(staging, 0o777)
        for folder, _, files in os.walk(staging):
            for name in files:
                plain_file(Path(folder) / name)
        _fsync_tree(staging)
        complete = Path(tempfile.mkdtemp(dir=parent, prefix=ready))
        os.rename(staging, complete)  # replaces the empty placeholder: a complete, fsynced new version
        staging = complete
        fsync_directory(parent)
        crash_point("atomic-dir:complete")
        if not target.exists():
            os.rename(staging, target)
        elif _exchange(staging, target):  # staging now holds the old version
            crash_point("atomic-dir:swapped")
        else:
            aside = Path(tempfile.mkdtemp(dir=parent, prefix=old))
            os.rename(target, aside)
            crash_point("atomic-dir:old-moved")
            os.rename(staging, target)
            staging = aside
        fsync_directory(parent)
        crash_point("atomic-dir:renamed")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
