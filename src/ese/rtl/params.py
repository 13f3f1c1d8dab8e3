"""Everything the RTL needs from a compiled program: widths, shifts, memory images, timing knobs.

The hardware is generated from a :class:`RtlParams` (``ese.rtl.plan``), not from the program
directly, so the components can be built and tested on their own. The cell comes from the cell
description (``ese.cell``): its matrices, their op roles and accumulator blocks, its per-cell
vectors; its element-wise unit is the lane registered for it (``ese.rtl.lanes``).
:func:`rtl_params` checks that the program and its ``HardwareConfig`` are within what the
micro-architecture implements (see docs/hardware.md):

* a cell with an element-wise lane (``ese.rtl.lanes.LANES``), gate matrices of operand x
  (first) and y, and at most one output matrix over the lanes' output (or none: y is the
  lanes' output);
* any number of layers (each layer has its own element-wise lanes, accumulator buffers and
  formats; the PEs and the broadcast are shared, as in the schedule);
* ``entries_per_cycle = 1`` (one MAC per PE per cycle);
* ``ew_lanes`` 0 or ``pes`` (one element-wise lane next to each PE);
* ``ew_latency`` at least the lane's stages (``STAGES`` of its class: the LSTMP's has 4);
* ``mac_latency >= 1``, ``pointer_latency >= 0``, ``y_latency >= 0``, any ``queue_depth >= 1``,
  ``pointer_prefetch`` either way, ``overlap_input`` either way.
"""

from __future__ import annotations

import numpy as np

from ese.cell import INPUT, RECURRENT, cell_spec
from ese.compiler.program import Program
from ese.compiler.roles import SPMV_CODE
from ese.compress.qmodel import sum_frac
from ese.compress.reference import exact_sum_bits
from ese.rtl.errors import RtlError
from ese.rtl.lanes import LANES
from ese.rtl.plan import LaneImage, LayerFormats, MatrixPlan, PeImage, RtlParams

__all__ = ["LaneImage", "LayerFormats", "MatrixPlan", "PeImage", "RtlParams", "check_supported", "rtl_params"]


def _cell_problems(program: Program) -> list[str]:
    spec = cell_spec(program.model)
    if spec.name not in LANES:
        return [f"a {spec.name!r} cell (no element-wise lane for it in ese.rtl.lanes; known: "
                f"{', '.join(sorted(LANES))}; the functional and cycle models run it)"]
    gates, proj = spec.gate_matrices, spec.projection
    if [m.operand for m in gates] != [INPUT, RECURRENT] or (proj is not None and proj.operand != spec.output):
        return [f"the {spec.name!r} cell's matrices (the channel takes one gate matrix of x, then one of y, "
                "then at most one output matrix of the element-wise output)"]
    return []


def check_supported(program: Program) -> None:
    """RtlError naming the first setting the micro-architecture does not implement."""
    hw = program.hardware
    problems = _cell_problems(program)
    stages = LANES[program.model.cell].STAGES if not problems else 0
    if hw.entries_per_cycle != 1:
        problems.append(f"entries_per_cycle={hw.entries_per_cycle!r} (one MAC per PE per cycle)")
    if hw.ew_lanes not in (0, hw.pes):
        problems.append(f"ew_lanes={hw.ew_lanes!r} (one element-wise lane per PE: 0 or {hw.pes})")
    if hw.ew_latency < stages:
        problems.append(f"ew_latency={hw.ew_latency!r} (the element-wise lane has {stages} stages; >= {stages})")
    if hw.mac_latency < 1:
        problems.append(f"mac_latency={hw.mac_latency!r} (>= 1)")
    if hw.pointer_latency < 0 or hw.y_latency < 0 or hw.queue_depth < 1:
        problems.append("negative latencies or queue_depth < 1")
    if problems:
        raise RtlError("the RTL does not implement this program: " + "; ".join(problems))


