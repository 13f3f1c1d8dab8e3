"""One LSTMP layer in our gate order, whatever file it came from, and the gate-order maps.

Gate blocks of ``w_x``, ``w_r`` and ``bias`` (each H rows) in the three conventions::

    ese      i f g o     (ese.model.lstmp.GATES)
    PyTorch  i f g o     nn.LSTM weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}
    ONNX     i o f c     LSTM op W, R, B (c is the cell candidate, our g)

Peephole rows: ese ``ic, fc, oc``; ONNX ``P`` is ``i, o, f``; nn.LSTM has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ese.config import ModelConfig
from ese.errors import InteropError
from ese.model.lstmp import AcousticModel

# position in the foreign order of each of our gates i, f, g, o
TORCH_GATES = (0, 1, 2, 3)
ONNX_GATES = (0, 2, 3, 1)  # ONNX i o f c: our i is its 0, f its 2, g (= c) its 3, o its 1
ONNX_PEEPHOLES = (0, 2, 1)  # ONNX P rows i o f: our ic is its 0, fc its 2, oc its 1


def reorder_gates(t: Tensor, order: tuple[int, ...]) -> Tensor:
    """Row blocks of ``t`` (4H, ...) or (4H,) taken in ``order``: foreign order -> ours."""
    blocks = t.chunk(len(order), dim=0)  # each (H, ...)
    return torch.cat([blocks[k] for k in order], dim=0)


def to_foreign(t: Tensor, order: tuple[int, ...]) -> Tensor:
    """Inverse of :func:`reorder_gates`: our gate order -> the foreign one."""
    inverse = [order.index(k) for k in range(len(order))]
    return reorder_gates(t, tuple(inverse))


@dataclass
class Layer:
    """One recurrent layer in ese's order; ``w_ym`` None means no projection (y = m).

    ``cell`` "gru" (ese.model.gru): ``w_x`` (3H, D) and ``w_r`` (3H, H) in nn.GRU's order r, z, n,
    ``bias`` (4H,) = b_r, b_z (both biases summed), b_in, b_hn; no peepholes, no projection.
    """

    name: str  # where it came from, for messages ("lstm.*_l1", "ONNX node 'lstm2'")
    w_x: Tensor  # (4H, D)
    w_r: Tensor  # (4H, P)
    bias: Tensor  # (4H,): both foreign biases summed
    peephole: Tensor | None = None  # (3, H): ic, fc, oc
    w_ym: Tensor | None = None  # (P, H)
    cell: str = "lstmp"

    @property
    def hidden(self) -> int:
        return self.w_x.shape[0] // (3 if self.cell == "gru" else 4)

    @property
    def proj(self) -> int:
        return self.hidden if self.w_ym is None else self.w_ym.shape[0]

    @property
    def input_dim(self) -> int:
        return self.w_x.shape[1]


@dataclass
class Network:
    """Recurrent layers in order, then the output layer ``logits = out_w y + out_b``."""

    layers: list[Layer]
    out_w: Tensor  # (C, P)
    out_b: Tensor  # (C,)
    out_name: str


def check_chain(net: Network) -> None:
    """InteropError naming the first layer that ese's LSTMP stack cannot hold."""
    first = net.layers[0]
    for k, layer in enumerate(net.layers):
        if layer.cell != first.cell:
            raise InteropError(f"layer {layer.name} is a {layer.cell.upper()} layer, layer {first.name} a "
                               f"{first.cell.upper()}: ese's stack has one cell kind")
        if layer.hidden != first.hidden or layer.proj != first.proj:
            raise InteropError(
                f"layer {layer.name} has {layer.hidden} cells and output size {layer.proj}, layer "
                f"{first.name} {first.hidden} and {first.proj}: ese's LSTMP stack uses one cell count and "
                "one projection size for every layer")
        if k and layer.input_dim != net.layers[k - 1].proj:
            raise InteropError(
                f"layer {layer.name} takes {layer.input_dim} inputs but the layer before it "
                f"({net.layers[k - 1].name}) gives {net.layers[k - 1].proj}: the layer sizes do not chain")
    if net.out_w.shape[1] != first.proj:
        raise InteropError(f"output layer {net.out_name} takes {net.out_w.shape[1]} inputs but the last "
                           f"recurrent layer gives {first.proj}: the layer sizes do not chain")


def to_model(net: Network) -> AcousticModel:
    """An AcousticModel holding ``net`` exactly (no projection -> identity ``w_ym``; a layer
    without peepholes in a stack where another has them -> zero peepholes)."""
    check_chain(net)
    first = net.layers[0]
    peepholes = any(layer.peephole is not None for layer in net.layers)
    cfg = ModelConfig(input_dim=first.input_dim, hidden=first.hidden, proj=first.proj,
                      layers=len(net.layers), num_classes=net.out_w.shape[0], peepholes=peepholes,
                      cell=first.cell)
    model = AcousticModel(cfg)
    with torch.no_grad():
        for ours, layer in zip(model.layers, net.layers):
            ours.w_x.copy_(layer.w_x)
            ours.w_r.copy_(layer.w_r)
            ours.bias.copy_(layer.bias)
            if layer.cell == "gru":
                continue  # no peepholes, no projection
            if ours.peephole is not None:
                ours.peephole.copy_(layer.peephole if layer.peephole is not None else torch.zeros(3, layer.hidden))
            ours.w_ym.copy_(layer.w_ym if layer.w_ym is not None else torch.eye(layer.hidden))
        model.output.weight.copy_(net.out_w)
        model.output.bias.copy_(net.out_b)
    model.eval()
    return model
