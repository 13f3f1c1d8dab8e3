"""Layout of the permuted-table kernel (``perm64``, :mod:`ese.runtime.simd_perm`), fixed point.

Any sparsity pattern runs on it; it needs only AVX-512BW. A matrix's columns form two *parts*
(the x and y columns of ``[W_x | W_r]``, summed at different binary points; one part for the
other matrices), each padded to whole blocks of 64 columns, so block ``b`` of the packed matrix
reads ``z[64 b:64 b + 64]`` of an input laid out the same way (x, zeros, y, zeros).

Rows go to threads first: thread t owns the accumulator rows of its cells (``cell_bounds``), so
it runs its cells' element-wise step right after their products without waiting for the other
thread, ESE's "a PE owns every gate row of its cells". Within a thread, rows are sorted by their
non-zero count and cut into slices of 16 (rows padded with the spare row ``n_rows``). For slice s
and block b, ``counts[s, b]`` pairs hold, lane pair ``2 i, 2 i + 1`` of pair k, the 2k-th and
(2k + 1)-th non-zero of the slice's row i in that block (zero weights where the row has fewer):
the sliced layout's padding, per block.

int32 lanes are exact while ``sum |w| * zmax`` of every row and part stays below 2**31 (inputs
bounded by ``zmax``); a slice holding a row that could pass it (``wide``) sums in int64 lanes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ese.runtime.simd_perm import BLOCK, FLOAT_BLOCK, WORDS

ROWS = WORDS // 2  # rows of a slice: int32 lanes of one register
INT32_LIMIT = 2**31 - 1


@dataclass(frozen=True, eq=False)
class PermMatrix:
    n_rows: int  # rows of the matrix (``rows`` entries equal to it are padding)
    block: int  # inputs per block (64 int16, 32 fp32)
    split_blocks: int  # blocks of the first part
    n_blocks: int
    nnz: int
    ptr: np.ndarray  # (S + 1,) int64: first pair of each slice
    mid: np.ndarray  # (S,) int64: first pair of the slice's second part
    counts: np.ndarray  # (S, n_blocks) int32: steps (pairs) per block
    idx: np.ndarray  # (steps, 32 | 16) uint8: block-local column of each word
    vals: np.ndarray  # (steps, 32 | 16) int16 | float32
    rows: np.ndarray  # (S * 16,) int32: matrix row of each slice lane
    wide: np.ndarray  # (S,) bool: sums in int64 lanes
    slices: np.ndarray  # (T, width) int32: each thread's slices, -1 padded

    @property
    def stored(self) -> int:
        """Stored weights, padding included."""
        return int(self.vals.size)

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (self.ptr, self.mid, self.counts, self.idx, self.vals, self.rows, self.wide)))

    @property
    def n_cols(self) -> int:
        """Entries of the input vector the kernel reads (whole blocks)."""
        return self.n_blocks * self.block


def blocks(n: int, block: int = BLOCK) -> int:
    return -(-n // block)


def column_map(K: int, split: int, block: int = BLOCK) -> np.ndarray:
    """(K,) packed column of each original column: part 1 from 0, part 2 from its first block."""
    c = np.arange(K)
    return np.where(c < split, c, blocks(split, block) * block + c - split)


def _thread_order(nz_count: np.ndarray, row_sets: list[np.ndarray], spare: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of every thread sorted by non-zeros (descending; stable), each run padded to ROWS with
    ``spare``; and (T, width) the slices of each thread."""
    runs, owned = [], []
    first = 0
    for rows in row_sets:
        rows = np.asarray(rows, np.int64)
        order = rows[np.argsort(-nz_count[rows], kind="stable")]
        order = np.concatenate([order, np.full(-len(order) % ROWS, spare, np.int64)])
        runs.append(order)
        owned.append(np.arange(first, first + len(order) // ROWS))
        first += len(order) // ROWS
    width = max(1, max(len(o) for o in owned))
    slices = np.full((len(owned), width), -1, np.int32)
    for t, o in enumerate(owned):
        slices[t, :len(o)] = o
    return np.concatenate(runs), slices


def pack_perm(w: np.ndarray, split: int, row_sets: list[np.ndarray], zmax: np.ndarray | None,
              fixed: bool = True) -> PermMatrix:
    """Pack ``w`` (R, K): columns ``[0, split)`` are the first part; ``row_sets`` the rows of each
    thread (together every row once). ``fixed``: integer weights as int16 in pairs over blocks of
    64, ``zmax`` (K,) bounding the inputs' magnitudes; else fp32, one per step, blocks of 32."""
    w = np.asarray(w, np.int64 if fixed else np.float32)
    R, K = w.shape
    block, per_lane = (BLOCK, 2) if fixed else (FLOAT_BLOCK, 1)
    nb1 = blocks(split, block)
    NB = nb1 + blocks(K - split, block)
    cmap = column_map(K, split, block)
    order, slices = _thread_order(np.count_nonzero(w, axis=1), row_sets, R)
    S = order.size // ROWS
    live = order < R
    packed = np.zeros((order.size, NB * block), w.dtype)
    packed[np.flatnonzero(live)[:, None], cmap[None, :]] = w[order[live]]
    nz_r, nz_c = np.nonzero(packed)  # row-major: columns ascending within a row
    key = nz_r * NB + nz_c // block  # (row, block), ascending
    per_rb = np.bincount(key, minlength=order.size * NB)
    first = np.concatenate([[0], np.cumsum(per_rb)])[key]
    rank = np.arange(key.size) - first  # rank of the non-zero within its row and block
    counts = ((per_rb.reshape(S, ROWS, NB).max(axis=1) + per_lane - 1) // per_lane).astype(np.int32)
    start = np.concatenate([[0], np.cumsum(counts.ravel())]).astype(np.int64)
    pair = start[:-1].reshape(S, NB)[nz_r // ROWS, nz_c // block] + rank // per_lane
    word = (nz_r % ROWS) * per_lane + rank % per_lane
    idx = np.zeros((int(start[-1]), ROWS * per_lane), np.uint8)
    vals = np.zeros((int(start[-1]), ROWS * per_lane), np.int16 if fixed else np.float32)
    idx[pair, word] = nz_c % block
    vals[pair, word] = packed[nz_r, nz_c]
    ptr = np.concatenate([start[:-1].reshape(S, NB)[:, 0], start[-1:]])
    mid = start[:-1].reshape(S, NB)[:, nb1] if nb1 < NB else ptr[1:].copy()
    bound = np.zeros(R + 1, np.int64)
    if fixed:
        absw, zmax = np.abs(w), np.asarray(zmax, np.int64)
        bound[:R] = np.maximum(absw[:, :split] @ zmax[:split], absw[:, split:] @ zmax[split:])
    wide = (bound[order].reshape(S, ROWS) > INT32_LIMIT).any(axis=1)
    return PermMatrix(R, block, nb1, NB, int(np.count_nonzero(w)), ptr.astype(np.int64), mid.astype(np.int64), counts,
                      idx, vals, order.astype(np.int32), wide, slices)


def pair_fits(w_abs_max: int, z_abs_max: int) -> bool:
    """One pair (two products) sums within int32, and the weights fit 16 bits."""
    return w_abs_max < 1 << 15 and 2 * w_abs_max * z_abs_max <= INT32_LIMIT


def perm_supported() -> bool:
    """Whether numba compiles for a CPU with AVX-512BW (the word permute and multiply-add)."""
    import numba
    from llvmlite import binding

    name = numba.config.CPU_NAME
    feats = numba.config.CPU_FEATURES
    if name and name != "host" and not feats:
        return False  # a named target without features: do not assume any
    if not feats:
        feats = binding.get_host_cpu_features().flatten()
    return "+avx512bw" in feats.split(",")
