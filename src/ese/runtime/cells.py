"""The element-wise step of every cell the CPU engine runs, in numba: the one place where the
engine's kernels meet a cell (:mod:`ese.cell` describes it; its ``fixed_step`` is the spec these
functions reproduce bit for bit, its ``float_step`` the equations of the float ones).

The kernels (:mod:`ese.runtime.kernels_float`, ``kernels_fixed``, ``kernels_int16``,
``kernels_cluster``) know nothing of gates. They form the accumulator rows of a cell (the gate
sums, block after block, as the cell description orders them) and call the dispatchers below with
the cell's ``kind``:

* ``ew_float_cells(kind, acc, H, lo, hi, st, out, vec, has_vec)``: the cells [lo, hi) of one
  stream; block j of cell k is ``acc[j H + k]``, ``st`` the state, ``vec`` (rows, H) the
  element-wise vectors (a dummy when ``has_vec`` is False); updates ``st`` and writes the output
  signal (``CellSpec.output``) into ``out``, both in place.
  Many-stream kernels call it too, on a group of cells with the (cell, stream) pairs as its
  index (``H`` = the group's cells times the streams, ``vec`` repeated per stream).
* ``ew_fixed_rows(kind, acc, r0, s, st, out, k, vec, has_vec, sh, lsig, ltanh, w)``: cell k for B
  streams at once in fixed point (``acc`` (rows, B), block j at row ``r0 + j s``; the int64
  kernel of many streams), with the shift vector ``sh`` (layout below), the sigmoid and tanh
  tables and an int64 scratch ``w`` of :attr:`EngineCell.scratch` B entries;
  ``ew_fixed_cells(kind, acc, H, lo, hi, st, out, vec, has_vec, sh, lsig, ltanh, w)`` the same
  for the cells [lo, hi) of one stream (block j of cell k at ``acc[j H + k]``; ``w`` of
  :attr:`EngineCell.scratch` (hi - lo) entries): both vectorize over their index.

A cell the engine runs has one state vector (both real cells do) and one entry in
:data:`ENGINE_CELLS`: its kind, its shifts (from the layer's binary points) and the bound of its
output signal. Adding a cell adds its functions here and a branch to each dispatcher.

The ``sh`` vector: ``ABITS``, ``ACCBITS``, ``NSIG``, ``NTANH`` (widths and table sizes), then the
shifts of the gate sums and output stage (``SX``, ``SR``, ``SACC``, ``SAY``, ``SY``), then from
``EW`` on the cell's own shifts. Every shift is ``F_from - F_to`` (positive: rounding right shift,
negative: exact left shift; :func:`ese.runtime.arith.align`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba as nb
import numpy as np

from ese.runtime.arith import align, at, lookup, lut_index, sat, sigmoid, tanh
from ese.runtime.errors import EngineError

_FLOAT = {"cache": True, "fastmath": True, "nogil": True}
_INT = {"cache": True, "nogil": True}

# ---- the shift vector ------------------------------------------------------------------------
ABITS, ACCBITS, NSIG, NTANH, SX, SR, SACC, SAY, SY = range(9)
SHIFTS0 = SX  # sh[SHIFTS0:] are shifts (checked against 62 bits)
EW = 9  # the cell's own shifts start here
N_SHIFTS = EW + 24

LSTMP_KIND, GRU_KIND = 0, 1


# ---- the LSTMP (ese.cell._lstmp_fixed / _lstmp_float) ----------------------------------------
# its shifts, sh[EW + j]: the four gate pre-activations from acc, the three c-terms, the five LUT
# inputs, the cell update (f c_prev, i g, the sum) and m
ZI, ZF, ZG, ZO, PI, PF, PO, LI, LF, LG, LO, LC, CF, CIG, CC, SM = range(EW, EW + 16)


def _lstmp_shifts(f: dict[str, int], e_sig: int, e_tanh: int) -> dict[int, int]:
    fg, fc = f["gate"], f["c"]
    fs = max(fg + fc, 2 * fg)
    zi, zf, zg, zo = f["z_i"], f["z_f"], f["z_g"], f["z_o"]
    fp = f["peephole"]
    return {ZI: f["acc"] - zi, ZF: f["acc"] - zf, ZG: f["acc"] - zg, ZO: f["acc"] - zo,
            PI: fp + fc - zi, PF: fp + fc - zf, PO: fp + fc - zo,
            LI: zi + e_sig, LF: zf + e_sig, LG: zg + e_tanh, LO: zo + e_sig, LC: fc + e_tanh,
            CF: fg + fc - fs, CIG: 2 * fg - fs, CC: fs - fc, SM: 2 * fg - f["m"]}


def _align_int(v: int, s: int) -> int:
    return v << -s if s <= 0 else (v + (1 << (s - 1))) >> s


def _lstmp_out_bound(luts: dict[str, np.ndarray], sh: np.ndarray) -> int:
    """Largest |m| the cell stage can give: |o * tanh(c)| aligned, at most the activation range
    (``o`` and ``tanh(c)`` are LUT values; ``align`` is monotone and rounds half up, so
    ``|align(-v)| <= align(v)``)."""
    top = int(np.abs(luts["sigmoid"]).max()) * int(np.abs(luts["tanh"]).max())
    return min(1 << (int(sh[ABITS]) - 1), _align_int(top, int(sh[SM])) + 1)


@nb.njit(inline="always", **_FLOAT)
def _lstmp_float_vec(ai, af, ag, ao, c, m, pi, pf, po):
    """c_t and m_t over index b from the four gate pre-activations (B streams of one cell, or the
    cells of one stream), in place; the peephole weights ``pi``, ``pf``, ``po`` (w_ic, w_fc,
    w_oc) are scalars or (B,) arrays (:func:`ese.runtime.arith.at`), 0 without peepholes. One
    branch-free loop: LLVM vectorizes it."""
    for b in range(c.shape[0]):
        cp = c[b]
        cn = sigmoid(af[b] + at(pf, b) * cp) * cp + sigmoid(ai[b] + at(pi, b) * cp) * tanh(ag[b])
        c[b] = cn
        m[b] = sigmoid(ao[b] + at(po, b) * cn) * tanh(cn)


@nb.njit(inline="always", **_FLOAT)
def _lstmp_float_cells(acc, H, lo, hi, c, m, vec, has_vec):
    ai, af, ag, ao = acc[lo:hi], acc[H + lo:H + hi], acc[2 * H + lo:2 * H + hi], acc[3 * H + lo:3 * H + hi]
    if has_vec:
        _lstmp_float_vec(ai, af, ag, ao, c[lo:hi], m[lo:hi], vec[0, lo:hi], vec[1, lo:hi], vec[2, lo:hi])
    else:
        zero = np.float32(0.0)
        _lstmp_float_vec(ai, af, ag, ao, c[lo:hi], m[lo:hi], zero, zero, zero)


@nb.njit(inline="always", **_INT)
def _lstmp_fixed_vec(ai, af, ag, ao, c, m, pi, pf, po, sh, lsig, ltanh, w):
    """The LSTMP step (ese.cell._lstmp_fixed) over index b of the accumulators ``ai`` .. ``ao``
    (B,), the state ``c`` and output ``m`` (updated in place): B streams of one cell, or the B
    cells of one stream. The arithmetic runs in branch-free loops over b with loop-invariant
    shifts (vectorized; the shifts are read into locals first, since LLVM cannot prove the stores
    to ``c``/``m`` leave ``sh`` alone), the LUT lookups in loops of their own
    (:func:`ese.runtime.arith.lookup`). The peephole weights ``pi``, ``pf``, ``po`` are scalars
    (one cell) or (B,) arrays (:func:`at`); without peepholes they are 0 (``align(0, s) == 0``:
    the sums are unchanged). ``w``: 6 B int64 of scratch."""
    A, szi, szf, szg, szo, spi, spf, spo = sh[ABITS], sh[ZI], sh[ZF], sh[ZG], sh[ZO], sh[PI], sh[PF], sh[PO]
    sli, slf, slg, slo, slc, scf, scig, scc, ssm = sh[LI], sh[LF], sh[LG], sh[LO], sh[LC], sh[CF], sh[CIG], sh[CC], sh[SM]
    ns, nt = sh[NSIG], sh[NTANH]
    B = c.shape[0]
    x1, x2, x3, v1, v2, v3 = w[:B], w[B:2 * B], w[2 * B:3 * B], w[3 * B:4 * B], w[4 * B:5 * B], w[5 * B:6 * B]
    for b in range(B):
        cp = np.int64(c[b])
        x1[b] = lut_index(sat(align(ai[b], szi) + align(at(pi, b) * cp, spi), A), sli, ns)
        x2[b] = lut_index(sat(align(af[b], szf) + align(at(pf, b) * cp, spf), A), slf, ns)
        x3[b] = lut_index(sat(align(ag[b], szg), A), slg, nt)
    lookup(lsig, x1, v1)  # i
    lookup(lsig, x2, v2)  # f
    lookup(ltanh, x3, v3)  # g
    for b in range(B):
        cn = sat(align(align(v2[b] * np.int64(c[b]), scf) + align(v1[b] * v3[b], scig), scc), A)
        c[b] = cn
        x1[b] = lut_index(sat(align(ao[b], szo) + align(at(po, b) * cn, spo), A), slo, ns)
        x2[b] = lut_index(cn, slc, nt)
    lookup(lsig, x1, v1)  # o
    lookup(ltanh, x2, v2)  # tanh(c)
    for b in range(B):
        m[b] = sat(align(v1[b] * v2[b], ssm), A)


@nb.njit(inline="always", **_INT)
def _lstmp_fixed_rows(acc, r0, s, c, m, k, vec, has_vec, sh, lsig, ltanh, w):
    """Cell k for all B streams (``acc`` (rows, B), block j at row ``r0 + j s``)."""
    pi = vec[0, k] if has_vec else 0
    pf = vec[1, k] if has_vec else 0
    po = vec[2, k] if has_vec else 0
    _lstmp_fixed_vec(acc[r0], acc[r0 + s], acc[r0 + 2 * s], acc[r0 + 3 * s], c, m, pi, pf, po, sh, lsig, ltanh, w)


@nb.njit(inline="always", **_INT)
def _lstmp_fixed_cells(acc, H, lo, hi, c, m, vec, has_vec, sh, lsig, ltanh, w):
    """Cells [lo, hi) of one stream (``acc`` block-major: block j of cell k at ``j H + k``)."""
    if has_vec:
        _lstmp_fixed_vec(acc[lo:hi], acc[H + lo:H + hi], acc[2 * H + lo:2 * H + hi], acc[3 * H + lo:3 * H + hi],
                         c[lo:hi], m[lo:hi], vec[0, lo:hi], vec[1, lo:hi], vec[2, lo:hi], sh, lsig, ltanh, w)
    else:
        _lstmp_fixed_vec(acc[lo:hi], acc[H + lo:H + hi], acc[2 * H + lo:2 * H + hi], acc[3 * H + lo:3 * H + hi],
                         c[lo:hi], m[lo:hi], 0, 0, 0, sh, lsig, ltanh, w)


# ---- the GRU (ese.cell._gru_fixed / _gru_float; docs/fixed-point.md section 10) ----------------
# its shifts, sh[EW + j]: z_r, z_z, z_hn, the input part of z_n from acc; r z_hn into z_n; the
# three LUT inputs; the two products of h and their sum; Fg (1 - z is (1 << Fg) - z)
GZR, GZZ, GZH, GZN, GRN, GLR, GLZ, GLN, GHP, GHN, GHS, GONE = range(EW, EW + 12)


def _gru_shifts(f: dict[str, int], e_sig: int, e_tanh: int) -> dict[int, int]:
    fg, fy = f["gate"], f["y"]
    fs = max(fg + fy, 2 * fg)
    return {GZR: f["acc"] - f["z_r"], GZZ: f["acc"] - f["z_z"], GZH: f["acc"] - f["z_hn"],
            GZN: f["acc"] - f["z_n"], GRN: fg + f["z_hn"] - f["z_n"], GLR: f["z_r"] + e_sig,
            GLZ: f["z_z"] + e_sig, GLN: f["z_n"] + e_tanh, GHP: fg + fy - fs, GHN: 2 * fg - fs,
            GHS: fs - fy, GONE: fg}


def _gru_out_bound(luts: dict[str, np.ndarray], sh: np.ndarray) -> int:
    """h is saturated to the activation width."""
    return 1 << (int(sh[ABITS]) - 1)


@nb.njit(inline="always", **_FLOAT)
def _gru_float_vec(ar, az, anx, anh, h, out):
    """h_t over index b from the four accumulators r, z, n_x, n_h (torch.nn.GRU's equations)."""
    for b in range(h.shape[0]):
        n = tanh(anx[b] + sigmoid(ar[b]) * anh[b])
        hb = n + sigmoid(az[b]) * (h[b] - n)  # (1 - z) n + z h_prev
        h[b] = hb
        out[b] = hb


@nb.njit(inline="always", **_FLOAT)
def _gru_float_cells(acc, H, lo, hi, h, out, vec, has_vec):
    _gru_float_vec(acc[lo:hi], acc[H + lo:H + hi], acc[2 * H + lo:2 * H + hi], acc[3 * H + lo:3 * H + hi],
                   h[lo:hi], out[lo:hi])


@nb.njit(inline="always", **_INT)
def _gru_fixed_vec(ar, az, anx, anh, h, out, sh, lsig, ltanh, w):
    """The GRU step (ese.cell._gru_fixed) over index b, laid out as :func:`_lstmp_fixed_vec`
    (arithmetic in loops over b with the shifts in locals, LUT lookups in loops of their own)."""
    A, szr, szz, szh, szn, srn = sh[ABITS], sh[GZR], sh[GZZ], sh[GZH], sh[GZN], sh[GRN]
    slr, slz, sln, shp, shn, shs = sh[GLR], sh[GLZ], sh[GLN], sh[GHP], sh[GHN], sh[GHS]
    ns, nt = sh[NSIG], sh[NTANH]
    one = np.int64(1) << sh[GONE]
    B = h.shape[0]
    x1, x2, x3, v1, v2, v3 = w[:B], w[B:2 * B], w[2 * B:3 * B], w[3 * B:4 * B], w[4 * B:5 * B], w[5 * B:6 * B]
    for b in range(B):
        x1[b] = lut_index(sat(align(ar[b], szr), A), slr, ns)
        x2[b] = lut_index(sat(align(az[b], szz), A), slz, ns)
        v3[b] = sat(align(anh[b], szh), A)  # z_hn
    lookup(lsig, x1, v1)  # r
    lookup(lsig, x2, v2)  # z
    for b in range(B):
        x3[b] = lut_index(sat(align(anx[b], szn) + align(v1[b] * v3[b], srn), A), sln, nt)
    lookup(ltanh, x3, v1)  # n
    for b in range(B):
        hb = sat(align(align(v2[b] * np.int64(h[b]), shp) + align((one - v2[b]) * v1[b], shn), shs), A)
        h[b] = hb
        out[b] = hb


@nb.njit(inline="always", **_INT)
def _gru_fixed_rows(acc, r0, s, h, out, k, vec, has_vec, sh, lsig, ltanh, w):
    _gru_fixed_vec(acc[r0], acc[r0 + s], acc[r0 + 2 * s], acc[r0 + 3 * s], h, out, sh, lsig, ltanh, w)


@nb.njit(inline="always", **_INT)
def _gru_fixed_cells(acc, H, lo, hi, h, out, vec, has_vec, sh, lsig, ltanh, w):
    _gru_fixed_vec(acc[lo:hi], acc[H + lo:H + hi], acc[2 * H + lo:2 * H + hi], acc[3 * H + lo:3 * H + hi],
                   h[lo:hi], out[lo:hi], sh, lsig, ltanh, w)


# ---- the dispatchers (one branch per cell) ---------------------------------------------------
@nb.njit(inline="always", **_FLOAT)
def ew_float_cells(kind, acc, H, lo, hi, st, out, vec, has_vec):
    if kind == GRU_KIND:
        _gru_float_cells(acc, H, lo, hi, st, out, vec, has_vec)
    else:
        _lstmp_float_cells(acc, H, lo, hi, st, out, vec, has_vec)


@nb.njit(inline="always", **_INT)
def ew_fixed_cells(kind, acc, H, lo, hi, st, out, vec, has_vec, sh, lsig, ltanh, w):
    if kind == GRU_KIND:
        _gru_fixed_cells(acc, H, lo, hi, st, out, vec, has_vec, sh, lsig, ltanh, w)
    else:
        _lstmp_fixed_cells(acc, H, lo, hi, st, out, vec, has_vec, sh, lsig, ltanh, w)


@nb.njit(inline="always", **_INT)
def ew_fixed_rows(kind, acc, r0, s, st, out, k, vec, has_vec, sh, lsig, ltanh, w):
    if kind == GRU_KIND:
        _gru_fixed_rows(acc, r0, s, st, out, k, vec, has_vec, sh, lsig, ltanh, w)
    else:
        _lstmp_fixed_rows(acc, r0, s, st, out, k, vec, has_vec, sh, lsig, ltanh, w)


# ---- the cells the engine runs ---------------------------------------------------------------
@dataclass(frozen=True)
class EngineCell:
    """What the engine needs of a cell beyond its description: ``kind`` (the dispatchers'
    branch), ``shifts(fracs, e_sig, e_tanh)`` (its ``sh`` entries from a layer's binary points
    and the LUT steps), ``out_bound(luts, sh)`` (the largest |output| of its element-wise step,
    which bounds the output SpMV's int32 sums) and ``scratch`` (int64 per stream of the rows form)."""

    kind: int
    shifts: Callable[[dict[str, int], int, int], dict[int, int]]
    out_bound: Callable[[dict[str, np.ndarray], np.ndarray], int]
    scratch: int


ENGINE_CELLS: dict[str, EngineCell] = {
    "lstmp": EngineCell(LSTMP_KIND, _lstmp_shifts, _lstmp_out_bound, 6),
    "gru": EngineCell(GRU_KIND, _gru_shifts, _gru_out_bound, 6),
}


def engine_cell(spec) -> EngineCell:
    """The engine's entry for ``spec`` (a :class:`ese.cell.CellSpec`), else EngineError."""
    if spec.name not in ENGINE_CELLS or len(spec.state) != 1:
        raise EngineError(f"the CPU engine has no element-wise kernels for the {spec.name!r} cell; it runs "
                          f"{', '.join(sorted(ENGINE_CELLS))} (the reference model runs any cell: ese eval "
                          "without --engine)")
    return ENGINE_CELLS[spec.name]
