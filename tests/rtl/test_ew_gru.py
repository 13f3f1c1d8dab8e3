"""The GRU's element-wise lane in simulation against the integer reference's step (h_t of each unit)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from random_models import random_input, random_qmodel

from ese.compress.reference import ReferenceModel
from ese.rtl.ew_gru import GruLane, gru_lane_config

pytestmark = pytest.mark.rtl


def run_lane(cfg, cells: np.ndarray, acc: np.ndarray, H: int) -> tuple[np.ndarray, list[int]]:
    """Feed the exact sums of ``cells`` (acc (T, 4H) at Facc shifted back to Fsum), one unit per
    cycle, step after step; returns h (T, len(cells)) and the latencies."""
    dut = GruLane(config=cfg, cells=len(cells))
    T = acc.shape[0]
    h = np.zeros((T, len(cells)), dtype=np.int64)
    lat: list[int] = []
    up = cfg.f_sum - cfg.frac["acc"]

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        cyc, issued = 0, {}
        for t in range(T):
            seen = 0
            for j in range(len(cells) + cfg.ew_latency + 1):
                if j < len(cells):
                    ctx.set(dut.in_valid, 1)
                    ctx.set(dut.in_cell, j)
                    for port, b in zip((dut.acc_r, dut.acc_z, dut.acc_nx, dut.acc_nh), range(4)):
                        ctx.set(port, int(acc[t, b * H + cells[j]]) << up)
                    issued[j] = cyc
                else:
                    ctx.set(dut.in_valid, 0)
                if ctx.get(dut.h_valid):
                    jj = ctx.get(dut.h_cell)
                    h[t, jj] = ctx.get(dut.h_data)
                    lat.append(cyc + 1 - issued[jj])
                    seen += 1
                await ctx.tick()
                cyc += 1
            assert seen == len(cells)

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
    cfg = gru_lane_config(qm, 0, ew_latency)
    for lane, pes in ((0, 3), (2, 3), (0, 1)):
        cells = np.arange(lane, H, pes)
        h, lat = run_lane(cfg, cells, tr["acc"], H)
        assert np.array_equal(h, tr["h"][:, cells]), f"lane {lane} of {pes}: reference h_t vs RTL"
        assert set(lat) == {ew_latency}


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_the_lane_needs_three_stages():
    qm = random_qmodel(cell="gru", D=3, H=4, P=4, peepholes=False)
    with pytest.raises(ValueError, match="ew_latency must be >= 3"):
        GruLane(config=gru_lane_config(qm, 0, 2), cells=2)
