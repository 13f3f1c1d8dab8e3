"""The gate-order maps: ONNX i o f c and PyTorch i f g o against ours (i f g o), both ways."""

from __future__ import annotations

import torch

from ese.interop.layers import ONNX_GATES, ONNX_PEEPHOLES, TORCH_GATES, reorder_gates, to_foreign


def _blocks(names: str, h: int = 2) -> torch.Tensor:
    """(4h,) with each block filled by the code of its gate letter."""
    return torch.cat([torch.full((h,), float(ord(c))) for c in names])


def test_onnx_gate_blocks_land_on_ours():
    assert torch.equal(reorder_gates(_blocks("iofc"), ONNX_GATES), _blocks("ifco"))  # c is our g
    assert torch.equal(to_foreign(_blocks("ifco"), ONNX_GATES), _blocks("iofc"))


def test_onnx_peephole_rows_land_on_ours():
    assert torch.equal(reorder_gates(_blocks("iof"), ONNX_PEEPHOLES), _blocks("ifo"))


def test_torch_order_is_ours_and_matrices_move_by_row_blocks():
    w = torch.arange(8 * 3, dtype=torch.float32).reshape(8, 3)  # (4H, D), H = 2
    assert torch.equal(reorder_gates(w, TORCH_GATES), w)
    back = to_foreign(reorder_gates(w, ONNX_GATES), ONNX_GATES)
    assert torch.equal(back, w)
    assert torch.equal(reorder_gates(w, ONNX_GATES)[2:4], w[4:6])  # our f = ONNX's third block
