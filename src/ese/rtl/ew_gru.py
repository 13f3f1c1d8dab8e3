"""The GRU's element-wise lane: r, z, the reset-scaled candidate n and h (docs/fixed-point.md §10).

What is new in hardware against the LSTMP's lane (``ese.rtl.ew``): the reset gate multiplies the
candidate's recurrent term (its own accumulator block n_h) before the tanh, h_t = z h_{t-1} +
(1 - z) n is the output, and it is y itself (no projection SpMV), so the lane's output buffer is
double-buffered by step parity (``ese.rtl.lane``). Bit-exact with ``ese.cell._gru_fixed``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed

from ese.rtl.fixed import align, saturate
from ese.rtl.lane import Lane


class GruLane(Lane):
    """The element-wise stage of the units of one PE for one layer, one unit per cycle; ports of
    every lane (``ese.rtl.lane``) with acc_r, acc_z, acc_n_x, acc_n_h.

    Stage 0: the four exact sums are rounded to Facc and saturated; z_r, z_z address the sigmoid
    tables (synchronous reads); z_hn and the n_x term are narrowed. Stage 1: r scales z_hn, z_n
    addresses the tanh table. Stage 2: h_t = z h_{t-1} + (1 - z) n, stored as the next step's
    h_{t-1}; ``ew_latency - 3`` register stages; then h is written to the lane's output buffer
    (readable the next cycle): unit j's h is readable ``ew_latency`` cycles after it entered.
    """

    STAGES = 3

    def elaborate(self, platform) -> Module:
        P, m = self.p, Module()
        A, f, n = P.act_bits, self.lf.frac, self.cells_eff
        Fg, Fy = f["gate"], f["y"]
        sig, tnh = self.rom(m, "sigmoid", "sigmoid"), self.rom(m, "tanh", "tanh")
        sig_r, sig_z, tnh_n = sig.read_port(), sig.read_port(), tnh.read_port()
        h_prev, h_write = self.state(m, "h_state")

        # ---- stage 0 -----------------------------------------------------------------------------
        a_r, a_z, a_nx, a_nh = self.acc_in()
        s0_zr, s0_zz = Signal(signed(A)), Signal(signed(A))
        m.d.comb += [s0_zr.eq(self.narrow(a_r, "acc", "z_r")), s0_zz.eq(self.narrow(a_z, "acc", "z_z")),
                     sig_r.addr.eq(self.lut_addr(s0_zr, "sigmoid", "z_r")),
                     sig_z.addr.eq(self.lut_addr(s0_zz, "sigmoid", "z_z"))]
        s1_v, s1_cell, s1_par = Signal(), Signal(range(n)), Signal()
        s1_hn, s1_h = Signal(signed(A)), Signal(signed(A))
        s1_nx = Signal(signed(P.acc_bits + max(f["z_n"] - f["acc"], 0) + 1))
        m.d.sync += [s1_v.eq(self.in_valid), s1_cell.eq(self.in_cell), s1_par.eq(self.in_par), s1_h.eq(h_prev),
                     s1_hn.eq(self.narrow(a_nh, "acc", "z_hn")), s1_nx.eq(align(a_nx, f["acc"] - f["z_n"]))]

        # ---- stage 1: r scales the recurrent candidate term ---------------------------------------
        s1_zn = Signal(signed(A))
        m.d.comb += [s1_zn.eq(saturate(s1_nx + align(sig_r.data * s1_hn, Fg + f["z_hn"] - f["z_n"]), A)),
                     tnh_n.addr.eq(self.lut_addr(s1_zn, "tanh", "z_n"))]
        s2_v, s2_cell, s2_par = Signal(), Signal(range(n)), Signal()
        s2_z, s2_h = Signal(signed(A)), Signal(signed(A))
        m.d.sync += [s2_v.eq(s1_v), s2_cell.eq(s1_cell), s2_par.eq(s1_par), s2_z.eq(sig_z.data), s2_h.eq(s1_h)]

        # ---- stage 2: h_t -------------------------------------------------------------------------
        fs = max(Fg + Fy, 2 * Fg)
        one_minus_z = ((1 << Fg) - s2_z).as_signed()
        h_sum = align(s2_z * s2_h, Fg + Fy - fs) + align(one_minus_z * tnh_n.data, 2 * Fg - fs)
        h_new = Signal(signed(A))
        m.d.comb += h_new.eq(saturate(align(h_sum, fs - Fy), A))
        h_write(s2_cell, h_new, s2_v)
        self.output(m, self.STAGES, s2_v, s2_cell, h_new, s2_par)
        return m
