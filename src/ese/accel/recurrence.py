"""The recurrences of docs/cycle-model.md section 2-3, compiled with numba.

One pass over the broadcast stream, op instance by op instance, column by column, PE by PE. All
times are int64 in units of ``1/unit`` cycle: ``unit = 1`` is the real model; the breakdown's
"balanced" variants run one virtual PE whose work is the column's total over the N PEs with every
constant scaled by ``unit = N`` (the max-plus recurrences are homogeneous, so this is the mean PE,
exactly, in integers).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ese.compiler.roles import ROLE_R, ROLE_X, ROLE_YM  # frozen into the compiled kernel: fixed codes
NEVER = np.int64(-(1 << 62))


@njit(cache=True, nogil=True)
def run_stream(inst_role, inst_layer, inst_step, inst_mat, mat_off, mat_cols, work, hidden, projects, n_steps,
               queue_depth, unit, fifo, lp, mac_lat, y_lat, ew_lat, ew_lanes, deps,
               busy, idle, stalled, rec_b, rec_s, rec_f, rec_avail, record):
    """Run the stream; returns ``(y_ready (L, T), f_last (Np,))``. ``queue_depth`` 0 = unbounded, ``ew_lanes`` 0 =
    an instantaneous element-wise stage. ``busy/idle/stalled`` (Np,) are accumulated; with
    ``record`` the per-column times are written to ``rec_*``. ``projects`` (L,) bool: the layer's
    y is its ym SpMV's output (LSTMP); else y is the element-wise output itself (GRU), ready when
    the last cell leaves the element-wise unit, which starts once both gate SpMVs are done."""
    n_pes = work.shape[0]
    n_layers = hidden.shape[0]
    f_prev = np.zeros(n_pes, dtype=np.int64)
    ring = np.full(max(queue_depth, 1), NEVER, dtype=np.int64)  # max_p s[p, c] of the last Q columns
    done = np.full((n_layers, 3, n_steps), NEVER, dtype=np.int64)
    ew_start = np.full((n_layers, n_steps), NEVER, dtype=np.int64)
    y_ready = np.full((n_layers, n_steps), NEVER, dtype=np.int64)
    b_prev = -unit
    c = 0
    for i in range(inst_role.shape[0]):
        role, l, t, m = inst_role[i], inst_layer[i], inst_step[i], inst_mat[i]
        base = np.int64(0)
        if deps:
            if role == ROLE_X and l > 0:
                base = y_ready[l - 1, t]
            elif role == ROLE_R and t > 0:
                base = y_ready[l, t - 1]
            elif role == ROLE_YM:
                start = max(done[l, ROLE_X, t], done[l, ROLE_R, t])
                if t > 0 and ew_lanes > 0:
                    start = max(start, ew_start[l, t - 1] + ((hidden[l] + ew_lanes - 1) // ew_lanes) * unit)
                ew_start[l, t] = start
                base = start + ew_lat
        off = mat_off[m]
        for k in range(mat_cols[m]):
            avail = base
            if deps and role == ROLE_YM and ew_lanes > 0:
                avail = base + (k // ew_lanes) * unit  # cell k leaves the element-wise unit
            free = max(b_prev + unit, avail)
            bc = free
            if queue_depth > 0:
                bc = max(bc, ring[c % queue_depth] + unit)  # every ActQueue has room again
            blocked = bc - free
            smax = NEVER
            for p in range(n_pes):
                s = max(f_prev[p], bc + fifo + lp)
                gap = s - f_prev[p]
                st = min(gap, blocked)
                stalled[p] += st
                idle[p] += gap - st
                w = work[p, off + k]
                busy[p] += w
                f = s + w
                if record:
                    rec_s[p, c] = s
                    rec_f[p, c] = f
                f_prev[p] = f
                if s > smax:
                    smax = s
            if record:
                rec_b[c] = bc
                rec_avail[c] = avail
            if queue_depth > 0:
                ring[c % queue_depth] = smax
            b_prev = bc
            c += 1
        fin = f_prev.max() + mac_lat
        done[l, role, t] = fin
        if role == ROLE_YM:
            y_ready[l, t] = fin + y_lat
        elif not projects[l] and done[l, ROLE_X, t] != NEVER and done[l, ROLE_R, t] != NEVER:
            start = max(done[l, ROLE_X, t], done[l, ROLE_R, t])
            if deps and t > 0 and ew_lanes > 0:
                start = max(start, ew_start[l, t - 1] + ((hidden[l] + ew_lanes - 1) // ew_lanes) * unit)
            ew_start[l, t] = start
            y_ready[l, t] = start + ew_lat + (((hidden[l] - 1) // ew_lanes) * unit if ew_lanes > 0 else 0)
    return y_ready, f_prev
