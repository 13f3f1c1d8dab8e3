"""yosys synth_xilinx on one PE (slow: about 10 s of yosys)."""

from __future__ import annotations

import shutil

import pytest
from rtl_helpers import toy_program

from ese.config import HardwareConfig
from ese.rtl.params import rtl_params
from ese.rtl.pe import PE
from ese.rtl.synth import markdown_table, parse_stat, synth_elaboratable

pytestmark = [pytest.mark.rtl, pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")]

STAT = """
   Number of cells:                 12
     CARRY4                          2
     DSP48E2                         1
     FDRE                            5
     LUT2                            3
     LUT6                            1
     RAMB18E2                        1
     RAM64M8                         2
"""


def test_parse_stat_counts_the_xilinx_primitives():
    r = parse_stat(STAT)
    assert (r["lut"], r["ff"], r["dsp"], r["bram36"], r["lutram_cells"], r["carry"]) == (4, 5, 1, 0.5, 2, 2)


@pytest.mark.slow
def test_one_pe_synthesizes_to_a_dsp_mac(tmp_path):
    prog = toy_program(2, HardwareConfig(pes=2), input_dim=8, hidden=8, proj=4)
    p = rtl_params(prog)
    r = synth_elaboratable(PE(params=p, image=p.pe_images[0]), "ese_pe", tmp_path)
    assert r["dsp"] >= 1 and r["lut"] > 0 and r["ff"] > 0 and r["longest_path_ltp"] > 0
    assert "| ese_pe |" in markdown_table({"ese_pe": r})


def test_synth_report_builds_every_block(monkeypatch, tmp_path):
    """The report's wiring (which blocks, which names) without running yosys."""
    from ese.rtl import synth

    seen = []
    monkeypatch.setattr(synth, "synth_elaboratable",
                        lambda block, name, out, **kw: seen.append((type(block).__name__, name, kw))
                        or setattr(block, "_MustUse__silence", True) or {})
    prog = toy_program(2, HardwareConfig(pes=2), hidden=3, proj=2, layers=2)
    rows = synth.synth_report({2: rtl_params(prog)}, tmp_path)
    assert list(rows) == ["pe", "ew_lane", "channel_2pe"]
    assert [s[:2] for s in seen] == [("PE", "ese_pe"), ("EwLane", "ese_ew_lane"), ("Channel", "ese_channel_2pe")]
