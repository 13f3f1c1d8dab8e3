"""Float kernels of the column-clustered pattern (``cluster:G``): one broadcast input and one FMA
of G weights per kept column of a cluster (:mod:`ese.runtime.simd_cluster`), no gathers. The
accumulators and element-wise stage are :func:`ese.runtime.kernels_float.cell_rows`, as
:func:`ese.runtime.kernels_float.step_one` runs them; the fixed-point twin is
:func:`ese.runtime.kernels_int16.step_cluster`.
"""

from __future__ import annotations

import numba as nb
from numba import prange

from ese.runtime.kernels_float import cell_rows
from ese.runtime.simd_cluster import col_axpy4, col_axpy8, col_axpy16

_JIT = {"cache": True, "fastmath": True, "nogil": True}


@nb.njit(inline="always", **_JIT)
def cluster_rows(G, ptr, cols, vals, z, clusters, out, a):
    """``out[q G + lane] = (W z)[q G + lane]`` for the thread's clusters q."""
    for j in range(clusters.shape[0]):
        q = clusters[j]
        if q < 0:
            break
        if G == 16:
            col_axpy16(vals, cols, z, ptr[q], ptr[q + 1], a, 0)
        elif G == 8:
            col_axpy8(vals, cols, z, ptr[q], ptr[q + 1], a, 0)
        else:
            col_axpy4(vals, cols, z, ptr[q], ptr[q + 1], a, 0)
        for lane in range(G):
            out[q * G + lane] = a[lane]


@nb.njit(parallel=True, **_JIT)
def step_cluster(kind, blocks, G, gptr, gcols, gvals, gcl, z, acc, bias, vec, has_vec, xw, col, use_xw, c, m,
                 cell_bounds, pptr, pcols, pvals, pcl, y_out, yo, scratch):
    """:func:`ese.runtime.kernels_float.step_one` on column-clustered matrices."""
    for t in prange(gcl.shape[0]):
        cluster_rows(G, gptr, gcols, gvals, z, gcl[t], acc, scratch[t])
    for t in prange(cell_bounds.shape[0] - 1):
        cell_rows(kind, blocks, acc, bias, xw, col, use_xw, c, m, cell_bounds[t], cell_bounds[t + 1], vec, has_vec)
    for t in prange(pcl.shape[0]):
        cluster_rows(G, pptr, pcols, pvals, m, pcl[t], y_out, scratch[t])
    P = y_out.shape[0] - 1
    for r in range(P):
        z[yo + r] = y_out[r]
