"""The fixed-point one-stream step on the permuted-table kernel (``perm64``), bit-exact.

Layout: :mod:`ese.runtime.perm_layout`; products: :func:`ese.runtime.simd_perm.perm_blocks`.
Inputs are raw 16-bit integers (``z`` = [x_t; y_{t-1}] at the packed columns, or [y_{t-1}] in
utterance mode with ``xw`` holding W_x x), so a gate sum is ``align(W_x x, SX) + align(W_r y,
SR)``, what the pre-shifted inputs of :func:`ese.runtime.kernels_fixed.step_one` sum. Two
parallel regions per step, where the sliced kernel needs three: thread t's region computes its
own cells' gate rows and then their element-wise step; the second computes the output rows and
the output stage row by row.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ese.runtime.arith import align, sat
from ese.runtime.cells import ABITS, ACCBITS, SAY, SR, SX, SY
from ese.runtime.kernels_fixed import cell_rows
from ese.runtime.kernels_float import cell_rows as float_cell_rows
from ese.runtime.kernels_int16 import out_bound
from ese.runtime.perm_layout import pack_perm, pair_fits
from ese.runtime.layout import sell_dense
from ese.runtime.simd_perm import perm_blocks
from ese.runtime.weights import fixed_arrays

_JIT = {"cache": True, "nogil": True}
ROWS = 16


@nb.njit(inline="always", **_JIT)
def slice_sums(ptr, mid, counts, idx, vals, wide, z, s, a32, a64, nb1):
    """Sums of slice ``s``'s two parts into lanes 0-15 and 16-31 of ``a64`` (int32 lanes in
    ``a32`` unless the slice is ``wide``)."""
    nbt = counts.shape[1]
    if wide[s]:
        perm_blocks(idx, vals, z, counts[s], ptr[s], 0, nb1, a64, 0)
        perm_blocks(idx, vals, z, counts[s], mid[s], nb1, nbt, a64, ROWS)
    else:
        perm_blocks(idx, vals, z, counts[s], ptr[s], 0, nb1, a32, 0)
        perm_blocks(idx, vals, z, counts[s], mid[s], nb1, nbt, a32, ROWS)
        for lane in range(2 * ROWS):
            a64[lane] = a32[lane]


@nb.njit(parallel=True, **_JIT)
def step_perm(kind, blocks, gptr, gmid, gcounts, gidx, gvals, grows, gwide, gsl, gnb1, z, acc, bias, vec, has_vec,
              xw, col, use_xw, c, m, cell_bounds, pptr, pmid, pcounts, pidx, pvals, prows, pwide, psl, y_out, yo,
              a32, a64, acc_y, sh, lsig, ltanh):
    """One step of one stream. ``gsl[t]`` are thread t's gate slices, which hold exactly the rows
    of its cells ``[cell_bounds[t], cell_bounds[t + 1])``; ``psl[t]`` its output-matrix slices.
    Writes ``acc`` (the saturated accumulators, as every kernel does), the state ``c``, ``m``,
    ``acc_y``, ``y_out`` and the raw y into ``z[yo:]``."""
    sx, sr = sh[SX], sh[SR]
    for t in prange(gsl.shape[0]):
        a, a6 = a32[t], a64[t]
        for j in range(gsl.shape[1]):
            s = gsl[t, j]
            if s < 0:
                break
            slice_sums(gptr, gmid, gcounts, gidx, gvals, gwide, z, s, a, a6, gnb1)
            for lane in range(ROWS):  # vectorized
                a6[lane] = align(a6[lane], sx) + align(a6[ROWS + lane], sr)
            for lane in range(ROWS):  # padding rows land in the spare slot acc[R]
                acc[grows[s * ROWS + lane]] = a6[lane]
        cell_rows(kind, blocks, acc, bias, xw, col, use_xw, c, m, cell_bounds[t], cell_bounds[t + 1], vec, has_vec,
                  sh, lsig, ltanh)
    ACC, A, say, sy = sh[ACCBITS], sh[ABITS], sh[SAY], sh[SY]
    P = acc_y.shape[0] - 1
    pnb = pcounts.shape[1]
    for t in prange(psl.shape[0]):
        a, a6 = a32[t], a64[t]
        for j in range(psl.shape[1]):
            s = psl[t, j]
            if s < 0:
                break
            slice_sums(pptr, pmid, pcounts, pidx, pvals, pwide, m, s, a, a6, pnb)
            for lane in range(ROWS):
                r = prows[s * ROWS + lane]
                if r < P:
                    ay = sat(align(a6[lane], say), ACC)
                    acc_y[r] = ay
                    y = sat(align(ay, sy), A)
                    y_out[r] = y
                    z[yo + r] = y


@nb.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def step_perm_float(kind, blocks, gptr, gmid, gcounts, gidx, gvals, grows, gsl, gnb1, z, acc, bias, vec, has_vec,
                    xw, col, use_xw, c, m, cell_bounds, pptr, pmid, pcounts, pidx, pvals, prows, psl, y_out, yo, af):
    """:func:`step_perm` in fp32 (``vpermi2ps`` over blocks of 32 inputs): gate rows and the
    element-wise step of thread t's cells (:func:`ese.runtime.kernels_float.cell_rows`), then the
    output rows, written to ``y_out`` and ``z[yo:]``. ``af`` (T, 32) fp32 scratch."""
    for t in prange(gsl.shape[0]):
        a = af[t]
        nbt = gcounts.shape[1]
        for j in range(gsl.shape[1]):
            s = gsl[t, j]
            if s < 0:
                break
            perm_blocks(gidx, gvals, z, gcounts[s], gptr[s], 0, gnb1, a, 0)
            perm_blocks(gidx, gvals, z, gcounts[s], gmid[s], gnb1, nbt, a, ROWS)
            for lane in range(ROWS):
                acc[grows[s * ROWS + lane]] = a[lane] + a[ROWS + lane]
        float_cell_rows(kind, blocks, acc, bias, xw, col, use_xw, c, m, cell_bounds[t], cell_bounds[t + 1], vec,
                        has_vec)
    P = y_out.shape[0] - 1
    for t in prange(psl.shape[0]):
        a = af[t]
        for j in range(psl.shape[1]):
            s = psl[t, j]
            if s < 0:
                break
            perm_blocks(pidx, pvals, m, pcounts[s], pptr[s], 0, pcounts.shape[1], a, 0)
            for lane in range(ROWS):
                r = prows[s * ROWS + lane]
                if r < P:
                    y_out[r] = a[lane]
                    z[yo + r] = a[lane]


@nb.njit(**_JIT)
def stage_input(x, z, lo, hi):
    """Copy the integer input ``x`` into ``z[:len(x)]`` if every entry lies in [lo, hi]; False
    (and ``z`` untouched) otherwise. One jitted call for the streaming step's check and copy."""
    for v in x:
        if v < lo or v > hi:
            return False
    for i in range(x.shape[0]):
        z[i] = x[i]
    return True


