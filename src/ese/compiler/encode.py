"""Relative-indexed sparse columns per PE (ESE.md section 4): the encoder and its exact decoder.

For one integer matrix W (R rows, K columns) and the partition of its rows over N PEs, PE p stores
its sub-matrix (its rows in local order, :mod:`ese.partition`) column by column. Column j
of PE p is a run of **entries**, each one word::

    word = (rel << weight_bits) | (weight & (2**weight_bits - 1))     weight in two's complement

``rel`` is the number of zero rows (local order) skipped since the previous entry of the column
(since local row -1 at the column's start), so an entry's local row is ``prev + rel + 1``. A gap
longer than ``M = 2**index_bits - 1`` zeros is bridged by **padding entries**: weight 0 with
``rel = M``, each advancing the row by ``M + 1``. A gap of g zeros therefore costs
``g // (M + 1)`` padding entries (the closed form the tests check); zeros after a column's last
non-zero cost nothing. ``ptr[p, j]`` (K + 1 per PE) is where column j starts among PE p's entries.

Entries of all PEs are stored back to back (PE 0 first); ``entry_start[p]`` is where PE p's begin.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ese.errors import EseError
from ese.partition import Partition, matrix_partition


class EncodingError(EseError):
    """A matrix cannot be encoded with these widths, or an encoded stream is inconsistent."""


def word_dtype(index_bits: int, weight_bits: int) -> type:
    """The narrowest unsigned integer that holds one entry."""
    return np.uint16 if index_bits + weight_bits <= 16 else np.uint32


def check_widths(index_bits: int, weight_bits: int) -> None:
    if not 1 <= index_bits <= 16:
        raise EncodingError(f"index_bits must be in [1, 16], not {index_bits!r}")
    if not 2 <= weight_bits <= 24:
        raise EncodingError(f"weight_bits must be in [2, 24], not {weight_bits!r}")
    if index_bits + weight_bits > 32:
        raise EncodingError(f"an entry of {index_bits} + {weight_bits} bits does not fit a 32-bit word")


@dataclass(eq=False)
class EncodedMatrix:
    """One matrix of one layer, encoded for ``n_pes`` PEs.

    ``ptr`` (N, K + 1) int64 and ``words`` (E,) uint16/uint32 are what the image stores;
    ``rel`` and ``weight`` are the words unpacked (int64). ``name`` is e.g. ``"layer0.w_x"``.
    """

    name: str
    n_rows: int
    n_cols: int
    n_pes: int
    index_bits: int
    weight_bits: int
    ptr: np.ndarray  # (N, K+1) int64, per PE, relative to entry_start[p]
    entry_start: np.ndarray  # (N+1,) int64
    words: np.ndarray  # (E,) unsigned
    cell: str = "lstmp"  # the cell whose matrix this is: its description says how rows partition

    # ---- unpacked views -------------------------------------------------------------------
    @cached_property
    def rel(self) -> np.ndarray:
        """(E,) int64 relative row index of every entry."""
        return (self.words.astype(np.int64) >> self.weight_bits) & ((1 << self.index_bits) - 1)

    @cached_property
    def weight(self) -> np.ndarray:
        """(E,) int64 signed weight of every entry (0 for padding)."""
        raw = self.words.astype(np.int64) & ((1 << self.weight_bits) - 1)
        return np.where(raw >= 1 << (self.weight_bits - 1), raw - (1 << self.weight_bits), raw)

    @cached_property
    def partition(self) -> Partition:
        return matrix_partition(self.name, self.n_rows, self.n_pes, self.cell)

    @cached_property
    def local_row(self) -> np.ndarray:
        """(E,) int64 local row of every entry in its PE (padding entries included)."""
        steps = self.rel + 1
        csum = np.cumsum(steps)
        # subtract the running sum at each column start, so rows restart at -1 per column
        starts = (self.entry_start[:-1, None] + self.ptr[:, :-1]).ravel()  # (N*K,) column starts
        counts = np.diff(self.ptr, axis=1).ravel()
        if not len(csum):
            return csum
        base = np.where(starts > 0, csum[np.clip(starts - 1, 0, len(csum) - 1)], 0)
        return csum - np.repeat(base, counts) - 1

    @cached_property
    def column_of_entry(self) -> np.ndarray:
        """(E,) int64 column of every entry."""
        counts = np.diff(self.ptr, axis=1).ravel()
        return np.repeat(np.tile(np.arange(self.n_cols, dtype=np.int64), self.n_pes), counts)

    @cached_property
    def pe_of_entry(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_pes, dtype=np.int64), np.diff(self.entry_start))

    # ---- statistics -----------------------------------------------------------------------
    @property
    def n_entries(self) -> int:
        return int(self.words.shape[0])

    @cached_property
    def column_entries(self) -> np.ndarray:
        """(N, K) int64 entries (non-zeros + padding) of column j in PE p: the PE's cycles per column."""
        return np.diff(self.ptr, axis=1)

    @cached_property
    def padding_mask(self) -> np.ndarray:
        """(E,) bool: padding entries (weight 0)."""
        return self.weight == 0

    @property
    def entries_per_pe(self) -> np.ndarray:
        return np.diff(self.entry_start)

    @cached_property
    def padding_per_pe(self) -> np.ndarray:
        return np.bincount(self.pe_of_entry[self.padding_mask], minlength=self.n_pes).astype(np.int64)

    @property
    def nnz_per_pe(self) -> np.ndarray:
        return self.entries_per_pe - self.padding_per_pe

    @property
    def nnz(self) -> int:
        return int(self.nnz_per_pe.sum())

    @property
    def padding(self) -> int:
        return int(self.padding_per_pe.sum())

    def pe_slice(self, p: int) -> slice:
        return slice(int(self.entry_start[p]), int(self.entry_start[p + 1]))

    # ---- decoding -------------------------------------------------------------------------
    def decode(self) -> np.ndarray:
        """The exact integer matrix (R, K) int64 (EncodingError if the streams are inconsistent)."""
        out = np.zeros((self.n_rows, self.n_cols), dtype=np.int64)
        real = ~self.padding_mask
        out[self.global_row[real], self.column_of_entry[real]] = self.weight[real]
        return out

    @cached_property
    def global_row(self) -> np.ndarray:
        """(E,) int64 global matrix row of every entry (padding entries included); validates the
        streams first, since a corrupt index would point outside its PE's rows."""
        self.validate()
        rows = self.partition.rows_of_pe
        first = np.concatenate([[0], np.cumsum([len(r) for r in rows])[:-1]]).astype(np.int64)
        flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)  # every PE's rows, PE by PE
        return flat[first[self.pe_of_entry] + self.local_row]

    def spmv(self, a: np.ndarray) -> np.ndarray:
        """Exact ``W @ a`` (int64) straight from the entries: every entry adds weight * a[column]
        to its row (padding adds zero). ``a`` is (K,) or (K, B)."""
        a = np.asarray(a, dtype=np.int64)
        contrib = self.weight[:, None] * a.reshape(self.n_cols, -1)[self.column_of_entry]  # (E, B)
        out = np.zeros((self.n_rows, contrib.shape[1]), dtype=np.int64)
        np.add.at(out, self.global_row, contrib)
        return out.reshape((self.n_rows,) + a.shape[1:])

    def validate(self) -> None:
        """Structural checks a loader must make before trusting the streams."""
        N, K = self.n_pes, self.n_cols
        if self.ptr.shape != (N, K + 1) or self.entry_start.shape != (N + 1,):
            raise EncodingError(f"{self.name}: pointer arrays of shape {self.ptr.shape} / {self.entry_start.shape} "
                                f"do not match {N} PEs x {K} columns")
        if self.entry_start[0] != 0 or self.entry_start[-1] != self.n_entries or np.any(np.diff(self.entry_start) < 0):
            raise EncodingError(f"{self.name}: PE entry offsets are not a non-decreasing cover of {self.n_entries} entries")
        if np.any(self.ptr[:, 0] != 0) or np.any(np.diff(self.ptr, axis=1) < 0) \
                or np.any(self.ptr[:, -1] != np.diff(self.entry_start)):
            raise EncodingError(f"{self.name}: column pointers out of range or decreasing")
        rows_per_pe = self.partition.rows_per_pe
        if self.n_entries:
            last = np.repeat(rows_per_pe, np.diff(self.entry_start))
            if np.any(self.local_row >= last):
                bad = int(np.argmax(self.local_row >= last))
                raise EncodingError(f"{self.name}: entry {bad} indexes local row {int(self.local_row[bad])} "
                                    f"past the {int(last[bad])} rows of PE {int(self.pe_of_entry[bad])}")
        if self.words.dtype != word_dtype(self.index_bits, self.weight_bits):
            raise EncodingError(f"{self.name}: entry words of dtype {self.words.dtype} for {self.index_bits}+"
                                f"{self.weight_bits}-bit entries")


