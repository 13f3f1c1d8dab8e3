"""The fixed-point step of many streams on 16-bit activations, two non-zeros per multiply-add
(issue 16), bit-exact with :func:`ese.runtime.kernels_fixed.step_many`.

Same structure as ``step_many`` (CSR rows with the batch in the inner loop, cell groups per
thread, the saturated accumulators of a thread's current group in its own rows of ``acc``, the
element-wise step :func:`ese.runtime.cells.ew_fixed_rows`, then the output matrix and the output
stage), but the activations are int16 (K, Bp) arrays, the streams padded to ``Bp``, a multiple of
16 (padding columns stay 0), and a row's products are :mod:`ese.runtime.simd_pairs`' pairs summed
in int32 lanes: a row part is exact in int32 when its bound allows, else it is summed in int32
chunks added in int64 (:mod:`ese.runtime.pairs_layout`). Every sum is then the exact integer sum
the reference's int64 arithmetic gives, and the gate sums, alignments and saturations are the
same int64 code.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ese.runtime.arith import align, sat
from ese.runtime.cells import ABITS, ACCBITS, SACC, SAY, SR, SX, SY, ew_fixed_rows
from ese.runtime.kernels_int16 import out_bound
from ese.runtime.layout import LANES
from ese.runtime.pairs_layout import PairMatrix, pack_pairs, pairs_fit
from ese.runtime.simd_pairs import pairs16, pairs32

_JIT = {"cache": True, "nogil": True}
STREAM_BLOCK = 16  # the batch is padded to a multiple of this (the narrowest pairs call)


@nb.njit(inline="always", **_JIT)
def pair_rows(words, cols, X, e0, e1, out, o):
    """``out[o:o + Bp]`` = pairs [e0, e1) times all Bp = X.shape[1] streams (int32 lanes)."""
    Bp = X.shape[1]
    b0 = 0
    while b0 + 32 <= Bp:
        pairs32(words, cols, X, e0, e1, b0, out, o + b0)
        b0 += 32
    if b0 < Bp:
        pairs16(words, cols, X, e0, e1, b0, out, o + b0)


@nb.njit(inline="always", **_JIT)
def row_sums(ptr, cols, words, step, X, r, a32, a64, o):
    """``a64[o:o + Bp]`` = the exact sums of row r over X: one int32 pass when the row's bound
    allows, else int32 chunks of ``step[r]`` pairs added in int64."""
    e0, e1 = ptr[r], ptr[r + 1]
    n = step[r]
    if e1 - e0 <= n:
        pair_rows(words, cols, X, e0, e1, a64, o)
        return
    Bp = X.shape[1]
    for b in range(Bp):
        a64[o + b] = 0
    for c in range(e0, e1, n):
        pair_rows(words, cols, X, c, min(c + n, e1), a32, 0)
        for b in range(Bp):
            a64[o + b] += a32[b]


@nb.njit(inline="always", **_JIT)
def gate_sums(a, o, bias_r, acc_r, B, sx, sr, sacc, ACC):
    """``acc_r[b] = sat(align(align(W_x x) + align(W_r y) + bias))``: the x sums in ``a[:B]``, the
    y sums from ``a[o]`` on."""
    for b in range(B):
        total = align(a[b], sx) + align(a[o + b], sr) + bias_r
        acc_r[b] = sat(align(total, sacc), ACC)


@nb.njit(parallel=True, **_JIT)
def step_pairs(kind, blocks, groups, pgroups, x, y_in,
               xp, xc, xw, xs, rp, rc, rw, rs, bias, vec, has_vec,
               c, m, acc, scratch, s32, s64, pp, pc, pw, ps, y_out, acc_y, sh, lsig, ltanh):
    """One step of B streams (``c``, ``acc``, ``acc_y``: (rows, B) int64) on int16 inputs ``x``
    (D, Bp) and ``y_in`` (Pp, Bp), writing ``m`` (Hp, Bp) and ``y_out`` (Pp, Bp) int16. Matrix
    arguments are a :class:`~ese.runtime.pairs_layout.PairMatrix`'s ptr, cols, words, step;
    ``s32`` (T, Bp) and ``s64`` (T, 2 Bp) the threads' lanes, ``scratch`` the element-wise
    step's."""
    B = c.shape[1]
    Bp = x.shape[1]
    ACC = sh[ACCBITS]
    sx, sr, sacc, say, sy, A = sh[SX], sh[SR], sh[SACC], sh[SAY], sh[SY], sh[ABITS]
    for t in prange(groups.shape[0]):
        a, a32, w = s64[t], s32[t], scratch[t]
        blk = t * blocks * LANES  # the thread's rows of acc: a group's sums stay in L1
        for j in range(groups.shape[1]):
            g = groups[t, j]
            if g < 0:
                break
            base = g * blocks * LANES
            for r in range(base, base + blocks * LANES):
                row_sums(xp, xc, xw, xs, x, r, a32, a, 0)
                row_sums(rp, rc, rw, rs, y_in, r, a32, a, Bp)
                gate_sums(a, Bp, bias[r], acc[blk + r - base], B, sx, sr, sacc, ACC)
            for lane in range(LANES):
                k = g * LANES + lane
                ew_fixed_rows(kind, acc, blk + lane, LANES, c[k], m[k], k, vec, has_vec, sh, lsig, ltanh, w)
    for t in prange(pgroups.shape[0]):
        a, a32 = s64[t], s32[t]
        for j in range(pgroups.shape[1]):
            s = pgroups[t, j]
            if s < 0:
                break
            for r in range(s * LANES, (s + 1) * LANES):
                row_sums(pp, pc, pw, ps, m, r, a32, a, 0)
                ar, yr = acc_y[r], y_out[r]
                for b in range(B):
                    ay = sat(align(a[b], say), ACC)
                    ar[b] = ay
                    yr[b] = sat(align(ay, sy), A)


