"""Run ``ese`` in this process (main(): one line and an exit status, as from the shell) — the
subprocess start-up (seconds on a loaded machine) kept for the tests that need a real process."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def ese(capsys: pytest.CaptureFixture, *args: str) -> Result:
    from ese.cli import main

    capsys.readouterr()
    argv, sys.argv = sys.argv, ["ese", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    out = capsys.readouterr()
    return Result(code, out.out, out.err)
