"""The top level: a frame buffer in front of one channel, with cycle counters."""

from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ese.rtl.channel import CYCLE_BITS, Channel
from ese.rtl.params import RtlParams


class Top(wiring.Component):
    """Frame buffer (``max_frames`` x D activations, written by the host) and one :class:`Channel`.

    Every program memory (entries, pointers, bias, the lanes' per-cell vectors, LUTs) is initialised from the
    program image at elaboration (``initial`` contents in the exported Verilog).

    Ports
    -----
    frame_we, frame_addr (t * D + k), frame_data (signed A) : In    host writes the input frames
    start, n_frames : In            run T frames (the frames must be written first)
    y_valid, y_step, y_index, y_data : Out   the output vectors y_t, one element per cycle
    running, done : Out(1)
    cycles : Out(32)                cycles of the utterance (docs/cycle-model.md ``total``)
    bcast, pops : Out               broadcast / per-PE pop strobes (observation of ``b``, ``s``)
    """

    def __init__(self, *, params: RtlParams) -> None:
        self.p = params
        super().__init__(self.port_shapes(params))

    @staticmethod
    def port_shapes(P: RtlParams) -> dict:
        """The signature's members (also used to size the generated testbench's wires)."""
        depth = max(P.max_frames * P.input_dim, 2)
        return {
            "frame_we": In(1), "frame_addr": In(range(depth)), "frame_data": In(signed(P.act_bits)),
            "start": In(1), "n_frames": In(range(P.max_frames + 1)),
            "y_valid": Out(1), "y_step": Out(range(P.max_frames)), "y_index": Out(range(max(P.proj, 2))),
            "y_data": Out(signed(P.act_bits)), "running": Out(1), "done": Out(1), "cycles": Out(CYCLE_BITS),
            "bcast": Out(1), "pops": Out(P.pes),
        }

    def elaborate(self, platform) -> Module:
        P, m = self.p, Module()
        ch = m.submodules.channel = Channel(params=P)
        frames = m.submodules.frames = Memory(shape=signed(P.act_bits), depth=max(P.max_frames * P.input_dim, 2),
                                              init=[])
        w, r = frames.write_port(), frames.read_port(domain="comb")
        m.d.comb += [w.en.eq(self.frame_we), w.addr.eq(self.frame_addr), w.data.eq(self.frame_data),
                     r.addr.eq(ch.x_addr), ch.x_data.eq(r.data),
                     ch.start.eq(self.start), ch.n_frames.eq(self.n_frames),
                     self.y_valid.eq(ch.y_valid), self.y_step.eq(ch.y_step), self.y_index.eq(ch.y_index),
                     self.y_data.eq(ch.y_data), self.running.eq(ch.running), self.done.eq(ch.done),
                     self.cycles.eq(ch.cycles), self.bcast.eq(ch.bcast), self.pops.eq(ch.pops)]
        return m
