"""Weight layouts of the CPU engine: SIMD row slices (SELL-16) and CSR, 16-bit indices.

Rows are processed in *slices* of ``LANES`` rows, one SIMD register of fp32 accumulators each.
Gate matrices are first laid out by accumulator row (``n`` blocks of H rows in the cell
description's block order, :func:`ese.runtime.weights.acc_matrix`: the LSTMP's i, f, g, o; the
GRU's r, z, n_x, n_h), then reordered so that a *cell group* (``LANES`` consecutive cells) owns
``n`` consecutive slices, one per block: internal row ``(q * n + g) * LANES + lane`` is
accumulator row ``g * H + q * LANES + lane``. A thread that owns a cell group therefore holds
every accumulator of its cells and applies the fused element-wise step without waiting for other
threads (ESE's "cell k with all its gate rows").
Threads take cell groups (and projection slices) the way ESE's PEs take cells: group q to thread
``q mod T`` (:func:`ese.partition.partition_rows`).

Within a slice, non-zeros are stored column-of-the-slice major: entry ``k * LANES + lane`` is the
k-th non-zero of row ``lane``; rows shorter than the slice's longest are padded with zero weights
(column 0). A row-balanced model (``prune.balance = "rows:16"``) has no padding at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ese.partition import partition_rows
from ese.runtime.errors import EngineError

LANES = 16  # fp32 lanes of one AVX-512 register
INDEX_DTYPE = np.uint16


@dataclass(frozen=True, eq=False)
class SparseMatrix:
    """One matrix in both layouts, rows in internal order (padded to a multiple of LANES).

    ``sell_ptr`` (S + 1) int64 entry offset of each slice; ``sell_cols`` uint16, ``sell_vals``
    (entries incl. padding). ``csr_ptr`` (R + 1) int64, ``csr_cols`` uint16, ``csr_vals``.
    """

    n_rows: int  # padded internal rows
    n_cols: int
    nnz: int
    sell_ptr: np.ndarray
    sell_cols: np.ndarray
    sell_vals: np.ndarray
    csr_ptr: np.ndarray
    csr_cols: np.ndarray
    csr_vals: np.ndarray

    @property
    def padding(self) -> int:
        """Zero entries the sliced layout stores beyond the non-zeros."""
        return int(self.sell_vals.size - self.nnz)

    def nbytes(self, layout: str) -> int:
        """Resident bytes of one layout ("sell" or "csr")."""
        arrs = (self.sell_ptr, self.sell_cols, self.sell_vals) if layout == "sell" else \
            (self.csr_ptr, self.csr_cols, self.csr_vals)
        return int(sum(a.nbytes for a in arrs))


def padded(n: int) -> int:
    """``n`` rounded up to a multiple of LANES."""
    return -(-n // LANES) * LANES


def gate_row_order(hidden: int, blocks: int) -> np.ndarray:
    """(blocks * padded(H),) accumulator row of each internal gate row, -1 for padding cells."""
    hp = padded(hidden)
    q, g, lane = np.meshgrid(np.arange(hp // LANES), np.arange(blocks), np.arange(LANES), indexing="ij")
    cell = q * LANES + lane
    return np.where(cell < hidden, g * hidden + cell, -1).ravel()


def plain_row_order(n_rows: int) -> np.ndarray:
    """(padded(n),) original row of each internal row, -1 for padding."""
    r = np.arange(padded(n_rows))
    return np.where(r < n_rows, r, -1)


def pack(w: np.ndarray, order: np.ndarray, dtype: np.dtype) -> SparseMatrix:
    """Pack dense ``w`` (R, K) with internal row ``i`` = original row ``order[i]`` (-1: zero row)."""
    K = w.shape[1]
    if K > np.iinfo(INDEX_DTYPE).max + 1:
        raise EngineError(f"matrix has {K} columns; 16-bit indices address at most 65536")
    rows = np.zeros((order.size, K), dtype=w.dtype)
    rows[order >= 0] = w[order[order >= 0]]
    nz_r, nz_c = np.nonzero(rows)  # row-major: columns ascending within a row
    counts = np.bincount(nz_r, minlength=order.size)
    csr_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    csr_cols = nz_c.astype(INDEX_DTYPE)
    csr_vals = rows[nz_r, nz_c].astype(dtype)
    widths = counts.reshape(-1, LANES).max(axis=1)  # (S,)
    sell_ptr = np.concatenate([[0], np.cumsum(widths * LANES)]).astype(np.int64)
    sell_cols = np.zeros(int(sell_ptr[-1]), dtype=INDEX_DTYPE)
    sell_vals = np.zeros(int(sell_ptr[-1]), dtype=dtype)
    k_in_row = np.arange(nz_r.size) - csr_ptr[nz_r]  # rank of each non-zero within its row
    slot = sell_ptr[nz_r // LANES] + k_in_row * LANES + nz_r % LANES
    sell_cols[slot], sell_vals[slot] = csr_cols, csr_vals
    return SparseMatrix(order.size, K, int(nz_r.size), sell_ptr, sell_cols, sell_vals,
                        csr_ptr, csr_cols, csr_vals)


def thread_groups(n_groups: int, n_threads: int) -> np.ndarray:
    """(T, G) int32: the cell groups (or slices) of each thread, ESE's ``q mod T``; -1 padded."""
    part = partition_rows(n_groups, max(1, min(n_threads, n_groups)))
    width = max(len(r) for r in part.rows_of_pe)
    out = np.full((part.n_pes, width), -1, dtype=np.int32)
    for t, rows in enumerate(part.rows_of_pe):
        out[t, :len(rows)] = rows
    return out


