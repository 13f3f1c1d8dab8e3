"""The fixed-point step of many streams on 16-bit activations, two non-zeros per multiply-add
(issue 16), bit-exact with :func:`ese.runtime.kernels_fixed.step_many`.

Same structure as ``step_many`` (CSR rows with the batch in the inner loop, cell groups per
thread, the saturated accumulators of a thread's current group in its own rows of ``acc``, the
element-wise step, then the output matrix and the output stage), but the activations are int16
(K, Bp) arrays, the streams padded to ``Bp``, a multiple of 16 (the padding streams run too, on
zero inputs, and are never read), the element-wise step runs on a whole group of cells at once
(:func:`ese.runtime.cells.ew_fixed_cells`), and a row's products are :mod:`ese.runtime.simd_pairs`' pairs summed
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
from ese.runtime.cells import ABITS, ACCBITS, SACC, SAY, SR, SX, SY, ew_fixed_cells
from ese.runtime.kernels_int16 import out_bound
from ese.runtime.layout import LANES
from ese.runtime.pairs_layout import PairMatrix, pack_pairs, pairs_fit
from ese.runtime.simd_pairs import row_pairs
from ese.runtime.steal import COUNTER_STRIDE, next_item

_JIT = {"cache": True, "nogil": True}
STREAM_BLOCK = 16  # the batch is padded to a multiple of this (the narrowest block of row_pairs)


@nb.njit(parallel=True, **_JIT)
def step_pairs(kind, blocks, groups, pgroups, x, y_in,
               xp, xc, xw, xs, rp, rc, rw, rs, bias, vec, has_vec,
               c, m, acc, scratch, s64, pp, pc, pw, ps, y_out, acc_y, sh, lsig, ltanh, taken):
    """One step of the streams (``c``, ``acc``, ``acc_y``: (rows, Bp) int64, padding columns
    included) on int16 inputs ``x`` (D, Bp) and ``y_in`` (Pp, Bp), writing ``m`` (Hp, Bp) and
    ``y_out`` (Pp, Bp) int16. Matrix arguments are a :class:`~ese.runtime.pairs_layout.PairMatrix`'s
    ptr, cols, words, step; ``vec`` the element-wise vectors by group, every cell's value
    repeated for its Bp streams (:func:`ese.runtime.layout.stream_vectors`); ``s64`` (T, 2, Bp)
    the threads' exact sums (x part, y part), ``scratch`` (T, 6 LANES Bp) the element-wise step's. The row loops call the
    SIMD intrinsic and index 2-D arrays directly: a helper function inlined here with array
    arguments would cost reference-count updates on every row, and ``a[1, b]`` where
    ``a[Bp + b]`` would do lets LLVM vectorize the gate sums (a run-time offset into one flat
    array keeps them scalar, three times slower). The element-wise step runs once per group
    of LANES cells, over the group's LANES Bp (cell, stream) pairs as one flat vector (cell
    by cell it cost a third more: 16 times the views and loop set-ups of 32 elements). Threads
    take groups by work stealing (:mod:`ese.runtime.steal`; ``taken``: (2 T COUNTER_STRIDE,)
    int64, the counters of both regions): their own groups first, then what a slower thread
    has left."""
    Bp = x.shape[1]
    n = LANES * Bp  # (cell, stream) pairs of a group
    acc_f, c_f, m_f = acc.reshape(-1), c.reshape(-1), m.reshape(-1)
    taken[:] = 0
    half = taken.shape[0] // 2
    gates_taken, out_taken = taken[:half], taken[half:]
    ACC = sh[ACCBITS]
    sx, sr, sacc, say, sy, A = sh[SX], sh[SR], sh[SACC], sh[SAY], sh[SY], sh[ABITS]
    for t in prange(groups.shape[0]):
        a, w = s64[t], scratch[t]
        blk = t * blocks * LANES  # the thread's rows of acc: a group's sums stay in L1
        while True:
            g = next_item(groups, gates_taken, t)
            if g < 0:
                break
            base = g * blocks * LANES
            for r in range(base, base + blocks * LANES):
                row_pairs(xw, xc, x, xp[r], xp[r + 1], xs[r], a, 0)
                row_pairs(rw, rc, y_in, rp[r], rp[r + 1], rs[r], a, Bp)
                bias_r, row = bias[r], blk + r - base
                for b in range(Bp):  # the gate sum: sat(align(align(W_x x) + align(W_r y) + bias))
                    total = align(a[0, b], sx) + align(a[1, b], sr) + bias_r
                    acc[row, b] = sat(align(total, sacc), ACC)
            c0 = g * n  # the group's cells, block j of (cell, stream) pair i at acc row-major j n + i
            ew_fixed_cells(kind, acc_f[blk * Bp:(blk + blocks * LANES) * Bp], n, 0, n, c_f[c0:c0 + n],
                           m_f[c0:c0 + n], vec[g if has_vec else 0], has_vec, sh, lsig, ltanh, w)
    for t in prange(pgroups.shape[0]):
        a = s64[t]
        while True:
            s = next_item(pgroups, out_taken, t)
            if s < 0:
                break
            for r in range(s * LANES, (s + 1) * LANES):
                row_pairs(pw, pc, m, pp[r], pp[r + 1], ps[r], a, 0)
                for b in range(Bp):
                    ay = sat(align(a[0, b], say), ACC)
                    acc_y[r, b] = ay
                    y_out[r, b] = sat(align(ay, sy), A)


@nb.njit(**_JIT)
def stage_frames(X, xs):
    """``xs[t, d, b] = X[t, b, d]``: the (T, B, D) checked integer frames as the pair kernel's
    (D, Bp) int16 inputs, one per frame (padding streams left as they are, 0)."""
    for t in range(X.shape[0]):
        for b in range(X.shape[1]):
            for d in range(X.shape[2]):
                xs[t, d, b] = X[t, b, d]


@nb.njit(**_JIT)
def store_frame(y, out, t):
    """``out[b, t, r] = y[r, b]`` for the real streams and outputs of ``out`` (B, T, P): one
    frame of the utterance-mode result from a step's (Pp, Bp) int16 output."""
    for b in range(out.shape[0]):
        for r in range(out.shape[2]):
            out[b, t, r] = y[r, b]


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


def steal_counters(threads: int) -> np.ndarray:
    """The work-stealing counters of :func:`step_pairs`' two parallel regions."""
    return np.zeros(2 * max(1, threads) * COUNTER_STRIDE, np.int64)


def padded_streams(B: int) -> int:
    """The batch padded to whole multiples of :data:`STREAM_BLOCK` (the int16 arrays' width)."""
    return -(-B // STREAM_BLOCK) * STREAM_BLOCK

