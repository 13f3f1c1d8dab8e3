"""SIMD primitives numba does not vectorize on its own: a register-blocked sparse row x batch
(``axpy16``/``axpy32``, :func:`row_times_batch`) and a gathered SELL-16 slice x vector
(:func:`sell_slice`, :func:`sell_rows`).

``axpy16(vals, cols, X, e0, e1, b0, out, o)`` (``axpy32``: 32 lanes) adds
``sum_{e0 <= e < e1} vals[e] * X[cols[e], b0:b0 + 16]`` to ``out.flat[o:o + 16]``, keeping the
accumulators in vector registers for the whole row (numba's own loops reload them from memory for
every non-zero because it cannot prove the output does not alias the inputs). Integer inputs are
sign-extended to the output's integer type (exact); floats use the output's float type. ``X`` is
C-contiguous (K, B); ``out`` is C-contiguous.
"""

from __future__ import annotations

import numba as nb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ese.runtime.layout import LANES


def _cast(builder, v, src, dst, ty):
    if isinstance(dst, types.Float):
        if isinstance(src, types.Float):
            return v if src.bitwidth == dst.bitwidth else builder.fpext(v, ty)
        return builder.sitofp(v, ty)
    if src.bitwidth == dst.bitwidth:
        return v
    return builder.sext(v, ty) if src.signed else builder.zext(v, ty)


def sext64(builder, v):
    """IR: an integer value sign-extended to i64 (as it is when it is already that wide)."""
    return builder.sext(v, ir.IntType(64)) if v.type.width < 64 else v


UNROLL = 4  # independent accumulators: the FMA / vpdpwssd latency (4-5 cycles) is hidden


def unrolled(builder, e0, e1, vty, zero, body, add):
    """IR: run ``body(e, acc)`` for e in [e0, e1) with UNROLL accumulators of type ``vty`` over
    whole groups of UNROLL steps, the rest on the first; returns the accumulators' sum
    (``add(a, b)``). The SIMD intrinsics' shared inner loop."""
    i64 = ir.IntType(64)
    accs = [cgutils.alloca_once(builder, vty) for _ in range(UNROLL)]
    for a in accs:
        builder.store(zero, a)
    n = builder.sub(e1, e0)
    main_end = builder.add(e0, builder.mul(builder.sdiv(n, ir.Constant(i64, UNROLL)), ir.Constant(i64, UNROLL)))
    with cgutils.for_range_slice(builder, e0, main_end, ir.Constant(i64, UNROLL)) as (e, _):
        for u, a in enumerate(accs):
            body(builder.add(e, ir.Constant(i64, u)), a)
    with cgutils.for_range_slice(builder, main_end, e1, ir.Constant(i64, 1)) as (e, _):
        body(e, accs[0])
    total = builder.load(accs[0])
    for a in accs[1:]:
        total = add(total, builder.load(a))
    return total


def _make_axpy(W: int):
    def codegen(context, builder, sig, args):
        va, ca, xa, e0, e1, b0, oa, o = args
        tv, tc, tx, _, _, _, to, _ = sig.args
        fp = isinstance(to.dtype, types.Float)
        V = context.make_array(tv)(context, builder, va).data
        C = context.make_array(tc)(context, builder, ca).data
        xarr = context.make_array(tx)(context, builder, xa)
        ldx = cgutils.unpack_tuple(builder, xarr.shape)[1]
        O = context.make_array(to)(context, builder, oa).data
        acc_t = context.get_value_type(to.dtype)
        vacc = ir.VectorType(acc_t, W)
        vx = ir.VectorType(context.get_value_type(tx.dtype), W)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), W), [0] * W)
        acc = cgutils.alloca_once(builder, vacc)
        builder.store(ir.Constant(vacc, [0.0 if fp else 0] * W), acc)
        i64 = ir.IntType(64)
        with cgutils.for_range_slice(builder, sext64(builder, e0), sext64(builder, e1), ir.Constant(i64, 1)) as (e, _):
            w = _cast(builder, builder.load(builder.gep(V, [e])), tv.dtype, to.dtype, acc_t)
            col = builder.load(builder.gep(C, [e]))
            col = builder.sext(col, i64) if tc.dtype.signed else builder.zext(col, i64)
            xp = builder.gep(xarr.data, [builder.add(builder.mul(col, ldx), sext64(builder, b0))])
            xv = _cast(builder, builder.load(builder.bitcast(xp, vx.as_pointer()), align=1), tx.dtype, to.dtype, vacc)
            wv = builder.shuffle_vector(builder.insert_element(ir.Constant(vacc, None), w, ir.Constant(ir.IntType(32), 0)),
                                        ir.Constant(vacc, None), splat)
            cur = builder.load(acc)
            new = builder.fadd(cur, builder.fmul(xv, wv, flags=("fast",)), flags=("fast",)) if fp \
                else builder.add(cur, builder.mul(xv, wv))
            builder.store(new, acc)
        op = builder.bitcast(builder.gep(O, [sext64(builder, o)]), vacc.as_pointer())
        old, res = builder.load(op, align=1), builder.load(acc)
        builder.store(builder.fadd(old, res, flags=("fast",)) if fp else builder.add(old, res), op, align=1)
        return context.get_dummy_value()

    @intrinsic
    def axpy(typingctx, vals, cols, X, e0, e1, b0, out, o):
        return types.void(vals, cols, X, e0, e1, b0, out, o), codegen

    return axpy


