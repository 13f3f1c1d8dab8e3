"""Check, before a command starts its work, that every place it will write can be written.

Without this, ``ese train --out`` on a read-only directory trains a whole epoch before failing.
Commands declare their output parameters with :func:`writes`; the check probes each location
(creating and removing a temporary file: the only test that also holds for root on a read-only
mount) and raises one OutputError naming the path and the cause. With ``all_or_none`` the
command's atomic writes are renamed only once all of them succeeded (``ese.atomic.all_or_none``).
"""

from __future__ import annotations

import functools
import inspect
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from ese.atomic import all_or_none as _all_or_none
from ese.atomic import describe_write_error
from ese.errors import OutputError

F = TypeVar("F", bound=Callable[..., Any])


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(directory: Path, named: Path) -> None:
    """Create and remove a file in ``directory``; errors name ``named`` (what the user passed)."""
    if not directory.is_dir():
        raise OutputError(f"cannot write {str(named)!r}: {str(directory)!r} is not a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ese-probe.", dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:  # whatever the reason, nothing can be written there
        raise OutputError(describe_write_error(named, exc)) from None


def check_writable(files: Iterable[str | os.PathLike | None] = (),
                   dirs: Iterable[str | os.PathLike | None] = ()) -> None:
    """OutputError unless every file in ``files`` and every directory in ``dirs`` can be written
    (missing parents count as writable when their nearest existing ancestor is)."""
    for f in files:
        if f is None:
            continue
        f = Path(f)
        if f.is_dir():
            raise OutputError(f"cannot write {str(f)!r}: it is a directory")
        _probe(_existing_ancestor(f.parent), f)
    for d in dirs:
        if d is None:
            continue
        d = Path(d)
        if d.exists() and not d.is_dir():
            raise OutputError(f"cannot write into {str(d)!r}: it is a file, not a directory")
        _probe(_existing_ancestor(d), d)


def writes(*files: str, dirs: tuple[str, ...] = (), all_or_none: bool = False) -> Callable[[F], F]:
    """Decorate a command: the parameters named in ``files`` (output files) and ``dirs`` (output
    directories) are checked with :func:`check_writable` before the command runs."""
    def deco(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            check_writable([bound.arguments.get(n) for n in files], [bound.arguments.get(n) for n in dirs])
            if not all_or_none:
                return fn(*args, **kwargs)
            with _all_or_none():
                return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return deco
