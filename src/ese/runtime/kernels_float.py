"""numba kernels of the float engine: one LSTMP layer step, fused, over per-thread cell groups.

State vectors are feature-major ``(rows, B)`` (one column per stream) for the batched kernels and
flat ``(rows,)`` for the one-stream kernels. Every buffer is allocated by the caller; the kernels
only read weights and write into the given arrays. Layout: see :mod:`ese.runtime.layout`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ese.runtime.layout import LANES
from ese.runtime.simd import row_times_batch, sell_rows

_JIT = {"cache": True, "fastmath": True, "nogil": True}


@nb.njit(inline="always", **_JIT)
def tanh(x: float) -> float:
    """tanh by a [13/6] rational approximation on [-9, 9] (branch-free, vectorizes; ~1e-7 abs)."""
    x = min(max(x, np.float32(-9.0)), np.float32(9.0))
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return x * p / q


@nb.njit(inline="always", **_JIT)
def sigmoid(x: float) -> float:
    return np.float32(0.5) + np.float32(0.5) * tanh(np.float32(0.5) * x)


@nb.njit(inline="always", **_JIT)
def cell(zi, zf, zg, zo, cp, peep, k, has_peep):
    """The LSTMP cell update of cell k from its four gate pre-activations: (c_t, m_t)."""
    if has_peep:
        zi += peep[0, k] * cp
        zf += peep[1, k] * cp
    cn = sigmoid(zf) * cp + sigmoid(zi) * tanh(zg)
    if has_peep:
        zo += peep[2, k] * cn
    return cn, sigmoid(zo) * tanh(cn)


@nb.njit(parallel=True, **_JIT)
def step_one(gp, gc, gv, gr, gslices, z, acc, bias, peep, has_peep, xw, col, use_xw, c, m,
             cell_bounds, pp, pc, pv, pr, pslices, y_out, yo, scratch):
    """One step of one stream. Gates: ``acc = G z`` with z = [x_t; y_{t-1}] (or z = y_{t-1}
    and ``xw[col]`` added when ``use_xw``); fused cell update over each thread's cells;
    projection ``y_t`` written to ``y_out`` and to ``z[yo:]`` (the next step's input)."""
    nt = gslices.shape[0]
    for t in prange(nt):
        sell_rows(gp, gc, gv, gr, z, gslices[t], acc, scratch[t])
    H = c.shape[0]
    for t in prange(cell_bounds.shape[0] - 1):
        for k in range(cell_bounds[t], cell_bounds[t + 1]):
            zi = acc[k] + bias[k]
            zf = acc[H + k] + bias[H + k]
            zg = acc[2 * H + k] + bias[2 * H + k]
            zo = acc[3 * H + k] + bias[3 * H + k]
            if use_xw:
                zi += xw[col, k]
                zf += xw[col, H + k]
                zg += xw[col, 2 * H + k]
                zo += xw[col, 3 * H + k]
            c[k], m[k] = cell(zi, zf, zg, zo, c[k], peep, k, has_peep)
    for t in prange(pslices.shape[0]):
        sell_rows(pp, pc, pv, pr, m, pslices[t], y_out, scratch[t])
    P = y_out.shape[0] - 1
    for r in range(P):
        z[yo + r] = y_out[r]


@nb.njit(parallel=True, **_JIT)
def step_many(groups, pgroups, x, y_in,
              xp, xc, xv, rp, rc, rv, bias, peep, has_peep,
              c, m, acc, scratch, pp, pc, pv, y_out):
    """One step of B streams (state columns): CSR rows, the batch in the inner (SIMD) loop."""
    B = c.shape[1]
    for t in prange(groups.shape[0]):
        a = scratch[t]
        for j in range(groups.shape[1]):
            q = groups[t, j]
            if q < 0:
                break
            base = q * 4 * LANES
            for r in range(base, base + 4 * LANES):
                for b in range(B):
                    a[b] = bias[r]
                row_times_batch(xv, xc, x, xp[r], xp[r + 1], a, 0)
                row_times_batch(rv, rc, y_in, rp[r], rp[r + 1], a, 0)
                for b in range(B):
                    acc[r, b] = a[b]
            for lane in range(LANES):
                k = q * LANES + lane
                for b in range(B):
                    zi = acc[base + lane, b]
                    zf = acc[base + LANES + lane, b]
                    zg = acc[base + 2 * LANES + lane, b]
                    zo = acc[base + 3 * LANES + lane, b]
                    c[k, b], m[k, b] = cell(zi, zf, zg, zo, c[k, b], peep, k, has_peep)
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
def input_products(groups, xp, xc, xv, x, out):
    """``out[r, n] = sum_e W_x[r, e] * x[e, n]`` for all frames n at once (utterance mode); exact
    for integer arrays, so the fixed-point engine uses it too."""
    N = x.shape[1]
    for t in prange(groups.shape[0]):
        for j in range(groups.shape[1]):
            q = groups[t, j]
            if q < 0:
                break
            for r in range(q * 4 * LANES, (q + 1) * 4 * LANES):
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
