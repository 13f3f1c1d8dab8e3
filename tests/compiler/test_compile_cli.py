"""`ese compile` and `ese inspect`: the JSON contract keys, the files written, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ese.cli import app
from ese.compress.qmodel import save_qmodel

runner = CliRunner()


@pytest.fixture(scope="module")
def qnpz(small_qmodel, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "small.qnpz"
    save_qmodel(path, small_qmodel)
    return path


def test_compile_writes_image_report_and_schedule(qnpz, tmp_path):
    out = tmp_path / "m.ese"
    res = runner.invoke(app, ["compile", str(qnpz), "--pes", "4", "--index-bits", "3", "--out", str(out),
                              "--dot", str(tmp_path / "s.dot"), "--gantt", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    report = json.loads(out.with_suffix(".json").read_text())
    for key in ("compression_ratio", "bits_per_nonzero", "padding_entries", "nnz_per_pe"):
        assert key in report
    assert set(report["nnz_per_pe"]["layer1.w_r"]) >= {"min", "mean", "max"}
    assert report["pes"] == 4 and report["index_bits"] == 3
    assert "digraph" in (tmp_path / "s.dot").read_text() and (tmp_path / "s.png").stat().st_size > 0
    assert "compression ratio" in res.output

    res = runner.invoke(app, ["inspect", str(out), "--json", str(tmp_path / "i.json")])
    assert res.exit_code == 0, res.output
    inspected = json.loads((tmp_path / "i.json").read_text())
    assert inspected["header"]["version"] == 1 and inspected["nnz"] == report["nnz"]


def test_corrupt_image_is_one_line_and_exit_1(qnpz, tmp_path):
    out = tmp_path / "m.ese"
    assert runner.invoke(app, ["compile", str(qnpz), "--out", str(out)]).exit_code == 0
    data = bytearray(out.read_bytes())
    data[200] ^= 1
    out.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "ese", "inspect", str(out)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "SHA-256" in proc.stderr and "Traceback" not in proc.stderr
