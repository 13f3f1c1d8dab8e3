"""The cycle model against docs/cycle-model.md: hand-computed tiny cases and a literal golden."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from accel_models import random_program
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_cycles import naive_total

from ese.accel.cycles import simulate, simulate_workload, timeline
from ese.accel.workload import MatrixWork, Workload
from ese.config import HardwareConfig


def _workload(n_pes: int, x: list[list[int]], r: list[list[int]], ym: list[list[int]]) -> Workload:
    """A one-layer workload with these per-PE column entries (lists are [pe][column])."""
    mats = {}
    for name, e in (("w_x", x), ("w_r", r), ("w_ym", ym)):
        arr = np.array(e, dtype=np.int64).reshape(n_pes, -1)
        mats[name] = MatrixWork(f"layer0.{name}", arr, int(arr.sum()), 0, arr.size)
    return Workload(n_pes, 4, 12, (mats,), (mats["w_ym"].n_cols,))  # H: the projection's columns


ORDER = (((0, "x", 0, "w_x"),), ((0, "r", 0, "w_r"), (0, "x", 1, "w_x"), (0, "ym", 0, "w_ym")))  # overlap_input=True


def _total(wl: Workload, hw: HardwareConfig, T: int = 1) -> int:
    rep = simulate_workload(wl, ORDER, hw, T)
    return int(rep.compute_cycles_per_frame * T)


def test_single_column_ops_by_hand():
    # PE work x: [3, 1], r: [2, 1], ym: [1, 1] (empty column = 1 pop cycle)
    wl = _workload(2, [[3], [0]], [[2], [1]], [[1], [0]])
    hw = HardwareConfig(pes=2)  # Q=8, Lp=1 prefetched, mac 1, lanes 2, ew 4, y 1
    # x: b=0, s=2, f=[5,3], done 6; r: b=1, s=[5,3], f=[7,4], done 8;
    # ym: ew_start=8, avail=12, b=12, s=14, f=15, done 16, y_ready 17
    assert _total(wl, hw) == 17
    assert _total(wl, dataclasses.replace(hw, queue_depth=1)) == 17  # r's queue wait hides behind ew


def test_one_overloaded_pe_with_queue_depth_one_by_hand():
    # PE 0 holds 4 entries of each of 3 x columns, PE 1 none; Q = 1 lets the broadcast run one column ahead
    wl = _workload(2, [[4, 4, 4], [0, 0, 0]], [[0], [0]], [[1], [0]])
    hw = HardwareConfig(pes=2, queue_depth=1)
    # c0 b0 s[2,2] f[6,3]; c1 b3 s[6,5] f[10,6]; c2 b7 s[10,9] f[14,10] done(x)=15;
    # r: b11 s[14,13] f[15,14] done 16; ym: ew 16, avail 20, b20 s22 f23 done 24 -> y 25
    assert _total(wl, hw) == 25
    rep = simulate_workload(wl, ORDER, hw, 1)
    assert rep.pe_stalled[1] > 0 and rep.pe_stalled[0] == 0  # the idle PE waits on the full queue of PE 0
    assert float(rep.pe_busy[0] + rep.pe_idle[0] + rep.pe_stalled[0]) == 25
    # a deep queue lets PE 1 run ahead: the same work finishes no later
    assert _total(wl, dataclasses.replace(hw, queue_depth=8)) <= 25


def test_no_prefetch_puts_the_pointer_read_inside_the_work():
    wl = _workload(1, [[2]], [[0]], [[0]])
    base = HardwareConfig(pes=1, pointer_latency=3, ew_latency=0, y_latency=0, mac_latency=0)
    # prefetch: x s=0+1+3=4 f=6; r b=1 s=max(6, 5)=6 f=7; ym ew=7 avail 7 b=7 s=11 f=12
    assert _total(wl, base) == 12
    # no prefetch: work = 3 + max(1, e): x s=1 f=6; r b=1 s=6 f=10; ym b=10 s=11 f=15
    assert _total(wl, dataclasses.replace(base, pointer_prefetch=False)) == 15


def test_padding_runs_cost_cycles():
    """A gap of 40 zero rows with 4-bit indices needs 40 // 16 = 2 padding entries, each a cycle."""
    from accel_models import random_qmodel

    from ese.compiler.program import compile_qmodel

    qm = random_qmodel(D=1, H=16, P=1, density=0.0, seed=0)
    qm.layers[0].w_x[0, 0] = 5
    qm.layers[0].w_x[41, 0] = -3  # local row 41 of the single PE (gate-major rows)
    prog = compile_qmodel(qm, HardwareConfig(pes=1, index_bits=4))
    assert prog.layers[0].w_x.column_entries[0, 0] == 4
    rep = simulate(prog, n_frames=3)
    assert rep.padding == 2 and float(rep.breakdown["padding"]) == 2.0
    assert float(rep.ideal_cycles_per_frame) == 4.0
    narrow = simulate(prog, dataclasses.replace(prog.hardware, index_bits=2), n_frames=3)  # 40 // 4 = 10 pads
    assert narrow.padding == 10 and float(narrow.breakdown["padding"]) == 10.0


