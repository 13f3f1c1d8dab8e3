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

from ese.runtime.kernels_float import input_products  # noqa: F401  (exact on integers: shared)
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


@nb.njit(inline="always", **_JIT)
def cell_consts(sh):
    """The cell stage's shifts and widths as one tuple of scalars, read once per kernel call:
    re-reading ``sh`` inside the stream loop (LLVM cannot prove the stores to ``c``/``m`` leave
    it alone) kept that loop scalar."""
    return (sh[ABITS], sh[ZI], sh[ZF], sh[ZG], sh[ZO], sh[PI], sh[PF], sh[PO], sh[LI], sh[LF],
            sh[LG], sh[LO], sh[LC], sh[CF], sh[CIG], sh[CC], sh[SM], sh[NSIG], sh[NTANH])


@nb.njit(inline="always", **_JIT)
def lut_index(z: int, s: int, n: int) -> int:
    """The table index :func:`lut` reads (floor shift, clamped to the table)."""
    return min(max(((z << max(-s, 0)) >> max(s, 0)) + n // 2, 0), n - 1)


@nb.njit(inline="always", **_JIT)
def lookup(table, idx, out):
    """``out[b] = table[idx[b]]``: the lookups in a loop of their own, since an indirect load in
    a loop that also stores keeps LLVM from vectorizing any of its arithmetic."""
    for b in range(idx.shape[0]):
        out[b] = table[idx[b]]


@nb.njit(inline="always", **_JIT)
def cells_streams(ai, af, ag, ao, c, m, pi, pf, po, q, lsig, ltanh, w):
    """:func:`cell` of one cell for all B streams: ``ai``..``ao`` are the cell's four accumulator
    rows, ``c``/``m`` its state rows (updated in place), ``pi``/``pf``/``po`` its peephole
    weights (0 without peepholes: ``align(0, s) == 0``, so the sums are unchanged), ``w`` a
    scratch of 6 B int64. The arithmetic runs in branch-free loops over b with loop-invariant
    scalars (vectorized), the LUT lookups in separate loops (:func:`lookup`) between them."""
    A, szi, szf, szg, szo, spi, spf, spo, sli, slf, slg, slo, slc, scf, scig, scc, ssm, ns, nt = q
    B = c.shape[0]
    x1, x2, x3, v1, v2, v3 = w[:B], w[B:2 * B], w[2 * B:3 * B], w[3 * B:4 * B], w[4 * B:5 * B], w[5 * B:6 * B]
    for b in range(B):
        cp = c[b]
        x1[b] = lut_index(sat(align(ai[b], szi) + align(pi * cp, spi), A), sli, ns)
        x2[b] = lut_index(sat(align(af[b], szf) + align(pf * cp, spf), A), slf, ns)
        x3[b] = lut_index(sat(align(ag[b], szg), A), slg, nt)
    lookup(lsig, x1, v1)  # i
    lookup(lsig, x2, v2)  # f
    lookup(ltanh, x3, v3)  # g
    for b in range(B):
        cn = sat(align(align(v2[b] * c[b], scf) + align(v1[b] * v3[b], scig), scc), A)
        c[b] = cn
        x1[b] = lut_index(sat(align(ao[b], szo) + align(po * cn, spo), A), slo, ns)
        x2[b] = lut_index(cn, slc, nt)
    lookup(lsig, x1, v1)  # o
    lookup(ltanh, x2, v2)  # tanh(c)
    for b in range(B):
        m[b] = sat(align(v1[b] * v2[b], ssm), A)


@nb.njit(inline="always", **_JIT)
def gate_sums(a, bias_r, acc_r, B, sx, sr, sacc, ACC):
    """``acc_r[b] = sat(align(align(W_x x) + align(W_r y) + bias))`` for all streams (``a`` holds
    the two raw sums, x then y); scalar shifts so the loop vectorizes."""
    for b in range(B):
        total = align(a[b], sx) + align(a[B + b], sr) + bias_r
        acc_r[b] = sat(align(total, sacc), ACC)


@nb.njit(parallel=True, **_JIT)
def step_many(groups, pgroups, x, y_in,
              xp, xc, xv, rp, rc, rv, bias, peep, has_peep,
              c, m, acc, scratch, pp, pc, pv, y_out, acc_y, sh, lsig, ltanh):
    """One step of B streams (state columns), CSR rows with the batch in the inner loop. Thread
    t keeps its current cell group's saturated gate sums in rows [64 t, 64 t + 64) of ``acc``
    (there are at most H / LANES threads), not at the rows' own places."""
    B = c.shape[1]
    ACC = sh[ACCBITS]
    sx, sr, sacc, say, sy, A = sh[SX], sh[SR], sh[SACC], sh[SAY], sh[SY], sh[ABITS]
    q = cell_consts(sh)
    for t in prange(groups.shape[0]):
        a = scratch[t]
        blk = t * 4 * LANES  # the thread's 4 LANES rows of acc: a group's sums stay in L1
        for j in range(groups.shape[1]):
            g = groups[t, j]
            if g < 0:
                break
            base = g * 4 * LANES
            for r in range(base, base + 4 * LANES):
                for b in range(2 * B):
                    a[b] = 0
                row_times_batch(xv, xc, x, xp[r], xp[r + 1], a, 0)
                row_times_batch(rv, rc, y_in, rp[r], rp[r + 1], a, B)
                gate_sums(a, bias[r], acc[blk + r - base], B, sx, sr, sacc, ACC)
            for lane in range(LANES):
                k = g * LANES + lane
                pi = peep[0, k] if has_peep else 0
                pf = peep[1, k] if has_peep else 0
                po = peep[2, k] if has_peep else 0
                cells_streams(acc[blk + lane], acc[blk + LANES + lane], acc[blk + 2 * LANES + lane],
                              acc[blk + 3 * LANES + lane], c[k], m[k], pi, pf, po, q, lsig, ltanh, a)
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

