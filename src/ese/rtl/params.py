"""Everything the RTL needs from a compiled program: widths, shifts, memory images, timing knobs.

The hardware is generated from a :class:`RtlParams` (not from the program directly), so the
components can be built and tested on their own. :func:`rtl_params` checks that the program and
its ``HardwareConfig`` are within what the micro-architecture implements (see docs/hardware.md):

* any number of LSTMP layers (each layer has its own element-wise lanes, accumulator buffers and
  formats; the PEs and the broadcast are shared, as in the schedule);
* ``entries_per_cycle = 1`` (one MAC per PE per cycle);
* ``ew_lanes`` 0 or ``pes`` (one element-wise lane next to each PE);
* ``ew_latency >= 4`` (the lane's four stages: z -> LUT i,f,g -> c -> LUT o,tanh -> m);
* ``mac_latency >= 1``, ``pointer_latency >= 0``, ``y_latency >= 0``, any ``queue_depth >= 1``,
  ``pointer_prefetch`` either way, ``overlap_input`` either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ese.compiler.program import Program
from ese.compiler.roles import ROLE_R, ROLE_X, ROLE_YM, SPMV_CODE
from ese.compress.qmodel import sum_frac
from ese.compress.reference import exact_sum_bits
from ese.rtl.errors import RtlError



@dataclass(frozen=True)
class PeImage:
    """One PE's memory images: entry words, column pointers (absolute), bias rows (at Fsum)."""

    words: tuple[int, ...]  # entries of w_x, w_r, w_ym of every layer of this PE, back to back
    ptr: tuple[int, ...]  # K+1 pointers per matrix (layer by layer: x, r, ym), absolute in ``words``
    bias: tuple[tuple[int, ...], ...]  # per layer (4 * cells,) bias << (Fsum - Fb), gate-major local order
    cells: int  # cells of this PE (gate rows / 4)
    proj_rows: int  # rows of w_ym this PE owns


@dataclass(frozen=True)
class LaneImage:
    """One element-wise lane's constants: peephole rows of its cells (empty without peepholes)."""

    peephole: tuple[tuple[int, ...], ...]  # (3, cells)
    cells: int


@dataclass(frozen=True)
class LayerFormats:
    """The binary points and derived shifts of one layer."""

    frac: dict  # signal -> frac
    f_sum: int
    shift_x: int  # product -> Fsum left shifts
    shift_r: int
    input_dim: int  # columns of w_x


