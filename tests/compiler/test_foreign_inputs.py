"""`ese compile` on something that is not a .qnpz says what it is, and never suggests loading a
file unsafely (issue 12, item 9: numpy's 'If you trust the file you can load it unsafely')."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ese.compiler.image import save_program
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig


@pytest.mark.parametrize("kind,expected", [
    ("image", "is not a fixed-point model (.qnpz from ese quantize): it is an ese program image (.ese)"),
    ("elf", "is not a fixed-point model (.qnpz from ese quantize): it is an ELF executable or library"),
    ("text", "is unreadable or truncated (a text file)"),
])
def test_compile_says_what_the_file_is(small_qmodel, tmp_path, kind, expected):
    path = tmp_path / f"input.{kind}"
    if kind == "image":
        save_program(path, compile_qmodel(small_qmodel, HardwareConfig(pes=2)))
    elif kind == "elf":
        path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(200))
    else:
        path.write_text("hello\n")
    proc = subprocess.run([sys.executable, "-m", "ese", "compile", str(path), "--out", str(tmp_path / "m.ese")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and str(path) in lines[0]
    assert "unsafe" not in proc.stderr and "allow_pickle" not in proc.stderr
    assert not (tmp_path / "m.ese").exists()
