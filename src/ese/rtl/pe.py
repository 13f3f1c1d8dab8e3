"""One processing element: ActQueue, pointer read, sparse-matrix read, MAC pipeline, accumulators."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ese.rtl.plan import PeImage, RtlParams


class PE(wiring.Component):
    """A PE of the channel (ESE.md section 6), cycle behaviour of docs/cycle-model.md section 2.

    A broadcast column (activation, pointer index, role, step parity, last-of-op flag) enters the
    ActQueue (``SyncFIFO`` of ``queue_depth``). The PE pops the head when it is free and the
    head's pointers are ready (``pointer_latency`` cycles after the write with prefetch; without
    prefetch the pointer read is ``pointer_latency`` cycles after the pop), then issues one entry per
    cycle (``max(1, entries)`` cycles per column). Each entry's product ``weight * act`` (shifted
    to Fsum for the gate matrices) passes ``mac_latency`` register stages and is added into the
    accumulator of its local row. Gate and projection accumulators are double-buffered by step
    parity; a row never written since its buffer was cleared reads as its initial value (the bias
    at Fsum for gate rows, 0 for projection rows).

    The cell (``RtlParams.matrices``, from ``ese.cell``) says which matrices there are, which op
    role each has, and into which accumulator block each row block of a gate matrix adds: a
    matrix whose row blocks are not the accumulator blocks in order (the GRU's w_r: r, z, n_h
    of the blocks r, z, n_x, n_h) has its rows moved block by block on the way in. A cell
    without an output matrix has no projection accumulators and no ``yb_*``, ``yo_*`` ports.

    Ports
    -----
    in_valid, in_act (signed A), in_col, in_role (2), in_par, in_last : In
        The broadcast; ``in_valid`` only while ``ready``.
    ready : Out(1)
        The ActQueue has room (``SyncFIFO.w_rdy``).
    complete : In(1)
        Channel pulse: one op has finished in every PE (decrements ``pending``).
    pending : Out(1)
        This PE has finished more ops than the channel has completed.
    in_layer : In
        The layer of the broadcast column (its op's accumulators, shifts and pointers).
    clear_gates, clear_proj : In(2 * layers)
        Clear the written-flags of the gate / projection buffer of (layer, parity), bit 2*layer+parity.
    ew{l}_cell, ew{l}_par : In;  ew{l}_acc_<block> : Out(signed gate width)     for each layer l
        Element-wise read of one cell's sums, one per accumulator block of the cell (combinational).
    yb_layer, yb_row, yb_par : In;  yb_acc : Out(signed proj width)     projection read for the broadcast
    yo_layer, yo_row, yo_par : In;  yo_acc : Out(signed proj width)     projection read for the output
    busy : Out(1)
        A column is being worked on this cycle (statistics).
    pop : Out(1)
        The head column is popped this cycle (the cycle model's ``s[p, c]``; observation only).
    """

    def __init__(self, *, params: RtlParams, image: PeImage) -> None:
        self.p, self.img = params, image
        P = params
        self.cells_eff = max(image.cells, 1)
        self.proj_eff = max(image.proj_rows, 1)
        self.n_ptr = len(image.ptr)
        self.n_words = max(len(image.words), 1)
        L = params.n_layers
        ports = {
            "in_valid": In(1), "in_act": In(signed(P.act_bits)), "in_col": In(range(self.n_ptr)),
            "in_role": In(2), "in_layer": In(range(max(L, 2))), "in_par": In(1), "in_last": In(1), "ready": Out(1),
            "complete": In(1), "pending": Out(1),
            "clear_gates": In(2 * L), "clear_proj": In(2 * L),
            "busy": Out(1), "pop": Out(1),
        }
        if P.projection is not None:
            for rd in ("yb", "yo"):
                ports.update({f"{rd}_layer": In(range(max(L, 2))), f"{rd}_row": In(range(self.proj_eff)),
                              f"{rd}_par": In(1), f"{rd}_acc": Out(signed(P.proj_acc_bits))})
        for layer in range(L):
            ports.update({f"ew{layer}_cell": In(range(self.cells_eff)), f"ew{layer}_par": In(1),
                          **{f"ew{layer}_acc_{b}": Out(signed(P.gate_acc_bits)) for b in P.acc_blocks}})
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        P, img, m = self.p, self.img, Module()
        A, W, Wg, Wp = P.act_bits, P.weight_bits, P.gate_acc_bits, P.proj_acc_bits
        n_ptr_bits, lb, NL = len(self.in_col), len(self.in_layer), P.n_layers
        ncell, rows_g, rows_p = img.cells, len(P.acc_blocks) * self.cells_eff, self.proj_eff
        proj = P.projection

        # ---- ActQueue ------------------------------------------------------------------------
        fifo = m.submodules.queue = SyncFIFO(width=A + n_ptr_bits + 4 + lb, depth=P.queue_depth)
        wr = Signal()
        m.d.comb += [fifo.w_en.eq(self.in_valid), self.ready.eq(fifo.w_rdy), wr.eq(self.in_valid & fifo.w_rdy),
                     fifo.w_data.eq(Cat(self.in_act, self.in_col, self.in_role, self.in_par, self.in_last,
                                        self.in_layer))]
        h_act = fifo.r_data[:A].as_signed()
        h_col = fifo.r_data[A:A + n_ptr_bits]
        h_role = fifo.r_data[A + n_ptr_bits:A + n_ptr_bits + 2]
        h_par = fifo.r_data[A + n_ptr_bits + 2]
        h_last = fifo.r_data[A + n_ptr_bits + 3]
        h_layer = fifo.r_data[A + n_ptr_bits + 4:]

        # ---- pointer-read unit: ptr[col], ptr[col + 1] ------------------------------------------
        addr_bits = max(self.n_words.bit_length(), 1)
        ptr_mem = m.submodules.ptr = Memory(shape=addr_bits, depth=self.n_ptr, init=list(img.ptr))
        assert self.n_ptr == P.n_ptr
        ptr_a, ptr_b = ptr_mem.read_port(domain="comb"), ptr_mem.read_port(domain="comb")
        m.d.comb += [ptr_a.addr.eq(h_col), ptr_b.addr.eq(h_col + 1)]

        # head readiness: with prefetch a column may start pointer_latency cycles after it is readable
        ripe = Signal(range(P.queue_depth + 1))
        arrive = wr
        if P.pointer_prefetch:
            for k in range(P.pointer_latency):
                d = Signal(name=f"arrive_d{k}")
                m.d.sync += d.eq(arrive)
                arrive = d
        can_head = (ripe != 0) if P.pointer_prefetch else fifo.r_rdy

        # ---- column state -----------------------------------------------------------------------
        mac_phase = Signal()  # registered: a column's entries are being issued
        ptr_wait = Signal(range(max(P.pointer_latency, 1) + 1))  # no-prefetch pointer cycles left
        in_ptr = Signal()
        r_addr, r_end = Signal(addr_bits), Signal(addr_bits)
        r_act, r_role, r_par, r_last, r_first = Signal(signed(A)), Signal(2), Signal(), Signal(), Signal()
        r_layer, cur_layer = Signal(lb), Signal(lb)
        row_prev = Signal(range(max(rows_g, rows_p) + 1))

        pop = Signal()
        m.d.comb += pop.eq(~mac_phase & ~in_ptr & can_head)
        m.d.comb += [fifo.r_en.eq(pop), self.pop.eq(pop)]
        m.d.sync += ripe.eq(ripe + arrive - (pop if P.pointer_prefetch else 0))

        # the issuing column this cycle: straight from the head on a prefetch pop, else registers
        cur_active, cur_addr, cur_end = Signal(), Signal(addr_bits), Signal(addr_bits)
        cur_act, cur_role, cur_par, cur_last, cur_first = Signal(signed(A)), Signal(2), Signal(), Signal(), Signal()
        direct = P.pointer_prefetch or P.pointer_latency == 0
        with m.If(mac_phase):
            m.d.comb += [cur_active.eq(1), cur_addr.eq(r_addr), cur_end.eq(r_end), cur_act.eq(r_act),
                         cur_role.eq(r_role), cur_par.eq(r_par), cur_last.eq(r_last), cur_first.eq(r_first),
                         cur_layer.eq(r_layer)]
        with m.Elif(pop & direct):
            m.d.comb += [cur_active.eq(1), cur_addr.eq(ptr_a.data), cur_end.eq(ptr_b.data), cur_act.eq(h_act),
                         cur_role.eq(h_role), cur_par.eq(h_par), cur_last.eq(h_last), cur_first.eq(1),
                         cur_layer.eq(h_layer)]
        if not direct:
            with m.If(pop):  # pointer read: pointer_latency cycles including this one
                m.d.sync += [r_addr.eq(ptr_a.data), r_end.eq(ptr_b.data), r_act.eq(h_act), r_role.eq(h_role),
                             r_par.eq(h_par), r_last.eq(h_last), r_first.eq(1), r_layer.eq(h_layer)]
                if P.pointer_latency == 1:
                    m.d.sync += mac_phase.eq(1)
                else:
                    m.d.sync += [in_ptr.eq(1), ptr_wait.eq(P.pointer_latency - 2)]
            with m.If(in_ptr):
                with m.If(ptr_wait == 0):
                    m.d.sync += [in_ptr.eq(0), mac_phase.eq(1)]
                with m.Else():
                    m.d.sync += ptr_wait.eq(ptr_wait - 1)
        m.d.comb += self.busy.eq(cur_active | in_ptr)

        # ---- sparse-matrix read: one entry per cycle ------------------------------------------------
        ent_mem = m.submodules.entries = Memory(shape=P.index_bits + W, depth=self.n_words,
                                                init=list(img.words) or [0])
        ent = ent_mem.read_port(domain="comb")
        m.d.comb += ent.addr.eq(cur_addr)
        has_entry = cur_active & (cur_addr != cur_end)
        rel = ent.data[W:]
        weight = ent.data[:W].as_signed()
        row = Signal(range(max(rows_g, rows_p) + 1 << P.index_bits))
        m.d.comb += row.eq(Mux(cur_first, 0, row_prev + 1) + rel)
        finish = Signal()  # the column's last work cycle
        m.d.comb += finish.eq(cur_active & ((cur_addr == cur_end) | (cur_addr + 1 == cur_end)))
        with m.If(cur_active):
            m.d.sync += [r_addr.eq(cur_addr + 1), r_end.eq(cur_end), r_act.eq(cur_act), r_role.eq(cur_role),
                         r_par.eq(cur_par), r_last.eq(cur_last), r_first.eq(0), row_prev.eq(row),
                         r_layer.eq(cur_layer),
                         mac_phase.eq(~finish)]

        # ---- op completion bookkeeping --------------------------------------------------------------
        pend = Signal(range(P.queue_depth + 4))
        inc = finish & cur_last
        m.d.sync += pend.eq(pend + inc - self.complete)
        m.d.comb += self.pending.eq(pend != 0)

        # ---- MAC pipeline: product, mac_latency register stages, then accumulate ----------------------
        prod = Signal(signed(W + A))
        m.d.comb += prod.eq(weight * cur_act)
        stage = (has_entry, prod, cur_role, cur_par, row, cur_layer)
        for k in range(P.mac_latency):
            regs = (Signal(name=f"mac{k}_v"), Signal(signed(W + A), name=f"mac{k}_p"), Signal(2, name=f"mac{k}_role"),
                    Signal(name=f"mac{k}_par"), Signal(len(row), name=f"mac{k}_row"), Signal(lb, name=f"mac{k}_layer"))
            m.d.sync += [r.eq(s) for r, s in zip(regs, stage)]
            stage = regs
        a_v, a_prod, a_role, a_par, a_row, a_layer = stage

        # gate accumulators: rows [(2 * layer + par) * BC + block * C + cell]; written-flags per row
        gmem = m.submodules.gate_acc = Memory(shape=signed(Wg), depth=2 * NL * rows_g, init=[])
        gw, grd = gmem.write_port(), gmem.read_port(domain="comb")
        gvalid = Signal(2 * NL * rows_g)
        bias_init = [v for lay in img.bias for v in (list(lay) + [0] * (rows_g - len(lay)))]
        bias_mem = m.submodules.bias = Memory(shape=signed(Wg), depth=NL * rows_g, init=bias_init)
        b_mac = bias_mem.read_port(domain="comb")

        # the accumulator row of a gate matrix's local row: its row block moved to its accumulator block
        g_row = a_row
        if any(mp.remaps for mp in P.gate_matrices):
            g_row = Signal(len(a_row))
            m.d.comb += g_row.eq(a_row)
            with m.Switch(a_role):
                for mp in P.gate_matrices:
                    if mp.remaps:
                        with m.Case(mp.role):
                            for b, blk in enumerate(mp.blocks):
                                if blk != b:
                                    with m.If((a_row >= b * ncell) & (a_row < (b + 1) * ncell)):
                                        m.d.comb += g_row.eq(a_row + (blk - b) * ncell)
        g_idx = Signal(range(2 * NL * rows_g))
        m.d.comb += [g_idx.eq((a_layer * 2 + a_par) * rows_g + g_row), grd.addr.eq(g_idx),
                     b_mac.addr.eq(a_layer * rows_g + g_row), gw.addr.eq(g_idx)]
        shifted = Signal(signed(Wg))
        with m.Switch(Cat(a_role, a_layer)):
            for lay, lf in enumerate(P.layer_formats):
                for mp in P.gate_matrices:
                    with m.Case(mp.role | (lay << 2)):
                        m.d.comb += shifted.eq(a_prod << lf.shifts[mp.role])
        g_old = Mux(gvalid.bit_select(g_idx, 1), grd.data, b_mac.data)
        m.d.comb += gw.data.eq(g_old + shifted)
        gmask = Cat(*[~self.clear_gates[k].replicate(rows_g) for k in range(2 * NL)])
        m.d.sync += gvalid.eq(gvalid & gmask)
        if proj is not None:  # projection accumulators: rows [(2 * layer + par) * P_p + local row]
            pmem = m.submodules.proj_acc = Memory(shape=signed(Wp), depth=2 * NL * rows_p, init=[])
            pw, prd = pmem.write_port(), pmem.read_port(domain="comb")
            pvalid = Signal(2 * NL * rows_p)
            p_idx = Signal(range(2 * NL * rows_p))
            m.d.comb += [p_idx.eq((a_layer * 2 + a_par) * rows_p + a_row), prd.addr.eq(p_idx), pw.addr.eq(p_idx)]
            p_old = Mux(pvalid.bit_select(p_idx, 1), prd.data, 0)
            m.d.comb += pw.data.eq(p_old + a_prod)
            pmask = Cat(*[~self.clear_proj[k].replicate(rows_p) for k in range(2 * NL)])
            m.d.sync += pvalid.eq(pvalid & pmask)
        with m.If(a_v):
            if proj is not None:
                with m.If(a_role == proj.role):
                    m.d.comb += pw.en.eq(1)
                    m.d.sync += pvalid.bit_select(p_idx, 1).eq(1)
                with m.Else():
                    m.d.comb += gw.en.eq(1)
                    m.d.sync += gvalid.bit_select(g_idx, 1).eq(1)
            else:
                m.d.comb += gw.en.eq(1)
                m.d.sync += gvalid.bit_select(g_idx, 1).eq(1)

        # ---- element-wise read of one cell: rows block * C + cell of the step's parity -------------
        for lay in range(NL):
            cell, par = getattr(self, f"ew{lay}_cell"), getattr(self, f"ew{lay}_par")
            for g, blk in enumerate(P.acc_blocks):
                rd = gmem.read_port(domain="comb")
                brd = bias_mem.read_port(domain="comb")
                local = Signal(range(rows_g), name=f"ew{lay}_row{g}")
                idx = Signal(range(2 * NL * rows_g), name=f"ew{lay}_idx{g}")
                m.d.comb += [local.eq(g * ncell + cell), idx.eq((2 * lay + par) * rows_g + local),
                             rd.addr.eq(idx), brd.addr.eq(lay * rows_g + local),
                             getattr(self, f"ew{lay}_acc_{blk}").eq(Mux(gvalid.bit_select(idx, 1), rd.data, brd.data))]
        # ---- projection reads (broadcast of y, output of y) -------------------------------------------
        if proj is not None:
            for lay_in, row_in, par_in, out in ((self.yb_layer, self.yb_row, self.yb_par, self.yb_acc),
                                                (self.yo_layer, self.yo_row, self.yo_par, self.yo_acc)):
                rd = pmem.read_port(domain="comb")
                idx = Signal(range(2 * NL * rows_p))
                m.d.comb += [idx.eq((lay_in * 2 + par_in) * rows_p + row_in), rd.addr.eq(idx),
                             out.eq(Mux(pvalid.bit_select(idx, 1), rd.data, 0))]
        return m
