"""The many-stream fixed-point kernel on int16 pairs (``csr-pairs-x-batch-i16``, issue 16) is
bit-exact with the reference model in every stream, LSTMP and GRU, one and two threads,
streaming and utterance mode, in int32 lanes and where a row must be summed in int64 between
int32 chunks; models it cannot hold run the int64 kernel."""

from __future__ import annotations

import numpy as np
import pytest
from random_models import random_qmodel
from runtime_models import int_input, tiny_qmodel
from test_engine_gru import gru_qmodel

import ese.runtime.engine as engine_mod
from ese.compress.reference import ReferenceModel
from ese.runtime import Engine
from ese.runtime.layout import pack, plain_row_order
from ese.runtime.pairs_layout import INT32_LIMIT, pack_pairs, pairs_fit
from ese.runtime.simd_pairs import interleave_masks, stream_order
from ese.threads import numba_threads

PAIRS = "csr-pairs-x-batch-i16"


def assert_streams_exact(eng: Engine, qm, xs: list[np.ndarray]) -> None:
    """Streaming, one frame of every stream a step, then utterance mode: each stream's outputs
    equal the reference's run of that stream alone."""
    ref = ReferenceModel(qm)
    rec = eng.recognizer(len(xs))
    assert rec.kernel == PAIRS
    T = min(len(x) for x in xs)
    ys = np.array([rec.step_layers(np.stack([x[t] for x in xs])).copy() for t in range(T)])
    for b, x in enumerate(xs):
        np.testing.assert_array_equal(ys[:, b], ref.run(x[:T]).y, err_msg=f"stream {b}")
    want, _, _ = ref.run_batch(xs)
    for y, w in zip(eng.run_layers(xs), want):
        np.testing.assert_array_equal(eng.logits_fixed(y), w)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("streams", [37, 2])
def test_lstmp_streams_are_exact(threads, streams):
    """37 streams: a 32-stream block and a 16-stream block of which 11 are padding; 2: padding."""
    for shift, peep in ((-2, True), (2, False)):
        qm = tiny_qmodel(D=9, H=48, P=20, layers=2, peepholes=peep, shift=shift, seed=11 + threads)
        eng = Engine.from_qmodel(qm, threads=threads)
        assert_streams_exact(eng, qm, [int_input(qm, 5 + s % 3, s) for s in range(streams)])


@pytest.mark.parametrize("threads", [1, 2])
def test_gru_streams_are_exact(threads):
    qm = gru_qmodel(H=48, layers=2, shift=-2, seed=11, density=0.4)
    eng = Engine.from_qmodel(qm, threads=threads)
    assert_streams_exact(eng, qm, [int_input(qm, 5, s) for s in range(37)])


def test_rows_that_could_overflow_int32_are_summed_in_chunks():
    """Full-range 12-bit weights over 300 inputs in half the cells: those rows' bound passes
    2**31, so they are summed in int32 chunks added in int64; inputs at the format's limits,
    where a wrong int32 sum would wrap."""
    qm = tiny_qmodel(D=300, H=32, P=16, density=0.2, seed=6)
    L = qm.layers[0]
    rng = np.random.default_rng(0)
    big = rng.integers(1500, 2048, size=L.w_x.shape) * rng.choice([-1, 1], size=L.w_x.shape)
    rows = (np.arange(L.w_x.shape[0]) % 32) < 16
    L.w_x = np.where(rows[:, None], big, L.w_x).astype(np.int64)
    eng = Engine.from_qmodel(qm, threads=2)
    gx = eng.pair_layers()[0].gx
    assert gx.wide.any() and not gx.wide.all()
    fmt = qm.input_format
    rng = np.random.default_rng(3)
    xs = [np.where(rng.random((4, 300)) < 0.5, fmt.lo, fmt.hi) for _ in range(19)]
    xs[0] = np.where(np.sign(big[0])[None, :] > 0, fmt.hi, fmt.lo).repeat(4, axis=0)  # row 0 at its largest sum
    assert_streams_exact(eng, qm, xs)


