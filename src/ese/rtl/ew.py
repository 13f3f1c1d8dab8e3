"""One lane of the element-wise unit: gate non-linearities, cell update and m (docs/fixed-point.md §4)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ese.rtl.fixed import align, lut_index, saturate
from ese.rtl.params import LaneImage, RtlParams


class EwLane(wiring.Component):
    """The element-wise stage of the cells of one PE for one layer, one cell per cycle, ``ew_latency`` deep.

    Stage 0: the four exact gate sums are rounded to Facc and saturated (PE output ``acc``), then
    z_i, z_f (with the peepholes on c_{t-1}) and z_g; their LUT addresses go to synchronous
    table reads. Stage 1: i, f, g -> c_t (stored). Stage 2: z_o (peephole on c_t), LUT reads of
    o and tanh(c_t). Stage 3: m_t; ``ew_latency - 4`` extra register stages; then m is written to
    the lane's m buffer (readable the next cycle), so cell j's m is readable ``ew_latency`` cycles
    after it entered.

    Ports
    -----
    in_valid, in_cell : In         a cell of this lane enters stage 0
    acc_i, acc_f, acc_g, acc_o : In(signed gate width)   its exact gate sums (from the PE)
    clear : In(1)                  forget c (start of an utterance: c_{-1} = 0)
    c_valid, c_cell, c_data : Out  the new c_t leaving stage 1 (verification)
    m_valid, m_cell, m_data : Out  m_t written to the m buffer this cycle
    m_rd_cell : In;  m_rd_data : Out(signed A)   combinational read of the m buffer (broadcast)
    """

    def __init__(self, *, params: RtlParams, image: LaneImage, layer: int = 0) -> None:
        self.p, self.img, self.layer = params, image, layer
        P = params
        self.cells_eff = max(image.cells, 1)
        cell = range(self.cells_eff)
        super().__init__({
            "in_valid": In(1), "in_cell": In(cell),
            "acc_i": In(signed(P.gate_acc_bits)), "acc_f": In(signed(P.gate_acc_bits)),
            "acc_g": In(signed(P.gate_acc_bits)), "acc_o": In(signed(P.gate_acc_bits)),
            "clear": In(1),
            "c_valid": Out(1), "c_cell": Out(cell), "c_data": Out(signed(P.act_bits)),
            "m_valid": Out(1), "m_cell": Out(cell), "m_data": Out(signed(P.act_bits)),
            "m_rd_cell": In(cell), "m_rd_data": Out(signed(P.act_bits)),
        })

    def elaborate(self, platform) -> Module:
        P, img, m = self.p, self.img, Module()
        lf = P.layer_formats[self.layer]
        A, f = P.act_bits, lf.frac
        Fg, Fc = f["gate"], f["c"]
        n = self.cells_eff
        n_lut = len(P.sigmoid)
        # tables as dual-port ROMs (one block RAM each): sigmoid for i, f; sigmoid for o; tanh for g, c
        sig = m.submodules.sigmoid_if = Memory(shape=signed(A), depth=n_lut, init=list(P.sigmoid))
        sig2 = m.submodules.sigmoid_o = Memory(shape=signed(A), depth=n_lut, init=list(P.sigmoid))
        tnh = m.submodules.tanh = Memory(shape=signed(A), depth=len(P.tanh), init=list(P.tanh))
        sig_i, sig_f, sig_o = sig.read_port(), sig.read_port(), sig2.read_port()
        tnh_g, tnh_c = tnh.read_port(), tnh.read_port()
        cmem = m.submodules.c = Memory(shape=signed(A), depth=n, init=[])
        c_rd, c_wr = cmem.read_port(domain="comb"), cmem.write_port()
        c_written = Signal(n)
        peep = []
        if P.peepholes:
            for g in range(2):  # w_ic, w_fc at stage 0 (w_oc at stage 2)
                rom = m.submodules[f"peephole{g}"] = Memory(shape=signed(A), depth=n, init=list(img.peephole[g]) or [0])
                port = rom.read_port(domain="comb")
                peep.append(port)

        # ---- stage 0 -----------------------------------------------------------------------------
        def acc_of(v):
            return saturate(align(v, lf.f_sum - f["acc"]), P.acc_bits)

        m.d.comb += c_rd.addr.eq(self.in_cell)
        c_prev = Mux(c_written.bit_select(self.in_cell, 1), c_rd.data, 0)
        a_i, a_f, a_g, a_o = (acc_of(v) for v in (self.acc_i, self.acc_f, self.acc_g, self.acc_o))
        z_i, z_f = align(a_i, f["acc"] - f["z_i"]), align(a_f, f["acc"] - f["z_f"])
        if P.peepholes:
            for port in peep:
                m.d.comb += port.addr.eq(self.in_cell)
            z_i = z_i + align(peep[0].data * c_prev, f["peephole"] + Fc - f["z_i"])
            z_f = z_f + align(peep[1].data * c_prev, f["peephole"] + Fc - f["z_f"])
        s0_zi, s0_zf = Signal(signed(A)), Signal(signed(A))
        s0_zg = Signal(signed(A))
        m.d.comb += [s0_zi.eq(saturate(z_i, A)), s0_zf.eq(saturate(z_f, A)),
                     s0_zg.eq(saturate(align(a_g, f["acc"] - f["z_g"]), A))]
        m.d.comb += [sig_i.addr.eq(lut_index(s0_zi, f["z_i"] + P.sigmoid_shift, n_lut)),
                     sig_f.addr.eq(lut_index(s0_zf, f["z_f"] + P.sigmoid_shift, n_lut)),
                     tnh_g.addr.eq(lut_index(s0_zg, f["z_g"] + P.tanh_shift, len(P.tanh)))]
        s1_v, s1_cell = Signal(), Signal(range(n))
        s1_c, s1_ao = Signal(signed(A)), Signal(signed(P.acc_bits))
        m.d.sync += [s1_v.eq(self.in_valid), s1_cell.eq(self.in_cell), s1_c.eq(c_prev), s1_ao.eq(a_o)]
        with m.If(self.clear):
            m.d.sync += c_written.eq(0)

        # ---- stage 1: c_t -------------------------------------------------------------------------
        fs = max(Fg + Fc, 2 * Fg)
        c_sum = align(sig_f.data * s1_c, Fg + Fc - fs) + align(sig_i.data * tnh_g.data, 2 * Fg - fs)
        c_new = Signal(signed(A))
        m.d.comb += [c_new.eq(saturate(align(c_sum, fs - Fc), A)),
                     c_wr.addr.eq(s1_cell), c_wr.data.eq(c_new), c_wr.en.eq(s1_v),
                     self.c_valid.eq(s1_v), self.c_cell.eq(s1_cell), self.c_data.eq(c_new)]
        with m.If(s1_v & ~self.clear):
            m.d.sync += c_written.bit_select(s1_cell, 1).eq(1)
        s2_v, s2_cell = Signal(), Signal(range(n))
        s2_c, s2_ao = Signal(signed(A)), Signal(signed(P.acc_bits))
        m.d.sync += [s2_v.eq(s1_v), s2_cell.eq(s1_cell), s2_c.eq(c_new), s2_ao.eq(s1_ao)]

        # ---- stage 2: z_o, LUT reads of o and tanh(c_t) ---------------------------------------------
        z_o = align(s2_ao, f["acc"] - f["z_o"])
        if P.peepholes:
            peep_o = m.submodules.peephole_o = Memory(shape=signed(A), depth=n, init=list(img.peephole[2]) or [0])
            po = peep_o.read_port(domain="comb")
            m.d.comb += po.addr.eq(s2_cell)
            z_o = z_o + align(po.data * s2_c, f["peephole"] + Fc - f["z_o"])
        s2_zo = Signal(signed(A))
        m.d.comb += [s2_zo.eq(saturate(z_o, A)),
                     sig_o.addr.eq(lut_index(s2_zo, f["z_o"] + P.sigmoid_shift, n_lut)),
                     tnh_c.addr.eq(lut_index(s2_c, Fc + P.tanh_shift, len(P.tanh)))]
        s3_v, s3_cell = Signal(), Signal(range(n))
        m.d.sync += [s3_v.eq(s2_v), s3_cell.eq(s2_cell)]

        # ---- stage 3: m_t, extra latency, m buffer -----------------------------------------------------
        m_val = Signal(signed(A))
        m.d.comb += m_val.eq(saturate(align(sig_o.data * tnh_c.data, 2 * Fg - f["m"]), A))
        v, cell, data = s3_v, s3_cell, m_val
        for k in range(P.ew_latency - 4):
            regs = (Signal(name=f"x{k}_v"), Signal(range(n), name=f"x{k}_cell"), Signal(signed(A), name=f"x{k}_m"))
            m.d.sync += [r.eq(s) for r, s in zip(regs, (v, cell, data))]
            v, cell, data = regs
        mbuf = m.submodules.m = Memory(shape=signed(A), depth=n, init=[])
        mw, mr = mbuf.write_port(), mbuf.read_port(domain="comb")
        m.d.comb += [mw.addr.eq(cell), mw.data.eq(data), mw.en.eq(v),
                     self.m_valid.eq(v), self.m_cell.eq(cell), self.m_data.eq(data),
                     mr.addr.eq(self.m_rd_cell), self.m_rd_data.eq(mr.data)]
        return m
