"""`ese simulate` and `ese sweep` on a small model: output files, JSON keys, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from accel_models import random_qmodel
from typer.testing import CliRunner

from ese.accel.errors import AccelError
from ese.accel.trace_io import load_trace
from ese.cli import app
from ese.compress.qmodel import save_qmodel

runner = CliRunner()


def _model(tmp_path, name="small", seed=0):
    path = tmp_path / f"{name}.qnpz"
    save_qmodel(path, random_qmodel(D=10, H=32, P=16, density=0.2, seed=seed))
    return path


def test_simulate_writes_the_report_and_a_checked_trace(tmp_path):
    model = _model(tmp_path)
    out = tmp_path / "sim.json"
    res = runner.invoke(app, ["simulate", str(model), "--pes", "4", "--queue-depth", "2", "--channels", "2",
                              "--frames", "6", "--json", str(out), "--trace", str(tmp_path / "t.npz"), "--check"])
    assert res.exit_code == 0, res.output
    assert "where the cycles of a frame go" in res.output and "equal to the reference model" in res.output
    js = json.loads(out.read_text())
    for key in ("cycles_per_frame", "ideal_cycles_per_frame", "latency_us", "utilization", "gops_sparse",
                "gops_dense_equivalent", "breakdown"):
        assert key in js
    assert js["hardware"]["pes"] == 4 and js["hardware"]["queue_depth"] == 2
    assert abs(sum(js["breakdown"].values()) - js["cycles_per_frame"]) < 1e-9 * js["cycles_per_frame"]
    trace, meta = load_trace(tmp_path / "t.npz")
    assert trace.y.shape == (6, 16) and meta["frames"] == 6


def test_sweep_writes_tables_plots_and_a_proposal(tmp_path):
    a, b = _model(tmp_path, "a", 1), _model(tmp_path, "b", 2)
    res = runner.invoke(app, ["sweep", str(a), str(b), "--out", str(tmp_path / "sw"), "--pes", "2,4",
                              "--queue-depths", "1,4", "--index-bits", "3,4", "--channels", "1,2",
                              "--frames", "3", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    js = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert len(js["rows"]) == 2 * (2 * 2 + 2 + 2)  # per model: PEs x queues, index widths, channels
    assert set(js["proposal"]) == {"a", "b"}
    for name in ("sweep.md", "utilization_vs_pes.png", "pareto_latency_vs_pes.png", "latency_vs_queue_a.png"):
        assert (tmp_path / "sw" / name).stat().st_size > 0


def test_bad_inputs_are_project_errors(tmp_path):
    res = runner.invoke(app, ["simulate", str(tmp_path / "missing.qnpz")])
    assert isinstance(res.exception, AccelError) and "does not exist" in str(res.exception)
    res = runner.invoke(app, ["sweep", str(_model(tmp_path)), "--pes", "8,x"])
    assert "--pes must be comma-separated integers" in str(res.exception)


def test_cli_error_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ese", "simulate", str(_model(tmp_path)), "--queue-depth", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: HardwareConfig.queue_depth must be at least 1, not 0"]
