"""One job per work directory: an advisory lock file that names its holder.

Two ``ese run`` on the same work directory would both run every stage (twice the work, last
writer wins). :func:`work_lock` takes an exclusive ``flock`` on ``<dir>/.ese.lock`` and writes the
holder's process id and command into it; a second job is refused with one line naming that
process. The kernel drops the lock when its holder dies, so a stale lock left by a killed run is
simply taken over. The lock belongs to the process that writes: worker processes it forks share
it, and the same process may take it again (nested stages), so a job locks exactly once. In a
data-parallel job (``torchrun``, :mod:`ese.distributed`) only rank 0 writes, so only rank 0
locks; the other ranks pass through.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Iterator

from ese.atomic import output_errors
from ese.distributed import is_main
from ese.errors import LockError

LOCK_NAME = ".ese.lock"
_held: dict[Path, int] = {}  # lock path -> nesting depth in this process
_guard = threading.Lock()


def lock_holder(directory: str | os.PathLike, name: str = LOCK_NAME) -> str:
    """What the lock file of ``directory`` says about its holder ('' if nothing)."""
    try:
        return (Path(directory) / name).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def work_lock(directory: str | os.PathLike, what: str, *, name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold the lock ``name`` of ``directory`` (created if missing) for the block; LockError if
    another process holds it. ``name`` lets a job lock one output in a shared directory."""
    directory = Path(directory)
    path = Path(os.path.realpath(directory)) / name
    if not is_main():  # a data-parallel job's other ranks: rank 0 holds the job's lock
        yield path
        return
    with _guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _guard:
                _held[path] -= 1
        return
    with output_errors(directory):
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(directory, name) or "another process"
            raise LockError(f"{str(directory)!r} is in use by {holder}; wait for it to finish or stop "
                            "that process, or use another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({what})\n".encode(), 0)
        with _guard:
            _held[path] = 1
        try:
            yield path
        finally:
            with _guard:
                del _held[path]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
