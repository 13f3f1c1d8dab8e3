"""The functional model equals the integer reference model exactly, on every vector of every step."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from accel_models import random_input, random_program, random_qmodel
from hypothesis import given, settings
from hypothesis import strategies as st

from ese.accel.errors import AccelError
from ese.accel.functional import FunctionalModel
from ese.accel.trace_io import assert_traces_equal, first_difference, load_trace, save_trace
from ese.compiler.program import compile_qmodel
from ese.compress.qmodel import load_qmodel
from ese.compress.reference import ReferenceModel
from ese.config import HardwareConfig

PAPER = Path(__file__).resolve().parents[2] / "models" / "paper" / "paper-b32-d11-w12a16.qnpz"


@settings(max_examples=60, deadline=None)
@given(D=st.integers(1, 12), H=st.integers(1, 20), P=st.integers(1, 10), layers=st.integers(1, 2),
       pes=st.integers(1, 9), index_bits=st.integers(1, 5), density=st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0]),
       peepholes=st.booleans(), widths=st.sampled_from([(12, 16), (8, 12), (4, 8), (16, 24)]),
       frames=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_functional_equals_reference_on_random_programs(D, H, P, layers, pes, index_bits, density, peepholes,
                                                        widths, frames, seed):
    qm = random_qmodel(D=D, H=H, P=P, layers=layers, peepholes=peepholes, density=density,
                       weight_bits=widths[0], act_bits=widths[1], seed=seed)
    program = compile_qmodel(qm, HardwareConfig(pes=pes, index_bits=index_bits))
    x = random_input(qm, frames, seed)
    assert_traces_equal(FunctionalModel(program).run(x), ReferenceModel(program.to_qmodel()).run(x),
                        "functional", "reference")


def test_saturation_and_lut_clipping_are_counted_alike():
    """Dense full-range weights force saturation; the counters must match, not only the vectors."""
    qm = random_qmodel(D=12, H=8, P=6, density=1.0, seed=3)
    program = compile_qmodel(qm, HardwareConfig(pes=3))
    x = random_input(qm, 8)
    ref = ReferenceModel(qm).run(x)
    assert sum(ref.saturation.values()) > 0 and sum(ref.lut_clipped.values()) > 0
    assert_traces_equal(FunctionalModel(program).run(x), ref, "functional", "reference")


@pytest.fixture(scope="module")
def paper():
    qm = load_qmodel(PAPER)
    return qm, compile_qmodel(qm, HardwareConfig(pes=32))


def test_paper_model_on_real_looking_frames(paper):
    qm, program = paper
    ref = ReferenceModel(qm)
    rng = np.random.default_rng(7)
    feats = np.cumsum(rng.normal(scale=0.3, size=(5, qm.model.input_dim)), axis=0)  # smooth, like fbanks after CMVN
    x = ref.quantize_input(feats)
    assert_traces_equal(FunctionalModel(program).run(x), ref.run(x), "functional", "reference")


def test_corrupt_program_is_refused():
    program = random_program(pes=3, H=6, density=0.5, seed=1)
    bad = program.layers[0].w_r
    bad.ptr = bad.ptr.copy()
    bad.ptr[1, 2] = bad.ptr[1, 1] - 1  # a decreasing column pointer
    with pytest.raises(AccelError, match="corrupt program.*layer0.w_r"):
        FunctionalModel(program)
    program = random_program(pes=2, seed=2)
    program.luts = {**program.luts, "tanh": program.luts["tanh"][:-1]}
    with pytest.raises(AccelError, match="LUT 'tanh'"):
        FunctionalModel(program)


def test_bad_input_is_refused():
    program = random_program(D=6)
    with pytest.raises(AccelError, match=r"integer frames \(T, 6\)"):
        FunctionalModel(program).run(np.zeros((3, 5), np.int64))
    with pytest.raises(AccelError, match="outside the 16-bit input format"):
        FunctionalModel(program).run(np.full((2, 6), 1 << 20))


def test_trace_roundtrip_and_first_difference(tmp_path):
    qm = random_qmodel(layers=2, seed=4)
    x = random_input(qm, 5)
    trace = ReferenceModel(qm).run(x)
    save_trace(tmp_path / "t.npz", trace, {"who": "reference"})
    back, meta = load_trace(tmp_path / "t.npz")
    assert meta == {"who": "reference"} and first_difference(trace, back) is None
    back.layers[1]["c"][3, 2] += 1
    back.layers[1]["m"][3, 0] += 1  # same step, later signal: c is reported (signal order)
    back.layers[0]["y"][4, 1] += 1  # later step
    d = first_difference(back, trace, "rtl", "reference")
    assert (d.layer, d.signal, d.step, d.index) == (1, "c", 3, 2)
    assert "layer1.c at step 3, index 2: rtl has" in str(d)
    with pytest.raises(AssertionError, match="rtl != reference: first difference in layer1.c"):
        assert_traces_equal(back, trace, "rtl", "reference")
    same = dataclasses.replace(trace, saturation=trace.saturation.copy())
    same.saturation["layer0.c"] += 2
    assert first_difference(trace, same).where == "saturation[layer0.c]"


def test_unreadable_trace_is_refused(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(AccelError, match="not a readable ese trace"):
        load_trace(tmp_path / "bad.npz")
