"""numba kernels of the fixed-point engine: bit-exact with ese.compress.reference (spec v1).

Same structure as :mod:`ese.runtime.kernels_float` (cell groups per thread, fused element-wise
stage), integer arithmetic of docs/fixed-point.md section 4: exact int64 sums, ``align`` = round
half up by add-half-and-arithmetic-shift, saturation, LUT lookups. Shifts and widths come in one
int64 vector ``sh`` (indices below, built by :func:`ese.runtime.weights.fixed_shifts`); every
shift ``s`` is ``F_from - F_to`` (positive: rounding right shift, negative: exact left shift).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ese.runtime.layout import LANES
from ese.runtime.simd import row_times_batch, sell_rows

_JIT = {"cache": True, "nogil": True}

# indices into ``sh``
SX, SR, SACC, ZI, ZF, ZG, ZO, PI, PF, PO, LI, LF, LG, LO, LC, CF, CIG, CC, SM, SAY, SY, ABITS, \
    ACCBITS, NSIG, NTANH = range(25)
N_SHIFTS = 25


@nb.njit(inline="always", **_JIT)
def align(v: int, s: int) -> int:
    """Spec ``align`` by ``s`` bits without branches (the cell loops run it ~20 times a cell):
    ``s > 0`` adds half (``(1 << s) >> 1``) and shifts right (round half up); ``s <= 0``
    shifts left (half is 0, the right shift 0)."""
    left = max(-s, 0)
    right = max(s, 0)
    return ((v << left) + ((np.int64(1) << right) >> 1)) >> right


@nb.njit(inline="always", **_JIT)
def sat(v: int, bits: int) -> int:
    hi = (np.int64(1) << (bits - 1)) - 1
    return min(max(v, -hi - 1), hi)


@nb.njit(inline="always", **_JIT)
def lut(table, z: int, s: int, n: int) -> int:
    u = (z << max(-s, 0)) >> max(s, 0)  # floor shift, branch-free (see align)
    return table[min(max(u + n // 2, 0), n - 1)]


@nb.njit(inline="always", **_JIT)
def cell(zi_acc, zf_acc, zg_acc, zo_acc, cp, k, peep, has_peep, sh, lsig, ltanh):
    """The element-wise stage of one cell: (c_t, m_t) from the four saturated accumulators."""
    A = sh[ABITS]
    zi = align(zi_acc, sh[ZI])
    zf = align(zf_acc, sh[ZF])
    if has_peep:
        zi += align(peep[0, k] * cp, sh[PI])
        zf += align(peep[1, k] * cp, sh[PF])
    zi = sat(zi, A)
    zf = sat(zf, A)
    zg = sat(align(zg_acc, sh[ZG]), A)
    i = lut(lsig, zi, sh[LI], sh[NSIG])
    f = lut(lsig, zf, sh[LF], sh[NSIG])
    g = lut(ltanh, zg, sh[LG], sh[NTANH])
    cn = sat(align(align(f * cp, sh[CF]) + align(i * g, sh[CIG]), sh[CC]), A)
    zo = align(zo_acc, sh[ZO])
    if has_peep:
        zo += align(peep[2, k] * cn, sh[PO])
    zo = sat(zo, A)
    o = lut(lsig, zo, sh[LO], sh[NSIG])
    tc = lut(ltanh, cn, sh[LC], sh[NTANH])
    return cn, sat(align(o * tc, sh[SM]), A)


@nb.njit(parallel=True, **_JIT)
def step_one(gp, gc, gv, gr, gslices, z, acc, bias, peep, has_peep, xw, col, use_xw, c, m,
             cell_bounds, pp, pc, pv, pr, pslices, y_out, yo, scratch, acc_y, sh, lsig, ltanh):
    """One step of one stream (see kernels_float.step_one). ``z`` holds x << -SX and
    y << -SR, so ``G z`` is the exact gate sum at Fsum; ``xw`` (use_xw) the unshifted W_x x."""
    nt = gslices.shape[0]
    ACC = sh[ACCBITS]
    for t in prange(nt):
        sell_rows(gp, gc, gv, gr, z, gslices[t], acc, scratch[t])
    H = c.shape[0]
    for t in prange(cell_bounds.shape[0] - 1):
        for k in range(cell_bounds[t], cell_bounds[t + 1]):
            for g in range(4):
                r = g * H + k
                total = acc[r] + bias[r]
                if use_xw:
                    total += align(xw[col, r], sh[SX])
                acc[r] = sat(align(total, sh[SACC]), ACC)
            cn, mk = cell(acc[k], acc[H + k], acc[2 * H + k], acc[3 * H + k], c[k], k, peep,
                          has_peep, sh, lsig, ltanh)
            c[k] = cn
            m[k] = mk
    for t in prange(pslices.shape[0]):
        sell_rows(pp, pc, pv, pr, m, pslices[t], acc_y, scratch[t])
    P = y_out.shape[0] - 1
    for r in range(P):
        ay = sat(align(acc_y[r], sh[SAY]), ACC)
        acc_y[r] = ay
        y = sat(align(ay, sh[SY]), sh[ABITS])
        y_out[r] = y
        z[yo + r] = align(y, sh[SR])


@nb.njit(parallel=True, **_JIT)
def step_many(groups, pgroups, x, y_in, xw, col, use_xw,
              xp, xc, xv, rp, rc, rv, bias, peep, has_peep,
              c, m, acc, scratch, pp, pc, pv, y_out, acc_y, sh, lsig, ltanh):
    """One step of B streams (state columns), CSR rows with the batch in the inner loop."""
    B = c.shape[1]
    ACC = sh[ACCBITS]
    for t in prange(groups.shape[0]):
        a = scratch[t]
        for j in range(groups.shape[1]):
            q = groups[t, j]
            if q < 0:
                break
            base = q * 4 * LANES
            for r in range(base, base + 4 * LANES):
                if use_xw:
                    for b in range(B):
                        a[b] = xw[r, col + b]
                else:
                    for b in range(B):
                        a[b] = 0
                    row_times_batch(xv, xc, x, xp[r], xp[r + 1], a, 0)
                for b in range(B):
                    a[B + b] = 0
                row_times_batch(rv, rc, y_in, rp[r], rp[r + 1], a, B)
                for b in range(B):
                    total = align(a[b], sh[SX]) + align(a[B + b], sh[SR]) + bias[r]
                    acc[r, b] = sat(align(total, sh[SACC]), ACC)
            for lane in range(LANES):
                k = q * LANES + lane
                for b in range(B):
                    cn, mk = cell(acc[base + lane, b], acc[base + LANES + lane, b],
                                  acc[base + 2 * LANES + lane, b], acc[base + 3 * LANES + lane, b],
                                  c[k, b], k, peep, has_peep, sh, lsig, ltanh)
                    c[k, b] = cn
                    m[k, b] = mk
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
                for b in range(B):
                    ay = sat(align(a[b], sh[SAY]), ACC)
                    acc_y[r, b] = ay
                    y_out[r, b] = sat(align(ay, sh[SY]), sh[ABITS])


@nb.njit(parallel=True, **_JIT)
def input_products(groups, xp, xc, xv, x, out):
    """Exact ``out[r, n] = sum_e W_x[r, e] * x[e, n]`` (int64) for all frames n (utterance mode)."""
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
