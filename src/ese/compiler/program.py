"""The compiled program: everything an executor needs, in the form the hardware holds it.

A :class:`Program` is what a ``.ese`` image contains (``ese.compiler.image`` reads and writes it):
the encoded per-PE matrices of every layer, the bias and peephole vectors, the LUTs, the
fixed-point formats, the host-side output layer, the hardware parameters it was compiled for and
the per-step schedule. :func:`compile_qmodel` builds one from a fixed-point model;
:meth:`Program.to_qmodel` decodes it back (exactly) so any executor can be checked against the
integer reference model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ese.compiler.encode import EncodedMatrix, encode_matrix
from ese.compress.fixedpoint import FIXED_POINT_SPEC_VERSION, Format
from ese.compress.qmodel import QLayer, QModel, validate_qmodel
from ese.config import HardwareConfig, ModelConfig, QuantConfig
from ese.partition import LAYER_MATRICES


@dataclass(eq=False)
class LayerProgram:
    """One LSTMP layer: ``w_x`` (4H, D) and ``w_r`` (4H, P) together are the gate matrix over
    [x_t ; y_{t-1}] (its CSC split at column D), ``w_ym`` (P, H) the projection."""

    w_x: EncodedMatrix
    w_r: EncodedMatrix
    w_ym: EncodedMatrix
    bias: np.ndarray  # (4H,) int64, format "bias"
    peephole: np.ndarray | None  # (3, H) int64 or None
    formats: dict[str, Format]

    def matrices(self) -> dict[str, EncodedMatrix]:
        return {"w_x": self.w_x, "w_r": self.w_r, "w_ym": self.w_ym}

    @property
    def hidden(self) -> int:
        return self.w_ym.n_cols


@dataclass(eq=False)
class Program:
    """A compiled model (see module docstring). ``schedule`` is ``ese.compiler.schedule.Schedule``."""

    hardware: HardwareConfig
    quant: QuantConfig
    model: ModelConfig
    output_delay: int
    layers: list[LayerProgram]
    w_out: np.ndarray  # (C, P) int64, host side
    b_out: np.ndarray  # (C,) int64
    output_formats: dict[str, Format]
    luts: dict[str, np.ndarray]  # "sigmoid", "tanh"
    schedule: Any
    phones: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    spec_version: int = FIXED_POINT_SPEC_VERSION

    @property
    def n_pes(self) -> int:
        return self.hardware.pes

    def matrices(self) -> dict[str, EncodedMatrix]:
        """Every encoded matrix by name ("layer0.w_x", ...), in execution order."""
        return {m.name: m for layer in self.layers for m in layer.matrices().values()}

    def to_qmodel(self) -> QModel:
        """Decode back to the fixed-point model: equal to the compiled one, array for array."""
        layers = [QLayer(w_x=L.w_x.decode(), w_r=L.w_r.decode(), bias=L.bias.copy(),
                         peephole=None if L.peephole is None else L.peephole.copy(),
                         w_ym=L.w_ym.decode(), formats=dict(L.formats)) for L in self.layers]
        qm = QModel(quant=self.quant, model=self.model, output_delay=self.output_delay, layers=layers,
                    w_out=self.w_out.copy(), b_out=self.b_out.copy(), output_formats=dict(self.output_formats),
                    luts={k: v.copy() for k, v in self.luts.items()}, phones=list(self.phones),
                    source=dict(self.source), spec_version=self.spec_version)
        validate_qmodel(qm, where="the decoded program")
        return qm


def compile_qmodel(qm: QModel, hardware: HardwareConfig | None = None) -> Program:
    """Encode every LSTM matrix of ``qm`` for ``hardware.pes`` PEs and schedule one step."""
    from ese.compiler.schedule import build_schedule

    from ese.partition import check_pes

    hw = hardware or HardwareConfig()
    check_pes(hw.pes, "HardwareConfig.pes")
    validate_qmodel(qm, where="the model to compile")
    wb = qm.quant.weight_bits
    layers = []
    for k, L in enumerate(qm.layers):
        enc = {name: encode_matrix(f"layer{k}.{name}", getattr(L, name), hw.pes, hw.index_bits, wb)
               for name in LAYER_MATRICES}
        layers.append(LayerProgram(**enc, bias=L.bias.copy(),
                                   peephole=None if L.peephole is None else L.peephole.copy(),
                                   formats=dict(L.formats)))
    prog = Program(hardware=hw, quant=qm.quant, model=qm.model, output_delay=qm.output_delay, layers=layers,
                   w_out=qm.w_out.copy(), b_out=qm.b_out.copy(), output_formats=dict(qm.output_formats),
                   luts={k: v.copy() for k, v in qm.luts.items()}, schedule=None, phones=list(qm.phones),
                   source={**qm.source, "compiled_with": dataclasses.asdict(hw)}, spec_version=qm.spec_version)
    prog.schedule = build_schedule(prog)
    return prog
