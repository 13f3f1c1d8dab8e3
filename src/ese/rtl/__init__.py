"""ESE in Amaranth HDL: PE, element-wise lane, channel (broadcast + controller) and top.

``params`` derives every width, shift and memory image from a compiled program; ``pe``, ``ew``,
``channel`` and ``top`` are the hardware; ``sim`` runs it in Amaranth's simulator; ``export``
writes Verilog and an Icarus testbench; ``synth`` runs yosys ``synth_xilinx``; ``check`` is the
one-call comparison against the integer reference model used by ``ese run --rtl``.
"""
