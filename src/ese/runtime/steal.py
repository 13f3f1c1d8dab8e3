"""Work stealing for the engine's parallel regions: an atomic fetch-and-add numba lacks.

numba's ``prange`` hands each thread a fixed share, so a step waits for the slowest thread; on a
shared or virtual machine one core is now and then slowed for seconds (the host runs something
else on it), and a 2-thread step then takes as long as the slow thread's share. With
:func:`next_item`, every thread first takes the items of its own list (the static share, so the
data stays in its cache when nothing is slow), then takes what is left of the other threads'
lists: the work goes to whichever core is running.
"""

from __future__ import annotations

import numba as nb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

COUNTER_STRIDE = 8  # int64 counters 64 bytes apart: one cache line per thread's counter


@intrinsic
def fetch_add(typingctx, arr, index):
    """``arr[index] += 1`` atomically; returns the value before (``arr``: int64 1-D, C order)."""
    if getattr(arr, "ndim", 0) != 1 or arr.dtype != types.int64 or not isinstance(index, types.Integer):
        raise TypingError("fetch_add: arr must be a 1-D int64 array and index an integer")

    def codegen(context, builder, sig, args):
        a = context.make_array(sig.args[0])(context, builder, args[0])
        idx = args[1]
        if idx.type.width < 64:
            idx = builder.sext(idx, ir.IntType(64))
        ptr = builder.gep(a.data, [idx])
        return builder.atomic_rmw("add", ptr, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(arr, index), codegen


@nb.njit(inline="always", nogil=True)
def next_item(lists, counters, t):
    """The next item for thread ``t`` of the (T, width) ``lists`` (-1 padded), or -1 when none is
    left: its own list first, then the other threads' lists in turn. ``counters`` (T *
    COUNTER_STRIDE,) int64, zeroed before the parallel region, count the items taken of each
    list."""
    T = lists.shape[0]
    for k in range(T):
        u = (t + k) % T
        j = fetch_add(counters, u * COUNTER_STRIDE)
        if j < lists.shape[1]:
            item = lists[u, j]
            if item >= 0:
                return item
    return -1
