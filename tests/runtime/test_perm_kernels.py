"""The permuted-table kernel (``perm64``, issue 16) is bit-exact with the reference model on every
vector of every step, LSTMP and GRU, one and two threads, streaming and utterance mode, in int32
lanes and where it must widen to int64; the engine picks it only where the CPU has AVX-512BW."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from runtime_models import int_input, tiny_qmodel
from test_engine_gru import assert_exact as assert_exact_gru
from test_engine_gru import gru_qmodel
from test_narrow_kernels import assert_exact

import ese.runtime.engine as engine_mod
from ese.compress.reference import ReferenceModel
from ese.runtime import Engine, EngineError
from ese.runtime import perm_layout
from ese.runtime.perm_layout import BLOCK, ROWS, pack_perm, perm_supported

needs_avx512 = pytest.mark.skipif(not perm_supported(), reason="perm64 needs a CPU with AVX-512BW")


def extreme_input(qm, frames: int, seed: int) -> np.ndarray:
    fmt = qm.input_format
    return np.where(np.random.default_rng(seed).random((frames, qm.model.input_dim)) < 0.5, fmt.lo, fmt.hi)


@needs_avx512
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [dict(D=9, H=16, P=16, layers=2, shift=-1), dict(D=5, H=20, P=6),
                                   dict(D=70, H=40, P=20, layers=2, density=0.3, shift=1)])
def test_lstmp_models_run_on_perm64_exactly(shape, threads):
    qm = tiny_qmodel(seed=len(shape) + threads, **shape)
    eng = Engine.from_qmodel(qm, threads=threads)
    assert eng.recognizer(1).kernel == "perm64-vpermw-i32"
    assert_exact(eng, qm, int_input(qm, 8, threads))


@needs_avx512
@pytest.mark.parametrize("threads", [1, 2])
def test_gru_models_run_on_perm64_exactly(threads):
    qm = gru_qmodel(D=70, H=40, layers=2, seed=5, density=0.3)
    eng = Engine.from_qmodel(qm, threads=threads)
    assert eng.recognizer(1).kernel == "perm64-vpermw-i32"
    assert_exact_gru(eng, qm, int_input(qm, 7, 3))
    wide = gru_qmodel(H=20, seed=2, fracs={"x": -5})  # x 19 bits coarser than Fsum: the sum is aligned after
    assert Engine.from_qmodel(wide).recognizer(1).kernel == "perm64-vpermw-i32"
    assert_exact_gru(Engine.from_qmodel(wide), wide, int_input(wide, 6))


@needs_avx512
def test_rows_that_could_overflow_int32_sum_in_int64_lanes():
    """Full-range 12-bit weights over 300 inputs in half the cells: their slices' bound passes
    2**31 (int64 lanes), the other slices stay int32; inputs at the format's limits."""
    qm = tiny_qmodel(D=300, H=32, P=16, density=0.2, seed=6)
    L = qm.layers[0]
    rng = np.random.default_rng(0)
    big = rng.integers(1500, 2048, size=L.w_x.shape) * rng.choice([-1, 1], size=L.w_x.shape)
    rows = (np.arange(L.w_x.shape[0]) % 32) < 16  # cells 0-15 of every gate
    L.w_x = np.where(rows[:, None], big, L.w_x).astype(np.int64)
    eng = Engine.from_qmodel(qm, threads=2)
    st = eng.recognizer(1).states[0]
    assert st.perm.gx.wide.any() and not st.perm.gx.wide.all()
    assert_exact(eng, qm, extreme_input(qm, 5, 3))


def test_layout_holds_every_weight_once_at_its_column():
    """Unpacking the pairs gives back the matrix (both parts, every thread's rows, padding zero)."""
    rng = np.random.default_rng(1)
    w = np.where(rng.random((72, 150)) < 0.2, rng.integers(-2047, 2048, size=(72, 150)), 0)
    sets = [np.arange(0, 72, 2), np.arange(1, 72, 2)]
    m = pack_perm(w, 37, sets, np.full(150, 1 << 15))
    got = np.zeros((73, m.n_cols), np.int64)
    cmap = perm_layout.column_map(150, 37)
    for s in range(m.ptr.size - 1):
        k = m.ptr[s]
        for b in range(m.n_blocks):
            for p in range(m.counts[s, b]):
                for word in range(2 * ROWS):
                    row = m.rows[s * ROWS + word // 2]
                    got[row, b * BLOCK + m.idx[k + p, word]] += m.vals[k + p, word]
            k += m.counts[s, b]
        assert k == m.ptr[s + 1] and m.mid[s] == m.ptr[s] + m.counts[s, :m.split_blocks].sum()
    np.testing.assert_array_equal(got[:72][:, cmap], w)
    assert sorted(np.concatenate([m.rows[m.slices[t][m.slices[t] >= 0, None] * ROWS + np.arange(ROWS)].ravel()
                                  for t in range(2)]).tolist())[:72] == list(range(72))
    assert m.nnz == np.count_nonzero(w) and not m.wide.any()


def test_engine_falls_back_to_gathers_without_avx512(monkeypatch):
    monkeypatch.setattr(engine_mod, "perm_supported", lambda: False)
    qm = tiny_qmodel(D=9, H=16, P=16, seed=3)
    eng = Engine.from_qmodel(qm, threads=2)
    assert eng.recognizer(1).kernel == "sell16-gather-i32"
    assert_exact(eng, qm, int_input(qm, 5))


def test_a_named_cpu_target_without_features_is_not_assumed_to_have_avx512(monkeypatch):
    monkeypatch.setattr(numba.config, "CPU_NAME", "generic", raising=False)
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "", raising=False)
    assert not perm_supported()
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx2,+avx512f,+avx512bw", raising=False)
    assert perm_supported()


