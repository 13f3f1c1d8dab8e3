"""The exported Verilog in Icarus Verilog equals the reference and the Amaranth run; Verilator lint."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from rtl_cycle_oracle import cycle_model_total
from rtl_helpers import reference, shipped_small, toy_qmodel

from ese.accel.trace_io import first_difference
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig
from ese.rtl.export import export_verilog, run_iverilog, verilator_lint
from ese.rtl.params import rtl_params
from ese.rtl.sim import simulate_top
from ese.rtl.toy import random_frames

pytestmark = [pytest.mark.rtl, pytest.mark.slow,  # Icarus Verilog and Verilator runs
              pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")]

CASES = {
    "toy": lambda: compile_qmodel(toy_qmodel(3, input_dim=5, hidden=7, proj=4, lut_index_bits=6),
                                  HardwareConfig(pes=3, queue_depth=2, pointer_prefetch=False, mac_latency=2)),
    "two-layers": lambda: compile_qmodel(toy_qmodel(5, input_dim=4, hidden=5, proj=3, lut_index_bits=6, layers=2),
                                         HardwareConfig(pes=2, queue_depth=3, y_latency=2)),
    "trained": lambda: compile_qmodel(shipped_small(), HardwareConfig(pes=8, queue_depth=4)),
    "gru": lambda: compile_qmodel(toy_qmodel(6, input_dim=4, hidden=5, layers=2, peepholes=False, lut_index_bits=6,
                                             cell="gru"), HardwareConfig(pes=2, queue_depth=2, ew_latency=3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_icarus_equals_reference_amaranth_and_cycle_model(case, tmp_path):
    prog = CASES[case]()
    x = random_frames(prog.to_qmodel(), 3, 4)
    params = rtl_params(prog, max_frames=3)
    vlog = run_iverilog(params, x, tmp_path)
    ref = reference(prog, x)
    assert np.array_equal(ref.y, vlog.y), f"reference model vs Icarus Verilog: {first_difference(ref.y, vlog.y, 'reference', 'Verilog')}"
    amaranth = simulate_top(params, x)
    assert vlog.cycles == amaranth.cycles == cycle_model_total(prog, 3), \
        f"Icarus {vlog.cycles} vs Amaranth {amaranth.cycles} vs cycle model {cycle_model_total(prog, 3)}"


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_verilator_lint_has_no_errors(tmp_path):
    path = export_verilog(rtl_params(CASES["toy"](), max_frames=3), tmp_path)
    ok, messages = verilator_lint(path)
    assert ok, messages[-3000:]
    assert "%Error" not in messages
