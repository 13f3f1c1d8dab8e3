"""Sigmoid / tanh lookup tables: monotonic, integer indexing, error within the spec's bound."""

from __future__ import annotations

import numpy as np
import pytest

from ese.compress.fixedpoint import Format, QuantError, dequantize
from ese.compress.lut import LutSpec, build_table, lut_error_report, lut_index, lut_lookup, lut_specs

CONFIGS = [(16, 10, 8.0, 4.0), (16, 8, 4.0, 2.0), (12, 6, 8.0, 4.0), (16, 12, 16.0, 8.0)]


@pytest.mark.parametrize("act_bits, index_bits, s_range, t_range", CONFIGS)
def test_tables_are_monotonic_and_in_range(act_bits, index_bits, s_range, t_range):
    for spec in lut_specs(act_bits, index_bits, s_range, t_range).values():
        table = build_table(spec)
        assert table.dtype == np.int64 and len(table) == 1 << index_bits
        assert np.all(np.diff(table) >= 0)
        assert table.min() >= spec.out.lo and table.max() <= spec.out.hi
    sig = build_table(lut_specs(act_bits, index_bits, s_range, t_range)["sigmoid"])
    assert sig.min() >= 0 and sig.max() <= 1 << (act_bits - 2)  # sigmoid in [0, 1]


@pytest.mark.parametrize("act_bits, index_bits, s_range, t_range", CONFIGS)
@pytest.mark.parametrize("in_frac", [4, 9, 12, 14])
def test_measured_error_is_within_the_predicted_bound(act_bits, index_bits, s_range, t_range, in_frac):
    for spec in lut_specs(act_bits, index_bits, s_range, t_range).values():
        rep = lut_error_report(spec, Format(act_bits, in_frac))
        bound = spec.step / 2 * {"sigmoid": 0.25, "tanh": 1.0}[spec.function] + 0.5 * spec.out.lsb
        assert rep["predicted_in_range"] == pytest.approx(bound)
        assert rep["max_abs_error_in_range"] <= bound * (1 + 1e-12)
        assert rep["max_abs_error"] <= max(bound, rep["tail_error"]) * (1 + 1e-12)


def test_default_table_errors_are_as_documented():
    specs = lut_specs(16, 10, 8.0, 4.0)
    sig = lut_error_report(specs["sigmoid"], Format(16, 12))
    tanh = lut_error_report(specs["tanh"], Format(16, 12))
    assert sig["max_abs_error"] < 2.0e-3 and tanh["max_abs_error"] < 4.0e-3
    assert sig["tail_error"] < 4e-4 and tanh["tail_error"] < 7e-4


@pytest.mark.parametrize("in_frac", [-2, 0, 3, 6, 7, 13])
def test_integer_index_equals_the_real_valued_floor(in_frac):
    spec = lut_specs(16, 10, 8.0, 4.0)["sigmoid"]  # step 2**-6
    z = np.arange(-40000, 40000, 37, dtype=np.int64)
    k, clipped = lut_index(z, in_frac, spec)
    expected = np.floor(dequantize(z, in_frac) / spec.step) + spec.entries // 2
    assert k.dtype == np.int64
    assert np.array_equal(k, np.clip(expected, 0, spec.entries - 1).astype(np.int64))
    assert np.array_equal(clipped, (expected < 0) | (expected >= spec.entries))


def test_lookup_counts_inputs_outside_the_range():
    spec = lut_specs(16, 10, 8.0, 4.0)["tanh"]
    table = build_table(spec)
    z = np.array([-5 << 10, 0, 3 << 10, 4 << 10], dtype=np.int64)  # -5, 0, 3, 4 at frac 10
    values, outside = lut_lookup(table, z, 10, spec)
    assert outside == 2  # -5 and 4 are outside [-4, 4)
    assert values[0] == table[0] and values[3] == table[-1]


def test_range_must_be_a_power_of_two():
    with pytest.raises(QuantError, match="LUT range must be a positive power of two, not 6.0"):
        LutSpec("sigmoid", 10, 6.0, Format(16, 14))
    with pytest.raises(QuantError, match="unknown LUT function 'relu'"):
        LutSpec("relu", 10, 8.0, Format(16, 14))
