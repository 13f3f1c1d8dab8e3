"""One channel: N PEs, the activation broadcast, the element-wise lanes and the controller."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ese.cell import INPUT, RECURRENT
from ese.rtl.fixed import align, saturate
from ese.rtl.lanes import LANES
from ese.rtl.pe import PE
from ese.rtl.plan import RtlParams

CYCLE_BITS = 32


class Channel(wiring.Component):
    """A channel running one utterance through the recurrent layers (ESE.md section 6, docs/cycle-model.md).

    The cell (``RtlParams.matrices``, from ``ese.cell``) gives the ops: the gate SpMVs (x, then
    r), the element-wise stage on the cell's lanes (``ese.rtl.lanes``), and the output SpMV when
    the cell has one (the LSTMP's ym); without one (the GRU) y_t is the lanes' output itself.

    The **broadcaster** walks the program's issue order (prologue once, then the steady items
    for t = 0 .. T-1, items of steps outside [0, T) skipped without a cycle) and puts one column per
    cycle on the bus to every PE's ActQueue when all queues have room and the activation exists:
    x_t of layer 0 from the frame buffer, x_t of layer l > 0 (y_t of layer l-1) and y_{t-1} once
    ready (rounded from the projection accumulators, or read from the lanes' output buffers), the
    element-wise output cell by cell as the layer's lanes write it (for the output SpMV). The
    **completion tracker** walks the same order: an op is done when every PE has finished its last
    column (``done = max_p f + mac_latency``); per layer it counts done gate ops (gating the
    element-wise stage) and ready y (``done(ym) + y_latency``, or when the last group leaves the
    lanes). Per layer, the **element-wise controller** issues cells j = 0 .. ceil(H/N)-1 of step t
    to that layer's lanes, one group per cycle, once the gate ops of t are done and the previous
    step's groups are issued. The **output unit** streams y_t of the last layer row by row once it
    is ready.

    Ports
    -----
    start : In(1)                       pulse: run ``n_frames`` frames; cycle 0 is the next cycle
    n_frames : In(range(max_frames+1))  T (>= 1), held during the run
    x_addr : Out;  x_data : In(signed A)    combinational read of the frame buffer (t * D + k)
    y_valid, y_step, y_index, y_data : Out  one element of an output y_t per cycle
    running, done : Out(1)              ``done``: every y ready and streamed out
    cycles : Out(32)                    y_ready of the last step (the cycle model's ``total``)
    bcast, pops : Out                   a column is broadcast / PE p pops a column this cycle
                                        (observation: the cycle model's ``b[c]`` and ``s[p, c]``)
    """

    def __init__(self, *, params: RtlParams) -> None:
        self.p = params
        P = params
        super().__init__({
            "start": In(1), "n_frames": In(range(P.max_frames + 1)),
            "x_addr": Out(range(max(P.max_frames * P.input_dim, 2))), "x_data": In(signed(P.act_bits)),
            "y_valid": Out(1), "y_step": Out(range(P.max_frames)), "y_index": Out(range(max(P.proj, 2))),
            "y_data": Out(signed(P.act_bits)),
            "running": Out(1), "done": Out(1), "cycles": Out(CYCLE_BITS),
            "bcast": Out(1), "pops": Out(P.pes),
        })

    # ---- helpers ----------------------------------------------------------------------------------
    def _y_round(self, m: Module, v, layer, name: str):
        """y of ``layer`` (a signal or an int) from an exact projection sum (two roundings, two saturations)."""
        P = self.p
        out = Signal(signed(P.act_bits), name=name)

        def rnd(f):
            proj = P.projection
            acc_y = saturate(align(v, f[proj.name] + f[proj.operand] - f["acc_y"]), P.acc_bits)
            return saturate(align(acc_y, f["acc_y"] - f["y"]), P.act_bits)

        if isinstance(layer, int):
            m.d.comb += out.eq(rnd(P.layer_formats[layer].frac))
        else:
            with m.Switch(layer):
                for lay, lf in enumerate(P.layer_formats):
                    with m.Case(lay):
                        m.d.comb += out.eq(rnd(lf.frac))
        return out

    def _next_item(self, m: Module, pos, t, T, name: str):
        """(exists, pos', t'): the first item after (pos, t) whose step lies in [0, T)."""
        items = self.p.items
        n, first_steady = len(items), next(i for i, it in enumerate(items) if it[3])
        n_steady = n - first_steady
        ex, npos, nt = Signal(name=f"{name}_ex"), Signal(range(n), name=f"{name}_pos"), Signal(len(t) + 1, name=f"{name}_t")
        with m.Switch(pos):
            for i in range(n):
                with m.Case(i):
                    cands, j, dT = [], i, 0
                    for _ in range(n + n_steady):
                        j += 1
                        if j == n:
                            j, dT = first_steady, dT + 1
                        cands.append((j, dT))
                    chain = m.If
                    for j, dT in cands:
                        _, _, dt, steady = items[j]
                        step = (t + dT + dt) if steady else dt
                        with chain(step < T):
                            m.d.comb += [ex.eq(1), npos.eq(j), nt.eq(t + dT)]
                        chain = m.Elif
        return ex, npos, nt

    def _delayed(self, m: Module, pulse, delay: int, name: str):
        for k in range(delay):
            d = Signal(name=f"{name}_d{k}")
            m.d.sync += d.eq(pulse)
            pulse = d
        return pulse

    # ---- the hardware -------------------------------------------------------------------------------
    def elaborate(self, platform) -> Module:
        P, m = self.p, Module()
        N, A, NL = P.pes, P.act_bits, P.n_layers
        proj = P.projection
        gate_roles = [mp.role for mp in P.gate_matrices]
        role_x = next(mp.role for mp in P.gate_matrices if mp.operand == INPUT)
        role_r = next(mp.role for mp in P.gate_matrices if mp.operand == RECURRENT)
        pes = [PE(params=P, image=img) for img in P.pe_images]
        lane_cls = LANES[P.cell]
        lanes = [[lane_cls(params=P, image=img, layer=lay) for img in P.lanes[lay]] for lay in range(NL)]
        for p in range(N):
            m.submodules[f"pe{p}"] = pes[p]
            for lay in range(NL):
                m.submodules[f"ew{lay}_{p}"] = lanes[lay][p]
        T = self.n_frames
        step_bits = len(T) + 1
        running, finished = Signal(), Signal()
        cyc = Signal(CYCLE_BITS)
        m.d.comb += self.running.eq(running)

        # per-layer progress counters (registered): done gate ops by role, ready y; m-buffer tracking
        g_cnt = [{r_: Signal(step_bits, name=f"{mp.name}_cnt{lay}") for r_, mp in zip(gate_roles, P.gate_matrices)}
                 for lay in range(NL)]
        y_cnt = [Signal(step_bits, name=f"y_cnt{lay}") for lay in range(NL)]
        m_step = [Signal(step_bits, name=f"m_step{lay}") for lay in range(NL)]
        m_groups = [Signal(range(P.groups + 1), name=f"m_groups{lay}") for lay in range(NL)]
        m_started = [Signal(name=f"m_started{lay}") for lay in range(NL)]

        # ---- broadcaster -----------------------------------------------------------------------------
        pos, t = Signal(range(len(P.items))), Signal(step_bits)
        stream_on = Signal()
        max_k = max(P.input_dim, P.proj, P.hidden)
        k, sel, loc = Signal(range(max_k)), Signal(range(N)), Signal(range(-(-max_k // N) + 1))
        role, layer, step, last_k = Signal(2), Signal(range(max(NL, 2))), Signal(step_bits), Signal(range(max_k))
        col = Signal(range(P.n_ptr))
        avail = Signal()
        with m.Switch(pos):
            for i, (lay, r_, dt, steady) in enumerate(P.items):
                with m.Case(i):
                    m.d.comb += [role.eq(r_), layer.eq(lay), step.eq(t + dt if steady else dt),
                                 last_k.eq(P.cols(r_, lay) - 1), col.eq(P.ptr_offset(r_, lay) + k)]
                    if r_ == role_x:
                        m.d.comb += avail.eq(1 if lay == 0 else y_cnt[lay - 1] > step)
                    elif r_ == role_r:
                        m.d.comb += avail.eq(y_cnt[lay] >= step)
                    else:
                        m.d.comb += avail.eq(m_started[lay] & (m_step[lay] == step) & (loc < m_groups[lay]))
        # y source: x of layer l > 0 reads y_t of layer l-1, r of layer l reads y_{t-1} of layer l
        y_layer, y_par = Signal(range(max(NL, 2))), Signal()
        with m.If(role == role_x):
            m.d.comb += [y_layer.eq(layer - 1), y_par.eq(step[0])]
        with m.Else():
            m.d.comb += [y_layer.eq(layer), y_par.eq(~step[0])]
        for lay in range(NL):
            for lane in lanes[lay]:
                m.d.comb += lane.rd_cell.eq(loc)
        if proj is not None:  # y rounded from the projection accumulators
            yb_acc = Array([pe.yb_acc for pe in pes])[sel]
            for pe in pes:
                m.d.comb += [pe.yb_layer.eq(y_layer), pe.yb_row.eq(loc), pe.yb_par.eq(y_par)]
            y_value = self._y_round(m, yb_acc, y_layer, "y_bcast")
        else:  # y is the lanes' output (double-buffered by step parity); y_{-1} = 0
            y_value = Signal(signed(A), name="y_bcast")
            for lay in range(NL):
                for lane in lanes[lay]:
                    m.d.comb += lane.rd_par.eq(y_par)
            with m.Switch(y_layer):
                for lay in range(NL):
                    with m.Case(lay):
                        m.d.comb += y_value.eq(Mux((role == role_r) & (step == 0), 0,
                                                   Array([lane.rd_data for lane in lanes[lay]])[sel]))
        m_value = Signal(signed(A))
        with m.Switch(layer):
            for lay in range(NL):
                with m.Case(lay):
                    m.d.comb += m_value.eq(Array([lane.rd_data for lane in lanes[lay]])[sel])
        m.d.comb += self.x_addr.eq(step * P.input_dim + k)
        value = Signal(signed(A))
        with m.Switch(role):
            with m.Case(role_x):
                m.d.comb += value.eq(Mux(layer == 0, self.x_data, y_value))
            with m.Case(role_r):
                m.d.comb += value.eq(y_value)
            if proj is not None:
                with m.Case(proj.role):
                    m.d.comb += value.eq(m_value)
        acc_ready = pes[0].ready
        for pe in pes[1:]:
            acc_ready = acc_ready & pe.ready
        fire = Signal()
        m.d.comb += [fire.eq(running & stream_on & acc_ready & avail), self.bcast.eq(fire),
                     self.pops.eq(Cat(*[pe.pop for pe in pes]))]
        clear_g, clear_p = Signal(2 * NL), Signal(2 * NL)
        slot = Signal(range(2 * NL))
        m.d.comb += slot.eq(layer * 2 + step[0])
        with m.If(fire & (k == 0)):
            with m.If(role == gate_roles[0]):  # the step's first gate op starts its accumulators afresh
                m.d.comb += clear_g.eq(1 << slot)
            if proj is not None:
                with m.If(role == proj.role):
                    m.d.comb += clear_p.eq(1 << slot)
        with m.If(self.start):
            m.d.comb += [clear_g.eq(-1), clear_p.eq(-1)]
        for pe in pes:
            m.d.comb += [pe.in_valid.eq(fire), pe.in_act.eq(value), pe.in_col.eq(col), pe.in_role.eq(role),
                         pe.in_layer.eq(layer), pe.in_par.eq(step[0]), pe.in_last.eq(k == last_k),
                         pe.clear_gates.eq(clear_g), pe.clear_proj.eq(clear_p)]
        b_ex, b_pos, b_t = self._next_item(m, pos, t, T, "bnext")
        with m.If(fire):
            with m.If(k == last_k):
                m.d.sync += [k.eq(0), sel.eq(0), loc.eq(0), pos.eq(b_pos), t.eq(b_t), stream_on.eq(b_ex)]
            with m.Else():
                m.d.sync += k.eq(k + 1)
                with m.If(sel == N - 1):
                    m.d.sync += [sel.eq(0), loc.eq(loc + 1)]
                with m.Else():
                    m.d.sync += sel.eq(sel + 1)

        # ---- completion tracker ------------------------------------------------------------------------
        cpos, ct = Signal(range(len(P.items))), Signal(step_bits)
        complete = pes[0].pending
        for pe in pes[1:]:
            complete = complete & pe.pending
        for pe in pes:
            m.d.comb += pe.complete.eq(complete)
        _, c_pos, c_t = self._next_item(m, cpos, ct, T, "cnext")
        with m.If(complete):
            m.d.sync += [cpos.eq(c_pos), ct.eq(c_t)]
        c_is = {(lay, mp.role): Signal(name=f"c_is_{lay}_{mp.role}") for lay in range(NL) for mp in P.matrices}
        with m.Switch(cpos):
            for i, (lay, r_, dt, steady) in enumerate(P.items):
                with m.Case(i):
                    m.d.comb += c_is[(lay, r_)].eq(1)
        for lay in range(NL):
            for r_, cnt in g_cnt[lay].items():
                ev = self._delayed(m, complete & c_is[(lay, r_)], P.mac_latency - 1, f"done{lay}_{r_}")
                m.d.sync += cnt.eq(cnt + ev)
            if proj is not None:
                y_ev = self._delayed(m, complete & c_is[(lay, proj.role)], P.mac_latency + P.y_latency - 1,
                                     f"yready{lay}")
            else:  # y_t is ready when the last group's output is readable (written this cycle)
                y_ev = lanes[lay][0].out_valid & (m_groups[lay] == P.groups - 1)
            m.d.sync += y_cnt[lay].eq(y_cnt[lay] + y_ev)

        # ---- element-wise controllers (one per layer) -------------------------------------------------------
        ew_ts = []
        for lay in range(NL):
            ew_t, ew_j, ew_active = (Signal(step_bits, name=f"ew{lay}_t"), Signal(range(P.groups), name=f"ew{lay}_j"),
                                     Signal(name=f"ew{lay}_active"))
            ew_ts.append((ew_t, ew_j, ew_active))
            ew_go = Signal(name=f"ew{lay}_go")
            gates_done = 1
            for cnt in g_cnt[lay].values():
                gates_done = gates_done & (cnt > ew_t)
            m.d.comb += ew_go.eq(running & ~ew_active & (ew_t < T) & gates_done)
            issuing = ew_active | ew_go
            j_cur = Signal(range(P.groups), name=f"ew{lay}_jcur")
            m.d.comb += j_cur.eq(ew_j & ew_active.replicate(len(ew_j)))
            for p, (pe, lane) in enumerate(zip(pes, lanes[lay])):
                m.d.comb += [getattr(pe, f"ew{lay}_cell").eq(j_cur), getattr(pe, f"ew{lay}_par").eq(ew_t[0]),
                             lane.in_valid.eq(issuing & (j_cur < P.lanes[lay][p].cells)), lane.in_cell.eq(j_cur),
                             lane.clear.eq(self.start)]
                m.d.comb += [getattr(lane, f"acc_{b}").eq(getattr(pe, f"ew{lay}_acc_{b}")) for b in P.acc_blocks]
                if proj is None:
                    m.d.comb += lane.in_par.eq(ew_t[0])
            with m.If(issuing):
                with m.If(j_cur == P.groups - 1):
                    m.d.sync += [ew_active.eq(0), ew_t.eq(ew_t + 1), ew_j.eq(0)]
                with m.Else():
                    m.d.sync += [ew_active.eq(1), ew_j.eq(j_cur + 1)]
            with m.If(ew_go):
                m.d.sync += [m_step[lay].eq(ew_t), m_groups[lay].eq(0), m_started[lay].eq(1)]
            with m.Elif(lanes[lay][0].out_valid):
                m.d.sync += m_groups[lay].eq(m_groups[lay] + 1)

        # ---- output unit (y of the last layer) --------------------------------------------------------------
        last = NL - 1
        o_t, o_row, o_active = Signal(step_bits), Signal(range(max(P.proj, 2))), Signal()
        o_sel, o_loc = Signal(range(N)), Signal(range(-(-P.proj // N) + 1))
        if proj is not None:
            for pe in pes:
                m.d.comb += [pe.yo_layer.eq(last), pe.yo_row.eq(o_loc), pe.yo_par.eq(o_t[0])]
            y_out = self._y_round(m, Array([pe.yo_acc for pe in pes])[o_sel], last, "y_out")
        else:
            for lane in lanes[last]:
                m.d.comb += [lane.yo_cell.eq(o_loc), lane.yo_par.eq(o_t[0])]
            y_out = Array([lane.yo_data for lane in lanes[last]])[o_sel]
        m.d.comb += [self.y_valid.eq(o_active), self.y_step.eq(o_t), self.y_index.eq(o_row), self.y_data.eq(y_out)]
        with m.If(o_active):
            with m.If(o_row == P.proj - 1):
                m.d.sync += [o_active.eq(0), o_t.eq(o_t + 1), o_row.eq(0), o_sel.eq(0), o_loc.eq(0)]
            with m.Else():
                m.d.sync += o_row.eq(o_row + 1)
                with m.If(o_sel == N - 1):
                    m.d.sync += [o_sel.eq(0), o_loc.eq(o_loc + 1)]
                with m.Else():
                    m.d.sync += o_sel.eq(o_sel + 1)
        with m.Elif(running & (o_t < y_cnt[last])):
            m.d.sync += o_active.eq(1)

        # ---- run control and the cycle counter -------------------------------------------------------------
        m.d.comb += [self.cycles.eq(cyc), self.done.eq(finished & (o_t == T) & ~o_active)]
        with m.If(running & ~finished):
            with m.If(y_cnt[last] == T):
                m.d.sync += finished.eq(1)
            with m.Else():
                m.d.sync += cyc.eq(cyc + 1)
        with m.If(self.start):
            m.d.sync += [running.eq(1), finished.eq(0), cyc.eq(0), pos.eq(0), t.eq(0), stream_on.eq(1),
                         k.eq(0), sel.eq(0), loc.eq(0), cpos.eq(0), ct.eq(0),
                         o_t.eq(0), o_row.eq(0), o_active.eq(0), o_sel.eq(0), o_loc.eq(0)]
            for lay in range(NL):
                ew_t, ew_j, ew_active = ew_ts[lay]
                m.d.sync += [*(cnt.eq(0) for cnt in g_cnt[lay].values()), y_cnt[lay].eq(0), ew_t.eq(0),
                             ew_j.eq(0), ew_active.eq(0), m_started[lay].eq(0)]
        return m
