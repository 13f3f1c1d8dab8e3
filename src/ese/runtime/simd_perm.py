"""SIMD primitive of the permuted-table kernel (``perm64``, issue 16): gather-free sparse rows.

A gathered sparse row loads one input per non-zero, about one element per cycle. Here the input
vector is read 64 16-bit entries at a time into two AVX-512 registers (a *block*), and the word
permute ``vpermi2w`` hands every lane its input from them in one instruction; ``vpmaddwd`` (or,
with VNNI, the fused ``vpdpwssd``) then multiplies 32 inputs by 32 16-bit weights and adds them in
pairs into 16 int32 lanes. A lane pair holds two non-zeros of the same row, so one register
serves 16 rows (a *slice*, see :mod:`ese.runtime.perm_layout`).

``perm_blocks(idx, vals, z, counts, e0, b0, b1, out, o)`` sets ``out[o:o + 16]`` to the sums of
the slice's pairs over blocks ``b0 <= b < b1``: block ``b`` reads ``z[64 b:64 b + 64]``, has
``counts[b]`` pairs, and the pairs are stored one after the other from pair ``e0`` (``idx``
(pairs, 32) uint8 or int16: the block-local column of every word, bytes widened on load since
they cost a quarter less memory traffic, the kernel's limit at this size; ``vals`` (pairs, 32)
int16: the weights). ``out``'s
type sets the accumulator: int32 lanes (exact while no row's partial sum leaves int32, the
caller's bound) or int64 lanes (every pair's int32 sum widened at once: exact whenever one pair
fits int32, which the planner checks).

Needs AVX-512BW (:func:`ese.runtime.perm_layout.perm_supported`): the intrinsics have no
fallback in the x86 backend, so callers check the CPU before they compile a kernel with them.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

BLOCK = 64  # 16-bit entries in the two registers one vpermi2w reads
WORDS = 32  # 16-bit words of one AVX-512 register: 16 rows x 2 non-zeros


def _i64(builder, v):
    return builder.sext(v, ir.IntType(64)) if v.type.width < 64 else v


def _codegen(context, builder, sig, args):
    ia, va, za, ca, e0, b0, b1, oa, o = args
    ti, tv, tz, tc, _, _, _, to, _ = sig.args
    i16, i32, i64 = ir.IntType(16), ir.IntType(32), ir.IntType(64)
    vw, vd = ir.VectorType(i16, WORDS), ir.VectorType(i32, WORDS // 2)
    wide = to.dtype.bitwidth == 64
    vacc = ir.VectorType(i64, WORDS // 2) if wide else vd
    arr = {name: context.make_array(t)(context, builder, a).data
           for name, t, a in (("I", ti, ia), ("V", tv, va), ("Z", tz, za), ("C", tc, ca), ("O", to, oa))}
    permute = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vw, [vw, vw, vw]),
                                             "llvm.x86.avx512.vpermi2var.hi.512")
    madd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vd, [vw, vw]),
                                          "llvm.x86.avx512.pmaddw.d.512")
    zero = ir.Constant(vacc, [0] * (WORDS // 2))
    accs = [cgutils.alloca_once_value(builder, zero) for _ in range(2)]  # two chains: hide the latency
    one = ir.Constant(i64, 1)

    def load(name, offset):
        return builder.load(builder.bitcast(builder.gep(arr[name], [offset]), vw.as_pointer()), align=2)

    def idxv(offset):
        if ti.dtype.bitwidth == 8:
            vb = ir.VectorType(ir.IntType(8), WORDS)
            return builder.zext(builder.load(builder.bitcast(builder.gep(arr["I"], [offset]), vb.as_pointer()), align=1), vw)
        return load("I", offset)

    def pair(lo, hi, k, acc):
        off = builder.mul(k, ir.Constant(i64, WORDS))
        s = builder.call(madd, [builder.call(permute, [lo, idxv(off), hi]), load("V", off)])
        builder.store(builder.add(builder.load(acc), builder.sext(s, vacc) if wide else s), acc)

    e = cgutils.alloca_once_value(builder, _i64(builder, e0))
    with cgutils.for_range_slice(builder, _i64(builder, b0), _i64(builder, b1), one) as (b, _):
        n = _i64(builder, builder.load(builder.gep(arr["C"], [b])))
        base = builder.mul(b, ir.Constant(i64, BLOCK))
        lo, hi = load("Z", base), load("Z", builder.add(base, ir.Constant(i64, WORDS)))
        start = builder.load(e)
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), builder.ashr(n, one), one) as (j, _):
            k = builder.add(start, builder.shl(j, one))
            pair(lo, hi, k, accs[0])
            pair(lo, hi, builder.add(k, one), accs[1])
        with builder.if_then(builder.icmp_signed("!=", builder.and_(n, one), ir.Constant(i64, 0))):
            pair(lo, hi, builder.sub(builder.add(start, n), one), accs[0])
        builder.store(builder.add(start, n), e)
    total = builder.add(builder.load(accs[0]), builder.load(accs[1]))
    builder.store(total, builder.bitcast(builder.gep(arr["O"], [_i64(builder, o)]), vacc.as_pointer()), align=4)
    return context.get_dummy_value()


@intrinsic
def perm_blocks(typingctx, idx, vals, z, counts, e0, b0, b1, out, o):
    """See the module docstring."""
    return types.void(idx, vals, z, counts, e0, b0, b1, out, o), _codegen
