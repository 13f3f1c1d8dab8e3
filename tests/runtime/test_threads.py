"""Per-thread row partitions give the same results as one thread (fixed point: exactly)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from runtime_models import int_input, tiny_qmodel

from ese.compress.reference import ReferenceModel
from ese.runtime import Engine


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one core")
def test_two_threads_are_bit_exact():
    qm = tiny_qmodel(H=70, P=20, seed=11)
    eng, ref = Engine.from_qmodel(qm, threads=2), ReferenceModel(qm)
    xs = [int_input(qm, 5, s) for s in range(2)]
    want, _, _ = ref.run_batch(xs)
    for batch in (xs[:1], xs):
        for y, w in zip(eng.run_layers(batch), want):
            np.testing.assert_array_equal(eng.logits_fixed(y), w)
    got = eng.recognizer(1).trace(xs[0])[0]["y"]
    np.testing.assert_array_equal(got, ref.run(xs[0]).y)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one core")
def test_the_engine_leaves_the_thread_count_as_it_found_it():
    qm = tiny_qmodel(H=70, P=20, seed=11)
    eng = Engine.from_qmodel(qm, threads=2)
    before = numba.get_num_threads()  # 1, set by conftest
    x = int_input(qm, 5, 0)
    eng.run_layers([x])
    eng.run_layers([x, x])
    eng.recognizer(2).step_layers(np.stack([x[0], x[1]]))
    eng.recognizer(1).trace(x)
    assert numba.get_num_threads() == before


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one core")
@pytest.mark.parametrize("busy,want", [(0.0, 2), (1.0, 1)])
def test_threads_0_chooses_from_the_load(monkeypatch, busy, want):
    import ese.threads as T
    from ese.threads import numba_threads

    monkeypatch.setattr(T, "usable_cores", lambda: 2)
    monkeypatch.setattr(T, "busy_cores", lambda interval=T.SAMPLE_S: (busy, "mocked"))
    qm = tiny_qmodel(H=70, P=20, seed=11)
    eng, ref = Engine.from_qmodel(qm), ReferenceModel(qm)
    x = int_input(qm, 5, 0)
    with numba_threads(2):  # numba's limit: 2
        rec = eng.recognizer(1)
        assert rec.threads == want
        np.testing.assert_array_equal(rec.trace(x)[0]["y"], ref.run(x).y)
    assert Engine.from_qmodel(qm, threads=2).recognizer(1).threads == 2  # as given
    assert eng.recognizer(1).threads == 1  # numba's limit is 1 here (conftest)
