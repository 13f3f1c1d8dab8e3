"""Layout of the many-stream fixed-point kernel (:mod:`ese.runtime.kernels_pairs`): CSR rows
whose non-zeros go in *pairs*, the operands of one 16-bit multiply-add
(:mod:`ese.runtime.simd_pairs`).

Row r's non-zeros (the CSR order of :mod:`ese.runtime.layout`, columns ascending) are taken two
at a time: pair e holds columns ``cols[2 e]``, ``cols[2 e + 1]`` and the weights packed in one
int32 word ``w1 | w2 << 16``; a row with an odd count ends with its last column twice, the second
weight 0. ``ptr[r]`` is row r's first pair.

Exactness: the kernel sums a row's pairs in int32 lanes. With inputs bounded by ``zmax``, a row
whose ``sum |w| * zmax`` stays below 2**31 is summed whole (no partial sum can leave int32); a
longer row in chunks of ``step[r] = 2**31 // (its largest pair bound)`` pairs, each chunk added
into int64 lanes. A pair itself must fit (:func:`pairs_fit`), else the layer runs the int64
kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ese.runtime.layout import INDEX_DTYPE, SparseMatrix

INT32_LIMIT = 2**31 - 1


@dataclass(frozen=True, eq=False)
class PairMatrix:
    ptr: np.ndarray  # (R + 1,) int64: first pair of each row
    cols: np.ndarray  # (2 pairs,) uint16
    words: np.ndarray  # (pairs,) int32: w1 | w2 << 16
    step: np.ndarray  # (R,) int64: pairs per int32 chunk (at least the row's pairs when it fits whole)

    @property
    def n_pairs(self) -> int:
        return int(self.words.size)

    @property
    def wide(self) -> np.ndarray:
        """(R,) bool: the rows summed in several int32 chunks (int64 between chunks)."""
        return self.step < np.diff(self.ptr)

    @property
    def nbytes(self) -> int:
        return int(self.ptr.nbytes + self.cols.nbytes + self.words.nbytes + self.step.nbytes)


def pairs_fit(w_abs_max: int, z_abs_max: int) -> bool:
    """The weights fit 16 bits, the inputs 16 bits, and one pair of products int32."""
    return w_abs_max < 1 << 15 and z_abs_max <= 1 << 15 and 2 * w_abs_max * z_abs_max <= INT32_LIMIT


def pack_pairs(m: SparseMatrix, zmax: int) -> PairMatrix:
    """Pairs of the CSR rows of ``m`` (integer values), inputs bounded by ``|z| <= zmax``."""
    ptr, cols = m.csr_ptr, m.csr_cols
    vals = m.csr_vals.astype(np.int64)
    R = ptr.size - 1
    counts = np.diff(ptr)
    per_row = (counts + 1) // 2
    pptr = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)
    n = int(pptr[-1])
    row = np.repeat(np.arange(R), counts)
    rank = np.arange(vals.size) - ptr[row]
    pair = pptr[row] + rank // 2
    pcols = np.zeros(2 * n, INDEX_DTYPE)
    pw = np.zeros((n, 2), np.int16)
    pcols[2 * pair + rank % 2] = cols
    pw[pair, rank % 2] = vals
    last = pptr[1:][counts % 2 == 1] - 1  # odd rows: the last pair's second column repeats the first
    pcols[2 * last + 1] = pcols[2 * last]
    w = pw.astype(np.int64)
    words = ((w[:, 0] & 0xFFFF) | (w[:, 1] << 16)).astype(np.int32)  # in int32 range: |w2| < 2**15
    pair_bound = np.abs(w).sum(axis=1) * zmax  # (pairs,)
    row_bound = np.zeros(R, np.int64)
    np.add.at(row_bound, row, np.abs(vals) * zmax)
    top = np.zeros(R, np.int64)
    np.maximum.at(top, np.repeat(np.arange(R), per_row), pair_bound)
    fits = row_bound <= INT32_LIMIT
    step = np.where(fits, np.maximum(per_row, 1), INT32_LIMIT // np.maximum(top, 1)).astype(np.int64)
    return PairMatrix(pptr, pcols, words, step)
