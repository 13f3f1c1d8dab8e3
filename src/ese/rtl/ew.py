"""The LSTMP's element-wise lane: gate non-linearities, cell update and m (docs/fixed-point.md §4)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from ese.rtl.fixed import align, saturate
from ese.rtl.lane import Lane
from ese.rtl.plan import LaneImage, RtlParams


class EwLane(Lane):
    """The LSTMP element-wise stage of the cells of one PE for one layer, one cell per cycle,
    ``ew_latency`` deep; ports of every lane (``ese.rtl.lane``), acc_i, acc_f, acc_g, acc_o, plus
    ``c_valid, c_cell, c_data : Out`` (the new c_t leaving stage 1, for verification). The
    output is m_t.

    Stage 0: the four exact gate sums are rounded to Facc and saturated (PE output ``acc``), then
    z_i, z_f (with the peepholes on c_{t-1}) and z_g; their LUT addresses go to synchronous
    table reads. Stage 1: i, f, g -> c_t (stored). Stage 2: z_o (peephole on c_t), LUT reads of
    o and tanh(c_t). Stage 3: m_t; ``ew_latency - 4`` extra register stages; then m is written to
    the lane's m buffer (readable the next cycle), so cell j's m is readable ``ew_latency`` cycles
    after it entered.
    """

    STAGES = 4

    def __init__(self, *, params: RtlParams, image: LaneImage, layer: int = 0) -> None:
        cell, A = range(max(image.cells, 1)), signed(params.act_bits)
        super().__init__(params=params, image=image, layer=layer,
                         ports={"c_valid": Out(1), "c_cell": Out(cell), "c_data": Out(A)})

    def elaborate(self, platform) -> Module:
        P, img, m = self.p, self.img, Module()
        A, f = P.act_bits, self.lf.frac
        Fg, Fc = f["gate"], f["c"]
        n = self.cells_eff
        # tables as dual-port ROMs (one block RAM each): sigmoid for i, f; sigmoid for o; tanh for g, c
        sig, sig2, tnh = self.rom(m, "sigmoid_if", "sigmoid"), self.rom(m, "sigmoid_o", "sigmoid"), self.rom(m, "tanh", "tanh")
        sig_i, sig_f, sig_o = sig.read_port(), sig.read_port(), sig2.read_port()
        tnh_g, tnh_c = tnh.read_port(), tnh.read_port()
        c_prev, c_write = self.state(m, "c")
        peep = img.vectors.get("peephole")
        ports = []
        if peep:
            for g in range(2):  # w_ic, w_fc at stage 0 (w_oc at stage 2)
                rom = m.submodules[f"peephole{g}"] = Memory(shape=signed(A), depth=n, init=list(peep[g]) or [0])
                ports.append(rom.read_port(domain="comb"))

        # ---- stage 0 -----------------------------------------------------------------------------
        a_i, a_f, a_g, a_o = self.acc_in()
        z_i, z_f = align(a_i, f["acc"] - f["z_i"]), align(a_f, f["acc"] - f["z_f"])
        if peep:
            for port in ports:
                m.d.comb += port.addr.eq(self.in_cell)
            z_i = z_i + align(ports[0].data * c_prev, f["peephole"] + Fc - f["z_i"])
            z_f = z_f + align(ports[1].data * c_prev, f["peephole"] + Fc - f["z_f"])
        s0_zi, s0_zf = Signal(signed(A)), Signal(signed(A))
        s0_zg = Signal(signed(A))
        m.d.comb += [s0_zi.eq(saturate(z_i, A)), s0_zf.eq(saturate(z_f, A)), s0_zg.eq(self.narrow(a_g, "acc", "z_g")),
                     sig_i.addr.eq(self.lut_addr(s0_zi, "sigmoid", "z_i")),
                     sig_f.addr.eq(self.lut_addr(s0_zf, "sigmoid", "z_f")),
                     tnh_g.addr.eq(self.lut_addr(s0_zg, "tanh", "z_g"))]
        s1_v, s1_cell = Signal(), Signal(range(n))
        s1_c, s1_ao = Signal(signed(A)), Signal(signed(P.acc_bits))
        m.d.sync += [s1_v.eq(self.in_valid), s1_cell.eq(self.in_cell), s1_c.eq(c_prev), s1_ao.eq(a_o)]

        # ---- stage 1: c_t -------------------------------------------------------------------------
        fs = max(Fg + Fc, 2 * Fg)
        c_sum = align(sig_f.data * s1_c, Fg + Fc - fs) + align(sig_i.data * tnh_g.data, 2 * Fg - fs)
        c_new = Signal(signed(A))
        m.d.comb += [c_new.eq(saturate(align(c_sum, fs - Fc), A)),
                     self.c_valid.eq(s1_v), self.c_cell.eq(s1_cell), self.c_data.eq(c_new)]
        c_write(s1_cell, c_new, s1_v)
        s2_v, s2_cell = Signal(), Signal(range(n))
        s2_c, s2_ao = Signal(signed(A)), Signal(signed(P.acc_bits))
        m.d.sync += [s2_v.eq(s1_v), s2_cell.eq(s1_cell), s2_c.eq(c_new), s2_ao.eq(s1_ao)]

        # ---- stage 2: z_o, LUT reads of o and tanh(c_t) ---------------------------------------------
        z_o = align(s2_ao, f["acc"] - f["z_o"])
        if peep:
            peep_o = m.submodules.peephole_o = Memory(shape=signed(A), depth=n, init=list(peep[2]) or [0])
            po = peep_o.read_port(domain="comb")
            m.d.comb += po.addr.eq(s2_cell)
            z_o = z_o + align(po.data * s2_c, f["peephole"] + Fc - f["z_o"])
        s2_zo = Signal(signed(A))
        m.d.comb += [s2_zo.eq(saturate(z_o, A)), sig_o.addr.eq(self.lut_addr(s2_zo, "sigmoid", "z_o")),
                     tnh_c.addr.eq(self.lut_addr(s2_c, "tanh", "c"))]
        s3_v, s3_cell = Signal(), Signal(range(n))
        m.d.sync += [s3_v.eq(s2_v), s3_cell.eq(s2_cell)]

        # ---- stage 3: m_t, extra latency, m buffer -----------------------------------------------------
        m_val = Signal(signed(A))
        m.d.comb += m_val.eq(saturate(align(sig_o.data * tnh_c.data, 2 * Fg - f["m"]), A))
        self.output(m, self.STAGES, s3_v, s3_cell, m_val)
        return m
