"""SIMD primitives of the column-clustered pattern (``ese prune --balance cluster:G``): the G rows
of a cluster share their columns, so one input (fp32) or one pair of inputs (int16) feeds a whole
vector of G weights; no gathers.

``pair_dot(vals, cols, z, p0, p1, out, o)``: ``out[o:o + G] = sum_{p0 <= p < p1} sum_{h in 0, 1}
vals[2 G p + 2 lane + h] * z[cols[2 p + h]]`` in int32 lanes, G = ``out``'s lane count given by
``vals``' pair layout (see :mod:`ese.runtime.cluster_layout`). Written as sign-extended 16-bit
products whose even and odd lanes are added: the x86 backend turns this into ``vpmaddwd`` (32
multiply-adds per instruction with AVX-512BW, 16 with AVX2) and, on CPUs with AVX-512 VNNI, may
fuse the accumulation into ``vpdpwssd``; elsewhere it is plain vector code. Exact while no lane's
partial sum leaves int32 (the caller's bound). ``col_axpy(vals, cols, z, e0, e1, out, o)``:
``out[o:o + G] = sum_e vals[G e + lane] * z[cols[e]]`` in fp32 (one broadcast, one FMA per column).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ese.runtime.simd import sext64, unrolled


def _load_col(builder, C, e, signed):
    col = builder.load(builder.gep(C, [e]))
    return builder.sext(col, ir.IntType(64)) if signed else builder.zext(col, ir.IntType(64))


def _pair_codegen(G: int):
    def codegen(context, builder, sig, args):
        va, ca, za, p0, p1, oa, o = args
        tv, tc, tz, _, _, to, _ = sig.args
        i16, i32, i64 = ir.IntType(16), ir.IntType(32), ir.IntType(64)
        V = context.make_array(tv)(context, builder, va).data
        C = context.make_array(tc)(context, builder, ca).data
        Z = context.make_array(tz)(context, builder, za).data
        O = context.make_array(to)(context, builder, oa).data
        v2g16, v2g32, vg32 = ir.VectorType(i16, 2 * G), ir.VectorType(i32, 2 * G), ir.VectorType(i32, G)
        even = ir.Constant(ir.VectorType(i32, G), [2 * k for k in range(G)])
        odd = ir.Constant(ir.VectorType(i32, G), [2 * k + 1 for k in range(G)])

        def body(p, acc):
            e = builder.mul(p, ir.Constant(i64, 2))
            x0 = builder.trunc(builder.load(builder.gep(Z, [_load_col(builder, C, e, tc.dtype.signed)])), i16) \
                if tz.dtype.bitwidth > 16 else builder.load(builder.gep(Z, [_load_col(builder, C, e, tc.dtype.signed)]))
            e1 = builder.add(e, ir.Constant(i64, 1))
            x1 = builder.trunc(builder.load(builder.gep(Z, [_load_col(builder, C, e1, tc.dtype.signed)])), i16) \
                if tz.dtype.bitwidth > 16 else builder.load(builder.gep(Z, [_load_col(builder, C, e1, tc.dtype.signed)]))
            word = builder.or_(builder.zext(x0, i32), builder.shl(builder.zext(x1, i32), ir.Constant(i32, 16)))
            splat = builder.shuffle_vector(builder.insert_element(ir.Constant(vg32, None), word, ir.Constant(i32, 0)),
                                           ir.Constant(vg32, None), ir.Constant(ir.VectorType(i32, G), [0] * G))
            xs = builder.sext(builder.bitcast(splat, v2g16), v2g32)  # (x0, x1) in every pair of lanes
            wp = builder.bitcast(builder.gep(V, [builder.mul(p, ir.Constant(i64, 2 * G))]), v2g16.as_pointer())
            ws = builder.sext(builder.load(wp, align=2), v2g32)
            prod = builder.mul(ws, xs)
            s = builder.add(builder.shuffle_vector(prod, ir.Constant(v2g32, None), even),
                            builder.shuffle_vector(prod, ir.Constant(v2g32, None), odd))
            builder.store(builder.add(builder.load(acc), s), acc)

        total = unrolled(builder, sext64(builder, p0), sext64(builder, p1), vg32, ir.Constant(vg32, [0] * G), body,
                          lambda a, b: builder.add(a, b))
        op = builder.bitcast(builder.gep(O, [sext64(builder, o)]), vg32.as_pointer())
        builder.store(total, op, align=4)
        return context.get_dummy_value()
    return codegen


def _axpy_codegen(G: int):
    def codegen(context, builder, sig, args):
        va, ca, za, e0, e1, oa, o = args
        tv, tc, tz, _, _, to, _ = sig.args
        f32, i32, i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
        V = context.make_array(tv)(context, builder, va).data
        C = context.make_array(tc)(context, builder, ca).data
        Z = context.make_array(tz)(context, builder, za).data
        O = context.make_array(to)(context, builder, oa).data
        vg = ir.VectorType(f32, G)
        zero = ir.Constant(ir.VectorType(i32, G), [0] * G)

        def body(e, acc):
            x = builder.load(builder.gep(Z, [_load_col(builder, C, e, tc.dtype.signed)]))
            xs = builder.shuffle_vector(builder.insert_element(ir.Constant(vg, None), x, ir.Constant(i32, 0)),
                                        ir.Constant(vg, None), zero)
            wp = builder.bitcast(builder.gep(V, [builder.mul(e, ir.Constant(i64, G))]), vg.as_pointer())
            w = builder.load(wp, align=4)
            builder.store(builder.fadd(builder.load(acc), builder.fmul(w, xs, flags=("fast",)), flags=("fast",)), acc)

        total = unrolled(builder, sext64(builder, e0), sext64(builder, e1), vg, ir.Constant(vg, [0.0] * G), body,
                          lambda a, b: builder.fadd(a, b, flags=("fast",)))
        op = builder.bitcast(builder.gep(O, [sext64(builder, o)]), vg.as_pointer())
        builder.store(total, op, align=4)
        return context.get_dummy_value()
    return codegen


def _make(codegen_of, G):
    @intrinsic
    def fn(typingctx, vals, cols, z, e0, e1, out, o):
        return types.void(vals, cols, z, e0, e1, out, o), codegen_of(G)
    return fn


SIZES = (4, 8, 16)
PAIR_DOT = {G: _make(_pair_codegen, G) for G in SIZES}
COL_AXPY = {G: _make(_axpy_codegen, G) for G in SIZES}
pair_dot4, pair_dot8, pair_dot16 = PAIR_DOT[4], PAIR_DOT[8], PAIR_DOT[16]
col_axpy4, col_axpy8, col_axpy16 = COL_AXPY[4], COL_AXPY[8], COL_AXPY[16]
