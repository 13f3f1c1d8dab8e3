"""What the RTL refuses (pinned messages), the fixed-point helpers, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st
from rtl_helpers import SHIPPED, toy_program
from typer.testing import CliRunner

from ese.compress.fixedpoint import align as np_align
from ese.compress.fixedpoint import saturate as np_saturate
from ese.config import HardwareConfig
from ese.rtl.errors import RtlError
from ese.rtl.fixed import align, saturate
from ese.rtl.params import rtl_params

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize("change,message", [
    ({"entries_per_cycle": 2}, "entries_per_cycle=2 (one MAC per PE per cycle)"),
    ({"ew_lanes": 1}, "ew_lanes=1 (one element-wise lane per PE: 0 or 2)"),
    ({"ew_latency": 3}, "ew_latency=3 (the element-wise lane has 4 stages; >= 4)"),
    ({"mac_latency": 0}, "mac_latency=0 (>= 1)"),
])
def test_unsupported_settings_are_refused_by_name(change, message):
    prog = toy_program(0, HardwareConfig(pes=2, **change))
    with pytest.raises(RtlError, match=r"the RTL does not implement this program: ") as exc:
        rtl_params(prog)
    assert message in str(exc.value)


@settings(max_examples=20, deadline=None)
@given(values=st.lists(st.integers(-(1 << 20), (1 << 20) - 1), min_size=1, max_size=20),
       shift=st.integers(-3, 6), bits=st.integers(4, 16))
def test_align_and_saturate_equal_the_spec(values, shift, bits):
    m = Module()
    a, out = Signal(signed(21)), Signal(signed(32))
    m.d.comb += out.eq(saturate(align(a, shift), bits))
    got = []

    async def bench(ctx):
        for v in values:
            ctx.set(a, v)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    want = np_saturate(np_align(np.array(values, dtype=np.int64), shift, 0), bits)
    assert got == [int(v) for v in want]


@pytest.mark.slow  # CLI subprocesses that simulate and export the RTL
def test_cli_sim_and_export(tmp_path):
    from ese.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["rtl", "sim", str(SHIPPED), "--crop", "12,6,8", "--pes", "4", "--frames", "2",
                              "--json", str(tmp_path / "sim.json")])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "sim.json").read_text())
    assert out["match"] and out["rtl_cycles"] > 0
    res = runner.invoke(app, ["rtl", "export", str(SHIPPED), "--crop", "12,6,8", "--pes", "4", "--no-lint",
                              "--out", str(tmp_path / "v")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "v" / "ese_top.v").read_text().count("module ") >= 3
    res = runner.invoke(app, ["rtl", "sim", str(SHIPPED), "--crop", "12"])
    assert res.exit_code != 0 and "--crop must be H,P or H,P,D" in str(res.exception or res.output)


def test_cli_sim_reads_a_program_image(tmp_path):
    from ese.cli import app
    from ese.compiler.image import save_program

    prog = toy_program(4, HardwareConfig(pes=3, queue_depth=2, pointer_prefetch=False), hidden=5, proj=3)
    save_program(tmp_path / "toy.ese", prog)
    res = CliRunner().invoke(app, ["rtl", "sim", str(tmp_path / "toy.ese"), "--frames", "2", "--simulator",
                                   "iverilog", "--out", str(tmp_path / "iv"), "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["match"] and out["cycles_match"], out


@pytest.mark.parametrize("cell", ["lstmp", "gru"])
def test_crop_keeps_the_first_cells_of_every_block(cell):
    """``crop_qmodel`` cuts any cell by its description; the cut model runs exactly in the RTL."""
    from rtl_helpers import reference, toy_qmodel

    from ese.compiler.program import compile_qmodel
    from ese.rtl.sim import simulate_top
    from ese.rtl.toy import crop_qmodel, random_frames

    qm = toy_qmodel(2, input_dim=5, hidden=6, proj=4, cell=cell, peepholes=cell == "lstmp", density=0.6)
    cut = crop_qmodel(qm, hidden=3, proj=2, input_dim=4)
    big, small = qm.layers[0], cut.layers[0]
    for m in qm.cell.gate_matrices:  # rows b * H + k for k < 3 of every row block, the first 4 inputs or y
        cols = 4 if m.operand == "x" else cut.model.proj
        want = np.concatenate([getattr(big, m.name)[b * 6:b * 6 + 3, :cols] for b in range(len(m.blocks))])
        assert np.array_equal(getattr(small, m.name), want), m.name
    assert cut.model.proj == (2 if cell == "lstmp" else 3)
    prog = compile_qmodel(cut, HardwareConfig(pes=2))
    x = random_frames(cut, 2, 0)
    assert np.array_equal(simulate_top(rtl_params(prog, max_frames=2), x).y, reference(prog, x).y)
