"""Narrow-integer sparse products of the fixed-point engine (issue 16), bit-exact.

The fixed-point model has 12-bit weights and 16-bit activations, so a product fits in 28 bits and
the sum of a row in 32 bits whenever ``sum_j |w_rj| * max|z_j| < 2**31``. These kernels
accumulate such rows in int32 (twice the SIMD lanes of the int64 kernels in
:mod:`ese.runtime.kernels_fixed`): the gathered SELL-16 kernel falls back to int64 for the slices
where the bound does not hold (:func:`wide_slices`); the column-clustered kernel sums such rows in
int32 chunks short enough to stay within the bound and adds the chunks in int64
(:func:`part_sum`, ``ese.runtime.cluster_layout``). No partial sum can wrap, so every result
equals the exact integer sum in any order, as the reference model's int64 arithmetic gives it.

They compute sparse matrix x vector products only; the accumulators, the element-wise stage and
the output stage are :func:`ese.runtime.kernels_fixed.cell_rows` and
:func:`~ese.runtime.kernels_fixed.output_rows`, as :func:`ese.runtime.kernels_fixed.step_one` runs them.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ese.runtime.arith import align
from ese.runtime.cells import ABITS, SR, SX, engine_cell
from ese.runtime.kernels_fixed import cell_rows, output_rows
from ese.runtime.layout import LANES, SortedSell
from ese.runtime.simd import sell_slice
from ese.runtime.weights import fixed_arrays
from ese.runtime.simd_cluster import pair_dot4, pair_dot8, pair_dot16

_JIT = {"cache": True, "nogil": True}
INT32_LIMIT = 2**31 - 1


def row_bounds(vals_abs_rows: np.ndarray, zmax: np.ndarray) -> np.ndarray:
    """``sum_j |w_rj| * zmax_j`` per row of a dense (R, K) matrix of |w| (exact, Python ints
    avoided: int64 holds it for 16-bit weights, 17-bit inputs and K < 2**30)."""
    return np.abs(vals_abs_rows).astype(np.int64) @ zmax.astype(np.int64)


def wide_slices(w: np.ndarray, zmax: np.ndarray, packed: SortedSell) -> np.ndarray:
    """(S,) bool: the slices of ``packed`` (a :class:`SortedSell` of dense ``w``) holding a row
    whose int32 sum could overflow, given ``|z_j| <= zmax_j``. Padding rows never overflow."""
    bound = np.zeros(packed.n_rows + 1, dtype=np.int64)
    bound[:packed.n_rows] = row_bounds(np.abs(np.asarray(w, np.int64)), zmax)
    per_slot = bound[np.minimum(packed.rows, packed.n_rows)].reshape(-1, LANES)
    return np.ascontiguousarray((per_slot > INT32_LIMIT).any(axis=1))


@nb.njit(inline="always", **_JIT)
def sell_rows_narrow(ptr, cols, vals, rows, z, slices, wide, out, a32, a64):
    """``out[rows[i]] = (W z)[i]`` for the SELL-16 slices of one thread: int32 lanes (one
    gather of 16 int32 inputs per step) unless the slice is ``wide`` (int64 lanes)."""
    for j in range(slices.shape[0]):
        s = slices[j]
        if s < 0:
            break
        if wide[s]:
            sell_slice(vals, cols, z, ptr[s], ptr[s + 1], a64)
            for lane in range(LANES):
                out[rows[s * LANES + lane]] = a64[lane]
        else:
            sell_slice(vals, cols, z, ptr[s], ptr[s + 1], a32)
            for lane in range(LANES):
                out[rows[s * LANES + lane]] = a32[lane]


@nb.njit(parallel=True, **_JIT)
def step_one(kind, blocks, gp, gc, gv, gr, gslices, gwide, z, acc, bias, vec, has_vec, xw, col, use_xw, c, m,
             cell_bounds, pp, pc, pv, pr, pslices, pwide, y_out, yo, s32, s64, acc_y, sh, lsig, ltanh):
    """:func:`ese.runtime.kernels_fixed.step_one` with int32 inputs ``z`` (x << -SX, y << -SR)
    and ``m``, and the products of :func:`sell_rows_narrow` (``s32``/``s64``: per-thread lanes)."""
    for t in prange(gslices.shape[0]):
        sell_rows_narrow(gp, gc, gv, gr, z, gslices[t], gwide, acc, s32[t], s64[t])
    for t in prange(cell_bounds.shape[0] - 1):
        cell_rows(kind, blocks, acc, bias, xw, col, use_xw, c, m, cell_bounds[t], cell_bounds[t + 1], vec, has_vec,
                  sh, lsig, ltanh)
    for t in prange(pslices.shape[0]):
        sell_rows_narrow(pp, pc, pv, pr, m, pslices[t], pwide, acc_y, s32[t], s64[t])
    output_rows(acc_y, y_out, z, yo, sh[SR], sh)


# ---- column-clustered matrices (``cluster:G``; layout ese.runtime.cluster_layout) ------------

@nb.njit(inline="always", **_JIT)
def pair_dot(G, vals, cols, z, p0, p1, a32, o):
    if G == 16:
        pair_dot16(vals, cols, z, p0, p1, a32, o)
    elif G == 8:
        pair_dot8(vals, cols, z, p0, p1, a32, o)
    else:
        pair_dot4(vals, cols, z, p0, p1, a32, o)


@nb.njit(inline="always", **_JIT)
def part_sum(G, vals, cols, z, pa, pb, step, a32, a64, o):
    """``a64[o:o + G]`` = the exact sums of pairs [pa, pb): int32 lanes over chunks of ``step``
    pairs (within the int32 bound), each chunk added to int64 lanes."""
    if pb - pa <= step:
        pair_dot(G, vals, cols, z, pa, pb, a32, 0)
        for lane in range(G):
            a64[o + lane] = a32[lane]
        return
    for lane in range(G):
        a64[o + lane] = 0
    for c in range(pa, pb, step):
        pair_dot(G, vals, cols, z, c, min(c + step, pb), a32, 0)
        for lane in range(G):
            a64[o + lane] += a32[lane]


@nb.njit(inline="always", **_JIT)
def cluster_rows(G, ptr, nx, chunk, cols, vals, z, clusters, out, s0, s1, a32, a64):
    """``out[q G + lane] = align(x part, s0) + align(y part, s1)`` for the thread's clusters q:
    the two parts of each row summed exactly (:func:`part_sum`)."""
    for j in range(clusters.shape[0]):
        q = clusters[j]
        if q < 0:
            break
        p0, p1 = ptr[q], ptr[q + 1]
        pm = p0 + nx[q]
        part_sum(G, vals, cols, z, p0, pm, chunk[q, 0], a32, a64, 0)
        part_sum(G, vals, cols, z, pm, p1, chunk[q, 1], a32, a64, G)
        for lane in range(G):
            out[q * G + lane] = align(a64[lane], s0) + align(a64[G + lane], s1)


@nb.njit(parallel=True, **_JIT)
def step_cluster(kind, blocks, G, gptr, gnx, gchunk, gcols, gvals, gcl, z, acc, bias, vec, has_vec, xw, col,
                 use_xw, c, m, cell_bounds, pptr, pnx, pchunk, pcols, pvals, pcl, y_out, yo, s32, s64, acc_y,
                 sh, lsig, ltanh):
    """One step of one stream on column-clustered matrices, int16 inputs: ``z`` = [x_t; y_{t-1}]
    raw (streaming; or [y_{t-1}] with ``xw`` in utterance mode), ``m`` raw. The gate sum of a row
    is ``align(W_x x, SX) + align(W_r y, SR)``, exactly what the pre-shifted z of
    :func:`ese.runtime.kernels_fixed.step_one` sums; the element-wise stage is the same."""
    sx, sr = sh[SX], sh[SR]
    for t in prange(gcl.shape[0]):
        cluster_rows(G, gptr, gnx, gchunk, gcols, gvals, z, gcl[t], acc, sx, sr, s32[t], s64[t])
    for t in prange(cell_bounds.shape[0] - 1):
        cell_rows(kind, blocks, acc, bias, xw, col, use_xw, c, m, cell_bounds[t], cell_bounds[t + 1], vec, has_vec,
                  sh, lsig, ltanh)
    for t in prange(pcl.shape[0]):
        cluster_rows(G, pptr, pnx, pchunk, pcols, pvals, m, pcl[t], acc_y, 0, 0, s32[t], s64[t])
    output_rows(acc_y, y_out, z, yo, 0, sh)  # raw y: the cluster kernel aligns W_r y itself


# ---- which layers run narrow, and where they fall back (plain Python, once per recognizer) -----

class NarrowPlan:
    """The wide (int64) slices of one layer's three sliced matrices: ``gx`` ([W_x | W_r] over z),
    ``gr`` (W_r over y, utterance mode) and ``gp`` (the output matrix over the cell's output)."""

    def __init__(self, gx: np.ndarray, gr: np.ndarray, gp: np.ndarray) -> None:
        self.gx, self.gr, self.gp = gx, gr, gp

    def of(self, packed: SortedSell, L) -> np.ndarray:
        return self.gx if packed is L.gx else self.gr if packed is L.gr else self.gp

    @property
    def wide_fraction(self) -> float:
        n = self.gx.size + self.gp.size
        return float((self.gx.sum() + self.gp.sum()) / n) if n else 0.0


def out_bound(qm, sh: np.ndarray) -> int:
    """Largest |output| of the element-wise step of ``qm``'s cell (the output matrix's input)."""
    return engine_cell(qm.cell).out_bound(qm.luts, sh)


def narrow_plan(L, ql, qm, first: bool) -> NarrowPlan | None:
    """The plan of packed layer ``L`` (:class:`ese.runtime.weights.LayerWeights`) of fixed-point
    layer ``ql``, or None when its inputs do not fit int32 once pre-shifted (then the int64
    kernels run). ``first``: layer 0, whose input has the model's input format."""
    sx, sr = -int(L.shifts[SX]), -int(L.shifts[SR])
    if not (0 <= sx <= 15 and 0 <= sr <= 15):
        return None
    A = int(L.shifts[ABITS])
    in_bits = qm.input_format.bits if first else A
    zx = (1 << (in_bits - 1)) << sx
    zy = (1 << (A - 1)) << sr
    zmax = np.concatenate([np.full(L.input_dim, zx), np.full(L.proj, zy)])
    w_x, w_r, w_y = fixed_arrays(ql, qm)
    if max(np.abs(w).max(initial=0) for w in (w_x, w_r, w_y)) >= 1 << 15:
        return None
    return NarrowPlan(wide_slices(np.hstack([w_x, w_r]), zmax, L.gx),
                      wide_slices(w_r, np.full(L.proj, zy), L.gr),
                      wide_slices(w_y, np.full(L.hidden, out_bound(qm, L.shifts)), L.gp))
