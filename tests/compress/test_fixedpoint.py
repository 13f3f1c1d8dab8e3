"""Fixed-point primitives: rounding (negatives included), quantization error, saturation counting."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ese.compress.fixedpoint import (Format, QuantError, SaturationCounter, align, check_quant_config,
                                     choose_frac, dequantize, int_bits_for, quantize, saturate, shift_round)
from ese.config import QuantConfig


@pytest.mark.parametrize("value, shift, expected", [
    (-5, 1, -2),   # -2.5 -> -2: ties go up (towards +inf), also for negatives
    (-7, 1, -3),   # -3.5 -> -3
    (5, 1, 3),     # 2.5 -> 3
    (-6, 2, -1),   # -1.5 -> -1
    (-10, 2, -2),  # -2.5 -> -2
    (-11, 2, -3),  # -2.75 -> -3
    (-9, 2, -2),   # -2.25 -> -2
    (3, 0, 3),
    (-3, -2, -12),  # left shift: exact
])
def test_round_half_up_on_pinned_values(value, shift, expected):
    assert int(shift_round(np.array([value]), shift)[0]) == expected


@given(v=st.integers(-(1 << 40), 1 << 40), s=st.integers(-8, 30))
def test_shift_round_is_floor_of_value_plus_half(v, s):
    exact = Fraction(v, 1 << s) if s >= 0 else Fraction(v * (1 << -s))
    assert int(shift_round(np.array([v], dtype=np.int64), s)[0]) == math.floor(exact + Fraction(1, 2))


@given(bits=st.integers(4, 24), frac=st.integers(-8, 30), u=st.floats(0.0, 1.0))
def test_quantize_dequantize_error_is_at_most_half_an_lsb(bits, frac, u):
    fmt = Format(bits, frac)
    lo, hi = fmt.lo * fmt.lsb, fmt.hi * fmt.lsb
    value = lo + u * (hi - lo)
    counter = SaturationCounter()
    q = quantize(np.array([value]), fmt, counter, "v")
    assert q.dtype == np.int64 and counter["v"] == 0
    assert abs(dequantize(q, frac)[0] - value) <= 0.5 * fmt.lsb


def test_quantize_keeps_zero_exactly_and_saturates_with_a_count():
    fmt = Format(8, 4)  # range [-8, 7.9375]
    counter = SaturationCounter()
    q = quantize(np.array([0.0, -0.0, 1e-9, -1e-9, 100.0, -100.0, 7.97]), fmt, counter, "w")
    assert q.tolist() == [0, 0, 0, 0, 127, -128, 127]
    assert counter["w"] == 3


def test_quantize_refuses_nan():
    with pytest.raises(QuantError, match=r"cannot quantize layer0.w_x: it holds NaN or inf"):
        quantize(np.array([1.0, np.nan]), Format(12, 8), name="layer0.w_x")


def test_saturate_counts_only_real_rows():
    v = np.array([[40000, -40000, 5], [70000, 0, 0]], dtype=np.int64)
    counter = SaturationCounter()
    out = saturate(v, 16, counter, "layer0.y", rows=np.array([True, False]))
    assert out.tolist() == [[32767, -32768, 5], [32767, 0, 0]]
    assert counter["layer0.y"] == 2
    saturate(np.array([1, 2]), 16, counter, "layer0.c")
    assert counter["layer0.c"] == 0 and "layer0.c" in counter  # zero counts are recorded, not dropped
    assert counter.by_signal() == {"y": 2, "c": 0}


def test_align_moves_the_binary_point():
    assert align(np.array([3 << 10]), 12, 2).tolist() == [3]
    assert align(np.array([3]), 2, 12).tolist() == [3 << 10]


@given(m=st.floats(1e-6, 1e6), bits=st.integers(4, 24), headroom=st.integers(0, 2))
def test_choose_frac_fits_the_maximum_tightly(m, bits, headroom):
    frac = choose_frac(m, bits, headroom)
    assert m * 2.0 ** frac < 2.0 ** (bits - 1 - headroom)
    assert 2 * m * 2.0 ** frac >= 2.0 ** (bits - 1 - headroom)  # one fractional bit more would not fit


def test_int_bits_for_powers_of_two():
    assert int_bits_for(1.0) == 1 and int_bits_for(0.999) == 0 and int_bits_for(0.0) == 0
    assert int_bits_for(8.0) == 4 and int_bits_for(0.25) == -1


def test_choose_frac_refuses_degenerate_ranges():
    with pytest.raises(QuantError, match=r"outside \[-24, 48\]"):
        choose_frac(1e-30, 16)
    with pytest.raises(QuantError, match="non-finite range nan"):
        choose_frac(float("nan"), 16)


@pytest.mark.parametrize("change, message", [
    ({"weight_bits": 1}, "QuantConfig.weight_bits must be an integer in [2, 24], not 1"),
    ({"act_bits": 40}, "QuantConfig.act_bits must be an integer in [4, 24], not 40"),
    ({"acc_bits": 8}, "QuantConfig.acc_bits must be an integer in [act_bits=16, 56], not 8"),
    ({"sigmoid_range": 6.0}, "QuantConfig.sigmoid_range must be a positive power of two"),
    ({"lut_index_bits": 20}, "QuantConfig.lut_index_bits must be an integer in [2, 16], not 20"),
])
def test_bad_quant_config_is_refused_with_the_value(change, message):
    with pytest.raises(QuantError) as err:
        check_quant_config(dataclasses.replace(QuantConfig(), **change))
    assert message in str(err.value)
