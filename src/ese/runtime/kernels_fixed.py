"""numba kernels of the fixed-point engine: bit-exact with ese.compress.reference (spec v1).

Same structure as :mod:`ese.runtime.kernels_float` (cell groups per thread, fused element-wise
stage of any cell the engine runs, :mod:`ese.runtime.cells`), integer arithmetic of
docs/fixed-point.md section 4 (:mod:`ese.runtime.arith`): exact int64 sums, ``align`` = round half
up by add-half-and-arithmetic-shift, saturation, LUT lookups. Shifts and widths come in one int64
vector ``sh`` (layout: :mod:`ese.runtime.cells`, built by :func:`ese.runtime.weights.fixed_shifts`).
:func:`cell_rows` (the accumulators and element-wise step of a range of cells) and
:func:`output_rows` (the output stage) serve every one-stream kernel, int64 here and int32 /
int16 in :mod:`ese.runtime.kernels_int16`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ese.runtime.arith import align, sat
from ese.runtime.cells import ABITS, ACCBITS, SACC, SAY, SR, SX, SY, ENGINE_CELLS, ew_fixed_cells, ew_fixed_rows
from ese.runtime.kernels_float import input_products  # noqa: F401  (exact on integers: shared)
from ese.runtime.layout import LANES
from ese.runtime.simd import row_times_batch, sell_rows

_JIT = {"cache": True, "nogil": True}
EW_SCRATCH = max(c.scratch for c in ENGINE_CELLS.values())  # int64 per cell of the element-wise step


@nb.njit(inline="always", **_JIT)
def cell_rows(kind, blocks, acc, bias, xw, col, use_xw, st, out, lo, hi, vec, has_vec, sh, lsig, ltanh):
    """Cells [lo, hi) of one stream: each of their accumulators (block-major rows ``g H + k``,
    holding the exact gate sum at Fsum without its bias) becomes ``sat(align(sum + bias
    [+ align(xw[col], SX)], SACC))``, then the cell's element-wise step
    (:func:`ese.runtime.cells.ew_fixed_cells`, vectorized over the cells) updates the state
    ``st`` and writes ``out``."""
    H = st.shape[0]
    ACC, sx, sacc = sh[ACCBITS], sh[SX], sh[SACC]
    for g in range(blocks):
        if use_xw:
            for r in range(g * H + lo, g * H + hi):
                acc[r] = sat(align(acc[r] + bias[r] + align(xw[col, r], sx), sacc), ACC)
        else:
            for r in range(g * H + lo, g * H + hi):
                acc[r] = sat(align(acc[r] + bias[r], sacc), ACC)
    w = np.empty(EW_SCRATCH * max(hi - lo, 0), dtype=np.int64)
    ew_fixed_cells(kind, acc, H, lo, hi, st, out, vec, has_vec, sh, lsig, ltanh, w)


@nb.njit(inline="always", **_JIT)
def output_rows(acc_y, y_out, z, yo, szy, sh):
    """The output stage of one stream: ``acc_y = sat(align(acc_y, SAY))``, ``y = sat_A(align(acc_y,
    SY))`` into ``y_out`` and, shifted by ``szy``, into ``z[yo:]`` (the next step's input)."""
    ACC, A, say, sy = sh[ACCBITS], sh[ABITS], sh[SAY], sh[SY]
    for r in range(y_out.shape[0] - 1):
        ay = sat(align(acc_y[r], say), ACC)
        acc_y[r] = ay
        y = sat(align(ay, sy), A)
        y_out[r] = y
        z[yo + r] = align(y, szy)


@nb.njit(parallel=True, **_JIT)
def step_one(kind, blocks, gp, gc, gv, gr, gslices, z, acc, bias, vec, has_vec, xw, col, use_xw, c, m,
             cell_bounds, pp, pc, pv, pr, pslices, y_out, yo, scratch, acc_y, sh, lsig, ltanh):
    """One step of one stream (see kernels_float.step_one). ``z`` holds x << -SX and
    y << -SR, so ``G z`` is the exact gate sum at Fsum; ``xw`` (use_xw) the unshifted W_x x."""
    for t in prange(gslices.shape[0]):
        sell_rows(gp, gc, gv, gr, z, gslices[t], acc, scratch[t])
    for t in prange(cell_bounds.shape[0] - 1):
        cell_rows(kind, blocks, acc, bias, xw, col, use_xw, c, m, cell_bounds[t], cell_bounds[t + 1], vec, has_vec,
                  sh, lsig, ltanh)
    for t in prange(pslices.shape[0]):
        sell_rows(pp, pc, pv, pr, m, pslices[t], acc_y, scratch[t])
    output_rows(acc_y, y_out, z, yo, sh[SR], sh)


@nb.njit(inline="always", **_JIT)
def gate_sums(a, bias_r, acc_r, B, sx, sr, sacc, ACC):
    """``acc_r[b] = sat(align(align(W_x x) + align(W_r y) + bias))`` for all streams (``a`` holds
    the two raw sums, x then y); scalar shifts so the loop vectorizes."""
    for b in range(B):
        total = align(a[b], sx) + align(a[B + b], sr) + bias_r
        acc_r[b] = sat(align(total, sacc), ACC)


@nb.njit(parallel=True, **_JIT)
def step_many(kind, blocks, groups, pgroups, x, y_in,
              xp, xc, xv, rp, rc, rv, bias, vec, has_vec,
              c, m, acc, scratch, pp, pc, pv, y_out, acc_y, sh, lsig, ltanh):
    """One step of B streams (state columns), CSR rows with the batch in the inner loop. Thread
    t keeps its current cell group's saturated accumulators in rows [blocks LANES t, blocks LANES
    (t + 1)) of ``acc`` (there are at most H / LANES threads), not at the rows' own places; the
    element-wise step is :func:`ese.runtime.cells.ew_fixed_rows`, with the thread's scratch."""
    B = c.shape[1]
    ACC = sh[ACCBITS]
    sx, sr, sacc, say, sy, A = sh[SX], sh[SR], sh[SACC], sh[SAY], sh[SY], sh[ABITS]
    for t in prange(groups.shape[0]):
        a = scratch[t]
        blk = t * blocks * LANES  # the thread's rows of acc: a group's sums stay in L1
        for j in range(groups.shape[1]):
            g = groups[t, j]
            if g < 0:
                break
            base = g * blocks * LANES
            for r in range(base, base + blocks * LANES):
                for b in range(2 * B):
                    a[b] = 0
                row_times_batch(xv, xc, x, xp[r], xp[r + 1], a, 0)
                row_times_batch(rv, rc, y_in, rp[r], rp[r + 1], a, B)
                gate_sums(a, bias[r], acc[blk + r - base], B, sx, sr, sacc, ACC)
            for lane in range(LANES):
                k = g * LANES + lane
                ew_fixed_rows(kind, acc, blk + lane, LANES, c[k], m[k], k, vec, has_vec, sh, lsig, ltanh, a)
    for t in prange(pgroups.shape[0]):
        a = scratch[t]
        for j in range(pgroups.shape[1]):
            s = pgroups[t, j]
            if s < 0:
                break
            for r in range(s * LANES, (s + 1) * LANES):
                for b in range(B):
                    a[b] = 0
                row_times_batch(pv, pc, m, pp[r], pp[r + 1], a, 0)
                ar, yr = acc_y[r], y_out[r]
                for b in range(B):
                    ay = sat(align(a[b], say), ACC)
                    ar[b] = ay
                    yr[b] = sat(align(ay, sy), A)


@nb.njit(**_JIT)
def out_of_range(x, lo, hi):
    """Whether some entry of ``x`` lies outside [lo, hi] (one pass; a step's input check)."""
    for v in x:
        if v < lo or v > hi:
            return True
    return False
