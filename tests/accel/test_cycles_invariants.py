"""Invariants of the cycle model and of its term-by-term breakdown."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from accel_models import random_program, random_qmodel
from hypothesis import given, settings
from hypothesis import strategies as st

from ese.accel.cycles import BREAKDOWN_TERMS, _build_stream, _run, issue_order, simulate
from ese.accel.workload import workload_from_program
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig
from ese.errors import ConfigError
from ese.partition import matrix_partition

programs = st.builds(lambda pes, H, P, D, layers, density, seed: random_program(
    pes=pes, H=H, P=P, D=D, layers=layers, density=density, seed=seed),
    st.integers(1, 6), st.integers(1, 16), st.integers(1, 8), st.integers(1, 8), st.integers(1, 2),
    st.sampled_from([0.05, 0.3, 0.8]), st.integers(0, 999))


@settings(max_examples=40, deadline=None)
@given(prog=programs, queue=st.integers(1, 6), T=st.integers(1, 5), on_chip=st.booleans(),
       prefetch=st.booleans(), epc=st.integers(1, 2))
def test_breakdown_adds_up_and_no_term_is_negative(prog, queue, T, on_chip, prefetch, epc):
    hw = dataclasses.replace(prog.hardware, queue_depth=queue, weights_on_chip=on_chip, memory_gbytes_per_s=0.05,
                             pointer_prefetch=prefetch, entries_per_cycle=epc)
    rep = simulate(prog, hw, T)
    assert tuple(rep.breakdown) == BREAKDOWN_TERMS
    assert sum(rep.breakdown.values(), Fraction(0)) == rep.cycles_per_frame  # exactly, as fractions
    assert all(v >= 0 for v in rep.breakdown.values()), rep.breakdown
    assert rep.cycles_per_frame >= rep.ideal_cycles_per_frame
    assert rep.utilization <= 1.0
    js = rep.to_json()
    assert sum(js["breakdown"].values()) == pytest.approx(js["cycles_per_frame"], rel=1e-12)
    per_pe = rep.pe_busy + rep.pe_idle + rep.pe_stalled
    assert np.allclose(per_pe, float(rep.compute_cycles_per_frame))


@settings(max_examples=25, deadline=None)
@given(prog=programs, T=st.integers(1, 4))
def test_unbounded_queue_and_no_latency_or_dependency_gives_the_busiest_pes_work(prog, T):
    hw = dataclasses.replace(prog.hardware, pointer_latency=0, mac_latency=0, y_latency=0, ew_latency=0)
    st_ = _build_stream(workload_from_program(prog), issue_order(prog.schedule), hw, T)
    cols = np.concatenate([np.arange(o, o + k) for o, k in zip(st_.mat_off[st_.mat], st_.mat_cols[st_.mat])])
    busiest = int(st_.work[:, cols].sum(axis=1).max())
    assert _run(st_, hw, queue=False, latencies=False, deps=False).total == busiest
    # with the recurrence's dependencies the busiest PE's work is still a lower bound
    assert simulate(prog, dataclasses.replace(hw, queue_depth=10**6), T).compute_cycles_per_frame * T >= busiest


@settings(max_examples=20, deadline=None)
@given(prog=programs)
def test_deeper_queues_never_hurt(prog):
    totals = [simulate(prog, dataclasses.replace(prog.hardware, queue_depth=q), 3, breakdown=False).cycles_per_frame
              for q in (1, 2, 4, 16)]
    assert totals == sorted(totals, reverse=True)


def _prune(w: np.ndarray, name: str, density: float, n_pes: int | None) -> np.ndarray:
    """Keep the largest magnitudes: per matrix (n_pes None) or per PE sub-matrix (balanced)."""
    mag = np.abs(w).astype(float) + np.random.default_rng(0).random(w.shape) * 1e-3  # unique ranks
    keep = np.zeros(w.shape, bool)
    groups = [np.arange(w.shape[0])] if n_pes is None else matrix_partition(name, w.shape[0], n_pes).rows_of_pe
    for rows in groups:
        sub = mag[rows]
        k = int(round(density * sub.size))
        if k:
            thr = np.sort(sub.ravel())[-k]
            keep[rows] = sub >= thr
    return np.where(keep, w, 0)


@pytest.mark.parametrize("seed", range(4))
def test_balanced_pruning_never_loses_to_unbalanced_on_the_same_magnitudes(seed):
    base = random_qmodel(D=40, H=64, P=32, density=1.0, seed=seed)
    rng = np.random.default_rng(seed)
    for L in base.layers:  # rows of very different scale, as trained LSTMs have: plain pruning then skews PEs
        for name in ("w_x", "w_r", "w_ym"):
            w = getattr(L, name)
            setattr(L, name, np.clip(w * rng.uniform(0.2, 1.0, size=(w.shape[0], 1)), -2047, 2047).astype(np.int64))
    hw = HardwareConfig(pes=8)
    reps = {}
    for kind, n in (("balanced", 8), ("unbalanced", None)):
        qm = dataclasses.replace(base, layers=[L.replace(
            **{m: _prune(getattr(L, m), m, 0.12, n) for m in ("w_x", "w_r", "w_ym")}) for L in base.layers])
        reps[kind] = simulate(compile_qmodel(qm, hw), n_frames=4)
    assert reps["balanced"].cycles_per_frame <= reps["unbalanced"].cycles_per_frame
    assert reps["balanced"].utilization >= reps["unbalanced"].utilization


def test_bad_hardware_is_refused():
    prog = random_program()
    with pytest.raises(ConfigError, match="queue_depth must be at least 1, not 0"):
        simulate(prog, dataclasses.replace(prog.hardware, queue_depth=0))
    from ese.accel.errors import AccelError

    with pytest.raises(AccelError, match="n_frames must be a positive integer, not 0"):
        simulate(prog, n_frames=0)


def test_channels_scale_throughput_and_share_the_memory_stream():
    prog = random_program(pes=4, H=16, P=8, D=8, density=0.3)
    one = simulate(prog, dataclasses.replace(prog.hardware, channels=1), 4).to_json()
    four = simulate(prog, dataclasses.replace(prog.hardware, channels=4), 4).to_json()
    assert four["cycles_per_frame"] == one["cycles_per_frame"]
    assert four["gops_sparse_all_channels"] == pytest.approx(4 * one["gops_sparse"])
    slow = dataclasses.replace(prog.hardware, weights_on_chip=False, memory_gbytes_per_s=1e-3)
    rep = simulate(prog, slow, 4)
    assert rep.limited_by() == "memory_bandwidth"
    assert rep.memory_cycles_per_frame == pytest.approx(rep.stream_bits * 200e6 / (8e9 * 1e-3))
