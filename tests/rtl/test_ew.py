"""The element-wise lane in simulation against the reference model's step (c_t and m_t of each cell)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from rtl_helpers import reference, shipped_small, toy_program

from ese.config import HardwareConfig
from ese.rtl.ew import EwLane
from ese.rtl.params import rtl_params
from ese.rtl.toy import random_frames

pytestmark = pytest.mark.rtl


def run_lane(P, lane: int, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Feed the exact gate sums of this lane's cells, step by step, one cell per cycle.

    ``acc`` (T, 4H) is the reference's PE output at Facc; shifted back to Fsum it is an exact sum
    whose rounding gives it again. Returns c (T, cells), m (T, cells) and the m latencies."""
    dut = EwLane(params=P, image=P.lanes[0][lane])
    T, H = acc.shape[0], P.hidden
    cells = np.arange(lane, H, P.pes)
    c = np.zeros((T, len(cells)), dtype=np.int64)
    m = np.zeros((T, len(cells)), dtype=np.int64)
    lat: list[int] = []
    up = P.f_sum - P.frac["acc"]

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        cyc, issued = 0, {}
        for t in range(T):
            seen_m = 0
            for j in range(len(cells) + P.ew_latency + 1):
                if j < len(cells):
                    k = cells[j]
                    ctx.set(dut.in_valid, 1)
                    ctx.set(dut.in_cell, j)
                    for port, g in zip((dut.acc_i, dut.acc_f, dut.acc_g, dut.acc_o), range(4)):
                        ctx.set(port, int(acc[t, g * H + k]) << up)
                    issued[j] = cyc
                else:
                    ctx.set(dut.in_valid, 0)
                if ctx.get(dut.c_valid):
                    c[t, ctx.get(dut.c_cell)] = ctx.get(dut.c_data)
                if ctx.get(dut.out_valid):
                    jj = ctx.get(dut.out_cell)
                    m[t, jj] = ctx.get(dut.out_data)
                    lat.append(cyc + 1 - issued[jj])  # readable from the next cycle
                    seen_m += 1
                await ctx.tick()
                cyc += 1
            assert seen_m == len(cells)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return c, m, lat


@pytest.mark.parametrize("source,ew_latency", [("toy", 4), ("toy-nopeep", 6), ("shipped", 4)])
def test_lane_equals_reference_step(source, ew_latency):
    hw = HardwareConfig(pes=3, ew_latency=ew_latency)
    if source == "shipped":
        from ese.compiler.program import compile_qmodel
        prog = compile_qmodel(shipped_small(), hw)
    else:
        prog = toy_program(11, hw, hidden=8, proj=4, peepholes=source == "toy", lut_index_bits=8)
    P = rtl_params(prog)
    x = random_frames(prog.to_qmodel(), 4, 2)
    tr = reference(prog, x).layers[0]
    for lane in range(3):
        c, m, lat = run_lane(P, lane, tr["acc"])
        cells = np.arange(lane, P.hidden, 3)
        assert np.array_equal(c, tr["c"][:, cells]), f"lane {lane}: reference c_t vs RTL"
        assert np.array_equal(m, tr["m"][:, cells]), f"lane {lane}: reference m_t vs RTL"
        assert set(lat) == {ew_latency}, f"lane {lane}: m latency {sorted(set(lat))} vs ew_latency {ew_latency}"
