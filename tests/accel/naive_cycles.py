"""docs/cycle-model.md sections 1-3 written out literally in plain Python: the golden the numba
recurrences are held against (slow; for tiny programs only)."""

from __future__ import annotations

import math

from ese.cell import cell_spec
from ese.config import HardwareConfig


def naive_total(program, hw: HardwareConfig, T: int) -> tuple[int, list[int], list[list[int]], list[list[int]]]:
    """(total cycles, b per column, s[p][c], f[p][c]) of an utterance of T frames."""
    ops = {o.id: o for o in program.schedule.ops}
    items = [(ops[i], dt) for i, dt in program.schedule.prologue]
    seq = [(o, t) for o, t in ((o, dt) for o, dt in items) if 0 <= t < T]
    for t in range(T):
        seq += [(ops[i], t + dt) for i, dt in program.schedule.steady if 0 <= t + dt < T]
    N, Q, Lp = hw.pes, hw.queue_depth, hw.pointer_latency
    lanes = hw.ew_lanes or hw.pes
    b: list[int] = []
    s: list[list[int]] = [[] for _ in range(N)]
    f: list[list[int]] = [[] for _ in range(N)]
    done: dict[tuple[str, int], int] = {}
    ew_start: dict[tuple[int, int], int] = {}
    y_ready: dict[tuple[int, int], int] = {}
    for op, t in seq:
        layer = program.layers[op.layer]
        m = getattr(layer, op.matrix)
        e = m.column_entries
        H = layer.hidden
        for k in range(m.n_cols):
            if op.role == "x":
                avail = 0 if op.layer == 0 else y_ready[(op.layer - 1, t)]
            elif op.role == "r":
                avail = 0 if t == 0 else y_ready[(op.layer, t - 1)]
            else:
                if k == 0:
                    start = max(done[(f"x{op.layer}", t)], done[(f"r{op.layer}", t)])
                    if t > 0:
                        start = max(start, ew_start[(op.layer, t - 1)] + math.ceil(H / lanes))
                    ew_start[(op.layer, t)] = start
                avail = ew_start[(op.layer, t)] + hw.ew_latency + k // lanes
            c = len(b)
            bc = max((b[-1] if b else -1) + 1, avail)
            if c - Q >= 0:
                bc = max(bc, max(s[p][c - Q] for p in range(N)) + 1)
            b.append(bc)
            for p in range(N):
                work = max(1, math.ceil(int(e[p, k]) / hw.entries_per_cycle))
                if not hw.pointer_prefetch:
                    work += Lp
                sp = max(f[p][-1] if f[p] else 0, bc + 1 + (Lp if hw.pointer_prefetch else 0))
                s[p].append(sp)
                f[p].append(sp + work)
        done[(op.name, t)] = max(f[p][-1] for p in range(N)) + hw.mac_latency
        if op.role == "ym":
            y_ready[(op.layer, t)] = done[(op.name, t)] + hw.y_latency
        elif cell_spec(program.model).projection is None and (f"x{op.layer}", t) in done and (f"r{op.layer}", t) in done:
            # no projection (GRU): y_t is the element-wise output, complete when the last cell leaves
            start = max(done[(f"x{op.layer}", t)], done[(f"r{op.layer}", t)])
            if t > 0:
                start = max(start, ew_start[(op.layer, t - 1)] + math.ceil(H / lanes))
            ew_start[(op.layer, t)] = start
            y_ready[(op.layer, t)] = start + hw.ew_latency + (H - 1) // lanes
    return y_ready[(len(program.layers) - 1, T - 1)], b, s, f
