"""One PE in simulation against a Python model: its accumulators and its column timing."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from rtl_helpers import toy_program

from ese.compiler.roles import ROLE_R, ROLE_X, ROLE_YM
from ese.config import HardwareConfig
from ese.rtl.params import rtl_params
from ese.rtl.pe import PE

pytestmark = pytest.mark.rtl


def pe_model(program, p: int, acts: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-PE accumulation: (gate sums in local order at Fsum incl. bias, projection sums)."""
    L = program.layers[0]
    P = rtl_params(program)
    rows = L.w_x.partition.rows_of_pe[p]
    gates = np.array(P.pe_images[p].bias[0], dtype=np.int64) \
        + ((L.w_x.decode()[rows] @ acts["x"]) << P.shift(ROLE_X)) + ((L.w_r.decode()[rows] @ acts["r"]) << P.shift(ROLE_R))
    proj = L.w_ym.decode()[L.w_ym.partition.rows_of_pe[p]] @ acts["ym"]
    return gates, proj


def run_pe(program, p: int, acts: dict[str, np.ndarray], gaps: np.ndarray):
    """Broadcast x, r, ym columns (each column its own op) with idle gaps; returns the PE's
    accumulators and the broadcast / finish cycle of every column."""
    P = rtl_params(program)
    dut = PE(params=P, image=P.pe_images[p])
    cols = [(role, k, int(acts[name][k])) for role, name in ((ROLE_X, "x"), (ROLE_R, "r"), (ROLE_YM, "ym"))
            for k in range(len(acts[name]))]
    b_at, f_at = [], []
    out: dict[str, np.ndarray] = {}
    img = P.pe_images[p]

    async def bench(ctx):
        ctx.set(dut.clear_gates, 3)
        ctx.set(dut.clear_proj, 3)
        await ctx.tick()
        ctx.set(dut.clear_gates, 0)
        ctx.set(dut.clear_proj, 0)
        i, cyc, wait = 0, 0, int(gaps[0])
        while len(f_at) < len(cols):
            fire = i < len(cols) and wait == 0 and ctx.get(dut.ready)
            if fire:
                role, k, a = cols[i]
                ctx.set(dut.in_valid, 1)
                ctx.set(dut.in_act, a)
                ctx.set(dut.in_col, P.ptr_offset(role) + k)
                ctx.set(dut.in_role, role)
                ctx.set(dut.in_par, 1 if role == ROLE_YM else 0)
                ctx.set(dut.in_last, 1)
                b_at.append(cyc)
                i += 1
                wait = int(gaps[i % len(gaps)])
            else:
                ctx.set(dut.in_valid, 0)
                wait = max(wait - 1, 0)
            pending = ctx.get(dut.pending)
            ctx.set(dut.complete, pending)
            if pending:
                f_at.append(cyc)
            await ctx.tick()
            cyc += 1
        ctx.set(dut.in_valid, 0)
        ctx.set(dut.complete, 0)
        for _ in range(P.mac_latency + 1):
            await ctx.tick()
        ctx.set(dut.ew0_par, 0)
        g = np.zeros((4, img.cells), dtype=np.int64)
        for j in range(img.cells):
            ctx.set(dut.ew0_cell, j)
            g[:, j] = [ctx.get(s) for s in (dut.ew0_acc_i, dut.ew0_acc_f, dut.ew0_acc_g, dut.ew0_acc_o)]
        ctx.set(dut.yo_par, 1)
        y = np.zeros(img.proj_rows, dtype=np.int64)
        for r in range(img.proj_rows):
            ctx.set(dut.yo_row, r)
            y[r] = ctx.get(dut.yo_acc)
        out["gates"], out["proj"] = g.ravel(), y

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["gates"], out["proj"], b_at, f_at


def column_times(program, p: int, b_at: list[int]) -> list[int]:
    """f[p, c] by the recurrence of docs/cycle-model.md (the broadcast cycles given)."""
    hw, L = program.hardware, program.layers[0]
    e = np.concatenate([L.w_x.column_entries[p], L.w_r.column_entries[p], L.w_ym.column_entries[p]])
    f, out = 0, []
    for b, n in zip(b_at, e):
        s = max(f, b + 1 + (hw.pointer_latency if hw.pointer_prefetch else 0))
        f = s + max(1, int(n)) + (0 if hw.pointer_prefetch else hw.pointer_latency)
        out.append(f)
    return out


@pytest.mark.parametrize("prefetch,lp,q,mac", [(True, 1, 2, 1), (True, 0, 1, 2), (False, 1, 3, 1), (False, 2, 1, 3)])
def test_pe_accumulates_like_the_model_and_keeps_the_column_timing(prefetch, lp, q, mac):
    hw = HardwareConfig(pes=3, queue_depth=q, pointer_prefetch=prefetch, pointer_latency=lp, mac_latency=mac,
                        index_bits=2)
    prog = toy_program(5, hw, input_dim=6, hidden=7, proj=5, density=0.5)
    rng = np.random.default_rng(1)
    acts = {"x": rng.integers(-2**15, 2**15, 6), "r": rng.integers(-2**15, 2**15, 5),
            "ym": rng.integers(-2**15, 2**15, 7)}
    for p in range(3):
        gates, proj, b_at, f_at = run_pe(prog, p, acts, rng.integers(0, 3, 7))
        want_g, want_p = pe_model(prog, p, acts)
        assert np.array_equal(gates, want_g), f"PE {p}: Python per-PE model vs RTL gate accumulators"
        assert np.array_equal(proj, want_p), f"PE {p}: Python per-PE model vs RTL projection accumulators"
        assert f_at == column_times(prog, p, b_at), f"PE {p}: recurrence f[p, c] vs RTL finish cycles"
