"""The cycle count the RTL must hit: ``ese.accel.cycles`` and, as an independent cross-check,
a literal transcription of docs/cycle-model.md sections 1-3 written with the RTL (the LSTMP's
rule with the ym op, and the rule of a cell without one, the GRU's).
"""

from __future__ import annotations

import math

NEG = -(1 << 60)


def transcribed_total(program, frames: int) -> int:
    """``total = y_ready(L-1, T-1)`` for ``frames`` frames, column by column, PE by PE."""
    hw = program.hardware
    N, Q, Lp, M = hw.pes, hw.queue_depth, hw.pointer_latency, hw.mac_latency
    lanes = hw.ew_lanes or N
    sched = program.schedule
    ops = {o.id: o for o in sched.ops}
    inst = [(ops[i].layer, ops[i].role, dt) for i, dt in sched.prologue if 0 <= dt < frames]
    for t in range(frames):
        inst += [(ops[i].layer, ops[i].role, t + dt) for i, dt in sched.steady if 0 <= t + dt < frames]
    b_prev = -1
    f = [0] * N
    s_hist: list[int] = []  # max_p s[p, c] per column
    done: dict[tuple[int, str, int], int] = {}
    ew_start: dict[tuple[int, int], int] = {}
    y_ready: dict[tuple[int, int], int] = {}
    for lay, role, t in inst:
        L = program.layers[lay]
        e = L.matrices()[{"x": "w_x", "r": "w_r", "ym": "w_ym"}[role]].column_entries  # (N, K)
        if role == "ym":
            start = max(done[(lay, "x", t)], done[(lay, "r", t)])
            if t > 0:
                start = max(start, ew_start[(lay, t - 1)] + math.ceil(L.hidden / lanes))
            ew_start[(lay, t)] = start
        for k in range(e.shape[1]):
            if role == "x":
                avail = y_ready[(lay - 1, t)] if lay > 0 else 0
            elif role == "r":
                avail = y_ready[(lay, t - 1)] if t > 0 else 0
            else:
                avail = ew_start[(lay, t)] + hw.ew_latency + k // lanes
            c = len(s_hist)
            b = max(b_prev + 1, avail, (s_hist[c - Q] + 1) if c - Q >= 0 else NEG)
            smax = NEG
            for p in range(N):
                w = max(1, math.ceil(int(e[p, k]) / hw.entries_per_cycle))
                s = max(f[p], b + 1 + (Lp if hw.pointer_prefetch else 0))
                f[p] = s + w + (0 if hw.pointer_prefetch else Lp)
                smax = max(smax, s)
            s_hist.append(smax)
            b_prev = b
        done[(lay, role, t)] = max(f) + M
        if role == "ym":
            y_ready[(lay, t)] = done[(lay, role, t)] + hw.y_latency
        elif "w_ym" not in L.matrices() and (lay, "x", t) in done and (lay, "r", t) in done:
            # no output SpMV (GRU): y_t is ready when the last cell leaves the element-wise stage
            start = max(done[(lay, "x", t)], done[(lay, "r", t)])
            if t > 0:
                start = max(start, ew_start[(lay, t - 1)] + math.ceil(L.hidden / lanes))
            ew_start[(lay, t)] = start
            y_ready[(lay, t)] = start + hw.ew_latency + (L.hidden - 1) // lanes
    return y_ready[(len(program.layers) - 1, frames - 1)]


def cycle_model_total(program, frames: int) -> int:
    """``ese.accel.cycles``' total when it exists, else the transcription; both must agree."""
    from ese.rtl.check import cycle_model_total as accel_total

    mine = transcribed_total(program, frames)
    real = accel_total(program, frames)
    assert real is None or real == mine, f"ese.accel.cycles {real} vs transcribed recurrences {mine}"
    return mine if real is None else real
