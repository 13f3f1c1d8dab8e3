"""Make one directory read-only or full for this process only, then run ``ese`` (or a test).

CI runs as root, which writes into a ``chmod 555`` directory, and a tmpfs needs a mount; so the
faults are injected at the write calls: ``readonly`` fails every create, open-for-write, mkdir
and rename under the directory with EROFS, as a read-only mount does; ``full`` lets files be
created but fails every write into them with ENOSPC, as a full disk does.

usage: python fs_faults.py readonly|full DIR ese-arguments...
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import sys
from pathlib import Path


def _under(path: object, root: str) -> bool:
    try:
        p = os.path.abspath(os.fsdecode(path))
    except TypeError:  # a file descriptor
        return False
    return p == root or p.startswith(root + os.sep)


def _error(code: int, path: object) -> OSError:
    return OSError(code, os.strerror(code), os.fsdecode(path))


class _FullFile:
    """A file whose writes fail as on a full disk."""

    def __init__(self, fh: io.IOBase, path: object) -> None:
        self._fh, self._path = fh, path

    def write(self, data: object) -> int:
        raise _error(errno.ENOSPC, self._path)

    def writelines(self, lines: object) -> None:
        raise _error(errno.ENOSPC, self._path)

    def __getattr__(self, name: str) -> object:
        return getattr(self._fh, name)

    def __enter__(self) -> "_FullFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def install(mode: str, directory: str | os.PathLike) -> None:
    """Inject ``mode`` (readonly or full) under ``directory`` into this process."""
    root = os.path.abspath(directory)
    real_open, real_os_open = builtins.open, os.open
    real_mkdir, real_replace, real_rename = os.mkdir, os.replace, os.rename
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def fake_open(file, mode_="r", *args, **kwargs):
        if _under(file, root) and any(c in mode_ for c in "wax+"):
            if mode == "readonly":
                raise _error(errno.EROFS, file)
            return _FullFile(real_open(file, mode_, *args, **kwargs), file)
        return real_open(file, mode_, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if mode == "readonly" and _under(path, root) and flags & writing:
            raise _error(errno.EROFS, path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if mode == "readonly" and _under(path, root):
            if os.path.isdir(path):
                raise _error(errno.EEXIST, path)
            raise _error(errno.EROFS, path)
        return real_mkdir(path, *args, **kwargs)

    def guarded(real):
        def move(src, dst, *args, **kwargs):
            if mode == "readonly" and _under(dst, root):
                raise _error(errno.EROFS, dst)
            return real(src, dst, *args, **kwargs)
        return move

    builtins.open = io.open = fake_open
    os.open, os.mkdir = fake_os_open, fake_mkdir
    os.replace, os.rename = guarded(real_replace), guarded(real_rename)


def main() -> None:
    mode, directory, *args = sys.argv[1:]
    install(mode, directory)
    sys.argv = ["ese", *args]
    from ese.cli import main as ese_main

    ese_main()


if __name__ == "__main__":
    main()
