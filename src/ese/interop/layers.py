"""One recurrent layer in ese's order, whatever file it came from, and the block-order maps.

Which framework layer holds which cell, in which gate order, is the cell description's
(``ese.cell.CellSpec.foreign``: a :class:`ese.cell.ForeignLayer` per framework); this module
moves row blocks by it and knows no gate. :func:`from_foreign` reads a framework's matrices,
biases and vectors into our arrays, :func:`to_foreign_arrays` writes ours back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ese.cell import CellSpec, ForeignLayer, block_order, cell_spec
from ese.config import ModelConfig
from ese.errors import InteropError
from ese.model.lstmp import AcousticModel


def _order(spec: CellSpec, framework: str, matrix: str) -> tuple[int, ...]:
    layout = spec.foreign[framework]
    theirs = layout.input_blocks if spec.matrix(matrix) == spec.input_matrix else layout.recurrent_blocks
    return block_order(spec.matrix(matrix).blocks, theirs)


# The LSTMP's orders (position in the foreign order of each of our blocks), read from its description
_LSTMP = cell_spec("lstmp")
TORCH_GATES = _order(_LSTMP, "torch", _LSTMP.input_matrix.name)
ONNX_GATES = _order(_LSTMP, "onnx", _LSTMP.input_matrix.name)
ONNX_PEEPHOLES = next(block_order(_LSTMP.vector(v).blocks, rows)
                      for v, (_, rows) in _LSTMP.foreign["onnx"].vectors.items())


def reorder_gates(t: Tensor, order: tuple[int, ...]) -> Tensor:
    """Row blocks of ``t`` (nH, ...) or (nH,) taken in ``order``: foreign order -> ours."""
    blocks = t.chunk(len(order), dim=0)  # each (H, ...)
    return torch.cat([blocks[k] for k in order], dim=0)


def to_foreign(t: Tensor, order: tuple[int, ...]) -> Tensor:
    """Inverse of :func:`reorder_gates`: our gate order -> the foreign one."""
    inverse = [order.index(k) for k in range(len(order))]
    return reorder_gates(t, tuple(inverse))


@dataclass
class Layer:
    """One recurrent layer of cell ``cell`` in ese's order: ``arrays`` by our names
    (``CellSpec.array_names``); an optional vector or the output matrix absent when the source
    has none (no projection: y is the element-wise output)."""

    name: str  # where it came from, for messages ("lstm.*_l1", "ONNX node 'lstm2'")
    cell: str
    arrays: dict[str, Tensor] = field(default_factory=dict)

    @property
    def spec(self) -> CellSpec:
        return cell_spec(self.cell)

    @property
    def projected(self) -> bool:
        """True when the source holds an output matrix (a projection)."""
        proj = self.spec.projection
        return proj is not None and proj.name in self.arrays

    def holds(self, vector: str) -> bool:
        return vector in self.arrays

    @property
    def hidden(self) -> int:
        m = self.spec.input_matrix
        return self.arrays[m.name].shape[0] // m.gate_blocks

    @property
    def proj(self) -> int:
        return self.arrays[self.spec.projection.name].shape[0] if self.projected else self.hidden

    @property
    def input_dim(self) -> int:
        return self.arrays[self.spec.input_matrix.name].shape[1]


def from_foreign(spec: CellSpec, framework: str, name: str, w_in: Tensor, w_rec: Tensor,
                 b_in: Tensor | None = None, b_rec: Tensor | None = None,
                 vectors: dict[str, Tensor] | None = None, projection: Tensor | None = None) -> Layer:
    """Our layer from a framework's (already shape-checked) input and recurrent matrices, their
    biases (both or neither), its vectors by our name ((rows x H,) in its row order) and its
    output matrix."""
    layout = spec.foreign[framework]
    hidden = w_rec.shape[0] // len(layout.recurrent_blocks)
    arrays = {spec.input_matrix.name: reorder_gates(w_in, block_order(spec.input_matrix.blocks, layout.input_blocks)),
              spec.recurrent_matrix.name: reorder_gates(w_rec, block_order(spec.recurrent_matrix.blocks,
                                                                            layout.recurrent_blocks))}
    bias = torch.zeros(len(spec.acc_blocks), hidden)
    if b_in is not None:
        for blocks, b in ((layout.input_blocks, b_in), (layout.recurrent_blocks, b_rec)):
            for block, values in zip(blocks, b.reshape(len(blocks), hidden)):
                bias[spec.acc_blocks.index(block)] += values  # the two biases always add up
    arrays["bias"] = bias.reshape(-1)
    for vec, values in (vectors or {}).items():
        order = block_order(spec.vector(vec).blocks, layout.vectors[vec][1])
        arrays[vec] = reorder_gates(values, order).reshape(len(order), hidden)
    if projection is not None:
        arrays[spec.projection.name] = projection
    return Layer(name=name, cell=spec.name, arrays=arrays)


def to_foreign_arrays(spec: CellSpec, framework: str, params: dict[str, Tensor | None]
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(input matrix, recurrent matrix, input bias, recurrent bias) of one of our layers
    (``params``: its arrays by name) in the framework's order; a bias block of ours goes to the
    input bias when that has the block, else to the recurrent one."""
    layout = spec.foreign[framework]
    w_in = to_foreign(params[spec.input_matrix.name].detach(),
                      block_order(spec.input_matrix.blocks, layout.input_blocks))
    w_rec = to_foreign(params[spec.recurrent_matrix.name].detach(),
                       block_order(spec.recurrent_matrix.blocks, layout.recurrent_blocks))
    ours = params["bias"].detach().reshape(len(spec.acc_blocks), -1)
    b_in = torch.cat([ours[spec.acc_blocks.index(b)] for b in layout.input_blocks])
    b_rec = torch.cat([torch.zeros_like(ours[0]) if b in layout.input_blocks else ours[spec.acc_blocks.index(b)]
                       for b in layout.recurrent_blocks])
    return w_in, w_rec, b_in, b_rec