# ---- the plan of a layer (plain Python, once per engine) ---------------------------------------

class PairLayer:
    """One layer's matrices in pairs: ``gx`` (W_x over x), ``gr`` (W_r over y), ``gp`` (the output
    matrix over the cell's output), rows in the engine's internal order."""

    def __init__(self, gx: PairMatrix, gr: PairMatrix, gp: PairMatrix) -> None:
        self.gx, self.gr, self.gp = gx, gr, gp

    def args(self, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mat = getattr(self, which)
        return mat.ptr, mat.cols, mat.words, mat.step

    @property
    def wide_rows(self) -> int:
        """Rows summed in several int32 chunks (int64 between them)."""
        return int(sum(int(mat.wide.sum()) for mat in (self.gx, self.gr, self.gp)))


def pair_layer(L, qm, first: bool) -> PairLayer | None:
    """The plan of packed fixed-point layer ``L`` (:class:`ese.runtime.weights.LayerWeights`) of
    ``qm``, or None when its inputs or weights do not fit 16 bits or a pair of products could
    leave int32 (then the int64 kernel runs). ``first``: layer 0 (the model's input format)."""
    A = int(L.shifts[ABITS])
    in_bits = qm.input_format.bits if first else A
    if in_bits > 16 or A > 16:
        return None
    zs = (1 << (in_bits - 1), 1 << (A - 1), out_bound(qm, L.shifts))
    mats = (L.w_x, L.w_r, L.w_y)
    for mat, z in zip(mats, zs):
        wmax = int(np.abs(mat.csr_vals.astype(np.int64)).max(initial=0))
        if not pairs_fit(wmax, z):
            return None
    return PairLayer(*(pack_pairs(mat, z) for mat, z in zip(mats, zs)))


def padded_streams(B: int) -> int:
    """The batch padded to whole multiples of :data:`STREAM_BLOCK` (the int16 arrays' width)."""
    return -(-B // STREAM_BLOCK) * STREAM_BLOCK