@dataclass(frozen=True)
class RtlParams:
    """Parameters of one channel (see module docstring)."""

    pes: int
    queue_depth: int
    pointer_latency: int
    pointer_prefetch: bool
    mac_latency: int
    ew_latency: int
    y_latency: int
    weight_bits: int
    act_bits: int
    acc_bits: int
    index_bits: int
    gate_acc_bits: int  # exact gate sum width (exact_sum_bits)
    proj_acc_bits: int  # exact projection sum width
    input_dim: int  # D (layer 0)
    hidden: int  # H
    proj: int  # P
    layer_formats: tuple[LayerFormats, ...]
    sigmoid: tuple[int, ...]
    tanh: tuple[int, ...]
    sigmoid_shift: int  # LUT index shift for an input at binary point 0 (add the input's frac)
    tanh_shift: int
    peepholes: bool
    pe_images: tuple[PeImage, ...]
    lanes: tuple[tuple[LaneImage, ...], ...]  # [layer][pe]
    items: tuple[tuple[int, int, int, bool], ...]  # issue order: (layer, role, step offset, steady?)
    max_frames: int

    @property
    def n_layers(self) -> int:
        return len(self.layer_formats)

    @property
    def groups(self) -> int:
        """Element-wise issue cycles per step: ceil(H / lanes), lanes = pes."""
        return -(-self.hidden // self.pes)

    # single-layer conveniences (layer 0)
    @property
    def frac(self) -> dict:
        return self.layer_formats[0].frac

    @property
    def f_sum(self) -> int:
        return self.layer_formats[0].f_sum

    @property
    def shift_x(self) -> int:
        return self.layer_formats[0].shift_x

    @property
    def shift_r(self) -> int:
        return self.layer_formats[0].shift_r

    def cols(self, role: int, layer: int = 0) -> int:
        return (self.layer_formats[layer].input_dim, self.proj, self.hidden)[role]

    def ptr_offset(self, role: int, layer: int = 0) -> int:
        """Index of column 0's pointer of (layer, role) in the PE pointer memory."""
        off = sum(self.cols(r, l) + 1 for l in range(layer) for r in (ROLE_X, ROLE_R, ROLE_YM))
        return off + sum(self.cols(r, layer) + 1 for r in range(role))

    @property
    def n_ptr(self) -> int:
        return self.ptr_offset(ROLE_X, self.n_layers)


def check_supported(program: Program) -> None:
    """RtlError naming the first setting the micro-architecture does not implement."""
    hw = program.hardware
    problems = []
    if program.model.cell != "lstmp":
        problems.append(f"a {program.model.cell!r} cell (its PE ports, element-wise lane and channel are the "
                        "LSTMP's until the RTL reads the cell description; the functional and cycle models run it)")
    if hw.entries_per_cycle != 1:
        problems.append(f"entries_per_cycle={hw.entries_per_cycle!r} (one MAC per PE per cycle)")
    if hw.ew_lanes not in (0, hw.pes):
        problems.append(f"ew_lanes={hw.ew_lanes!r} (one element-wise lane per PE: 0 or {hw.pes})")
    if hw.ew_latency < 4:
        problems.append(f"ew_latency={hw.ew_latency!r} (the element-wise lane has 4 stages; >= 4)")
    if hw.mac_latency < 1:
        problems.append(f"mac_latency={hw.mac_latency!r} (>= 1)")
    if hw.pointer_latency < 0 or hw.y_latency < 0 or hw.queue_depth < 1:
        problems.append("negative latencies or queue_depth < 1")
    if problems:
        raise RtlError("the RTL does not implement this program: " + "; ".join(problems))


def rtl_params(program: Program, *, max_frames: int = 64) -> RtlParams:
    """Derive the channel's parameters and memory images from ``program`` (RtlError if unsupported)."""
    check_supported(program)
    hw, q = program.hardware, program.quant
    qm = program.to_qmodel()
    widths = exact_sum_bits(qm)
    fmts = []
    for L in program.layers:
        f = {k: v.frac for k, v in L.formats.items()}
        f_sum = sum_frac(f)
        fmts.append(LayerFormats(f, f_sum, f_sum - f["w_x"] - f["x"], f_sum - f["w_r"] - f["y"], L.w_x.n_cols))
    pes = []
    for p in range(hw.pes):
        words, ptr, bias, base = [], [], [], 0
        for L, lf in zip(program.layers, fmts):
            for m in (L.w_x, L.w_r, L.w_ym):
                sl = m.pe_slice(p)
                words += [int(w) for w in m.words[sl]]
                ptr += [base + int(v) for v in m.ptr[p]]
                base += sl.stop - sl.start
            rows = L.w_x.partition.rows_of_pe[p]
            bias.append(tuple(int(b) << (lf.f_sum - lf.frac["bias"]) for b in L.bias[rows]))
        L0 = program.layers[0]
        pes.append(PeImage(tuple(words), tuple(ptr), tuple(bias), len(L0.w_x.partition.rows_of_pe[p]) // 4,
                           len(L0.w_ym.partition.rows_of_pe[p])))
    lanes = []
    for L in program.layers:
        row = []
        for p in range(hw.pes):
            cells = np.arange(p, L.hidden, hw.pes)
            peep = tuple(tuple(int(v) for v in L.peephole[g, cells]) for g in range(3)) if L.peephole is not None else ()
            row.append(LaneImage(peep, len(cells)))
        lanes.append(tuple(row))
    sched = program.schedule
    names = {o.id: o for o in sched.ops}
    items = [(names[i].layer, SPMV_CODE[names[i].role], dt, False) for i, dt in sched.prologue]
    items += [(names[i].layer, SPMV_CODE[names[i].role], dt, True) for i, dt in sched.steady]
    if any(it[2] < 0 for it in items) or items[0][2] != 0:
        raise RtlError("the RTL controller expects an issue order whose first item is of step 0 and no "
                       f"negative step offsets, not {items!r}")
    specs = qm.lut_specs
    L0 = program.layers[0]
    return RtlParams(
        pes=hw.pes, queue_depth=hw.queue_depth, pointer_latency=hw.pointer_latency,
        pointer_prefetch=bool(hw.pointer_prefetch), mac_latency=hw.mac_latency, ew_latency=hw.ew_latency,
        y_latency=hw.y_latency, weight_bits=q.weight_bits, act_bits=q.act_bits, acc_bits=q.acc_bits,
        index_bits=hw.index_bits, gate_acc_bits=max(w["gates"] for w in widths),
        proj_acc_bits=max(w["proj"] for w in widths),
        input_dim=L0.w_x.n_cols, hidden=L0.hidden, proj=L0.w_ym.n_rows, layer_formats=tuple(fmts),
        sigmoid=tuple(int(v) for v in program.luts["sigmoid"]), tanh=tuple(int(v) for v in program.luts["tanh"]),
        sigmoid_shift=specs["sigmoid"].step_log2, tanh_shift=specs["tanh"].step_log2,
        peepholes=L0.peephole is not None, pe_images=tuple(pes), lanes=tuple(lanes), items=tuple(items),
        max_frames=max_frames)
