"""The proof of the cell description (issue 13): a third cell, defined only here, runs through the
partition, the integer reference, the compiler, the functional model and the cycle model with no
edit to ``src/``.

The toy cell is a minimal gated unit with a projection, shaped to exercise what the GRU needs:
one gate u, a candidate whose recurrent product is kept apart from its input product and scaled
by the gate (so its accumulator blocks u, n_x, n_h differ from its matrices' row blocks), and a
state c that the projection reads::

    u = sigmoid(W_ux x + W_ur y + b_u)
    n = tanh(W_nx x + b_nx + u * (W_nr y + b_nr))
    c = u * c_prev + (1 - u) * n
    y = W_p c
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from random_models import random_input, random_qmodel

from ese.accel.cycles import simulate
from ese.accel.functional import FunctionalModel
from ese.accel.trace_io import first_difference
from ese.accel.workload import workload_from_program, workload_from_qmodel
from ese.cell import CELLS, INPUT, RECURRENT, CellSpec, MatrixSpec, VectorSpec, register_cell
from ese.compiler.program import compile_qmodel
from ese.compress.fixedpoint import dequantize
from ese.compress.reference import ReferenceModel
from ese.config import HardwareConfig
from ese.model.recurrence import input_products, recurrence
from ese.partition import layer_partitions


def _toy_fixed(ops, acc, state, vec):
    f, Fg, c_prev = ops.f, ops.f["gate"], state["c"]
    H = c_prev.shape[-1]
    a_u, a_nx, a_nh = (acc[..., k * H:(k + 1) * H] for k in range(3))
    z_u = ops.sat(ops.align(a_u, f["acc"], f["z_u"]), "z_u")
    u = ops.lut("sigmoid", z_u, f["z_u"], "u")
    z_n = ops.sat(ops.align(a_nx, f["acc"], f["z_n"]) + ops.align(u * a_nh, Fg + f["acc"], f["z_n"]), "z_n")
    n = ops.lut("tanh", z_n, f["z_n"], "n")
    fs = max(Fg + f["c"], 2 * Fg)
    one = np.int64(1) << Fg
    c = ops.sat(ops.align(ops.align(u * c_prev, Fg + f["c"], fs) + ops.align((one - u) * n, 2 * Fg, fs),
                          fs, f["c"]), "c")
    return {"z_u": z_u, "u": u, "z_n": z_n, "n": n, "c": c}, {"c": c}


def _toy_float(fn, acc, state, vec):
    a_u, a_nx, a_nh = fn.split(acc, 3)
    u = fn.sigmoid(a_u)
    z_n = a_nx + u * a_nh
    c = u * state["c"] + (1 - u) * fn.tanh(z_n)
    return {"z_u": a_u, "z_n": z_n, "c": c}, {"c": c}


TOY = CellSpec(
    name="toy", acc_blocks=("u", "n_x", "n_h"),
    matrices=(MatrixSpec("w_x", "x", INPUT, ("u", "n_x")), MatrixSpec("w_r", "r", RECURRENT, ("u", "n_h")),
              MatrixSpec("w_p", "ym", "c")),
    vectors=(VectorSpec("bias"),), state=("c",), ew_signals=("z_u", "u", "z_n", "n", "c"), output="c",
    ew_formats=("z_u", "z_n", "gate", "c"), calibrated=("z_u", "z_n", "c"), fixed_step=_toy_fixed,
    float_step=_toy_float, lut_inputs={"sigmoid": ("z_u",), "tanh": ("z_n",)}, fixed_formats=("gate",))


@pytest.fixture(autouse=True)
def toy_cell():
    register_cell(TOY)
    yield TOY
    CELLS.pop("toy")


def _toy(seed: int = 0):
    return random_qmodel(cell="toy", D=7, H=9, P=5, layers=2, density=0.5, seed=seed, peepholes=False)


def test_the_partition_keeps_a_units_gate_rows_on_one_pe():
    qm = _toy()
    parts = layer_partitions(qm.model, 4)
    assert list(parts) == ["w_x", "w_r", "w_p"]
    assert parts["w_x"].gate_blocks == 2 and parts["w_x"].n_rows == 18
    for k in range(9):  # rows k and H + k (gates u and n of unit k) on PE k mod 4
        assert parts["w_r"].pe_of_row[k] == parts["w_r"].pe_of_row[9 + k] == k % 4
    assert parts["w_p"].gate_blocks == 1 and parts["w_p"].n_rows == 5


@pytest.mark.parametrize("pes", [1, 4, 11])
def test_reference_and_functional_model_agree_exactly(pes):
    qm = _toy(seed=pes)
    x = random_input(qm, 12, seed=pes)
    ref = ReferenceModel(qm).run(x)
    assert list(ref.layers[0]) == ["x", "acc", "z_u", "u", "z_n", "n", "c", "acc_y", "y"]
    assert ref.layers[0]["acc"].shape == (12, 27)  # three accumulator blocks per unit
    assert np.abs(ref.y).sum() > 0
    prog = compile_qmodel(qm, HardwareConfig(pes=pes))
    assert [o.name for o in prog.schedule.ops[:4]] == ["x0", "r0", "ew0", "ym0"]
    assert prog.schedule.critical_path()[0] in (["r0", "ew0", "ym0"], ["r1", "ew1", "ym1"])
    fun = FunctionalModel(prog).run(x)
    assert first_difference(ref, fun, "reference", "functional") is None
    assert dict(fun.saturation) == dict(ref.saturation) and dict(fun.lut_clipped) == dict(ref.lut_clipped)
    decoded = prog.to_qmodel()
    assert all(np.array_equal(a, getattr(b, n)) for la, b in zip(qm.layers, decoded.layers) for n, a in la.arrays().items())


def test_the_cycle_model_times_it():
    qm = _toy()
    prog = compile_qmodel(qm, HardwareConfig(pes=4))
    rep = simulate(prog, n_frames=6)
    assert sum(rep.breakdown.values()) == rep.cycles_per_frame
    assert 0 < rep.utilization <= 1
    assert set(rep.per_op_cycles) == {f"layer{k}.{m}" for k in range(2) for m in ("w_x", "w_r", "w_p")}
    fast, exact = workload_from_qmodel(qm, 4, 4), workload_from_program(prog)
    assert [m.entries.tolist() for m in fast.matrices()] == [m.entries.tolist() for m in exact.matrices()]


def test_fixed_point_follows_the_float_step():
    """The cell's two element-wise functions describe one cell: the float recurrence on the
    dequantized weights tracks the integer reference (LUT and rounding error only)."""
    qm = random_qmodel(cell="toy", D=7, H=9, P=5, layers=1, density=0.5, seed=3, peepholes=False, weight_bits=14)
    x = random_input(qm, 10, seed=3) // 8  # moderate inputs: no saturation
    ref = ReferenceModel(qm).run(x)
    layers, _, _ = qm.dequantized()
    L, fm = layers[0], qm.layers[0].formats
    params = {n: torch.from_numpy(a) for n, a in L.items()}
    xs = torch.from_numpy(dequantize(x, fm["x"].frac))[:, None]  # (T, 1, D)
    xw = input_products(TOY, xs, params, 9)
    ys, _, _ = recurrence(TOY, xw, params, torch.zeros(1, 5, dtype=torch.float64),
                          {"c": torch.zeros(1, 9, dtype=torch.float64)})
    want = dequantize(ref.y, fm["y"].frac)
    got = ys[:, 0].numpy()
    assert sum(ref.saturation.values()) == 0
    assert np.abs(got - want).max() < 0.05 * max(np.abs(want).max(), 1e-3)


def _mini_fixed(ops, acc, state, vec):
    """A cell without projection, its output the recurrent input: h = u * h_prev + (1 - u) * n,
    n = tanh(a_nx + u * a_nh) (the GRU's shape with one gate)."""
    f, Fg, h_prev = ops.f, ops.f["gate"], state["h"]
    H = h_prev.shape[-1]
    a_u, a_nx, a_nh = (acc[..., k * H:(k + 1) * H] for k in range(3))
    z_u = ops.sat(ops.align(a_u, f["acc"], f["z_u"]), "z_u")
    u = ops.lut("sigmoid", z_u, f["z_u"], "u")
    z_n = ops.sat(ops.align(a_nx, f["acc"], f["z_n"]) + ops.align(u * a_nh, Fg + f["acc"], f["z_n"]), "z_n")
    n = ops.lut("tanh", z_n, f["z_n"], "n")
    fs = max(Fg + f["y"], 2 * Fg)
    one = np.int64(1) << Fg
    h = ops.sat(ops.align(ops.align(u * h_prev, Fg + f["y"], fs) + ops.align((one - u) * n, 2 * Fg, fs),
                          fs, f["y"]), "h")
    return {"z_u": z_u, "u": u, "z_n": z_n, "n": n, "h": h}, {"h": h}


def _mini_float(fn, acc, state, vec):
    a_u, a_nx, a_nh = fn.split(acc, 3)
    u = fn.sigmoid(a_u)
    z_n = a_nx + u * a_nh
    h = u * state["h"] + (1 - u) * fn.tanh(z_n)
    return {"z_u": a_u, "z_n": z_n, "h": h}, {"h": h}


MINI = CellSpec(
    name="mini", acc_blocks=("u", "n_x", "n_h"),
    matrices=(MatrixSpec("w_x", "x", INPUT, ("u", "n_x")), MatrixSpec("w_r", "r", RECURRENT, ("u", "n_h"))),
    vectors=(VectorSpec("bias"),), state=("h",), ew_signals=("z_u", "u", "z_n", "n", "h"), output="h",
    ew_formats=("z_u", "z_n", "gate"), calibrated=("z_u", "z_n"), fixed_step=_mini_fixed,
    float_step=_mini_float, lut_inputs={"sigmoid": ("z_u",), "tanh": ("z_n",)}, fixed_formats=("gate",))


def test_a_cell_without_projection_runs_through_the_reference_and_the_functional_model():
    register_cell(MINI)
    try:
        qm = random_qmodel(cell="mini", D=7, H=6, P=6, layers=2, density=0.6, seed=5, peepholes=False)
        assert qm.cell.trace_signals == ("x", "acc", "z_u", "u", "z_n", "n", "h", "y")
        x = random_input(qm, 9, seed=5)
        ref = ReferenceModel(qm).run(x)
        assert np.array_equal(ref.layers[0]["h"], ref.layers[0]["y"]) and np.abs(ref.y).sum() > 0
        prog = compile_qmodel(qm, HardwareConfig(pes=4))
        assert [o.name for o in prog.schedule.ops[:3]] == ["x0", "r0", "ew0"]
        assert prog.schedule.op(0, "r").deps == ((prog.schedule.op(0, "ew").id, -1),)  # y_{t-1} is ew's output
        assert prog.schedule.critical_path()[0] in (["r0", "ew0"], ["r1", "ew1"])
        assert first_difference(ref, FunctionalModel(prog).run(x), "reference", "functional") is None
        # the cycle model: y_t leaves the element-wise unit, so its latency is on every step's recurrence
        one = compile_qmodel(random_qmodel(cell="mini", D=7, H=6, P=6, layers=1, seed=6, peepholes=False),
                             HardwareConfig(pes=4))
        fast, slow = (simulate(one, dataclasses.replace(one.hardware, ew_latency=lat), n_frames=6)
                      for lat in (0, 40))
        for rep in (fast, slow):
            assert sum(rep.breakdown.values()) == rep.cycles_per_frame and 0 < rep.utilization <= 1
        assert slow.cycles_per_frame >= 40 and slow.cycles_per_frame > fast.cycles_per_frame  # y_t waits 40 each step
        assert slow.breakdown["elementwise"] > fast.breakdown["elementwise"]
    finally:
        CELLS.pop("mini")
