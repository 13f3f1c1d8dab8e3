"""Atomic file writes: write to a temporary file in the same directory, fsync, then rename.

A crash or Ctrl-C therefore never leaves a half-written artefact under the final name. A full,
read-only or forbidden destination becomes one :class:`~ese.errors.OutputError` naming the file
and the cause (never a traceback), and inside :func:`all_or_none` the renames wait until every
output of a command is written, so a command leaves all of its outputs or none.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from ese.errors import OutputError

# errors that mean "this location cannot take the file", as opposed to bugs or missing inputs
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG,
                          errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG})

_staged: contextvars.ContextVar[list[tuple[Path, Path]] | None] = contextvars.ContextVar("ese_staged", default=None)


def describe_write_error(path: str | os.PathLike, exc: OSError) -> str:
    """One line naming ``path`` and the cause, e.g. ``cannot write 'x': no space left on device``."""
    cause = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    if exc.errno == errno.ENOSPC:
        cause += " (the disk is full)"
    elif exc.errno == errno.EEXIST:
        cause = "a file is in the way of a directory it needs"
    return f"cannot write {str(path)!r}: {cause}"


@contextlib.contextmanager
def output_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn an OSError that means "cannot write here" into an OutputError naming ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise OutputError(describe_write_error(path, exc)) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``."""
    path = Path(path)
    with output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    tmp_path = Path(tmp)
    staged = _staged.get()
    keep = False
    try:
        with output_errors(path):
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
            if staged is None:
                os.replace(tmp_path, path)
            else:
                staged.append((tmp_path, path))
                keep = True
    finally:
        if not keep and tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def all_or_none() -> Iterator[None]:
    """Defer the renames of every :func:`atomic_path` inside until the block succeeds.

    On any error the written temporaries are removed and the old files stay as they were.
    """
    staged: list[tuple[Path, Path]] = []
    token = _staged.set(staged)
    try:
        yield
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _staged.reset(token)
    for tmp, final in staged:
        with output_errors(final):
            os.replace(tmp, final)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a file for writing that only appears under ``path`` once closed without error."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` atomically (plain Python I/O, so a full disk says so)."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths show up in reports; make them plain JSON
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {obj!r}")
