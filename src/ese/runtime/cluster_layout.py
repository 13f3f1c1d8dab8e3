"""Layout of a column-clustered matrix (``cluster:G`` pattern, :mod:`ese.runtime.patterns`).

Cluster q holds original rows ``[q G, q G + G)`` and the columns any of its rows uses (the
pattern makes them the same for all G rows). Float: for each column, its G weights contiguous
(``vals[G e + lane]``). Fixed point: columns in *pairs* with the 2G weights of a pair interleaved
by row (``vals[2 G p + 2 lane + h]``, h = 0, 1 the pair's two columns), the layout ``vpmaddwd``
reads; columns below ``split`` (the x part of ``[W_x | W_r]``) and from ``split`` on (the y part)
form two runs of pairs, each padded to even length with a zero weight, because the two parts are
summed at different binary points. ``chunk[q, part]``: how many pairs may be summed in int32
lanes before the partial sum must be moved to int64, for inputs bounded by ``zmax``: the whole
part when ``sum |w| * zmax`` of every row of it stays below 2**31, else
``2**31 // (largest pair bound)`` (a pair adds at most ``|w0| zmax0 + |w1| zmax1`` to a lane).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ese.runtime.errors import EngineError
from ese.runtime.layout import INDEX_DTYPE

INT32_LIMIT = 2**31 - 1


@dataclass(frozen=True, eq=False)
class ClusterMatrix:
    G: int
    n_rows: int
    n_cols: int
    nnz: int  # stored weights incl. zeros the rows of a cluster do not share
    ptr: np.ndarray  # (Q + 1,) int64: column (float) or pair (fixed) offset of each cluster
    nx: np.ndarray  # (Q,) int64: fixed point: pairs of the x part (columns < split)
    cols: np.ndarray  # uint16: one per column (float) or two per pair (fixed)
    vals: np.ndarray  # float32 (G per column) or int16 (2 G per pair)
    wide: np.ndarray  # (Q,) bool: some part of the cluster is summed in several int32 chunks
    chunk: np.ndarray  # (Q, 2) int64: fixed point: pairs per int32 chunk of the x and y parts

    @property
    def n_clusters(self) -> int:
        return self.ptr.size - 1

    @property
    def nbytes(self) -> int:
        return int(self.ptr.nbytes + self.nx.nbytes + self.cols.nbytes + self.vals.nbytes + self.wide.nbytes)


def _cluster_cols(w: np.ndarray, G: int) -> list[np.ndarray]:
    R = w.shape[0]
    return [np.flatnonzero((w[q * G:(q + 1) * G] != 0).any(axis=0)) for q in range(R // G)]


def pack_float(w: np.ndarray, G: int) -> ClusterMatrix:
    """Float layout of dense ``w`` (R, K), R a multiple of G."""
    R, K = w.shape
    _check(R, K, G)
    cl = _cluster_cols(w, G)
    ptr = np.concatenate([[0], np.cumsum([len(c) for c in cl])]).astype(np.int64)
    cols = np.concatenate(cl).astype(INDEX_DTYPE) if cl else np.zeros(0, INDEX_DTYPE)
    vals = np.zeros((int(ptr[-1]), G), np.float32)
    for q, c in enumerate(cl):
        vals[ptr[q]:ptr[q + 1]] = w[q * G:(q + 1) * G][:, c].T
    nq = len(cl)
    return ClusterMatrix(G, R, K, vals.size, ptr, np.zeros(nq, np.int64), cols, vals.ravel(),
                         np.zeros(nq, bool), np.zeros((nq, 2), np.int64))


def _pairs(c: np.ndarray) -> np.ndarray:
    """Columns ``c`` padded to even length (the pad repeats a column; its weight is 0)."""
    if len(c) % 2:
        c = np.append(c, c[-1])
    return c


def pack_fixed(w: np.ndarray, G: int, split: int, zmax: np.ndarray) -> ClusterMatrix:
    """Fixed-point layout of integer ``w`` (R, K) (|w| < 2**15), parts split at column ``split``;
    ``zmax`` (K,) bounds |input| per column, for the int32 check."""
    R, K = w.shape
    _check(R, K, G)
    w = np.asarray(w, np.int64)
    if np.abs(w).max(initial=0) >= 1 << 15:
        raise EngineError("weights beyond 16 bits do not fit the int16 cluster layout")
    cl = _cluster_cols(w, G)
    cols_l, vals_l, nx, wide, ptr, chunk = [], [], [], [], [0], []
    for q, c in enumerate(cl):
        rows = w[q * G:(q + 1) * G]
        lo, hi = c[c < split], c[c >= split]
        pair_cols = []
        wide_q = False
        steps = [1 << 40, 1 << 40]
        for h, part in enumerate((lo, hi)):
            if len(part) == 0:
                continue
            pc = _pairs(part)
            blk = rows[:, pc].copy()  # (G, n even)
            if len(part) % 2:
                blk[:, -1] = 0
            pair_cols.append(pc)
            vals_l.append(blk.reshape(G, -1, 2).transpose(1, 0, 2).ravel())  # (pairs, G, 2)
            bound = (np.abs(rows[:, part]) @ zmax[part].astype(np.int64)).max()
            if bound > INT32_LIMIT:
                wide_q = True
                per_pair = (np.abs(blk) * zmax[pc].astype(np.int64)).reshape(G, -1, 2).sum(axis=2).max()
                steps[h] = max(1, INT32_LIMIT // int(per_pair))
        wide.append(wide_q)
        chunk.append(steps)
        nx.append((len(_pairs(lo)) // 2) if len(lo) else 0)
        pc = np.concatenate(pair_cols) if pair_cols else np.zeros(0, np.int64)
        cols_l.append(pc)
        ptr.append(ptr[-1] + len(pc) // 2)
    cols = np.concatenate(cols_l).astype(INDEX_DTYPE) if cols_l else np.zeros(0, INDEX_DTYPE)
    vals = np.concatenate(vals_l).astype(np.int16) if vals_l else np.zeros(0, np.int16)
    return ClusterMatrix(G, R, K, vals.size, np.asarray(ptr, np.int64), np.asarray(nx, np.int64),
                         cols, vals, np.asarray(wide, bool), np.asarray(chunk, np.int64).reshape(-1, 2))


def _check(R: int, K: int, G: int) -> None:
    if R % G:
        raise EngineError(f"a matrix of {R} rows does not split into clusters of {G}")
    if K > np.iinfo(INDEX_DTYPE).max + 1:
        raise EngineError(f"matrix has {K} columns; 16-bit indices address at most 65536")


def float_clusters(w_x: np.ndarray, w_r: np.ndarray, w_y: np.ndarray, G: int) -> dict[str, ClusterMatrix]:
    """The layer's three clustered matrices, float: ``gx`` = [W_x | W_r] (streaming), ``gr`` =
    W_r (utterance mode), ``gp`` = the output matrix W_y (input and recurrent matrices by
    accumulator row, :func:`ese.runtime.weights.engine_matrices`)."""
    f = np.float32
    return {"gx": pack_float(np.hstack([w_x, w_r]).astype(f), G), "gr": pack_float(np.asarray(w_r, f), G),
            "gp": pack_float(np.asarray(w_y, f), G)}


def fixed_clusters(w_x: np.ndarray, w_r: np.ndarray, w_y: np.ndarray, G: int, x_max: int, y_max: int,
                   m_max: int) -> dict[str, ClusterMatrix]:
    """Fixed point: as :func:`float_clusters`, int16 pairs; ``x_max``, ``y_max``, ``m_max`` bound
    the raw inputs of the three matrices (the int32 check)."""
    D, P, H = w_x.shape[1], w_r.shape[1], w_y.shape[1]
    zx = np.concatenate([np.full(D, x_max), np.full(P, y_max)]).astype(np.int64)
    return {"gx": pack_fixed(np.hstack([w_x, w_r]), G, D, zx),
            "gr": pack_fixed(w_r, G, 0, np.full(P, y_max, np.int64)),
            "gp": pack_fixed(w_y, G, H, np.full(H, m_max, np.int64))}
