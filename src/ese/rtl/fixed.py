"""The three fixed-point operations of docs/fixed-point.md as Amaranth expressions (signed values)."""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Value, signed


def align(v: Value, shift: int) -> Value:
    """Move the binary point by ``shift`` bits: round half up (add half, arithmetic shift) if > 0."""
    v = Value.cast(v).as_signed()
    if shift > 0:
        return ((v + Const(1 << (shift - 1), shift + 1)) >> shift).as_signed()
    if shift < 0:
        return (v << -shift).as_signed()
    return v


def saturate(v: Value, bits: int) -> Value:
    """Clip to the signed ``bits``-bit range; the result is at most ``bits`` wide."""
    v = Value.cast(v).as_signed()
    if len(v) <= bits:
        return v  # already in range (sign-extends where used)
    hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    clipped = Mux(v > hi, Const(hi, signed(bits)), Mux(v < lo, Const(lo, signed(bits)), v[:bits].as_signed()))
    return clipped[:bits].as_signed()


def lut_index(z: Value, shift: int, entries: int) -> Value:
    """Table index ``clamp((z >> shift) + entries/2, 0, entries-1)`` (docs/fixed-point.md section 5)."""
    z = Value.cast(z).as_signed()
    u = (z >> shift) if shift >= 0 else (z << -shift)
    k = (u.as_signed() + (entries // 2)).as_signed()
    bits = (entries - 1).bit_length()
    return Mux(k < 0, 0, Mux(k > entries - 1, entries - 1, k[:bits]))[:bits]
