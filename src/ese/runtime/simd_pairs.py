"""SIMD primitive of the many-stream fixed-point kernel (issue 16): two non-zeros of a sparse row
times a block of streams per multiply-add.

``row_pairs(words, cols, X, e0, e1, n, out, o)`` sets ``out[o + s]``, for every stream
``s < Bp``, to ``sum_{e0 <= e < e1} w1[e] * X[cols[2 e], s] + w2[e] * X[cols[2 e + 1], s]``,
where ``words[e]`` (int32) packs the pair's two 16-bit weights as ``w1 | w2 << 16`` and ``X`` is
a C-contiguous (K, Bp) int16 array of activations (one row per input, the streams along it; Bp a
multiple of 16). Streams go in blocks of 32 (one AVX-512 register of words), the last in a block
of 16 when Bp is not a multiple of 32.

How: the two input rows are loaded and interleaved word by word (``X[c1, s], X[c2, s]`` side by
side, the unpack-low / unpack-high word shuffles, which work inside each 128-bit lane and so
permute the streams), every 32-bit lane is multiplied by the broadcast pair of weights and its
two products added: the IR is sign-extended 16-bit products whose even and odd lanes are summed,
which the x86 backend turns into ``vpmaddwd``, fused with the accumulation into ``vpdpwssd`` on
CPUs with AVX-512 VNNI (plain vector code elsewhere: the IR is generic). The accumulators are put
back in stream order once per block, at the end.

Exactness: a block's sums are in int32 lanes, over chunks of ``n`` pairs; each chunk is added
into ``out`` in its type (int64: exact whenever no chunk's partial sums leave int32, the caller's
bound, :mod:`ese.runtime.pairs_layout`; int32 only for rows of one chunk). The row loop is IR as
well, so a kernel calls this once per row without the reference counting an inlined numba
helper with array arguments would add.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from ese.runtime.simd import sext64, unrolled

def interleave_masks(W: int) -> tuple[list[int], list[int]]:
    """Word shuffles of two W-word vectors a, b (indices of b from W on): the low and high halves
    of every 128-bit lane interleaved, ``a[i], b[i]`` side by side (``vpunpcklwd``/``hwd``)."""
    lo, hi = [], []
    for p in range(W):
        lane, j = divmod(p, 8)
        src = (W if j % 2 else 0) + 8 * lane + j // 2
        lo.append(src)
        hi.append(src + 4)
    return lo, hi


def stream_order(W: int) -> list[int]:
    """For stream s of the block, its int32 lane in [lo | hi] (the two W/2-lane accumulators of
    the low and the high interleave): lane ``4 L + i`` of lo holds stream ``8 L + i``, of hi
    stream ``8 L + 4 + i``."""
    out = []
    for s in range(W):
        lane, i = divmod(s, 8)
        out.append(4 * lane + i if i < 4 else W // 2 + 4 * lane + i - 4)
    return out


def _block(context, builder, W, Wd, C, X, ldx, b0, start, stop, O, o, add):
    """IR: the sums of pairs [start, stop) for streams [b0, b0 + W) into ``O[o:o + W]`` (int32 or
    int64 elements; ``add``: an i1, add to what is there instead of storing)."""
    H = W // 2
    i16, i32, i64 = ir.IntType(16), ir.IntType(32), ir.IntType(64)
    vw, vw32, vh = ir.VectorType(i16, W), ir.VectorType(i32, W), ir.VectorType(i32, H)
    base = builder.gep(X, [b0])
    lo_mask, hi_mask = (ir.Constant(ir.VectorType(i32, W), m) for m in interleave_masks(W))
    even = ir.Constant(vh, [2 * k for k in range(H)])
    odd = ir.Constant(vh, [2 * k + 1 for k in range(H)])
    zero_idx = ir.Constant(vh, [0] * H)

    def row(c):
        return builder.load(builder.bitcast(builder.gep(base, [builder.mul(c, ldx)]), vw.as_pointer()), align=2)

    def body(e, acc):
        both = builder.load(builder.bitcast(builder.gep(C, [builder.shl(e, ir.Constant(i64, 1))]), i32.as_pointer()),
                            align=4)  # the pair's two 16-bit columns in one load (little-endian)
        v1 = row(builder.zext(builder.and_(both, ir.Constant(i32, 0xFFFF)), i64))
        v2 = row(builder.zext(builder.lshr(both, ir.Constant(i32, 16)), i64))
        word = builder.load(builder.gep(Wd, [e]))
        splat = builder.shuffle_vector(builder.insert_element(ir.Constant(vh, None), word, ir.Constant(i32, 0)),
                                       ir.Constant(vh, None), zero_idx)
        ws = builder.sext(builder.bitcast(splat, vw), vw32)  # (w1, w2) in every pair of word lanes
        halves = []
        for mask in (lo_mask, hi_mask):
            prod = builder.mul(builder.sext(builder.shuffle_vector(v1, v2, mask), vw32), ws)
            halves.append(builder.add(builder.shuffle_vector(prod, ir.Constant(vw32, None), even),
                                      builder.shuffle_vector(prod, ir.Constant(vw32, None), odd)))
        both_halves = builder.shuffle_vector(*halves, ir.Constant(vw32, list(range(W))))  # [lo | hi]
        builder.store(builder.add(builder.load(acc), both_halves), acc)

    total = unrolled(builder, start, stop, vw32, ir.Constant(vw32, [0] * W), body, builder.add)
    total = builder.shuffle_vector(total, ir.Constant(vw32, None), ir.Constant(vw32, stream_order(W)))
    el = O.type.pointee
    if el.width > 32:
        total = builder.sext(total, ir.VectorType(el, W))
    ptr = builder.bitcast(builder.gep(O, [o]), total.type.as_pointer())
    old = builder.load(ptr, align=4)
    builder.store(builder.select(add, builder.add(old, total), total), ptr, align=4)


def _row_codegen(context, builder, sig, args):
    """IR of :func:`row_pairs` (see there)."""
    wa, ca, xa, e0, e1, n, oa, o = args
    tw, tc, tx, _, _, _, to, _ = sig.args
    i1, i64 = ir.IntType(1), ir.IntType(64)
    Wd = context.make_array(tw)(context, builder, wa).data
    C = context.make_array(tc)(context, builder, ca).data
    xarr = context.make_array(tx)(context, builder, xa)
    Bp = cgutils.unpack_tuple(builder, xarr.shape)[1]
    O = context.make_array(to)(context, builder, oa).data
    start, stop, step, o = (sext64(builder, v) for v in (e0, e1, n, o))
    step = builder.select(builder.icmp_signed("<", step, ir.Constant(i64, 1)), ir.Constant(i64, 1), step)

    def chunks(W, b0):
        first = builder.add(start, step)
        first = builder.select(builder.icmp_signed("<", first, stop), first, stop)
        args = (context, builder, W, Wd, C, xarr.data, Bp, b0)
        _block(*args, start, first, O, builder.add(o, b0), ir.Constant(i1, 0))
        with cgutils.for_range_slice(builder, first, stop, step) as (c, _):
            end = builder.add(c, step)
            end = builder.select(builder.icmp_signed("<", end, stop), end, stop)
            _block(*args, c, end, O, builder.add(o, b0), ir.Constant(i1, 1))

    full = builder.and_(Bp, ir.Constant(i64, -32))
    with cgutils.for_range_slice(builder, ir.Constant(i64, 0), full, ir.Constant(i64, 32)) as (b0, _):
        chunks(32, b0)
    with builder.if_then(builder.icmp_signed("<", full, Bp)):
        chunks(16, full)
    return context.get_dummy_value()


@intrinsic
def row_pairs(typingctx, words, cols, X, e0, e1, n, out, o):
    """``out[o + s]`` for every stream s < Bp = X.shape[1] (a multiple of 16): the sum of pairs
    [e0, e1), in int32 lanes over chunks of ``n`` pairs, the chunks added in ``out``'s type (with
    one chunk, an int32 ``out`` is exact as well)."""
    if getattr(X, "ndim", 0) != 2 or X.layout != "C" or X.dtype != types.int16:
        raise TypingError("row_pairs: X must be a C-contiguous 2-D int16 array")
    if words.dtype != types.int32 or cols.dtype != types.uint16 or out.dtype not in (types.int32, types.int64):
        raise TypingError("row_pairs: words must be int32, cols uint16, out int32 or int64")
    return types.void(words, cols, X, e0, e1, n, out, o), _row_codegen
