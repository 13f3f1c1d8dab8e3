"""The hand-written SIMD primitives agree with numpy (exactly for integer sums)."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest

from ese.runtime.kernels_float import frame_major
from ese.runtime.layout import LANES
from ese.runtime.simd import sell_slice


@nb.njit
def _slice(vals, cols, z, out):
    sell_slice(vals, cols, z, 0, vals.size, out)


@pytest.mark.parametrize("vt, zt", [(np.float32, np.float32), (np.int16, np.int64), (np.int16, np.float64)])
def test_sell_slice_sums_each_lane(vt, zt):
    rng = np.random.default_rng(0)
    n = LANES * 9
    vals = rng.integers(-2047, 2048, n).astype(vt)
    cols = rng.integers(0, 700, n).astype(np.uint16)
    z = rng.integers(-32768, 32768, 700).astype(zt)
    out = np.zeros(LANES, zt)
    _slice(vals, cols, z, out)
    want = (vals.astype(np.int64) * z[cols].astype(np.int64)).reshape(-1, LANES).sum(axis=0)
    if zt == np.float32:
        np.testing.assert_allclose(out, want, rtol=1e-6)
    else:
        np.testing.assert_array_equal(out, want)  # integer sums below 2**53: exact in float64 too


def test_frame_major_transposes_into_model_order():
    order = np.arange(4 * LANES)[::-1].copy()
    order[3] = -1  # a padding row is skipped
    xw = np.arange(4 * LANES * 5, dtype=np.int64).reshape(4 * LANES, 5)
    out = np.full((5, 4 * LANES), -7, np.int64)
    frame_major(xw, order, out)
    keep = order >= 0
    np.testing.assert_array_equal(out[:, order[keep]], xw[keep].T)
    assert (out[:, 4 * LANES - 1 - 3] == -7).all()
