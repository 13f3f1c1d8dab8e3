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

Float (``z`` fp32): the same with ``vpermi2ps`` over blocks of 32 fp32 inputs, one non-zero per
row and step (``idx`` and ``vals`` (steps, 16)), FMA into 16 fp32 lanes.

Needs AVX-512BW (:func:`ese.runtime.perm_layout.perm_supported`): the intrinsics have no
fallback in the x86 backend, so callers check the CPU before they compile a kernel with them.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ese.runtime.simd import sext64

BLOCK = 64  # 16-bit entries in the two registers one vpermi2w reads
WORDS = 32  # 16-bit words of one AVX-512 register: 16 rows x 2 non-zeros
FLOAT_BLOCK = 32  # fp32 entries in the two registers one vpermi2ps reads (one non-zero per row and step)


def _codegen(context, builder, sig, args):
    ia, va, za, ca, e0, b0, b1, oa, o = args
    ti, tv, tz, tc, _, _, _, to, _ = sig.args
    i32, i64 = ir.IntType(32), ir.IntType(64)
    fp = isinstance(tz.dtype, types.Float)
    # per step: `step` entries of idx/vals; the table is two registers of `half` entries
    if fp:
        step, half = 16, 16
        vz = ir.VectorType(ir.FloatType(), 16)
        vi = ir.VectorType(i32, 16)
        vacc = vz
        name = "llvm.x86.avx512.vpermi2var.ps.512"
    else:
        step, half = WORDS, WORDS
        vz = vi = ir.VectorType(ir.IntType(16), WORDS)
        vd = ir.VectorType(i32, WORDS // 2)
        wide = to.dtype.bitwidth == 64
        vacc = ir.VectorType(i64, WORDS // 2) if wide else vd
        name = "llvm.x86.avx512.vpermi2var.hi.512"
        madd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vd, [vz, vz]),
                                              "llvm.x86.avx512.pmaddw.d.512")
    arr = {key: context.make_array(t)(context, builder, a).data
           for key, t, a in (("I", ti, ia), ("V", tv, va), ("Z", tz, za), ("C", tc, ca), ("O", to, oa))}
    permute = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vz, [vz, vi, vz]), name)
    zero = ir.Constant(vacc, [0.0 if fp else 0] * vacc.count)
    accs = [cgutils.alloca_once_value(builder, zero) for _ in range(2)]  # two chains: hide the latency
    one = ir.Constant(i64, 1)

    def load(key, offset, vty):
        return builder.load(builder.bitcast(builder.gep(arr[key], [offset]), vty.as_pointer()), align=2)

    def idxv(offset):
        if ti.dtype.bitwidth == 8:  # bytes, widened on load
            return builder.zext(load("I", offset, ir.VectorType(ir.IntType(8), step)), vi)
        return load("I", offset, vi)

    def entry(lo, hi, k, acc):
        off = builder.mul(k, ir.Constant(i64, step))
        x = builder.call(permute, [lo, idxv(off), hi])
        if fp:
            new = builder.fadd(builder.load(acc), builder.fmul(x, load("V", off, vz), flags=("fast",)), flags=("fast",))
        else:
            s = builder.call(madd, [x, load("V", off, vz)])
            new = builder.add(builder.load(acc), builder.sext(s, vacc) if wide else s)
        builder.store(new, acc)

    e = cgutils.alloca_once_value(builder, sext64(builder, e0))
    with cgutils.for_range_slice(builder, sext64(builder, b0), sext64(builder, b1), one) as (b, _):
        n = sext64(builder, builder.load(builder.gep(arr["C"], [b])))
        base = builder.mul(b, ir.Constant(i64, 2 * half))
        lo, hi = load("Z", base, vz), load("Z", builder.add(base, ir.Constant(i64, half)), vz)
        start = builder.load(e)
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), builder.ashr(n, one), one) as (j, _):
            k = builder.add(start, builder.shl(j, one))
            entry(lo, hi, k, accs[0])
            entry(lo, hi, builder.add(k, one), accs[1])
        with builder.if_then(builder.icmp_signed("!=", builder.and_(n, one), ir.Constant(i64, 0))):
            entry(lo, hi, builder.sub(builder.add(start, n), one), accs[0])
        builder.store(builder.add(start, n), e)
    a0, a1 = builder.load(accs[0]), builder.load(accs[1])
    total = builder.fadd(a0, a1, flags=("fast",)) if fp else builder.add(a0, a1)
    builder.store(total, builder.bitcast(builder.gep(arr["O"], [sext64(builder, o)]), vacc.as_pointer()), align=4)
    return context.get_dummy_value()


@intrinsic
def perm_blocks(typingctx, idx, vals, z, counts, e0, b0, b1, out, o):
    """See the module docstring."""
    return types.void(idx, vals, z, counts, e0, b0, b1, out, o), _codegen