def lacking_vectors(spec: CellSpec, framework: str) -> tuple[str, ...]:
    """Our optional vectors the framework's layer has no place for."""
    layout: ForeignLayer = spec.foreign[framework]
    return tuple(v for v in spec.flags.values() if v not in layout.vectors)


@dataclass
class Network:
    """Recurrent layers in order, then the output layer ``logits = out_w y + out_b``."""

    layers: list[Layer]
    out_w: Tensor  # (C, P)
    out_b: Tensor  # (C,)
    out_name: str


def check_chain(net: Network) -> None:
    """InteropError naming the first layer that ese's stack cannot hold."""
    first = net.layers[0]
    for k, layer in enumerate(net.layers):
        if layer.cell != first.cell:
            raise InteropError(f"layer {layer.name} is a {layer.cell.upper()} layer, layer {first.name} a "
                               f"{first.cell.upper()}: ese's stack has one cell kind")
        if layer.hidden != first.hidden or layer.proj != first.proj:
            raise InteropError(
                f"layer {layer.name} has {layer.hidden} cells and output size {layer.proj}, layer "
                f"{first.name} {first.hidden} and {first.proj}: ese's {first.cell.upper()} stack uses one cell "
                "count and one projection size for every layer")
        if k and layer.input_dim != net.layers[k - 1].proj:
            raise InteropError(
                f"layer {layer.name} takes {layer.input_dim} inputs but the layer before it "
                f"({net.layers[k - 1].name}) gives {net.layers[k - 1].proj}: the layer sizes do not chain")
    if net.out_w.shape[1] != first.proj:
        raise InteropError(f"output layer {net.out_name} takes {net.out_w.shape[1]} inputs but the last "
                           f"recurrent layer gives {first.proj}: the layer sizes do not chain")


def to_model(net: Network) -> AcousticModel:
    """An AcousticModel holding ``net`` exactly (no projection -> the identity output matrix; a
    layer lacking an optional vector in a stack where another has it -> zeros)."""
    check_chain(net)
    first = net.layers[0]
    spec = first.spec
    flags = {flag: any(layer.holds(vec) for layer in net.layers) for flag, vec in spec.flags.items()}
    cfg = ModelConfig(input_dim=first.input_dim, hidden=first.hidden, proj=first.proj,
                      layers=len(net.layers), num_classes=net.out_w.shape[0], cell=first.cell, **flags)
    model = AcousticModel(cfg)
    with torch.no_grad():
        for ours, layer in zip(model.layers, net.layers):
            for name, param in ours.params().items():
                if param is None:
                    continue  # an optional vector this model does not have
                value = layer.arrays.get(name)
                if value is None:  # the identity projection, or zero vectors
                    proj = spec.projection
                    value = (torch.eye(layer.hidden) if proj is not None and name == proj.name
                             else torch.zeros(param.shape))
                param.copy_(value)
        model.output.weight.copy_(net.out_w)
        model.output.bias.copy_(net.out_b)
    model.eval()
    return model
