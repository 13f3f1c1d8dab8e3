"""Run the Top in Amaranth's simulator: frames in, every y_t and the cycle count out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from ese.rtl.errors import RtlError
from ese.rtl.params import RtlParams
from ese.rtl.top import Top


@dataclass
class RtlRun:
    """What the hardware produced: y (T, P) int64 and the utterance's cycle count; from the
    Amaranth run also the broadcast cycle of every column ``b`` (C,) and the pop cycles ``s`` (N, C)."""

    y: np.ndarray
    cycles: int
    b: np.ndarray | None = None
    s: np.ndarray | None = None


def simulate_top(params: RtlParams, x_q: np.ndarray, *, max_cycles: int = 1_000_000,
                 vcd: str | None = None, repeat: int = 1) -> RtlRun:
    """Write the frames, start, collect the output stream until ``done`` (RtlError on a hang).

    ``repeat`` > 1 starts the same utterance again after ``done`` without a reset (the returned
    run is the last; ``RtlError`` if any run's y or cycle count differs from the first's)."""
    x_q = np.asarray(x_q, dtype=np.int64)
    T, D = x_q.shape
    if not 1 <= T <= params.max_frames or D != params.input_dim:
        raise RtlError(f"frames of shape {x_q.shape} do not fit (1..{params.max_frames}, {params.input_dim})")
    dut = Top(params=params)
    y = np.zeros((T, params.proj), dtype=np.int64)
    seen = np.zeros((T, params.proj), dtype=bool)
    out: dict[str, int] = {}
    b_at: list[int] = []
    s_at: list[list[int]] = [[] for _ in range(params.pes)]

    async def bench(ctx) -> None:
        ctx.set(dut.frame_we, 1)
        for a, v in enumerate(x_q.ravel()):
            ctx.set(dut.frame_addr, a)
            ctx.set(dut.frame_data, int(v))
            await ctx.tick()
        ctx.set(dut.frame_we, 0)
        ctx.set(dut.n_frames, T)
        for run in range(repeat):
            if run:
                first = (y.copy(), out.pop("cycles", None))
                y[:], seen[:] = 0, False
                b_at.clear()
                for s in s_at:
                    s.clear()
            await one_run(ctx)
            if run and (not np.array_equal(first[0], y) or first[1] != out.get("cycles")):
                out["repeat_differs"] = run

    async def one_run(ctx) -> None:
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for cyc in range(max_cycles):
            if ctx.get(dut.bcast):
                b_at.append(cyc)
            pops = ctx.get(dut.pops)
            for p in range(params.pes):
                if pops >> p & 1:
                    s_at[p].append(cyc)
            if ctx.get(dut.y_valid):
                t, i = ctx.get(dut.y_step), ctx.get(dut.y_index)
                y[t, i], seen[t, i] = ctx.get(dut.y_data), True
            if ctx.get(dut.done):
                out["cycles"] = ctx.get(dut.cycles)
                return
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    if "repeat_differs" in out:
        raise RtlError(f"run {out['repeat_differs']} after a restart differs from the first run")
    if "cycles" not in out:
        raise RtlError(f"the RTL did not finish {T} frames within {max_cycles} cycles")
    if not seen.all():
        raise RtlError("the RTL finished without streaming every y element")
    return RtlRun(y, int(out["cycles"]), np.array(b_at, dtype=np.int64), np.array(s_at, dtype=np.int64))
