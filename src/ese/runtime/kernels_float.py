"""numba kernels of the float engine: one LSTMP layer step, fused, over per-thread cell groups.

State vectors are feature-major ``(rows, B)`` (one column per stream) for the batched kernels and
flat ``(rows,)`` for the one-stream kernels. Every buffer is allocated by the caller; the kernels
only read weights and write into the given arrays. Layout: see :mod:`ese.runtime.layout`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ese.runtime.layout import LANES

_JIT = dict(cache=True, fastmath=True, nogil=True)


@nb.njit(inline="always", **_JIT)
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


@nb.njit(inline="always", **_JIT)
def sigmoid(x: float) -> float:
    return np.float32(0.5) + np.float32(0.5) * tanh(np.float32(0.5) * x)


@nb.njit(parallel=True, **_JIT)
def step_one(groups, pgroups, x, y_in, xw, col, use_xw,
             xp, xc, xv, rp, rc, rv, bias, peep, has_peep,
             c, m, acc, scratch, pp, pc, pv, y_out):
    """One step of one stream: gates (+ W_x x unless ``use_xw``: take ``xw[:, col]``), cell, y."""
    for t in prange(groups.shape[0]):
        a = scratch[t]
        for j in range(groups.shape[1]):
            q = groups[t, j]
            if q < 0:
                break
            for g in range(4):
                s = q * 4 + g
                r0 = s * LANES
                if use_xw:
                    for lane in range(LANES):
                        a[lane] = bias[r0 + lane] + xw[r0 + lane, col]
                else:
                    for lane in range(LANES):
                        a[lane] = bias[r0 + lane]
                    for e in range(xp[s], xp[s + 1], LANES):
                        for lane in range(LANES):
                            a[lane] += xv[e + lane] * x[xc[e + lane]]
                for e in range(rp[s], rp[s + 1], LANES):
                    for lane in range(LANES):
                        a[lane] += rv[e + lane] * y_in[rc[e + lane]]
                for lane in range(LANES):
                    acc[r0 + lane] = a[lane]
            base = q * 4 * LANES
            for lane in range(LANES):
                k = q * LANES + lane
                zi = acc[base + lane]
                zf = acc[base + LANES + lane]
                zg = acc[base + 2 * LANES + lane]
                zo = acc[base + 3 * LANES + lane]
                cp = c[k]
                if has_peep:
                    zi += peep[0, k] * cp
                    zf += peep[1, k] * cp
                cn = sigmoid(zf) * cp + sigmoid(zi) * tanh(zg)
                if has_peep:
                    zo += peep[2, k] * cn
                c[k] = cn
                m[k] = sigmoid(zo) * tanh(cn)
    for t in prange(pgroups.shape[0]):
        a = scratch[t]
        for j in range(pgroups.shape[1]):
            s = pgroups[t, j]
            if s < 0:
                break
            for lane in range(LANES):
                a[lane] = 0.0
            for e in range(pp[s], pp[s + 1], LANES):
                for lane in range(LANES):
                    a[lane] += pv[e + lane] * m[pc[e + lane]]
            for lane in range(LANES):
                y_out[s * LANES + lane] = a[lane]


@nb.njit(parallel=True, **_JIT)
def step_many(groups, pgroups, x, y_in, xw, col, use_xw,
              xp, xc, xv, rp, rc, rv, bias, peep, has_peep,
              c, m, acc, scratch, pp, pc, pv, y_out):
    """One step of B streams (state columns): CSR rows, the batch in the inner (SIMD) loop."""
    B = c.shape[1]
    for t in prange(groups.shape[0]):
        a = scratch[t]
        for j in range(groups.shape[1]):
            q = groups[t, j]
            if q < 0:
                break
            base = q * 4 * LANES
            for r in range(base, base + 4 * LANES):
                if use_xw:
                    for b in range(B):
                        a[b] = bias[r] + xw[r, col + b]
                else:
                    for b in range(B):
                        a[b] = bias[r]
                    for e in range(xp[r], xp[r + 1]):
                        w = xv[e]
                        xr = x[xc[e]]
                        for b in range(B):
                            a[b] += w * xr[b]
                for e in range(rp[r], rp[r + 1]):
                    w = rv[e]
                    yr = y_in[rc[e]]
                    for b in range(B):
                        a[b] += w * yr[b]
                for b in range(B):
                    acc[r, b] = a[b]
            for lane in range(LANES):
                k = q * LANES + lane
                for b in range(B):
                    zi = acc[base + lane, b]
                    zf = acc[base + LANES + lane, b]
                    zg = acc[base + 2 * LANES + lane, b]
                    zo = acc[base + 3 * LANES + lane, b]
                    cp = c[k, b]
                    if has_peep:
                        zi += peep[0, k] * cp
                        zf += peep[1, k] * cp
                    cn = sigmoid(zf) * cp + sigmoid(zi) * tanh(zg)
                    if has_peep:
                        zo += peep[2, k] * cn
                    c[k, b] = cn
                    m[k, b] = sigmoid(zo) * tanh(cn)
    for t in prange(pgroups.shape[0]):
        a = scratch[t]
        for j in range(pgroups.shape[1]):
            s = pgroups[t, j]
            if s < 0:
                break
            for r in range(s * LANES, (s + 1) * LANES):
                for b in range(B):
                    a[b] = 0.0
                for e in range(pp[r], pp[r + 1]):
                    w = pv[e]
                    mr = m[pc[e]]
                    for b in range(B):
                        a[b] += w * mr[b]
                for b in range(B):
                    y_out[r, b] = a[b]


@nb.njit(parallel=True, **_JIT)
def input_products(groups, xp, xc, xv, x, out):
    """``out[r, n] = sum_e W_x[r, e] * x[e, n]`` for all frames n at once (utterance mode)."""
    N = x.shape[1]
    for t in prange(groups.shape[0]):
        for j in range(groups.shape[1]):
            q = groups[t, j]
            if q < 0:
                break
            for r in range(q * 4 * LANES, (q + 1) * 4 * LANES):
                o = out[r]
                for n in range(N):
                    o[n] = 0.0
                for e in range(xp[r], xp[r + 1]):
                    w = xv[e]
                    xr = x[xc[e]]
                    for n in range(N):
                        o[n] += w * xr[n]
