"""Sigmoid and tanh lookup tables over a clipped input range (docs/fixed-point.md, "LUTs").

A table of ``N = 2**index_bits`` entries covers ``[-range, range)`` in steps of
``delta = 2*range / N`` (a power of two, because ``range`` is one). Entry k holds the function at
the midpoint of its interval, ``f(-range + (k + 1/2) * delta)``, rounded half up to the output
format (``act_bits`` bits, ``act_bits - 2`` fractional bits, so that 1.0 is representable).

The index of an input ``z`` in format (A, F) is integer-only: ``u = z >> s`` (arithmetic shift,
i.e. floor; a left shift when s < 0) with ``s = F + log2(delta)``, then ``k = clamp(u + N/2, 0,
N - 1)``. Inputs outside the range clamp to the end entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ese.compress.fixedpoint import Format, QuantError, dequantize

FUNCTIONS = ("sigmoid", "tanh")
MAX_SLOPE = {"sigmoid": 0.25, "tanh": 1.0}  # max |f'|, for the interpolation error bound


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings for large |x|


def true_function(name: str, x: np.ndarray) -> np.ndarray:
    """The float function a table approximates."""
    if name == "sigmoid":
        return _sigmoid(np.asarray(x, dtype=np.float64))
    if name == "tanh":
        return np.tanh(np.asarray(x, dtype=np.float64))
    raise QuantError(f"unknown LUT function {name!r}; expected one of {', '.join(FUNCTIONS)}")


@dataclass(frozen=True)
class LutSpec:
    """One table: function, ``2**index_bits`` entries over ``[-input_range, input_range)``."""

    function: str
    index_bits: int
    input_range: float
    out: Format  # output format: (act_bits, act_bits - 2)

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise QuantError(f"unknown LUT function {self.function!r}; expected one of {', '.join(FUNCTIONS)}")
        if not (self.input_range > 0 and math.frexp(self.input_range)[0] == 0.5):
            raise QuantError(f"LUT range must be a positive power of two, not {self.input_range!r}")

    @property
    def entries(self) -> int:
        return 1 << self.index_bits

    @property
    def step_log2(self) -> int:
        """log2(delta), delta = 2 * input_range / entries."""
        return math.frexp(self.input_range)[1] - self.index_bits  # range = 2**(e-1): 2*range = 2**e

    @property
    def step(self) -> float:
        return math.ldexp(1.0, self.step_log2)

    def index_shift(self, in_frac: int) -> int:
        """s in ``u = z >> s`` for an input with ``in_frac`` fractional bits."""
        return in_frac + self.step_log2

    def predicted_error(self) -> float:
        """Max |table - f| for inputs inside the range: delta/2 * max slope + half an output LSB."""
        return 0.5 * self.step * MAX_SLOPE[self.function] + 0.5 * self.out.lsb

    def tail_error(self) -> float:
        """Max |table - f| for inputs outside the range (the end entries against f(+-inf))."""
        table = build_table(self)
        lo_val, hi_val = dequantize(table[[0, -1]], self.out.frac)
        f_lo = 0.0 if self.function == "sigmoid" else -1.0
        return float(max(abs(hi_val - 1.0), abs(lo_val - f_lo)))


def lut_specs(act_bits: int, index_bits: int, sigmoid_range: float, tanh_range: float) -> dict[str, LutSpec]:
    out = Format(act_bits, act_bits - 2)
    return {"sigmoid": LutSpec("sigmoid", index_bits, sigmoid_range, out),
            "tanh": LutSpec("tanh", index_bits, tanh_range, out)}


def build_table(spec: LutSpec) -> np.ndarray:
    """int64 (entries,): f at each interval midpoint, rounded half up to ``spec.out``."""
    k = np.arange(spec.entries, dtype=np.float64)
    mid = -spec.input_range + (k + 0.5) * spec.step
    q = np.floor(np.ldexp(true_function(spec.function, mid), spec.out.frac) + 0.5)
    return np.clip(q, spec.out.lo, spec.out.hi).astype(np.int64)


def lut_index(z: np.ndarray, in_frac: int, spec: LutSpec) -> tuple[np.ndarray, np.ndarray]:
    """(index int64, clipped bool) of integer inputs ``z`` with ``in_frac`` fractional bits."""
    z = np.asarray(z, dtype=np.int64)
    s = spec.index_shift(in_frac)
    u = (z >> np.int64(s)) if s >= 0 else (z << np.int64(-s))  # floor(z * 2**-F / delta)
    k = u + np.int64(spec.entries // 2)
    clipped = (k < 0) | (k >= spec.entries)
    return np.clip(k, 0, spec.entries - 1), clipped


def lut_lookup(table: np.ndarray, z: np.ndarray, in_frac: int, spec: LutSpec) -> tuple[np.ndarray, int]:
    """(table values for ``z``, number of inputs outside the table's range)."""
    k, clipped = lut_index(z, in_frac, spec)
    return table[k], int(np.count_nonzero(clipped))


def lut_error_report(spec: LutSpec, in_fmt: Format, table: np.ndarray | None = None) -> dict[str, float]:
    """Measured max |table(z) - f(z)| over every representable input z of ``in_fmt``.

    Returns ``max_abs_error`` (all inputs), ``max_abs_error_in_range`` (|z| < range),
    ``predicted_in_range`` (:meth:`LutSpec.predicted_error`), ``tail_error`` and the table
    geometry. Formats wider than 20 bits are sampled on 2**20 evenly spaced codes.
    """
    table = build_table(spec) if table is None else table
    n_codes = 1 << in_fmt.bits
    step = max(1, n_codes >> 20)
    z = np.arange(in_fmt.lo, in_fmt.hi + 1, step, dtype=np.int64)
    got = dequantize(lut_lookup(table, z, in_fmt.frac, spec)[0], spec.out.frac)
    x = dequantize(z, in_fmt.frac)
    err = np.abs(got - true_function(spec.function, x))
    inside = np.abs(x) < spec.input_range
    return {
        "function": spec.function,
        "entries": spec.entries,
        "input_range": spec.input_range,
        "step": spec.step,
        "input_format": in_fmt.to_list(),
        "max_abs_error": float(err.max()),
        "max_abs_error_in_range": float(err[inside].max()) if inside.any() else 0.0,
        "predicted_in_range": spec.predicted_error(),
        "tail_error": spec.tail_error(),
    }
