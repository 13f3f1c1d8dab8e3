"""What every element-wise lane shares: its ports, the accumulator rounding, the LUT ROMs, the
state memory that a new utterance forgets, and the output: extra latency, buffer, read ports.

A lane serves the cells k = p, p + N, ... of PE p for one layer (``in_cell``: the local index),
one cell per cycle; its cell-specific stages are a subclass's (``ese.rtl.ew``: LSTMP,
``ese.rtl.ew_gru``: GRU; ``ese.rtl.lanes`` says which cell uses which). Ports of every lane:

in_valid, in_cell : In                  a cell enters stage 0
acc_<block> : In(signed gate width)     its exact sum of each accumulator block of the cell (from the PE)
clear : In(1)                           forget the state (start of an utterance: state_{-1} = 0)
out_valid, out_cell, out_data : Out     the output written to the output buffer this cycle
rd_cell : In;  rd_data : Out(signed A)  combinational read of the output buffer (the broadcast)

A lane whose output is y itself (a cell without an output matrix) double-buffers its output by
step parity, since the next step's broadcast still reads y_{t-1} and the layer above y_t:
in_par : In(1) (the step's parity), rd_par : In(1), and a second read port for the output unit,
yo_cell, yo_par : In;  yo_data : Out(signed A).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ese.rtl.fixed import align, lut_index, saturate
from ese.rtl.plan import LaneImage, RtlParams


class Lane(wiring.Component):
    """The shared part of an element-wise lane (module docstring); ``STAGES``: the least
    ``ew_latency`` (cycles from a cell entering to its output readable) a subclass implements."""

    STAGES = 1

    def __init__(self, *, params: RtlParams, image: LaneImage, layer: int = 0, ports: dict | None = None) -> None:
        if params.ew_latency < self.STAGES:
            raise ValueError(f"the {type(self).__name__} has {self.STAGES} stages: ew_latency must be >= "
                             f"{self.STAGES}, not {params.ew_latency}")
        self.p, self.img, self.layer = params, image, layer
        self.lf = params.layer_formats[layer]
        self.cells_eff = max(image.cells, 1)
        self.holds_y = params.projection is None
        cell, A = range(self.cells_eff), signed(params.act_bits)
        members = {"in_valid": In(1), "in_cell": In(cell),
                   **{f"acc_{b}": In(signed(params.gate_acc_bits)) for b in params.acc_blocks},
                   "clear": In(1), "out_valid": Out(1), "out_cell": Out(cell), "out_data": Out(A),
                   "rd_cell": In(cell), "rd_data": Out(A)}
        if self.holds_y:
            members.update({"in_par": In(1), "rd_par": In(1), "yo_cell": In(cell), "yo_par": In(1), "yo_data": Out(A)})
        super().__init__({**members, **(ports or {})})

    def acc_in(self) -> tuple[Value, ...]:
        """The accumulator blocks rounded to Facc and saturated (the PE output ``acc``), in block order."""
        P, f = self.p, self.lf.frac
        return tuple(saturate(align(getattr(self, f"acc_{b}"), self.lf.f_sum - f["acc"]), P.acc_bits)
                     for b in P.acc_blocks)

    def narrow(self, v: Value, src: str, dst: str) -> Value:
        """``sat_A(align(v, F_src -> F_dst))``."""
        f = self.lf.frac
        return saturate(align(v, f[src] - f[dst]), self.p.act_bits)

    def rom(self, m: Module, name: str, table: str) -> Memory:
        """A LUT (``sigmoid`` or ``tanh``) as a ROM with synchronous read ports."""
        values = getattr(self.p, table)
        rom = m.submodules[name] = Memory(shape=signed(self.p.act_bits), depth=len(values), init=list(values))
        return rom

    def lut_addr(self, z: Value, table: str, signal: str) -> Value:
        """The table index of ``z`` at the binary point of ``signal``."""
        return lut_index(z, self.lf.frac[signal] + getattr(self.p, f"{table}_shift"), len(getattr(self.p, table)))

    def state(self, m: Module, name: str):
        """The per-cell state carried from step to step (zero before its first write after
        ``clear``): returns (its value at ``in_cell``, write(cell, data, valid))."""
        n, A = self.cells_eff, self.p.act_bits
        mem = m.submodules[name] = Memory(shape=signed(A), depth=n, init=[])
        rd, wr = mem.read_port(domain="comb"), mem.write_port()
        written = Signal(n, name=f"{name}_written")
        m.d.comb += rd.addr.eq(self.in_cell)
        with m.If(self.clear):
            m.d.sync += written.eq(0)

        def write(cell, data, valid) -> None:
            m.d.comb += [wr.addr.eq(cell), wr.data.eq(data), wr.en.eq(valid)]
            with m.If(valid & ~self.clear):
                m.d.sync += written.bit_select(cell, 1).eq(1)

        return Mux(written.bit_select(self.in_cell, 1), rd.data, 0), write

    def output(self, m: Module, stages: int, valid, cell, data, par=None) -> None:
        """The value of the last stage (``stages`` cycles after entry): ``ew_latency - stages``
        register stages, then the output buffer (readable the next cycle: ``ew_latency`` after entry)."""
        n, A = self.cells_eff, self.p.act_bits
        stage = (valid, cell, data) + ((par,) if self.holds_y else ())
        for k in range(self.p.ew_latency - stages):
            regs = (Signal(name=f"x{k}_v"), Signal(range(n), name=f"x{k}_cell"), Signal(signed(A), name=f"x{k}_out"),
                    Signal(name=f"x{k}_par"))[:len(stage)]
            m.d.sync += [r.eq(s) for r, s in zip(regs, stage)]
            stage = regs
        valid, cell, data = stage[:3]
        buf = m.submodules.out = Memory(shape=signed(A), depth=2 * n if self.holds_y else n, init=[])
        w, r = buf.write_port(), buf.read_port(domain="comb")
        m.d.comb += [w.data.eq(data), w.en.eq(valid), self.out_valid.eq(valid), self.out_cell.eq(cell),
                     self.out_data.eq(data), self.rd_data.eq(r.data)]
        if self.holds_y:
            yo = buf.read_port(domain="comb")
            m.d.comb += [w.addr.eq(stage[3] * n + cell), r.addr.eq(self.rd_par * n + self.rd_cell),
                         yo.addr.eq(self.yo_par * n + self.yo_cell), self.yo_data.eq(yo.data)]
        else:
            m.d.comb += [w.addr.eq(cell), r.addr.eq(self.rd_cell)]