def padding_closed_form(w: np.ndarray, part: Partition, index_bits: int) -> int:
    """Padding entries the encoding needs: sum over gaps g of g // 2**index_bits (see module doc)."""
    span = 1 << index_bits
    total = 0
    for rows in part.rows_of_pe:
        sub = w[rows] != 0  # (n_p, K) local order
        for j in range(sub.shape[1]):
            nz = np.flatnonzero(sub[:, j])
            if nz.size:
                gaps = np.diff(np.concatenate([[-1], nz])) - 1
                total += int((gaps // span).sum())
    return total


def _encoding_order(name: str, w: np.ndarray, n_pes: int, index_bits: int, cell: str):
    """The non-zeros of ``w`` in encoding order (PE, column, ascending local row) with, for each,
    its PE, column, value, the padding entries before it and its relative index. The encoder and
    :func:`column_entries` both count from here, so they cannot disagree."""
    R, K = w.shape
    part = matrix_partition(name, R, n_pes, cell)
    n_local = max(int(part.rows_per_pe.max()), 1)
    local = np.zeros((n_pes * n_local, K), dtype=np.int64)
    local[part.pe_of_row * n_local + part.local_index] = w
    cube = local.reshape(n_pes, n_local, K).transpose(0, 2, 1)  # (N, K, local rows)
    pe, col, row = np.nonzero(cube)  # sorted by PE, then column, then local row
    first = np.ones(len(row), dtype=bool)
    first[1:] = (pe[1:] != pe[:-1]) | (col[1:] != col[:-1])
    prev = np.where(first, -1, np.concatenate([[-1], row[:-1]]))
    gap = row - prev - 1  # zero rows skipped since the previous entry of the column
    pads = gap >> index_bits  # one padding entry per 2**index_bits of them
    return pe, col, cube[pe, col, row], pads, gap - (pads << index_bits)


def column_entries(name: str, w: np.ndarray, n_pes: int, index_bits: int,
                   cell: str = "lstmp") -> tuple[np.ndarray, int]:
    """(entries (N, K) int64, padding) that :func:`encode_matrix` would store, without packing words."""
    pe, col, _, pads, _ = _encoding_order(name, np.asarray(w) != 0, n_pes, index_bits, cell)
    K = w.shape[1]
    entries = np.bincount(pe * K + col, weights=pads + 1, minlength=n_pes * K).astype(np.int64)
    return entries.reshape(n_pes, K), int(pads.sum())


def encode_matrix(name: str, w: np.ndarray, n_pes: int, index_bits: int, weight_bits: int,
                  cell: str = "lstmp") -> EncodedMatrix:
    """Encode integer matrix ``w`` (R, K) for ``n_pes`` PEs (partition by ``name`` in ``cell``'s
    description: ``...w_x`` etc.)."""
    check_widths(index_bits, weight_bits)
    w = np.asarray(w)
    if w.ndim != 2 or w.dtype.kind not in "iu":
        raise EncodingError(f"{name}: expected a 2-D integer matrix, got {w.dtype} of shape {w.shape}")
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    if w.size and (w.min() < lo or w.max() > hi):
        raise EncodingError(f"{name}: weights outside the {weight_bits}-bit range [{lo}, {hi}]")
    R, K = w.shape
    pe, col, vals, pads, rel = _encoding_order(name, w, n_pes, index_bits, cell)
    counts = pads + 1  # the padding entries, then the non-zero itself
    e_rel = np.full(int(counts.sum()), (1 << index_bits) - 1, dtype=np.int64)
    e_w = np.zeros(len(e_rel), dtype=np.int64)
    real = np.cumsum(counts) - 1
    e_rel[real], e_w[real] = rel, vals
    words = ((e_rel << weight_bits) | (e_w & ((1 << weight_bits) - 1))).astype(word_dtype(index_bits, weight_bits))
    per_column = np.bincount(pe * K + col, weights=counts, minlength=n_pes * K).astype(np.int64).reshape(n_pes, K)
    ptr = np.zeros((n_pes, K + 1), dtype=np.int64)
    ptr[:, 1:] = np.cumsum(per_column, axis=1)
    entry_start = np.concatenate([[0], np.cumsum(ptr[:, -1])]).astype(np.int64)
    return EncodedMatrix(name, R, K, n_pes, index_bits, weight_bits, ptr, entry_start, words, cell)
