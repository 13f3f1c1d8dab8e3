"""Fixed-point arithmetic of docs/fixed-point.md: formats, rounding shifts, saturation with counters.

A signal in format ``Format(bits, frac)`` is a signed two's-complement integer ``q`` of ``bits``
bits standing for the real value ``q * 2**-frac``. Every operation here works on numpy int64
arrays and is exact; the only rounding is :func:`shift_round` (add half, arithmetic shift right,
i.e. round half up: ties go towards +infinity, so -2.5 -> -2 and 2.5 -> 3) and the only clipping
is :func:`saturate`, which counts what it clips.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ese.config import QuantConfig
from ese.errors import EseError

FIXED_POINT_SPEC_VERSION = 1  # bump whenever any rounding, saturation or format rule changes

# binary points outside this range mean a broken calibration (or a value of 0 / 1e30): refuse
FRAC_MIN, FRAC_MAX = -24, 48


class QuantError(EseError):
    """A model or fixed-point file cannot be quantized / read (non-finite weights, bad spec version)."""


@dataclass(frozen=True)
class Format:
    """Signed fixed point: ``bits`` total (sign included), ``frac`` fractional bits (may be < 0)."""

    bits: int
    frac: int

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def lsb(self) -> float:
        """The real value of one unit in the last place."""
        return math.ldexp(1.0, -self.frac)

    def to_list(self) -> list[int]:
        return [self.bits, self.frac]

    def __str__(self) -> str:
        return f"Q{self.bits - 1 - self.frac}.{self.frac} ({self.bits}b)"


class SaturationCounter(Counter):
    """Saturation events per signal name ("layer0.c": 3, ...); never silently dropped."""

    def record(self, name: str, count: int) -> None:
        if count:
            self[name] += int(count)
        else:
            self.setdefault(name, 0)

    def by_signal(self) -> dict[str, int]:
        """Counts summed over layers: "layer0.c" and "layer1.c" both count towards "c"."""
        out: dict[str, int] = {}
        for name, n in self.items():
            key = name.split(".", 1)[-1]
            out[key] = out.get(key, 0) + int(n)
        return out


def int_bits_for(max_abs: float) -> int:
    """The smallest I with ``max_abs < 2**I`` (integer bits above the binary point, sign excluded)."""
    if not math.isfinite(max_abs):
        raise QuantError(f"cannot choose a binary point for a non-finite range {max_abs!r}")
    if max_abs <= 0.0:
        return 0
    mant, exp = math.frexp(max_abs)  # max_abs = mant * 2**exp, 0.5 <= mant < 1, so max_abs < 2**exp
    return exp


def choose_frac(max_abs: float, bits: int, headroom: int = 0) -> int:
    """Dynamic fixed point: ``frac = bits - 1 - I - headroom`` with I = :func:`int_bits_for`.

    The largest measured magnitude then fits (``max_abs * 2**frac < 2**(bits-1)``) with
    ``headroom`` spare bits; an all-zero signal gets I = 0 (range +-1).
    """
    frac = bits - 1 - int_bits_for(max_abs) - headroom
    if not FRAC_MIN <= frac <= FRAC_MAX:
        raise QuantError(f"binary point {frac} for a {bits}-bit signal of range {max_abs!r} is outside "
                         f"[{FRAC_MIN}, {FRAC_MAX}]; the calibration data or weights are degenerate")
    return frac


def quantize(values: np.ndarray, fmt: Format, counter: SaturationCounter | None = None,
             name: str = "") -> np.ndarray:
    """Float -> int64 in ``fmt``: ``floor(v * 2**frac + 1/2)`` (round half up), then saturate.

    Zero maps to exactly zero, so pruned weights stay pruned.
    """
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).all():
        raise QuantError(f"cannot quantize {name or 'values'}: it holds NaN or inf")
    scaled = np.floor(np.ldexp(v, fmt.frac) + 0.5)  # ldexp is exact: a power-of-two scaling
    clipped = np.clip(scaled, fmt.lo, fmt.hi)
    if counter is not None:
        counter.record(name, int(np.count_nonzero(clipped != scaled)))
    return clipped.astype(np.int64)


def dequantize(q: np.ndarray, frac: int) -> np.ndarray:
    """int -> float64 real value ``q * 2**-frac`` (exact for |q| < 2**53)."""
    return np.ldexp(np.asarray(q, dtype=np.float64), -frac)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """float32 log-probabilities of float logits (..., C), computed in ``z``'s precision (float64
    for dequantized integer logits). The one host-side step from logits to what the decoder and
    the loss read, shared by the integer reference scoring and the CPU engine so that their
    transcripts agree exactly."""
    z = z - z.max(axis=-1, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(np.float32)


def shift_round(v: np.ndarray, shift: int) -> np.ndarray:
    """Arithmetic shift by ``shift`` bits with round half up (ties towards +infinity).

    ``shift > 0``: ``(v + 2**(shift-1)) >> shift`` (numpy's >> on int64 is arithmetic, i.e. floor);
    ``shift < 0``: ``v << -shift`` (exact); ``shift == 0``: ``v``.
    """
    v = np.asarray(v, dtype=np.int64)
    if shift > 0:
        return (v + np.int64(1 << (shift - 1))) >> np.int64(shift)
    if shift < 0:
        return v << np.int64(-shift)
    return v


def align(v: np.ndarray, from_frac: int, to_frac: int) -> np.ndarray:
    """Move ``v`` from binary point ``from_frac`` to ``to_frac`` (:func:`shift_round`)."""
    return shift_round(v, from_frac - to_frac)


def saturate(v: np.ndarray, bits: int, counter: SaturationCounter | None = None, name: str = "",
             rows: np.ndarray | None = None) -> np.ndarray:
    """Clip int64 ``v`` to the signed ``bits``-bit range and count the clipped elements.

    ``rows`` (bool, one per leading-axis row) restricts the count to real (unpadded) rows.
    """
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = np.clip(v, lo, hi)
    if counter is not None:
        clipped = out != v
        if rows is not None:
            clipped = clipped[rows]
        counter.record(name, int(np.count_nonzero(clipped)))
    return out


def check_quant_config(q: QuantConfig) -> None:
    """Refuse widths and LUT settings this spec does not define (QuantError quoting the value)."""
    checks = [
        ("weight_bits", q.weight_bits, 2 <= q.weight_bits <= 24, "an integer in [2, 24]"),
        ("act_bits", q.act_bits, 4 <= q.act_bits <= 24, "an integer in [4, 24]"),
        ("acc_bits", q.acc_bits, q.act_bits <= q.acc_bits <= 56, f"an integer in [act_bits={q.act_bits}, 56]"),
        ("lut_index_bits", q.lut_index_bits, 2 <= q.lut_index_bits <= 16, "an integer in [2, 16]"),
        ("act_headroom_bits", q.act_headroom_bits, 0 <= q.act_headroom_bits <= 4, "an integer in [0, 4]"),
        ("calibration_utterances", q.calibration_utterances, q.calibration_utterances >= 1, "at least 1"),
    ]
    for name, value, ok, expected in checks:
        if not ok:
            raise QuantError(f"QuantConfig.{name} must be {expected}, not {value!r}")
    for name in ("sigmoid_range", "tanh_range"):
        value = getattr(q, name)
        if not (value > 0 and math.isfinite(value) and math.frexp(value)[0] == 0.5):
            raise QuantError(f"QuantConfig.{name} must be a positive power of two (the LUT index is a "
                             f"shift of the input), not {value!r}")
