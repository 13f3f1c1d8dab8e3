"""The GRU's element-wise lane in simulation against the integer reference's step (h_t of each unit)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from random_models import random_input, random_qmodel

from ese.compiler.program import compile_qmodel
from ese.compress.reference import ReferenceModel
from ese.config import HardwareConfig
from ese.rtl.ew_gru import GruLane
from ese.rtl.params import rtl_params

pytestmark = pytest.mark.rtl


def run_lane(P, lane: int, acc: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Feed the exact sums of this lane's units (acc (T, 4H) at Facc shifted back to Fsum), one
    unit per cycle, step after step; returns h (T, units) and the latencies."""
    dut = GruLane(params=P, image=P.lanes[0][lane])
    H, T = P.hidden, acc.shape[0]
    cells = np.arange(lane, H, P.pes)
    h = np.zeros((T, len(cells)), dtype=np.int64)
    lat: list[int] = []
    up = P.f_sum - P.frac["acc"]

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        cyc, issued = 0, {}
        for t in range(T):
            seen = 0
            ctx.set(dut.in_par, t % 2)
            for j in range(len(cells) + P.ew_latency + 1):
                if j < len(cells):
                    ctx.set(dut.in_valid, 1)
                    ctx.set(dut.in_cell, j)
                    for b, name in enumerate(P.acc_blocks):
                        ctx.set(getattr(dut, f"acc_{name}"), int(acc[t, b * H + cells[j]]) << up)
                    issued[j] = cyc
                else:
                    ctx.set(dut.in_valid, 0)
                if ctx.get(dut.out_valid):
                    jj = ctx.get(dut.out_cell)
                    h[t, jj] = ctx.get(dut.out_data)
                    lat.append(cyc + 1 - issued[jj])
                    seen += 1
                await ctx.tick()
                cyc += 1
            assert seen == len(cells)
            for j in range(len(cells)):  # both read ports see h_t at parity t % 2
                ctx.set(dut.rd_cell, j)
                ctx.set(dut.rd_par, t % 2)
                ctx.set(dut.yo_cell, j)
                ctx.set(dut.yo_par, t % 2)
                assert ctx.get(dut.rd_data) == ctx.get(dut.yo_data) == h[t, j]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return h, lat


@pytest.mark.parametrize("seed,ew_latency,shift", [(0, 3, 0), (1, 5, 2), (2, 4, -1)])
def test_gru_lane_equals_reference_step(seed, ew_latency, shift):
    H = 7
    qm = random_qmodel(cell="gru", D=5, H=H, P=H, layers=1, density=0.6, seed=seed, peepholes=False,
                       lut_bits=8, shift=shift)
    tr = ReferenceModel(qm).run(random_input(qm, 5, seed=seed)).layers[0]
    assert np.abs(tr["h"]).max() > 0
    for pes in (3, 1):
        P = rtl_params(compile_qmodel(qm, HardwareConfig(pes=pes, ew_latency=ew_latency)))
        for lane in sorted({0, pes - 1}):
            h, lat = run_lane(P, lane, tr["acc"])
            cells = np.arange(lane, H, pes)
            assert np.array_equal(h, tr["h"][:, cells]), f"lane {lane} of {pes}: reference h_t vs RTL"
            assert set(lat) == {ew_latency}


def test_the_gru_lane_needs_three_stages():
    from ese.rtl.errors import RtlError

    qm = random_qmodel(cell="gru", D=3, H=4, P=4, peepholes=False)
    with pytest.raises(RtlError, match=r"ew_latency=2 \(the element-wise lane has 3 stages; >= 3\)"):
        rtl_params(compile_qmodel(qm, HardwareConfig(pes=2, ew_latency=2)))
    assert rtl_params(compile_qmodel(qm, HardwareConfig(pes=2, ew_latency=3))).ew_latency == 3
