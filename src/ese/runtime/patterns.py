"""Sparsity patterns the engine recognises in a model's matrices (cell-agnostic: any 2-D masks).

``cluster:G``: every aligned group of G consecutive rows keeps the same columns in all its rows
(``ese prune --balance cluster:G``), so a kernel loads one input per kept column for G rows at
once (no gathers). ``rows:G``: the rows of every aligned G-row group keep equal counts (a sliced
layout needs no padding). ``unstructured``: anything else. A pattern holds for a model when it
holds for every matrix; the largest G of :data:`CLUSTERS` that holds is reported.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

CLUSTERS = (16, 8, 4)


TOLERANCE = 0.05  # stored zeros a clustered layout may add, relative to the non-zeros


def clustered(w: np.ndarray, group: int, tolerance: float = TOLERANCE) -> bool:
    """True when ``group`` divides the rows of ``w`` (R, K) and storing, for every aligned
    ``group``-row block, all the columns any of its rows uses costs at most ``tolerance`` more
    entries than the non-zeros (a weight that quantized to 0 leaves a hole in a shared column)."""
    nz = np.asarray(w) != 0
    R = nz.shape[0]
    if R % group or not nz.any():
        return False
    union = nz.reshape(-1, group, nz.shape[1]).any(axis=1)
    return bool(union.sum() * group <= (1 + tolerance) * nz.sum())


def row_balanced(w: np.ndarray, group: int) -> bool:
    """True when the rows of every aligned ``group``-row block keep equal non-zero counts."""
    counts = np.count_nonzero(np.asarray(w), axis=1)
    R = counts.size
    full = R - R % group
    c = counts[:full].reshape(-1, group)
    tail = counts[full:]
    return bool((c == c[:, :1]).all() and (len(tail) == 0 or (tail == tail[0]).all()))


def detect(matrices: Iterable[np.ndarray]) -> str:
    """The pattern of a model given its sparse matrices: ``cluster:G``, ``rows:G`` or
    ``unstructured``."""
    mats = list(matrices)
    for g in CLUSTERS:
        if all(clustered(w, g) for w in mats):
            return f"cluster:{g}"
    for g in CLUSTERS:
        if all(row_balanced(w, g) for w in mats):
            return f"rows:{g}"
    return "unstructured"


def cluster_size(pattern: str) -> int:
    """G of ``cluster:G``, else 0."""
    head, _, tail = pattern.partition(":")
    return int(tail) if head == "cluster" and tail.isdigit() else 0
