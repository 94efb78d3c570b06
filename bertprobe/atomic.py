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

``ResumableFile`` is the one file that is *not* all or nothing until its end: results appended to a partial file
beside the target, made durable chunk by chunk and recorded in a journal, so that a rerun of the same work carries on
after the last chunk recorded. Its steps: ``resume:partial-synced``, ``resume-journal:temp-written`` /
``resume-journal:renamed`` (the journal's own atomic write), ``resume:journal-written``, ``resume:before-rename``, and
``atomic-write:temp-written`` / ``atomic-write:renamed`` around the final rename, as a plain atomic write has them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# --------------------------------------------------------------------------------------------
# A file written by appending that a later run can resume.
# --------------------------------------------------------------------------------------------

JOURNAL_FORMAT = 1


def partial_paths(target: str | Path) -> tuple[Path, Path]:
    """The partial file a resumable write of ``target`` appends to, and its journal, both hidden beside it."""
    real = through_links(target)
    partial = real.parent / f".{real.name}.partial"
    return partial, partial.with_name(partial.name + ".json")


def _identity_key(identity: dict[str, Any]) -> str:
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _lock(path: Path) -> int | None:
    """Open ``path`` (created if missing) and hold an exclusive advisory lock on it; None if another process holds it.

    The lock is on the file itself: a finished run renames it away while still holding it, so the name is checked
    to lead to the locked file after the lock is taken. Where ``fcntl`` is missing (Windows) there is no lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        fcntl = None  # type: ignore[assignment]
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is None:  # pragma: no cover
            return handle
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return None
        opened = os.fstat(handle)
        try:
            named = os.stat(path)
        except FileNotFoundError:
            named = None
        if named is not None and (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino):
            return handle
        os.close(handle)  # it was renamed away (a run finished) between our open and our lock: open the new one


class ResumableFile:
    """Bytes appended to a partial file beside ``target`` that replaces ``target`` whole at the end, and a journal
    that lets a rerun of the same work carry on where a killed one stopped.

    ``commit(state)`` makes what was appended so far durable (fsync) and only then records, in a journal
    written atomically, its length and sha256, the ``identity`` of the work and the caller's ``state``.
    ``open()`` takes the journal's word only if it is whole, its identity is this one, and the partial
    file's first ``bytes`` bytes hash as recorded; it then cuts whatever was appended after that commit. Anything
    else: the stale partial file and journal are removed and the write starts over, with the reason returned.
    The partial file is locked while it is written: a second run writing the same target is refused.
    """

    def __init__(self, target: str | Path, identity: dict[str, Any]) -> None:
        self.target = through_links(target)
        self.partial, self.journal = partial_paths(target)
        # As the journal will read back (paths and enums as text, tuples as lists), so the two compare field by field.
        self.identity = json.loads(json.dumps(identity, default=str))
        self.key = _identity_key(self.identity)
        self.length = 0
        self.committed = 0  # bytes the journal vouches for
        self.saved = False  # a journal on disk describes this partial file: worth keeping if the run stops
        self._digest = hashlib.sha256()
        self._file: Any = None

    @staticmethod
    def remove_stale(target: str | Path) -> bool:
        """Delete a partial file and journal of ``target`` no run holds; whether there were any."""
        partial, journal = partial_paths(target)
        if not (partial.exists() or journal.exists()):
            return False
        handle = _lock(partial)
        if handle is None:
            return False  # a live run's: not ours to touch
        try:
            journal.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
            fsync_directory(partial.parent)
        finally:
            os.close(handle)
        return True

    def open(self) -> tuple[dict[str, Any] | None, str | None]:
        """Lock the partial file and resume from it: (the state last committed, None), or (None, why it starts
        over; None when there was nothing to resume)."""
        existed = self.partial.exists()
        handle = _lock(self.partial)
        if handle is None:
            raise BlockingIOError(f"{self.partial} is locked by another process")
        self._file = os.fdopen(handle, "r+b")
        state, reason = self._read_journal(existed)
        if state is None:
            if reason is None and os.fstat(handle).st_size > 0:
                reason = "its partial results have no journal (it stopped before it saved its first chunk)"
            self.restart()
            return None, reason
        self._file.truncate(self.length)
        self._file.seek(self.length)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.saved = True
        return state, None

    def _read_journal(self, existed: bool) -> tuple[dict[str, Any] | None, str | None]:
        try:
            recorded = json.loads(self.journal.read_bytes())
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError):
            return None, "its journal is damaged"
        if not existed:  # killed between the final rename and the journal's removal, or the file was deleted
            return None, "its partial results are missing"
        if not (
            isinstance(recorded, dict)
            and recorded.get("format") == JOURNAL_FORMAT
            and isinstance(recorded.get("identity"), dict)
            and recorded.get("key") == _identity_key(recorded["identity"])
            and isinstance(recorded.get("bytes"), int)
            and recorded["bytes"] >= 0
            and isinstance(recorded.get("sha256"), str)
            and isinstance(recorded.get("state"), dict)
        ):
            return None, "its journal is damaged"
        if recorded["key"] != self.key:
            changed = [name for name in self.identity if recorded["identity"].get(name) != self.identity[name]]
            return None, f"its {' and '.join(changed) or 'work'} changed"
        size = os.fstat(self._file.fileno()).st_size
        if size < recorded["bytes"]:
            return None, f"its partial results are shorter than its journal says ({size} of {recorded['bytes']} bytes)"
        digest, left = hashlib.sha256(), recorded["bytes"]
        self._file.seek(0)
        while left:
            block = self._file.read(min(left, 1 << 20))
            if not block:
                break
            digest.update(block)
            left -= len(block)
        if left or digest.hexdigest() != recorded["sha256"]:
            return None, "its partial results do not match its journal"
        self.length = self.committed = recorded["bytes"]
        self._digest = digest
        return recorded["state"], None

    def restart(self) -> None:
        """Empty the partial file and remove the journal: the write starts over."""
        self._remove_journal()
        self._file.seek(0)
        self._file.truncate(0)
        self._file.flush()
        self.length, self.committed, self._digest, self.saved = 0, 0, hashlib.sha256(), False

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.length += len(data)
        self._digest.update(data)

    def commit(self, state: dict[str, Any]) -> None:
        """Make what was written durable, then record it (and ``state``) in the journal."""
        self._file.flush()
        os.fsync(self._file.fileno())
        crash_point("resume:partial-synced", self.target)
        journal = {
            "format": JOURNAL_FORMAT,
            "key": self.key,
            "identity": self.identity,
            "bytes": self.length,
            "sha256": self._digest.hexdigest(),
            "state": state,
        }
        atomic_write(self.journal, json.dumps(journal, indent=1, default=str) + "\n", step="resume-journal")
        self.saved, self.committed = True, self.length
        crash_point("resume:journal-written", self.target)

    def finish(self) -> None:
        """The partial file, complete, replaces ``target`` (atomically, durably); the journal goes."""
        self._file.flush()
        os.fsync(self._file.fileno())
        _plain_permissions(self.partial, 0o666)
        crash_point("resume:before-rename", self.target)
        crash_point("atomic-write:temp-written", self.target)  # the hook a plain atomic write has at this point
        if not hasattr(os, "uname"):  # pragma: no cover - Windows renames no open file
            self.close()
        os.replace(self.partial, self.target)
        crash_point("atomic-write:renamed", self.target)
        self._remove_journal()
        fsync_directory(self.target.parent)
        self.close()

    def discard(self) -> None:
        """Remove the partial file and journal (the run is over and nothing in them will be resumed)."""
        self._remove_journal()
        self.partial.unlink(missing_ok=True)
        self.close()

    def _remove_journal(self) -> None:
        self.journal.unlink(missing_ok=True)
        # A journal write killed before its rename left its temporary file; holding the lock, no live run owns one.
        _remove_stale_temporaries(self.journal.parent, f".{self.journal.name}.", ".tmp.json", older_than_s=-1.0)

    def keep(self) -> None:
        """The run stops early: cut what no commit vouches for and let go, keeping the rest for a rerun."""
        with contextlib.suppress(OSError):
            self._file.flush()
        with contextlib.suppress(OSError):
            self._file.truncate(self.committed)
            os.fsync(self._file.fileno())
        self.close()

    def close(self) -> None:
        """Let go of the partial file (and its lock), keeping it and the journal for a rerun."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