@needs_avx512
@pytest.mark.parametrize("cell", ["lstmp", "gru"])
def test_float_perm32_matches_the_gathered_float_kernel(cell, monkeypatch):
    """fp32: the same sums in another order (within fp32 rounding), streaming and utterance mode."""
    qm = tiny_qmodel(D=70, H=40, P=20, layers=2, density=0.3, seed=8) if cell == "lstmp" else \
        gru_qmodel(D=70, H=40, layers=2, seed=8, density=0.3)
    X = np.random.default_rng(2).standard_normal((7, 1, 70)).astype(np.float32)
    runs = {}
    for perm in (True, False):
        monkeypatch.setattr(engine_mod, "PERM_KERNELS", perm)
        eng = Engine.from_qmodel(qm, "float", threads=2)
        rec = eng.recognizer(1)
        runs[rec.kernel] = (np.array([rec.step_layers(f).copy() for f in X]), eng.recognizer(1).run_frames(X))
    (a, ua), (b, ub) = runs["perm32-vpermps-f32"], runs["sell16-gather-f32"]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ua, ub, rtol=1e-5, atol=1e-6)


def test_float_layout_holds_every_weight():
    rng = np.random.default_rng(3)
    w = np.where(rng.random((40, 75)) < 0.3, rng.standard_normal((40, 75)), 0).astype(np.float32)
    m = pack_perm(w, 10, [np.arange(40)], None, fixed=False)
    assert m.block == 32 and m.vals.shape[1] == ROWS and m.vals.dtype == np.float32
    got = np.zeros((41, m.n_cols), np.float32)
    for s in range(m.ptr.size - 1):
        k = m.ptr[s]
        for b in range(m.n_blocks):
            for p in range(m.counts[s, b]):
                for lane in range(ROWS):
                    got[m.rows[s * ROWS + lane], b * m.block + m.idx[k + p, lane]] += m.vals[k + p, lane]
            k += m.counts[s, b]
    np.testing.assert_array_equal(got[:40][:, perm_layout.column_map(75, 10, 32)], w)


@needs_avx512
@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_streaming_short_path_matches_the_traced_path_and_refuses_bad_frames(mode):
    """``step_layers`` of one stream on perm kernels takes a short path (input checked and staged
    in one jitted pass); on a 2-layer model its outputs equal the general path's (and in fixed
    point the reference model's), and a refused frame changes no state."""
    qm = tiny_qmodel(D=9, H=16, P=16, layers=2, shift=-1, seed=5)
    eng = Engine.from_qmodel(qm, mode, threads=2)
    x = int_input(qm, 6, 3)
    frames = x if mode == "fixed" else eng.quantize_input(np.random.default_rng(3).standard_normal((6, 9)).astype(np.float32))
    rec = eng.recognizer(1)
    assert rec._perm_stream
    got = []
    for t, f in enumerate(frames):
        if t == 3 and mode == "fixed":
            with pytest.raises(EngineError, match="outside"):
                rec.step_layers(np.full((1, 9), qm.input_format.hi + 1))
            with pytest.raises(EngineError, match="must be integers"):
                rec.step_layers(f[None].astype(np.float32))
        got.append(rec.step_layers(f[None])[0].copy())
    general = eng.recognizer(1)  # a record callback keeps step_layers on the general path
    want = [general.step_layers(f[None], lambda k, st: None)[0].copy() for f in frames]
    np.testing.assert_array_equal(np.array(got), np.array(want))
    if mode == "fixed":
        np.testing.assert_array_equal(np.array(got), ReferenceModel(qm).run(x).y)
