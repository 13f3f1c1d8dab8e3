"""The whole channel in Amaranth simulation: every y_t equals the reference, cycles equal the model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtl_cycle_oracle import cycle_model_total
from rtl_helpers import reference, toy_qmodel

from ese.accel.cycles import timeline
from ese.accel.trace_io import first_difference
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig
from ese.rtl.params import rtl_params
from ese.rtl.sim import simulate_top
from ese.rtl.toy import random_frames

pytestmark = pytest.mark.rtl

hardware = st.builds(
    HardwareConfig, pes=st.integers(1, 4), queue_depth=st.sampled_from([1, 2, 3, 8]),
    pointer_prefetch=st.booleans(), pointer_latency=st.integers(0, 2), mac_latency=st.integers(1, 2),
    ew_latency=st.sampled_from([4, 5]), y_latency=st.integers(0, 2), overlap_input=st.booleans())


def check(qm, hw, frames: int, seed: int) -> None:
    prog = compile_qmodel(qm, hw)
    x = random_frames(qm, frames, seed)
    run = simulate_top(rtl_params(prog, max_frames=frames), x)
    ref = reference(prog, x)
    assert np.array_equal(ref.y, run.y), f"reference model vs Amaranth RTL: {first_difference(ref.y, run.y, 'reference', 'RTL')} ({hw})"
    model = cycle_model_total(prog, frames)
    assert run.cycles == model, f"cycle model {model} vs Amaranth RTL {run.cycles} cycles ({hw})"
    tl = timeline(prog, n_frames=frames)
    assert np.array_equal(run.b, tl.b), f"cycle model b[c] vs RTL broadcast cycles ({hw})"
    assert np.array_equal(run.s, tl.s), f"cycle model s[p, c] vs RTL pop cycles ({hw})"


@pytest.mark.slow  # simulates dozens of random RTL programs (minutes)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), hw=hardware, frames=st.integers(1, 3),
       shape=st.tuples(st.integers(1, 6), st.integers(1, 7), st.integers(1, 5)),
       peepholes=st.booleans(), density=st.sampled_from([0.0, 0.15, 0.5, 1.0]), big_rows=st.booleans(),
       layers=st.sampled_from([1, 1, 2, 3]))
def test_random_programs_equal_reference_and_cycle_model(seed, hw, frames, shape, peepholes, density, big_rows,
                                                        layers):
    D, H, P = shape
    qm = toy_qmodel(seed, input_dim=D, hidden=H, proj=P, peepholes=peepholes, density=density,
                       big_rows=big_rows, lut_index_bits=5, layers=layers)
    check(qm, hw, frames, seed + 1)


@pytest.mark.slow  # simulates dozens of random RTL programs (minutes)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), hw=hardware, frames=st.integers(1, 3),
       shape=st.tuples(st.integers(1, 6), st.integers(1, 7)), ew_latency=st.sampled_from([3, 4, 6]),
       density=st.sampled_from([0.0, 0.15, 0.5, 1.0]), big_rows=st.booleans(), layers=st.sampled_from([1, 1, 2, 3]))
def test_random_gru_programs_equal_reference_and_cycle_model(seed, hw, frames, shape, ew_latency, density, big_rows,
                                                            layers):
    D, H = shape
    qm = toy_qmodel(seed, input_dim=D, hidden=H, peepholes=False, density=density, big_rows=big_rows,
                    lut_index_bits=5, layers=layers, cell="gru")
    check(qm, dataclasses.replace(hw, ew_latency=ew_latency), frames, seed + 1)


@pytest.mark.parametrize("seed,shape,layers,hw", [
    (0, (5, 7), 1, HardwareConfig(pes=3, queue_depth=2, ew_latency=3)),
    (1, (4, 5), 2, HardwareConfig(pes=2, mac_latency=2, y_latency=1, pointer_prefetch=False, pointer_latency=2)),
    (2, (3, 4), 3, HardwareConfig(pes=4, overlap_input=False, ew_latency=5, queue_depth=1)),
    (3, (6, 9), 2, HardwareConfig(pes=1, queue_depth=1, index_bits=2)),
], ids=["3pe", "2layers-noprefetch", "3layers-pes-over-units", "1pe-padding"])
def test_gru_programs_equal_reference_and_cycle_model(seed, shape, layers, hw):
    """A GRU (no projection: y_t is the lanes' h) bit- and cycle-exact, every b[c] and s[p, c] too."""
    D, H = shape
    qm = toy_qmodel(seed, input_dim=D, hidden=H, peepholes=False, density=0.5, big_rows=seed == 3,
                    lut_index_bits=6, layers=layers, cell="gru")
    check(qm, hw, 3, seed)


@pytest.mark.parametrize("pes,queue_depth,prefetch,lp", [(1, 8, True, 1), (3, 1, False, 1), (4, 2, True, 0),
                                                         (5, 4, False, 2), (8, 3, True, 2)])
def test_larger_program_with_padding(pes, queue_depth, prefetch, lp):
    """index_bits = 2 forces padding entries; 10-bit LUTs; H not a multiple of the PE count."""
    qm = toy_qmodel(7, input_dim=8, hidden=13, proj=6, density=0.3, lut_index_bits=10, big_rows=True)
    hw = HardwareConfig(pes=pes, queue_depth=queue_depth, pointer_prefetch=prefetch, pointer_latency=lp,
                        index_bits=2)
    check(qm, hw, 4, 3)


def test_a_second_start_without_reset_runs_the_utterance_again():
    """Every accumulator flag, c, counter and queue is back to its initial state after ``done``."""
    qm = toy_qmodel(9, input_dim=4, hidden=5, proj=3, layers=2, lut_index_bits=5)
    hw = HardwareConfig(pes=2, queue_depth=2, mac_latency=2)
    prog = compile_qmodel(qm, hw)
    x = random_frames(qm, 3, 0)
    run = simulate_top(rtl_params(prog, max_frames=3), x, repeat=3)  # RtlError if a run differs
    assert np.array_equal(reference(prog, x).y, run.y)
    assert run.cycles == cycle_model_total(prog, 3)
    gru = compile_qmodel(toy_qmodel(9, input_dim=4, hidden=5, layers=2, cell="gru", peepholes=False), hw)
    run = simulate_top(rtl_params(gru, max_frames=3), x, repeat=3)  # h and its buffers forgotten too
    assert np.array_equal(reference(gru, x).y, run.y)
    assert run.cycles == cycle_model_total(gru, 3)