def rtl_params(program: Program, *, max_frames: int = 64) -> RtlParams:
    """Derive the channel's parameters and memory images from ``program`` (RtlError if unsupported)."""
    check_supported(program)
    hw, q, spec = program.hardware, program.quant, cell_spec(program.model)
    qm = program.to_qmodel()
    widths = exact_sum_bits(qm)
    plans = tuple(MatrixPlan(m.name, SPMV_CODE[m.role], m.operand, tuple(spec.acc_blocks.index(b) for b in m.blocks))
                  for m in spec.matrices)
    nb, H, N = len(spec.acc_blocks), program.model.hidden, hw.pes
    fmts = []
    for L in program.layers:
        f = {k: v.frac for k, v in L.formats.items()}
        f_sum = sum_frac(f)  # the cell's Fsum
        shifts = {mp.role: f_sum - f[mp.name] - f[mp.operand] for mp in plans if mp.is_gate}
        fmts.append(LayerFormats(f, f_sum, shifts, getattr(L, plans[0].name).n_cols))
    pes = []
    for p in range(N):
        cells = np.arange(p, H, N)
        words, ptr, bias, base = [], [], [], 0
        for L, lf in zip(program.layers, fmts):
            for mp in plans:
                m = getattr(L, mp.name)
                sl = m.pe_slice(p)
                words += [int(w) for w in m.words[sl]]
                ptr += [base + int(v) for v in m.ptr[p]]
                base += sl.stop - sl.start
            rows = np.concatenate([a * H + cells for a in range(nb)])  # block-major, as the PE reads them
            bias.append(tuple(int(b) << (lf.f_sum - lf.frac["bias"]) for b in L.bias[rows]))
        proj = spec.projection
        pes.append(PeImage(tuple(words), tuple(ptr), tuple(bias), len(cells),
                           len(getattr(program.layers[0], proj.name).partition.rows_of_pe[p]) if proj else 0))
    lanes = []
    per_cell = [v.name for v in spec.vectors if v.rows is not None]
    for L in program.layers:
        row = []
        for p in range(N):
            cells = np.arange(p, H, N)
            vecs = {name: tuple(tuple(int(v) for v in r[cells]) for r in getattr(L, name))
                    for name in per_cell if getattr(L, name) is not None}
            row.append(LaneImage(vecs, len(cells)))
        lanes.append(tuple(row))
    sched = program.schedule
    names = {o.id: o for o in sched.ops}
    items = [(names[i].layer, SPMV_CODE[names[i].role], dt, False) for i, dt in sched.prologue]
    items += [(names[i].layer, SPMV_CODE[names[i].role], dt, True) for i, dt in sched.steady]
    if any(it[2] < 0 for it in items) or items[0][2] != 0:
        raise RtlError("the RTL controller expects an issue order whose first item is of step 0 and no "
                       f"negative step offsets, not {items!r}")
    specs = qm.lut_specs
    return RtlParams(
        cell=spec.name, acc_blocks=spec.acc_blocks, matrices=plans,
        pes=N, queue_depth=hw.queue_depth, pointer_latency=hw.pointer_latency,
        pointer_prefetch=bool(hw.pointer_prefetch), mac_latency=hw.mac_latency, ew_latency=hw.ew_latency,
        y_latency=hw.y_latency, weight_bits=q.weight_bits, act_bits=q.act_bits, acc_bits=q.acc_bits,
        index_bits=hw.index_bits, gate_acc_bits=max(w["gates"] for w in widths),
        proj_acc_bits=max(max(w["proj"] for w in widths), 1),
        input_dim=fmts[0].input_dim, hidden=H, proj=program.model.proj, layer_formats=tuple(fmts),
        sigmoid=tuple(int(v) for v in program.luts["sigmoid"]), tanh=tuple(int(v) for v in program.luts["tanh"]),
        sigmoid_shift=specs["sigmoid"].step_log2, tanh_shift=specs["tanh"].step_log2,
        pe_images=tuple(pes), lanes=tuple(lanes), items=tuple(items), max_frames=max_frames)