@dataclass(frozen=True, eq=False)
class SortedSell:
    """SELL-16-sigma for one stream: rows sorted by non-zeros (descending) so a slice's rows
    have nearly equal lengths (little padding); ``rows[i]`` is the original row of sorted row i
    (``n_rows`` for padding rows: the kernels write those to a spare slot)."""

    n_rows: int
    n_cols: int
    nnz: int
    ptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    rows: np.ndarray  # int32

    @property
    def padding(self) -> int:
        return int(self.vals.size - self.nnz)

    @property
    def nbytes(self) -> int:
        return int(self.ptr.nbytes + self.cols.nbytes + self.vals.nbytes + self.rows.nbytes)


def pack_sorted(w: np.ndarray, dtype: np.dtype) -> SortedSell:
    """Pack dense ``w`` (R, K) as :class:`SortedSell` (stable sort: equal rows keep their order)."""
    R, K = w.shape
    counts = np.count_nonzero(w, axis=1)
    order = np.argsort(-counts, kind="stable")
    rows = np.full(padded(R), R, dtype=np.int64)
    rows[:R] = order
    m = pack(w, np.where(rows < R, rows, -1), dtype)
    return SortedSell(R, K, m.nnz, m.sell_ptr, m.sell_cols, m.sell_vals, rows.astype(np.int32))


def sell_dense(m: SortedSell) -> np.ndarray:
    """The dense (n_rows, n_cols) matrix a :class:`SortedSell` holds (for repacking)."""
    S = m.ptr.size - 1
    entry_slice = np.repeat(np.arange(S), np.diff(m.ptr))
    lane = (np.arange(m.vals.size) - m.ptr[entry_slice]) % LANES
    rows = m.rows[entry_slice * LANES + lane]
    keep = (m.vals != 0) & (rows < m.n_rows)
    out = np.zeros((m.n_rows, m.n_cols), dtype=m.vals.dtype)
    out[rows[keep], m.cols[keep].astype(np.int64)] = m.vals[keep]
    return out


def aligned_zeros(shape: tuple[int, ...], dtype, align: int = 64) -> np.ndarray:
    """Zeros whose first element sits on an ``align``-byte boundary. The pair kernel's int16 rows
    of 32 streams are then one cache line each, so its row loads never split (a third less time
    per pair than at numpy's 16-byte alignment); and the per-thread parts of the engine's buffers
    (cells, output rows, sums) share no line, which numpy's alignment let them do: two threads
    writing one line cost the one-stream step 45-70 µs instead of 29 in about half of the
    processes (docs/performance.md)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    buf = np.zeros(n + align, np.uint8)
    off = (-buf.ctypes.data) % align
    return buf[off:off + n].view(dtype).reshape(shape)


def stream_vectors(vec: np.ndarray, has_vec: bool, Bp: int) -> np.ndarray:
    """The element-wise vectors (rows, Hp) by group of LANES cells, each cell's value repeated
    for its ``Bp`` streams: (Hp / LANES, rows, LANES Bp), a group's (cell, stream) pairs in the
    order of the (Hp, Bp) state arrays; (1, 1, 1) without vectors. A group's block is then
    C-contiguous: a column slice of one (rows, Hp Bp) array would not be, and the element-wise
    loops over it would run four times slower, unvectorized."""
    if not has_vec:
        return np.zeros((1, 1, 1), vec.dtype)
    rows, Hp = vec.shape
    rep = np.repeat(vec, Bp, axis=1).reshape(rows, Hp // LANES, LANES * Bp)
    return np.ascontiguousarray(rep.transpose(1, 0, 2))
