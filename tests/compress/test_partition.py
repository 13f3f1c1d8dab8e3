"""The one row -> PE partition: ownership, gate co-location, balance, local order, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ese.config import ModelConfig
from ese.errors import ConfigError
from ese.partition import layer_partitions, matrix_partition, partition_rows


@settings(max_examples=150, deadline=None)
@given(cells=st.integers(1, 70), n_pes=st.integers(1, 80), gates=st.sampled_from([1, 4]))
def test_every_row_owned_once_gates_together_and_balanced(cells: int, n_pes: int, gates: int) -> None:
    rows = cells * gates
    p = partition_rows(rows, n_pes, gate_blocks=gates)
    owned = np.concatenate(p.rows_of_pe)
    assert np.array_equal(np.sort(owned), np.arange(rows))  # every row exactly once
    assert len(p.rows_of_pe) == n_pes
    for pe, mine in enumerate(p.rows_of_pe):
        assert np.all(p.pe_of_row[mine] == pe)
        assert np.array_equal(p.local_index[mine], np.arange(len(mine)))  # local order = list order
        assert np.all(np.diff(mine) > 0)  # ascending global order inside a PE
    # the gate rows g*H + k of cell k share a PE: k mod N
    pe_by_gate = p.pe_of_row.reshape(gates, cells)
    assert np.all(pe_by_gate == (np.arange(cells) % n_pes)[None, :])
    counts = p.rows_per_pe
    assert counts.max() - counts.min() <= gates  # one cell (= `gates` rows) at most
    assert np.all(counts[:-1] >= counts[1:])  # the first rows mod N PEs hold the extra


def test_plain_interleave_and_gate_major_local_order() -> None:
    p = partition_rows(7, 3)
    assert p.pe_of_row.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert p.local_index.tolist() == [0, 0, 0, 1, 1, 1, 2]  # r // N
    g = partition_rows(12, 2, gate_blocks=4)  # H = 3 cells: PE 0 has cells 0 and 2
    assert g.rows_of_pe[0].tolist() == [0, 2, 3, 5, 6, 8, 9, 11]  # i0 i2 f0 f2 g0 g2 o0 o2
    assert g.rows_of_pe[1].tolist() == [1, 4, 7, 10]
    assert g.local_index[[6, 8]].tolist() == [4, 5]  # gate g of local cell j: g * n_cells + j


def test_more_pes_than_rows_leaves_idle_pes() -> None:
    p = partition_rows(3, 5)
    assert p.rows_per_pe.tolist() == [1, 1, 1, 0, 0]
    assert p.count_per_pe(np.array([2, 3, 4])).tolist() == [2, 3, 4, 0, 0]


def test_layer_and_named_partitions() -> None:
    parts = layer_partitions(ModelConfig(input_dim=10, hidden=8, proj=5), 4)
    assert set(parts) == {"w_x", "w_r", "w_ym"}
    assert parts["w_x"].n_rows == 32 and parts["w_x"].gate_blocks == 4
    assert parts["w_ym"].n_rows == 5 and parts["w_ym"].gate_blocks == 1
    assert np.array_equal(matrix_partition("layers.3.w_r", 32, 4).pe_of_row, parts["w_r"].pe_of_row)
    with pytest.raises(ConfigError, match=r"'layers.0.bias' is not a PE-partitioned LSTMP matrix"):
        matrix_partition("layers.0.bias", 32, 4)


@pytest.mark.parametrize("args, kwargs, message", [
    ((10, 0), {}, r"partition n_pes must be a positive integer, not 0"),
    ((10, -2), {}, r"n_pes must be a positive integer, not -2"),
    ((0, 2), {}, r"partition n_rows must be a positive integer, not 0"),
    ((10, 2.0), {}, r"n_pes must be a positive integer, not 2.0"),
    ((10, 2), {"gate_blocks": 4}, r"a matrix of 10 rows cannot hold 4 equal gate blocks"),
])
def test_bad_partition_arguments(args, kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        partition_rows(*args, **kwargs)


def test_partition_arrays_are_read_only() -> None:
    p = partition_rows(8, 2)
    with pytest.raises(ValueError):
        p.pe_of_row[0] = 1
