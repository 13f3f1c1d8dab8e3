"""The sweep's analytic workload equals the one read from a compiled program."""

from __future__ import annotations

import dataclasses

import numpy as np
from accel_models import random_qmodel
from hypothesis import given, settings
from hypothesis import strategies as st

from ese.accel.cycles import issue_order, simulate, simulate_workload
from ese.accel.workload import workload_from_program, workload_from_qmodel
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig


@settings(max_examples=40, deadline=None)
@given(H=st.integers(1, 40), P=st.integers(1, 12), D=st.integers(1, 10), layers=st.integers(1, 2),
       pes=st.integers(1, 12), index_bits=st.integers(1, 6), density=st.sampled_from([0.0, 0.05, 0.2, 0.9]),
       seed=st.integers(0, 999))
def test_analytic_entries_equal_the_encoders(H, P, D, layers, pes, index_bits, density, seed):
    qm = random_qmodel(H=H, P=P, D=D, layers=layers, density=density, seed=seed)
    prog = compile_qmodel(qm, HardwareConfig(pes=pes, index_bits=index_bits))
    exact, fast = workload_from_program(prog), workload_from_qmodel(qm, pes, index_bits)
    for a, b in zip(exact.matrices(), fast.matrices()):
        assert a.name == b.name and np.array_equal(a.entries, b.entries), a.name
        assert (a.nnz, a.padding, a.dense) == (b.nnz, b.padding, b.dense)
    assert exact.stream_bits() == fast.stream_bits()


def test_sweep_points_agree_with_the_full_model():
    qm = random_qmodel(H=48, P=16, D=20, density=0.15, seed=5)
    for pes, index_bits, queue in ((4, 4, 2), (8, 3, 8), (16, 2, 1)):
        hw = HardwareConfig(pes=pes, index_bits=index_bits, queue_depth=queue)
        prog = compile_qmodel(qm, hw)
        full = simulate(prog, n_frames=6)
        fast = simulate_workload(workload_from_qmodel(qm, pes, index_bits), issue_order(prog.schedule), hw, 6)
        assert full.breakdown == fast.breakdown and full.cycles_per_frame == fast.cycles_per_frame
        # a timing-only override applies to the program without recompiling it
        deeper = dataclasses.replace(hw, queue_depth=queue * 4)
        assert simulate(prog, deeper, 6).cycles_per_frame == simulate(compile_qmodel(qm, deeper), n_frames=6).cycles_per_frame
