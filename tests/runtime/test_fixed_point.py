"""Fixed-point mode is bit-exact with the integer reference model, every vector of every step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_models import int_input, tiny_qmodel

from ese.compiler.program import compile_qmodel
from ese.compress.qmodel import load_qmodel
from ese.compress.reference import ReferenceModel
from ese.config import HardwareConfig
from ese.runtime import Engine

SHIPPED = Path(__file__).resolve().parents[2] / "models/paper/paper-b32-d11-w12a16.qnpz"
SIGNALS = ("acc", "c", "m", "acc_y", "y")


def assert_trace_equal(eng: Engine, ref: ReferenceModel, x: np.ndarray) -> None:
    want = ref.run(x)
    got = eng.recognizer(1).trace(x)
    for k, layer in enumerate(got):
        for s in SIGNALS:
            np.testing.assert_array_equal(layer[s], want.layers[k][s], err_msg=f"layer {k} {s}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(D=st.integers(1, 9), H=st.sampled_from([1, 5, 16, 20, 33]), P=st.integers(1, 9),
       layers=st.integers(1, 2), peepholes=st.booleans(), density=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       shift=st.integers(-2, 2), seed=st.integers(0, 10**6))
def test_random_models_match_the_reference_exactly(D, H, P, layers, peepholes, density, shift, seed):
    qm = tiny_qmodel(D=D, H=H, P=P, layers=layers, peepholes=peepholes, density=density, shift=shift,
                     seed=seed)
    eng, ref = Engine.from_qmodel(qm), ReferenceModel(qm)
    xs = [int_input(qm, T, seed + T) for T in (7, 3, 11)]
    assert_trace_equal(eng, ref, xs[0])
    want, _, _ = ref.run_batch(xs)
    for batch in (xs[:1], xs):  # utterance mode, one and several streams
        for y, w in zip(eng.run_layers(batch), want):
            np.testing.assert_array_equal(eng.logits_fixed(y), w)


def test_streaming_many_streams_equals_the_reference_per_stream():
    qm = tiny_qmodel(H=40, layers=2, seed=3)
    eng, ref = Engine.from_qmodel(qm), ReferenceModel(qm)
    xs = [int_input(qm, 9, s) for s in range(3)]
    rec = eng.recognizer(3)
    ys = np.array([rec.step_layers(np.stack([x[t] for x in xs])).copy() for t in range(9)])
    for b, x in enumerate(xs):
        np.testing.assert_array_equal(ys[:, b], ref.run(x).y)


@pytest.mark.parametrize("peepholes", [True, False])
@pytest.mark.parametrize("shift", [-2, 2])
def test_wide_batches_are_exact_in_every_stream(peepholes, shift):
    """37 streams (vector loops plus a tail) on 2 threads (each with its own rows of ``acc``)."""
    qm = tiny_qmodel(H=48, layers=2, peepholes=peepholes, shift=shift, seed=11)
    eng, ref = Engine.from_qmodel(qm, threads=2), ReferenceModel(qm)
    xs = [int_input(qm, 5, s) for s in range(37)]
    rec = eng.recognizer(len(xs))
    ys = np.array([rec.step_layers(np.stack([x[t] for x in xs])).copy() for t in range(5)])
    for b, x in enumerate(xs):
        np.testing.assert_array_equal(ys[:, b], ref.run(x).y)


def test_program_image_runs_like_its_qmodel():
    qm = tiny_qmodel(H=24, seed=5)
    prog = compile_qmodel(qm, HardwareConfig(pes=4))
    x = int_input(qm, 6)
    assert_trace_equal(Engine.from_program(prog), ReferenceModel(qm), x)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped model absent")
def test_shipped_paper_model_is_bit_exact():
    qm = load_qmodel(SHIPPED)
    eng, ref = Engine.from_qmodel(qm), ReferenceModel(qm)
    x = ref.quantize_input(np.random.default_rng(0).normal(size=(4, qm.model.input_dim)))
    assert_trace_equal(eng, ref, x)
    (y,) = eng.run_layers([x])
    np.testing.assert_array_equal(eng.logits_fixed(y), ref.run(x).logits)


def test_ese_image_file_loads_and_runs_exactly(tmp_path):
    from ese.compiler.image import save_program
    qm = tiny_qmodel(H=17, seed=8)
    save_program(tmp_path / "m.ese", compile_qmodel(qm, HardwareConfig(pes=3)))
    x = int_input(qm, 5)
    assert_trace_equal(Engine.load(tmp_path / "m.ese"), ReferenceModel(qm), x)
