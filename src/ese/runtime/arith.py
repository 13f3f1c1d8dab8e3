"""Scalar arithmetic of the engine's numba kernels: float sigmoid/tanh, fixed-point align,
saturation and LUT lookups (docs/fixed-point.md section 4), shared by the kernels and by every
cell's element-wise step (:mod:`ese.runtime.cells`)."""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

_FLOAT = {"cache": True, "fastmath": True, "nogil": True}
_INT = {"cache": True, "nogil": True}


# ---- float (fp32) ----------------------------------------------------------------------------
@nb.njit(inline="always", **_FLOAT)
def tanh(x: float) -> float:
    """tanh by a [13/6] rational approximation on [-9, 9] (branch-free, vectorizes; ~1e-7 abs)."""
    x = min(max(x, np.float32(-9.0)), np.float32(9.0))
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return x * p / q


@nb.njit(inline="always", **_FLOAT)
def sigmoid(x: float) -> float:
    return np.float32(0.5) + np.float32(0.5) * tanh(np.float32(0.5) * x)


# ---- fixed point (exact int64) ---------------------------------------------------------------
@nb.njit(inline="always", **_INT)
def align(v: int, s: int) -> int:
    """Spec ``align`` by ``s`` bits without branches (the cell loops run it ~20 times a cell):
    ``s > 0`` adds half (``(1 << s) >> 1``) and shifts right (round half up); ``s <= 0``
    shifts left (half is 0, the right shift 0)."""
    left = max(-s, 0)
    right = max(s, 0)
    return ((v << left) + ((np.int64(1) << right) >> 1)) >> right


@nb.njit(inline="always", **_INT)
def sat(v: int, bits: int) -> int:
    hi = (np.int64(1) << (bits - 1)) - 1
    return min(max(v, -hi - 1), hi)


@nb.njit(inline="always", **_INT)
def lut(table, z: int, s: int, n: int) -> int:
    u = (z << max(-s, 0)) >> max(s, 0)  # floor shift, branch-free (see align)
    return table[min(max(u + n // 2, 0), n - 1)]


@nb.njit(inline="always", **_INT)
def lut_index(z: int, s: int, n: int) -> int:
    """The table index :func:`lut` reads (floor shift, clamped to the table)."""
    return min(max(((z << max(-s, 0)) >> max(s, 0)) + n // 2, 0), n - 1)


@nb.njit(inline="always", **_INT)
def lookup(table, idx, out):
    """``out[b] = table[idx[b]]``: the lookups in a loop of their own, since an indirect load in
    a loop that also stores keeps LLVM from vectorizing any of its arithmetic."""
    for b in range(idx.shape[0]):
        out[b] = table[idx[b]]


def at(p, b):
    """``p[b]`` for an array, ``p`` itself for a scalar: one element-wise loop serves a value per
    index (the cells of one stream) and one value for all (one cell of many streams); numba
    compiles each form apart, so the scalar form stays loop-invariant."""
    return p[b] if isinstance(p, np.ndarray) else p


@overload(at, inline="always")
def _at(p, b):
    if isinstance(p, types.Array):
        return lambda p, b: p[b]
    return lambda p, b: p