# ---- the plan of a layer (plain Python, once per engine and thread count) ---------------------

class PermLayer:
    """One layer packed for ``perm64`` at a thread count: ``gx`` ([W_x | W_r] over z = [x; y],
    streaming), ``gr`` (W_r over y, utterance mode), ``gp`` (the output matrix over m), the cells
    of each thread (``cell_bounds``) and where y starts in the streaming input (``y_off``)."""

    def __init__(self, gx, gr, gp, cell_bounds, y_off: int) -> None:
        self.gx, self.gr, self.gp, self.cell_bounds, self.y_off = gx, gr, gp, cell_bounds, y_off

    @property
    def wide_fraction(self) -> float:
        n = self.gx.wide.size + self.gp.wide.size
        return float((self.gx.wide.sum() + self.gp.wide.sum()) / n) if n else 0.0


def perm_layer(L, ql, qm, first: bool, threads: int) -> PermLayer | None:
    """The plan of packed layer ``L`` of fixed-point layer ``ql``, or None when its raw inputs
    or weights do not fit the kernel (shifts that are not exact left shifts, inputs over 16
    bits, a pair of products past int32). ``first``: layer 0 (the model's input format)."""
    if int(L.shifts[SX]) > 0 or int(L.shifts[SR]) > 0:
        return None
    A = int(L.shifts[ABITS])
    in_bits = qm.input_format.bits if first else A
    if in_bits > 16 or A > 16:
        return None
    zx, zy, zm = 1 << (in_bits - 1), 1 << (A - 1), out_bound(qm, L.shifts)
    w_x, w_r, w_y = fixed_arrays(ql, qm)
    wmax = max(int(np.abs(w).max(initial=0)) for w in (w_x, w_r, w_y))
    if not pair_fits(wmax, max(zx, zy, zm)):
        return None
    H, D, P, nb = L.hidden, L.input_dim, L.proj, L.blocks
    bounds, gate_sets = _cell_split(H, nb, threads)
    zmax = np.concatenate([np.full(D, zx), np.full(P, zy)])
    gx = pack_perm(np.hstack([w_x, w_r]), D, gate_sets, zmax)
    gr = pack_perm(w_r, 0, gate_sets, np.full(P, zy))
    p_sets = _contiguous(P, len(gate_sets))
    gp = pack_perm(w_y, w_y.shape[1], p_sets, np.full(w_y.shape[1], zm))
    return PermLayer(gx, gr, gp, bounds, gx.split_blocks * gx.block)


def perm_layer_float(L, threads: int) -> PermLayer:
    """The fp32 plan of packed float layer ``L`` (its matrices read back from the sliced layout)."""
    H, D, P, nb = L.hidden, L.input_dim, L.proj, L.blocks
    bounds, gate_sets = _cell_split(H, nb, threads)
    wg = sell_dense(L.gx)
    gx = pack_perm(wg, D, gate_sets, None, fixed=False)
    gr = pack_perm(wg[:, D:], 0, gate_sets, None, fixed=False)
    w_y = sell_dense(L.gp)
    gp = pack_perm(w_y, w_y.shape[1], _contiguous(P, len(gate_sets)), None, fixed=False)
    return PermLayer(gx, gr, gp, bounds, gx.split_blocks * gx.block)


def _cell_split(H: int, nb: int, threads: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The cells of each thread (contiguous, ``bounds``) and their accumulator rows."""
    n = max(1, min(threads, H // ROWS))
    bounds = np.linspace(0, H, n + 1).astype(np.int64)
    return bounds, [(np.arange(nb)[:, None] * H + np.arange(lo, hi)[None, :]).ravel()
                    for lo, hi in zip(bounds, bounds[1:])]


def _contiguous(R: int, n: int) -> list[np.ndarray]:
    """Rows of a plain matrix over n threads in contiguous runs cut at multiples of 32 rows, so
    the rows a thread writes (y_out, acc_y and y's place in the next step's z, 64-byte aligned)
    share no cache line with another thread's. Dealing 16-row slices in turn balanced the work a
    little better but made both threads write into every line of y: with unaligned buffers the
    shipped model's step took 45-70 µs instead of 29 in about half of the processes."""
    cuts = np.round(np.linspace(0, R, n + 1) / (2 * ROWS)).astype(np.int64) * 2 * ROWS
    cuts[-1] = R
    return [np.arange(lo, hi) for lo, hi in zip(cuts, cuts[1:])]