def test_the_int64_kernel_runs_what_pairs_cannot_hold(monkeypatch):
    """A 16-bit weight of -32768 (a pair of -32768 * -32768 products would leave int32), or the
    pair kernels switched off: the int64 kernel, exact as well."""
    qm = random_qmodel(D=7, H=20, P=6, weight_bits=16, seed=4)
    qm.layers[0].w_x[0, 0] = -(1 << 15)
    eng = Engine.from_qmodel(qm)
    assert eng.pair_layers() is None
    xs = [int_input(qm, 4, s) for s in range(3)]
    ref = ReferenceModel(qm)
    rec = eng.recognizer(3)
    assert rec.kernel == "csr-rows-x-batch-i64"
    ys = np.array([rec.step_layers(np.stack([x[t] for x in xs])).copy() for t in range(4)])
    for b, x in enumerate(xs):
        np.testing.assert_array_equal(ys[:, b], ref.run(x).y)
    monkeypatch.setattr(engine_mod, "PAIR_KERNELS", False)
    assert Engine.from_qmodel(tiny_qmodel(H=20, seed=4)).recognizer(3).kernel == "csr-rows-x-batch-i64"


def test_pairs_hold_every_weight_once_and_chunks_fit_int32():
    rng = np.random.default_rng(1)
    w = np.where(rng.random((40, 150)) < 0.3, rng.integers(-2047, 2048, size=(40, 150)), 0)
    w[3] = 0  # an empty row
    w[5, :] = 0
    w[5, 7] = -2047  # a row of one non-zero (odd: its pair repeats the column with weight 0)
    m = pack(w, plain_row_order(40), np.int16)
    zmax = 1 << 15
    pm = pack_pairs(m, zmax)
    got = np.zeros((m.n_rows, 150), np.int64)
    words = pm.words.astype(np.int64)
    halves = np.stack([(words << 48) >> 48, words >> 16], axis=1)  # sign-extended low and high 16 bits
    for r in range(m.n_rows):
        for e in range(pm.ptr[r], pm.ptr[r + 1]):
            for h in range(2):
                got[r, pm.cols[2 * e + h]] += halves[e, h]
    np.testing.assert_array_equal(got[:40], w)
    n_pairs = np.diff(pm.ptr)
    np.testing.assert_array_equal(n_pairs[:40], (np.count_nonzero(w, axis=1) + 1) // 2)
    # every chunk of step[r] pairs is within int32; rows within it are summed whole
    for r in range(40):
        e0, e1, n = pm.ptr[r], pm.ptr[r + 1], pm.step[r]
        for c in range(e0, e1, max(n, 1)):
            assert np.abs(halves[c:min(c + n, e1)]).sum() * zmax <= INT32_LIMIT
    whole = np.abs(w).sum(axis=1) * zmax <= INT32_LIMIT
    np.testing.assert_array_equal(~pm.wide[:40], whole)
    assert pairs_fit(2047, zmax) and pairs_fit(32767, zmax) and not pairs_fit(1 << 15, zmax)


@pytest.mark.parametrize("W", [16, 32])
def test_interleave_then_reorder_gives_stream_order(W):
    """The word shuffles pair stream s of the two inputs in some int32 lane; stream_order finds it."""
    lo, hi = interleave_masks(W)
    a, b = np.arange(W), np.arange(W) + 1000  # the two inputs' words: stream s is s (a) and 1000 + s (b)
    both = np.concatenate([a, b])
    lanes = np.concatenate([both[lo].reshape(-1, 2), both[hi].reshape(-1, 2)])  # (W, 2): lo then hi lanes
    order = stream_order(W)
    np.testing.assert_array_equal(lanes[order], np.stack([a, b], axis=1))


def test_work_stealing_takes_every_item_once_whatever_the_threads():
    """The pair kernel's threads take their own groups first, then the others' (ese.runtime.steal):
    every item exactly once, with fewer threads than lists too (one thread takes all)."""
    import numba as nb
    from numba import prange

    from ese.runtime.steal import COUNTER_STRIDE, next_item

    @nb.njit(parallel=True)
    def take_all(lists, counters, out):
        counters[:] = 0
        for t in prange(lists.shape[0]):
            while True:
                item = next_item(lists, counters, t)
                if item < 0:
                    break
                out[item] += 1

    lists = np.array([[0, 2, 4, 6, -1], [1, 3, 5, 7, 8], [9, -1, -1, -1, -1]], np.int32)
    for threads in sorted({1, min(2, nb.config.NUMBA_NUM_THREADS)}):
        with numba_threads(threads):
            out = np.zeros(10, np.int64)
            counters = np.zeros(3 * COUNTER_STRIDE, np.int64)
            for _ in range(200):
                take_all(lists, counters, out)
            np.testing.assert_array_equal(out, np.full(10, 200))
