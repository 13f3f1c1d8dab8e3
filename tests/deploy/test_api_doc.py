"""docs/api.md's example runs as written, on a small trained model (issue 14)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ese

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_example_in_docs_api_md_runs(tiny_models, test_wav, tmp_path):
    block = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    shutil.copyfile(tiny_models["qnpz"], tmp_path / "model.qnpz")
    shutil.copyfile(test_wav, tmp_path / "utterance.wav")
    (tmp_path / "example.py").write_text(block)
    env = {**os.environ, "PYTHONPATH": str(Path(ese.__file__).resolve().parents[1])}  # this checkout's ese
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "ese-cpu 3" and lines[-1] == "(20, 48)"
    assert len(lines[1].split()) > 3  # the phones
