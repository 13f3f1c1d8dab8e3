"""Encoder and decoder: exact round trip and the closed-form padding count, over random and
adversarial matrices, PE counts, index widths and weight widths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ese.compiler.encode import EncodingError, encode_matrix, padding_closed_form
from ese.partition import matrix_partition


def _roundtrip(name: str, w: np.ndarray, n_pes: int, index_bits: int, weight_bits: int = 12):
    em = encode_matrix(name, w, n_pes, index_bits, weight_bits)
    np.testing.assert_array_equal(em.decode(), w)
    assert em.nnz == np.count_nonzero(w)
    assert em.padding == padding_closed_form(w, matrix_partition(name, *w.shape[:1], n_pes), index_bits)
    # every PE's column pointers cover exactly its entries
    assert int(em.ptr[:, -1].sum()) == em.n_entries
    return em


@st.composite
def matrices(draw):
    gate = draw(st.booleans())
    rows = 4 * draw(st.integers(1, 12)) if gate else draw(st.integers(1, 40))
    cols = draw(st.integers(1, 12))
    density = draw(st.sampled_from([0.0, 0.02, 0.1, 0.3, 0.7, 1.0]))
    weight_bits = draw(st.integers(2, 16))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    lim = (1 << (weight_bits - 1)) - 1
    w = rng.integers(-lim - 1, lim + 1, size=(rows, cols))
    w[w == 0] = 1
    w[rng.random((rows, cols)) >= density] = 0
    return ("layer0.w_x" if gate else "layer0.w_ym"), w, weight_bits


@settings(max_examples=150, deadline=None)
@given(matrices(), st.integers(1, 9), st.integers(1, 6))
def test_roundtrip_is_exact_and_padding_matches_closed_form(mat, n_pes, index_bits):
    name, w, weight_bits = mat
    _roundtrip(name, w, n_pes, index_bits, weight_bits)


@pytest.mark.parametrize("index_bits", [1, 2, 4])
@pytest.mark.parametrize("n_pes", [1, 3, 8, 64])
def test_adversarial_patterns(index_bits, n_pes):
    w = np.zeros((48, 6), dtype=np.int64)
    w[47, 0] = 7            # one non-zero at the last row after a run longer than 15
    w[:, 1] = -3            # a full column
    w[0, 3] = 1             # a lone first row, then an empty column 4 and empty column 5 tail
    w[[0, 40], 2] = [5, -5]  # a zero run of 39 inside a column
    em = _roundtrip("w_ym", w, n_pes, index_bits)
    if n_pes > 48:  # PEs past the last row own nothing
        assert (em.entries_per_pe[48:] == 0).all()
    assert (em.column_entries[:, 4] == 0).all()


def test_padding_entries_bridge_long_runs_exactly():
    w = np.zeros((40, 1), dtype=np.int64)
    w[39, 0] = 9
    em = encode_matrix("w_ym", w, 1, 4, 12)  # gap 39 = 2 * 16 + 7: two paddings, then rel 7
    assert em.rel.tolist() == [15, 15, 7] and em.weight.tolist() == [0, 0, 9]
    assert em.padding == 2 and em.words.dtype == np.uint16
    w[15, 0] = 1  # gap 15 fits the index exactly: no padding before it
    em = encode_matrix("w_ym", w, 1, 4, 12)
    assert em.rel.tolist() == [15, 15, 7] and em.weight.tolist() == [1, 0, 9]


def test_gate_matrix_keeps_four_gate_rows_of_a_cell_in_one_pe():
    H = 6
    w = np.arange(1, 4 * H * 2 + 1).reshape(4 * H, 2)
    em = encode_matrix("w_r", w, 4, 4, 12)
    for p in range(4):
        cells = [k for k in range(H) if k % 4 == p]
        assert em.nnz_per_pe[p] == 4 * len(cells) * 2


def test_entry_words_pack_index_above_twos_complement_weight():
    w = np.array([[-1], [0], [5]])
    em = encode_matrix("w_ym", w, 1, 4, 12)
    assert em.words.tolist() == [(0 << 12) | 0xFFF, (1 << 12) | 5]
    assert encode_matrix("w_ym", w, 1, 8, 12).words.dtype == np.uint32


def test_refuses_bad_inputs_with_a_clear_error():
    with pytest.raises(EncodingError, match="outside the 4-bit range"):
        encode_matrix("w_ym", np.array([[8]]), 1, 4, 4)
    with pytest.raises(EncodingError, match="integer matrix"):
        encode_matrix("w_ym", np.ones((2, 2)), 1, 4, 12)
    with pytest.raises(EncodingError, match="index_bits"):
        encode_matrix("w_ym", np.ones((2, 2), int), 1, 0, 12)
    with pytest.raises(EncodingError, match="32-bit word"):
        encode_matrix("w_ym", np.ones((2, 2), int), 1, 16, 20)


def test_decoder_refuses_an_index_past_the_pe_rows():
    em = encode_matrix("w_ym", np.array([[1], [0], [2]]), 1, 4, 12)
    em.words[1] = (em.words[1] & 0x0FFF) | (9 << 12)  # jump 10 rows down a 3-row PE
    with pytest.raises(EncodingError, match="past the 3 rows"):
        em.decode()