axpy16 = _make_axpy(16)
axpy32 = _make_axpy(32)


@nb.njit(inline="always", cache=True, nogil=True)
def row_times_batch(vals, cols, X, e0, e1, out, o):
    """``out.flat[o:o + B] += sum_{e0 <= e < e1} vals[e] * X[cols[e], :]`` (B = X.shape[1])."""
    B = X.shape[1]
    b0 = 0
    while b0 + 32 <= B:
        axpy32(vals, cols, X, e0, e1, b0, out, o + b0)
        b0 += 32
    if b0 + 16 <= B:
        axpy16(vals, cols, X, e0, e1, b0, out, o + b0)
        b0 += 16
    for b in range(b0, B):
        for e in range(e0, e1):
            out[o + b] += vals[e] * X[cols[e], b]


def _gather_codegen(context, builder, sig, args):
    """LLVM IR of :func:`sell_slice` (see there)."""
    va, ca, za, e0, e1, oa = args
    tv, tc, tz, _, _, to = sig.args
    W = LANES
    i32, i64 = ir.IntType(32), ir.IntType(64)
    fp = isinstance(to.dtype, types.Float)
    acc_t = context.get_value_type(to.dtype)
    z_t = context.get_value_type(tz.dtype)
    vacc, vz = ir.VectorType(acc_t, W), ir.VectorType(z_t, W)
    vptr = ir.VectorType(ir.PointerType(z_t), W)
    V = context.make_array(tv)(context, builder, va).data
    C = context.make_array(tc)(context, builder, ca).data
    Z = context.make_array(tz)(context, builder, za).data
    O = context.make_array(to)(context, builder, oa).data
    gather_ty = ir.FunctionType(vz, [vptr, i32, ir.VectorType(ir.IntType(1), W), vz])
    name = f"llvm.masked.gather.v{W}{z_t.intrinsic_name}.v{W}{vptr.element.intrinsic_name}"
    gather = cgutils.get_or_insert_function(builder.module, gather_ty, name)
    all_on = ir.Constant(ir.VectorType(ir.IntType(1), W), [1] * W)
    align = ir.Constant(i32, context.get_abi_sizeof(z_t))
    acc = cgutils.alloca_once(builder, vacc)
    builder.store(ir.Constant(vacc, [0.0 if fp else 0] * W), acc)
    vcol = ir.VectorType(context.get_value_type(tc.dtype), W)
    vval = ir.VectorType(context.get_value_type(tv.dtype), W)
    with cgutils.for_range_slice(builder, sext64(builder, e0), sext64(builder, e1), ir.Constant(i64, W)) as (e, _):
        col = builder.load(builder.bitcast(builder.gep(C, [e]), vcol.as_pointer()), align=1)
        col = builder.zext(col, ir.VectorType(i32, W)) if not tc.dtype.signed else builder.sext(col, ir.VectorType(i32, W))
        ptrs = builder.gep(Z, [col], source_etype=z_t)
        ptrs.type = vptr  # a GEP with a vector index yields a vector of pointers
        zv = _cast(builder, builder.call(gather, [ptrs, align, all_on, ir.Constant(vz, None)]), tz.dtype, to.dtype, vacc)
        wv = _cast(builder, builder.load(builder.bitcast(builder.gep(V, [e]), vval.as_pointer()), align=1),
                   tv.dtype, to.dtype, vacc)
        cur = builder.load(acc)
        new = builder.fadd(cur, builder.fmul(zv, wv, flags=("fast",)), flags=("fast",)) if fp \
            else builder.add(cur, builder.mul(zv, wv))
        builder.store(new, acc)
    builder.store(builder.load(acc), builder.bitcast(O, vacc.as_pointer()), align=1)
    return context.get_dummy_value()


@intrinsic
def sell_slice(typingctx, vals, cols, z, e0, e1, out):
    """``out[:16] = sum_k vals[e0 + 16k + lane] * z[cols[e0 + 16k + lane]]`` per lane: one SELL-16
    slice with the 16 accumulators in vector registers and a hardware gather of ``z`` (numba's
    own loop does 16 scalar loads and stores every accumulator back for each entry, since it
    cannot prove ``out`` does not alias ``z``). ``vals`` and ``z`` are cast to ``out``'s type
    (float: fp32 or fp64; integers sign-extended), so a float64 ``out`` sums integers exactly
    while every partial sum stays below 2**53."""
    return types.void(vals, cols, z, e0, e1, out), _gather_codegen


@nb.njit(inline="always", cache=True, nogil=True)
def sell_rows(ptr, cols, vals, rows, z, slices, out, a):
    """``out[rows[i]] = (W z)[i]`` for the SELL-16 slices in ``slices`` (-1 ends the list); ``a``
    (LANES,) is the thread's scratch and sets the accumulator type (the cast into ``out`` is exact
    for integer-valued float64 sums)."""
    for j in range(slices.shape[0]):
        s = slices[j]
        if s < 0:
            break
        sell_slice(vals, cols, z, ptr[s], ptr[s + 1], a)
        for lane in range(LANES):
            out[rows[s * LANES + lane]] = a[lane]
