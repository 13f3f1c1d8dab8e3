"""numba kernels of the float engine: one layer step of any cell the engine runs, fused, over
per-thread cell groups (the element-wise step: :mod:`ese.runtime.cells`).

State vectors are feature-major ``(rows, B)`` (one column per stream) for the batched kernels and
flat ``(rows,)`` for the one-stream kernels. Every buffer is allocated by the caller; the kernels
only read weights and write into the given arrays. Layout: see :mod:`ese.runtime.layout`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ese.runtime.cells import ew_float_cells
from ese.runtime.layout import LANES
from ese.runtime.simd import row_times_batch, sell_rows

_JIT = {"cache": True, "fastmath": True, "nogil": True}


@nb.njit(inline="always", **_JIT)
def cell_rows(kind, blocks, acc, bias, xw, col, use_xw, st, out, lo, hi, vec, has_vec):
    """Cells [lo, hi) of one stream: each of their ``blocks`` accumulators (block-major rows
    ``g H + k``) gets its bias (and, when ``use_xw``, its precomputed input product ``xw[col]``),
    then the cell's element-wise step (:func:`ese.runtime.cells.ew_float_cells`, a loop over the
    cells) updates the state ``st`` and writes the output signal ``out``. Every one-stream kernel
    runs this."""
    H = st.shape[0]
    for g in range(blocks):
        if use_xw:
            for r in range(g * H + lo, g * H + hi):
                acc[r] += bias[r] + xw[col, r]
        else:
            for r in range(g * H + lo, g * H + hi):
                acc[r] += bias[r]
    ew_float_cells(kind, acc, H, lo, hi, st, out, vec, has_vec)


@nb.njit(parallel=True, **_JIT)
def step_one(kind, blocks, gp, gc, gv, gr, gslices, z, acc, bias, vec, has_vec, xw, col, use_xw, c, m,
             cell_bounds, pp, pc, pv, pr, pslices, y_out, yo, scratch):
    """One step of one stream. Accumulators: ``acc = G z`` with z = [x_t; y_{t-1}] (or z = y_{t-1}
    and ``xw[col]`` added when ``use_xw``); fused element-wise step over each thread's cells
    (:func:`cell_rows`); output product ``y_t`` written to ``y_out`` and to ``z[yo:]`` (the next
    step's input)."""
    nt = gslices.shape[0]
    for t in prange(nt):
        sell_rows(gp, gc, gv, gr, z, gslices[t], acc, scratch[t])
    for t in prange(cell_bounds.shape[0] - 1):
        cell_rows(kind, blocks, acc, bias, xw, col, use_xw, c, m, cell_bounds[t], cell_bounds[t + 1], vec, has_vec)
    for t in prange(pslices.shape[0]):
        sell_rows(pp, pc, pv, pr, m, pslices[t], y_out, scratch[t])
    P = y_out.shape[0] - 1
    for r in range(P):
        z[yo + r] = y_out[r]


@nb.njit(parallel=True, **_JIT)
def step_many(kind, blocks, groups, pgroups, x, y_in,
              xp, xc, xv, rp, rc, rv, bias, vec, has_vec,
              c, m, acc, scratch, pp, pc, pv, y_out):
    """One step of B streams (state columns): CSR rows, the batch in the inner (SIMD) loop. The
    element-wise step runs once per group of LANES cells over its LANES B (cell, stream) pairs as
    flat vectors; ``vec``: the element-wise vectors by group, each cell's value repeated per
    stream (:func:`ese.runtime.layout.stream_vectors`)."""
    B = c.shape[1]
    n = LANES * B  # (cell, stream) pairs of a group
    acc_f, c_f, m_f = acc.reshape(-1), c.reshape(-1), m.reshape(-1)
    for t in prange(groups.shape[0]):
        a = scratch[t]
        for j in range(groups.shape[1]):
            q = groups[t, j]
            if q < 0:
                break
            base = q * blocks * LANES
            for r in range(base, base + blocks * LANES):
                for b in range(B):
                    a[b] = bias[r]
                row_times_batch(xv, xc, x, xp[r], xp[r + 1], a, 0)
                row_times_batch(rv, rc, y_in, rp[r], rp[r + 1], a, 0)
                for b in range(B):
                    acc[r, b] = a[b]
            c0 = q * n  # block j of the group's (cell, stream) pair i at acc row-major j n + i
            ew_float_cells(kind, acc_f[base * B:(base + blocks * LANES) * B], n, 0, n, c_f[c0:c0 + n],
                           m_f[c0:c0 + n], vec[q if has_vec else 0], has_vec)
    for t in prange(pgroups.shape[0]):
        a = scratch[t]
        for j in range(pgroups.shape[1]):
            s = pgroups[t, j]
            if s < 0:
                break
            for r in range(s * LANES, (s + 1) * LANES):
                for b in range(B):
                    a[b] = 0.0
                row_times_batch(pv, pc, m, pp[r], pp[r + 1], a, 0)
                for b in range(B):
                    y_out[r, b] = a[b]


@nb.njit(parallel=True, **_JIT)
def input_products(blocks, groups, xp, xc, xv, x, out):
    """``out[r, n] = sum_e W_x[r, e] * x[e, n]`` for all frames n at once (utterance mode); exact
    for integer arrays, so the fixed-point engine uses it too."""
    N = x.shape[1]
    for t in prange(groups.shape[0]):
        for j in range(groups.shape[1]):
            q = groups[t, j]
            if q < 0:
                break
            for r in range(q * blocks * LANES, (q + 1) * blocks * LANES):
                o = out[r]
                for n in range(N):
                    o[n] = 0
                row_times_batch(xv, xc, x, xp[r], xp[r + 1], o, 0)


@nb.njit(parallel=True, cache=True, nogil=True)
def frame_major(xw, order, out):
    """``out[n, order[r]] = xw[r, n]`` for ``order[r] >= 0``: the input products of utterance mode
    (internal rows, frames in columns) in the model's row order, one frame per row, as the
    one-stream step reads them. A slice (LANES internal rows) maps to LANES consecutive model
    rows, so the writes of a slice land in the same cache lines (numpy's fancy indexing did
    this in tens of µs per frame)."""
    N = xw.shape[1]
    for s in prange(xw.shape[0] // LANES):
        for n in range(N):
            for lane in range(LANES):
                r = s * LANES + lane
                if order[r] >= 0:
                    out[n, order[r]] = xw[r, n]
