"""The int32 / int16 kernels (issue 16) are bit-exact with the reference model on every vector of
every step, including where they must fall back to int64, and the engine picks them by pattern."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_models import int_input, tiny_qmodel

import ese.runtime.engine as engine_mod
from ese.compress.reference import ReferenceModel
from ese.runtime import Engine
from ese.runtime.kernels_int16 import INT32_LIMIT
from ese.runtime.patterns import clustered, detect

SIGNALS = ("acc", "c", "m", "acc_y", "y")


def clusterize(qm, G: int, density: float, seed: int, full_range: bool = False):
    """Every aligned G-row cluster of every matrix keeps one random column set."""
    rng = np.random.default_rng(seed)
    for L in qm.layers:
        for n in qm.cell.matrix_names:
            w = getattr(L, n)
            R, K = w.shape
            keep = np.repeat(rng.random((R // G, K)) < density, G, axis=0)
            vals = rng.integers(-2048, 2048, size=w.shape) if full_range else rng.integers(1, 2048, size=w.shape)
            vals = np.where(vals == 0, 1, vals)
            setattr(L, n, np.where(keep, vals, 0).astype(np.int64))
    return qm


def assert_exact(eng: Engine, qm, x: np.ndarray) -> None:
    ref = ReferenceModel(qm)
    want = ref.run(x)
    got = eng.recognizer(1).trace(x)
    for k, layer in enumerate(got):
        for s in SIGNALS:
            np.testing.assert_array_equal(layer[s], want.layers[k][s], err_msg=f"layer {k} {s}")
    (y,) = eng.run_layers([x])  # utterance mode: W_x batched, then the recurrence on W_r
    np.testing.assert_array_equal(eng.logits_fixed(y), want.logits)


@pytest.mark.parametrize("G", [4, 8, 16])
@pytest.mark.parametrize("threads", [1, 2])
def test_cluster_models_run_gather_free_and_exactly(G, threads):
    qm = clusterize(tiny_qmodel(D=9, H=16, P=16, layers=2, seed=G, shift=-1), G, 0.4, G)
    eng = Engine.from_qmodel(qm, threads=threads)
    assert eng.pattern == f"cluster:{G}" or (G < 16 and eng.pattern.startswith("cluster:"))
    assert eng.recognizer(1).kernel.endswith("-pairs-i16")
    assert_exact(eng, qm, int_input(qm, 8, G))


def test_cluster_kernel_falls_back_to_int64_where_int32_could_overflow():
    """Dense-ish clusters of full-range 12-bit weights over 300 inputs: sum |w| * 2**15 passes
    2**31, so those clusters sum int32 chunks into int64; extreme inputs (all at the format's
    limits) reach the bound's worst case."""
    qm = clusterize(tiny_qmodel(D=300, H=16, P=16, seed=4), 16, 0.9, 4, full_range=True)
    eng = Engine.from_qmodel(qm, threads=2)
    st = eng.recognizer(1).states[0]
    gx = st.cl["gx"]
    assert gx.wide.any() and not st.cl["gp"].wide.any()  # both kinds of sums in one step
    assert (gx.chunk[gx.wide, 0] < gx.nx[gx.wide]).any()  # the x part really is chunked
    fmt = qm.input_format
    x = np.where(np.random.default_rng(0).random((6, 300)) < 0.5, fmt.lo, fmt.hi)
    assert_exact(eng, qm, x)


def test_float_cluster_kernel_matches_the_sliced_kernel(monkeypatch):
    monkeypatch.setattr(engine_mod, "PERM_KERNELS", False)  # the gathered kernel is the reference here
    qm = clusterize(tiny_qmodel(D=9, H=32, P=16, layers=2, seed=2), 8, 0.5, 2)
    fast = Engine.from_qmodel(qm, "float", threads=2)
    engine_mod.CLUSTER_KERNELS = False
    try:
        plain = Engine.from_qmodel(qm, "float", threads=2)
    finally:
        engine_mod.CLUSTER_KERNELS = True
    assert fast.recognizer(1).kernel == "cluster8-bcast-f32" and plain.recognizer(1).kernel == "sell16-gather-f32"
    X = np.random.default_rng(1).standard_normal((7, 1, 9)).astype(np.float32)
    for a, b in ((fast.recognizer(1), plain.recognizer(1)),):
        sa = np.array([a.step_layers(f).copy() for f in X])
        sb = np.array([b.step_layers(f).copy() for f in X])
        np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast.recognizer(1).run_frames(X), plain.recognizer(1).run_frames(X), rtol=1e-5, atol=1e-5)


def test_int32_gather_kernel_is_exact_with_wide_slices(monkeypatch):
    """Unstructured model on a CPU without AVX-512BW (else perm64 runs it): int32 lanes, int64
    only in the slices whose bound passes 2**31."""
    monkeypatch.setattr(engine_mod, "PERM_KERNELS", False)
    qm = tiny_qmodel(D=300, H=16, P=16, density=0.9, seed=6)
    eng = Engine.from_qmodel(qm, threads=2)
    rec = eng.recognizer(1)
    plan = rec.states[0].narrow
    assert rec.kernel == "sell16-gather-i32" and plan.gx.any() and not plan.gp.any()
    fmt = qm.input_format
    x = np.where(np.random.default_rng(3).random((5, 300)) < 0.5, fmt.lo, fmt.hi)
    assert_exact(eng, qm, x)
    assert INT32_LIMIT == 2**31 - 1


def test_pattern_detection():
    rng = np.random.default_rng(0)
    w = np.repeat(rng.random((4, 10)) < 0.3, 8, axis=0) * rng.integers(1, 9, size=(32, 10))
    assert detect([w]) == "cluster:8" and clustered(w, 4) and not clustered(w, 16)
    assert detect([rng.random((32, 10)) < 0.3]) == "unstructured"
    bal = np.zeros((16, 10))
    for r in range(16):
        bal[r, rng.choice(10, 3, replace=False)] = 1
    assert detect([bal]) == "rows:16"
