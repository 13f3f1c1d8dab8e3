"""The compiled program: everything an executor needs, in the form the hardware holds it.

A :class:`Program` is what a ``.ese`` image contains (``ese.compiler.image`` reads and writes it):
the encoded per-PE matrices of every layer, its vectors, the LUTs, the
fixed-point formats, the host-side output layer, the hardware parameters it was compiled for and
the per-step schedule. :func:`compile_qmodel` builds one from a fixed-point model;
:meth:`Program.to_qmodel` decodes it back (exactly) so any executor can be checked against the
integer reference model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ese.cell import known_arrays
from ese.compiler.encode import EncodedMatrix, encode_matrix
from ese.compress.fixedpoint import FIXED_POINT_SPEC_VERSION, Format
from ese.compress.qmodel import QLayer, QModel, validate_qmodel
from ese.config import FeatureConfig, HardwareConfig, ModelConfig, QuantConfig

if TYPE_CHECKING:  # the compiler only carries it; ese.compress.qmodel reads and writes it
    from ese.data.frontend import Normalisation


class LayerProgram:
    """One layer as the PEs hold it: the encoded matrices of its cell by name, in execution order
    (the gate matrices together are one gate SpMV over the concatenated operands, its CSC split
    at each matrix's columns; then the output matrix), the bias the accumulators start from, the
    vectors the element-wise unit holds, and the formats (``ese.cell``). ``layer.<name>`` reads
    a matrix or vector; an optional vector the layer lacks reads as None."""

    def __init__(self, matrices: dict[str, EncodedMatrix], bias: np.ndarray, vectors: dict[str, np.ndarray],
                 formats: dict[str, Format], hidden: int) -> None:
        self._matrices, self.bias, self.vectors = dict(matrices), bias, dict(vectors)
        self.formats, self.hidden = formats, hidden

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._matrices:
            return self._matrices[name]
        if name in self.vectors:
            return self.vectors[name]
        if name in known_arrays():  # an optional vector this layer lacks
            return None
        raise AttributeError(f"a layer program has no matrix or vector {name!r}")

    def matrices(self) -> dict[str, EncodedMatrix]:
        return dict(self._matrices)

    def arrays(self) -> dict[str, np.ndarray]:
        """The decoded matrices and the vectors, as a :class:`QLayer` holds them."""
        return {**{n: m.decode() for n, m in self._matrices.items()}, "bias": self.bias.copy(),
                **{n: v.copy() for n, v in self.vectors.items()}}


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
    features: FeatureConfig | None = None  # audio -> input features, as in QModel
    normalisation: Normalisation | None = None

    @property
    def n_pes(self) -> int:
        return self.hardware.pes

    def matrices(self) -> dict[str, EncodedMatrix]:
        """Every encoded matrix by name ("layer0.w_x", ...), in execution order."""
        return {m.name: m for layer in self.layers for m in layer.matrices().values()}

    def to_qmodel(self) -> QModel:
        """Decode back to the fixed-point model: equal to the compiled one, array for array."""
        layers = [QLayer(formats=dict(L.formats), **L.arrays()) for L in self.layers]
        qm = QModel(quant=self.quant, model=self.model, output_delay=self.output_delay, layers=layers,
                    w_out=self.w_out.copy(), b_out=self.b_out.copy(), output_formats=dict(self.output_formats),
                    luts={k: v.copy() for k, v in self.luts.items()}, phones=list(self.phones),
                    source=dict(self.source), spec_version=self.spec_version,
                    features=self.features, normalisation=self.normalisation)
        validate_qmodel(qm, where="the decoded program")
        return qm


def balance_check(source: dict[str, Any], pes: int) -> dict[str, Any]:
    """How the PE count the model was pruned for (``source["balanced_for_pes"]``, recorded by
    ``ese quantize`` from the pruned checkpoint) compares with the ``pes`` it is compiled for.
    Another count is allowed (the encoder pads whatever the balance); ``matches`` says whether
    the load balance that pruning bought still holds."""
    model_pes = source.get("balanced_for_pes")
    return {"balanced_for_pes": model_pes, "pes": pes, "matches": model_pes is None or model_pes == pes}


def balance_warning(check: dict[str, Any]) -> str | None:
    """The one warning line for a PE-count mismatch, or None."""
    if check["matches"]:
        return None
    return (f"warning: the model was load-balanced for {check['balanced_for_pes']} PEs and is compiled for "
            f"{check['pes']}: its rows no longer spread evenly (see the per-PE non-zeros)")


def compile_qmodel(qm: QModel, hardware: HardwareConfig | None = None) -> Program:
    """Encode every matrix of ``qm``'s layers for ``hardware.pes`` PEs and schedule one step."""
    from ese.compiler.schedule import build_schedule
    from ese.partition import check_pes

    hw = hardware or HardwareConfig()
    check_pes(hw.pes, "HardwareConfig.pes")
    validate_qmodel(qm, where="the model to compile")
    wb = qm.quant.weight_bits
    cell = qm.cell
    layers = []
    for k, L in enumerate(qm.layers):
        enc = {name: encode_matrix(f"layer{k}.{name}", getattr(L, name), hw.pes, hw.index_bits, wb, cell.name)
               for name in cell.matrix_names}
        vectors = {n: getattr(L, n).copy() for n in cell.vector_names(qm.model) if n != "bias"}
        layers.append(LayerProgram(enc, L.bias.copy(), vectors, dict(L.formats), qm.model.hidden))
    prog = Program(hardware=hw, quant=qm.quant, model=qm.model, output_delay=qm.output_delay, layers=layers,
                   w_out=qm.w_out.copy(), b_out=qm.b_out.copy(), output_formats=dict(qm.output_formats),
                   luts={k: v.copy() for k, v in qm.luts.items()}, schedule=None, phones=list(qm.phones),
                   source={**qm.source, "compiled_with": dataclasses.asdict(hw)}, spec_version=qm.spec_version,
                   features=qm.features, normalisation=qm.normalisation)
    prog.schedule = build_schedule(prog)
    return prog
