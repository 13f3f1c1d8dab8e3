"""One lane of the GRU's element-wise unit: r, z, the reset-scaled candidate n and h (docs/fixed-point.md §10).

The GRU's element-wise hardware differs from the LSTMP's (``ese.rtl.ew``): four accumulator
blocks per unit (r, z, n_x, n_h), the reset gate multiplying the candidate's recurrent term
before the tanh, and the output h = y written straight from the lane (no projection SpMV). It is
bit-exact with ``ese.cell._gru_fixed``; wiring it into the PE and channel waits for the RTL to
read the cell description (docs/gru.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ese.compress.qmodel import QModel
from ese.compress.reference import exact_sum_bits
from ese.rtl.fixed import align, lut_index, saturate


@dataclass(frozen=True)
class GruLaneConfig:
    """What one GRU lane of one layer needs: binary points, widths, tables, latency."""

    frac: dict  # signal -> frac of the layer
    f_sum: int  # the exact gate sum's binary point
    act_bits: int
    acc_bits: int
    gate_acc_bits: int  # exact gate sum width
    sigmoid: tuple[int, ...]
    tanh: tuple[int, ...]
    sigmoid_shift: int  # LUT index shift for an input at binary point 0 (add the input's frac)
    tanh_shift: int
    ew_latency: int  # cycles from a unit entering to its h readable (>= 3)


def gru_lane_config(qm: QModel, layer: int = 0, ew_latency: int = 4) -> GruLaneConfig:
    """The lane configuration of ``layer`` of a GRU fixed-point model."""
    L, specs = qm.layers[layer], qm.lut_specs
    f = {k: v.frac for k, v in L.formats.items()}
    return GruLaneConfig(f, qm.cell.sum_frac(f), qm.quant.act_bits, qm.quant.acc_bits,
                         exact_sum_bits(qm)[layer]["gates"], tuple(int(v) for v in qm.luts["sigmoid"]),
                         tuple(int(v) for v in qm.luts["tanh"]), specs["sigmoid"].step_log2,
                         specs["tanh"].step_log2, ew_latency)


class GruLane(wiring.Component):
    """The element-wise stage of the units of one PE for one layer, one unit per cycle.

    Stage 0: the four exact sums are rounded to Facc and saturated; z_r, z_z address the sigmoid
    tables (synchronous reads); z_hn and the n_x term are narrowed. Stage 1: r scales z_hn, z_n
    addresses the tanh table. Stage 2: h_t = z h_{t-1} + (1 - z) n, stored as the next step's
    h_{t-1}; ``ew_latency - 3`` register stages; then h is written to the lane's output buffer
    (readable the next cycle): unit j's h is readable ``ew_latency`` cycles after it entered.

    Ports
    -----
    in_valid, in_cell : In          a unit of this lane enters stage 0
    acc_r, acc_z, acc_nx, acc_nh : In(signed gate width)   its exact sums
    clear : In(1)                   forget h (start of an utterance: h_{-1} = 0)
    h_valid, h_cell, h_data : Out   h_t written to the output buffer this cycle
    h_rd_cell : In;  h_rd_data : Out(signed A)   combinational read of the output buffer (broadcast)
    """

    def __init__(self, *, config: GruLaneConfig, cells: int) -> None:
        if config.ew_latency < 3:
            raise ValueError(f"the GRU lane has 3 stages: ew_latency must be >= 3, not {config.ew_latency}")
        self.cfg, self.cells = config, max(cells, 1)
        unit = range(self.cells)
        acc = signed(config.gate_acc_bits)
        A = signed(config.act_bits)
        super().__init__({
            "in_valid": In(1), "in_cell": In(unit),
            "acc_r": In(acc), "acc_z": In(acc), "acc_nx": In(acc), "acc_nh": In(acc), "clear": In(1),
            "h_valid": Out(1), "h_cell": Out(unit), "h_data": Out(A),
            "h_rd_cell": In(unit), "h_rd_data": Out(A),
        })

    def elaborate(self, platform) -> Module:
        c, m = self.cfg, Module()
        A, f, n = c.act_bits, c.frac, self.cells
        Fg, Fy = f["gate"], f["y"]
        sig = m.submodules.sigmoid = Memory(shape=signed(A), depth=len(c.sigmoid), init=list(c.sigmoid))
        tnh = m.submodules.tanh = Memory(shape=signed(A), depth=len(c.tanh), init=list(c.tanh))
        sig_r, sig_z, tnh_n = sig.read_port(), sig.read_port(), tnh.read_port()
        hmem = m.submodules.h_state = Memory(shape=signed(A), depth=n, init=[])
        h_rd, h_wr = hmem.read_port(domain="comb"), hmem.write_port()
        h_written = Signal(n)

        # ---- stage 0 -----------------------------------------------------------------------------
        def acc_of(v):
            return saturate(align(v, c.f_sum - f["acc"]), c.acc_bits)

        a_r, a_z, a_nx, a_nh = (acc_of(v) for v in (self.acc_r, self.acc_z, self.acc_nx, self.acc_nh))
        s0_zr, s0_zz = Signal(signed(A)), Signal(signed(A))
        m.d.comb += [s0_zr.eq(saturate(align(a_r, f["acc"] - f["z_r"]), A)),
                     s0_zz.eq(saturate(align(a_z, f["acc"] - f["z_z"]), A)),
                     sig_r.addr.eq(lut_index(s0_zr, f["z_r"] + c.sigmoid_shift, len(c.sigmoid))),
                     sig_z.addr.eq(lut_index(s0_zz, f["z_z"] + c.sigmoid_shift, len(c.sigmoid))),
                     h_rd.addr.eq(self.in_cell)]
        h_prev = Mux(h_written.bit_select(self.in_cell, 1), h_rd.data, 0)
        s1_v, s1_cell = Signal(), Signal(range(n))
        s1_hn, s1_h = Signal(signed(A)), Signal(signed(A))
        s1_nx = Signal(signed(c.acc_bits + max(f["z_n"] - f["acc"], 0) + 1))
        m.d.sync += [s1_v.eq(self.in_valid), s1_cell.eq(self.in_cell), s1_h.eq(h_prev),
                     s1_hn.eq(saturate(align(a_nh, f["acc"] - f["z_hn"]), A)),
                     s1_nx.eq(align(a_nx, f["acc"] - f["z_n"]))]
        with m.If(self.clear):
            m.d.sync += h_written.eq(0)

        # ---- stage 1: r scales the recurrent candidate term ---------------------------------------
        s1_zn = Signal(signed(A))
        m.d.comb += [s1_zn.eq(saturate(s1_nx + align(sig_r.data * s1_hn, Fg + f["z_hn"] - f["z_n"]), A)),
                     tnh_n.addr.eq(lut_index(s1_zn, f["z_n"] + c.tanh_shift, len(c.tanh)))]
        s2_v, s2_cell = Signal(), Signal(range(n))
        s2_z, s2_h = Signal(signed(A)), Signal(signed(A))
        m.d.sync += [s2_v.eq(s1_v), s2_cell.eq(s1_cell), s2_z.eq(sig_z.data), s2_h.eq(s1_h)]

        # ---- stage 2: h_t -------------------------------------------------------------------------
        fs = max(Fg + Fy, 2 * Fg)
        one_minus_z = ((1 << Fg) - s2_z).as_signed()
        h_sum = align(s2_z * s2_h, Fg + Fy - fs) + align(one_minus_z * tnh_n.data, 2 * Fg - fs)
        h_new = Signal(signed(A))
        m.d.comb += [h_new.eq(saturate(align(h_sum, fs - Fy), A)),
                     h_wr.addr.eq(s2_cell), h_wr.data.eq(h_new), h_wr.en.eq(s2_v)]
        with m.If(s2_v & ~self.clear):
            m.d.sync += h_written.bit_select(s2_cell, 1).eq(1)

        # ---- extra latency, output buffer -----------------------------------------------------------
        v, cell, data = s2_v, s2_cell, h_new
        for k in range(c.ew_latency - 3):
            regs = (Signal(name=f"x{k}_v"), Signal(range(n), name=f"x{k}_cell"), Signal(signed(A), name=f"x{k}_h"))
            m.d.sync += [r.eq(s) for r, s in zip(regs, (v, cell, data))]
            v, cell, data = regs
        out = m.submodules.h_out = Memory(shape=signed(A), depth=n, init=[])
        ow, orp = out.write_port(), out.read_port(domain="comb")
        m.d.comb += [ow.addr.eq(cell), ow.data.eq(data), ow.en.eq(v),
                     self.h_valid.eq(v), self.h_cell.eq(cell), self.h_data.eq(data),
                     orp.addr.eq(self.h_rd_cell), self.h_rd_data.eq(orp.data)]
        return m