@settings(max_examples=30, deadline=None)
@given(H=st.integers(1, 12), P=st.integers(1, 6), D=st.integers(1, 6), layers=st.integers(1, 2),
       pes=st.integers(1, 5), density=st.sampled_from([0.0, 0.2, 0.6, 1.0]), T=st.integers(1, 4),
       queue=st.integers(1, 5), lp=st.integers(0, 3), prefetch=st.booleans(), epc=st.integers(1, 3),
       lanes=st.integers(0, 4), overlap=st.booleans(), seed=st.integers(0, 1000))
def test_kernel_equals_the_literal_contract(H, P, D, layers, pes, density, T, queue, lp, prefetch, epc, lanes,
                                            overlap, seed):
    prog = random_program(pes=pes, D=D, H=H, P=P, layers=layers, density=density, seed=seed)
    hw = dataclasses.replace(prog.hardware, queue_depth=queue, pointer_latency=lp, pointer_prefetch=prefetch,
                             entries_per_cycle=epc, ew_lanes=lanes, overlap_input=overlap, mac_latency=seed % 3,
                             y_latency=seed % 2, ew_latency=seed % 5)
    tl = timeline(prog, hw, n_frames=T)
    total, b, s, f = naive_total(tl_program(prog, hw), hw, T)
    assert tl.total == total
    assert tl.b.tolist() == b
    assert tl.s.tolist() == s and tl.f.tolist() == f
    assert simulate(prog, hw, T).compute_cycles_per_frame * T == total


@settings(max_examples=15, deadline=None)
@given(H=st.integers(1, 12), D=st.integers(1, 6), layers=st.integers(1, 2), pes=st.integers(1, 5),
       density=st.sampled_from([0.0, 0.3, 1.0]), T=st.integers(1, 4), queue=st.integers(1, 5),
       lanes=st.integers(0, 4), overlap=st.booleans(), seed=st.integers(0, 1000))
def test_kernel_equals_the_literal_contract_for_a_gru(H, D, layers, pes, density, T, queue, lanes, overlap, seed):
    """No projection: y_t is the element-wise output (docs/cycle-model.md section 3)."""
    from random_models import random_program as any_cell_program

    prog = any_cell_program(cell="gru", pes=pes, D=D, H=H, P=H, layers=layers, density=density, seed=seed,
                            peepholes=False)
    hw = dataclasses.replace(prog.hardware, queue_depth=queue, ew_lanes=lanes, overlap_input=overlap,
                             mac_latency=seed % 3, ew_latency=seed % 5)
    tl = timeline(prog, hw, n_frames=T)
    total, b, s, f = naive_total(tl_program(prog, hw), hw, T)
    assert (tl.total, tl.b.tolist(), tl.s.tolist(), tl.f.tolist()) == (total, b, s, f)
    assert simulate(prog, hw, T).compute_cycles_per_frame * T == total


def tl_program(prog, hw):
    from ese.accel.retarget import retarget

    return retarget(prog, hw)


def test_timeline_is_refused_for_big_programs():
    from ese.accel import cycles
    from ese.accel.errors import AccelError

    prog = random_program(pes=2, H=8)
    old = cycles.MAX_TIMELINE_CELLS
    try:
        cycles.MAX_TIMELINE_CELLS = 10
        with pytest.raises(AccelError, match="too large"):
            timeline(prog, n_frames=2)
    finally:
        cycles.MAX_TIMELINE_CELLS = old
