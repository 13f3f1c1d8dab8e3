"""The GRU layer: the other recurrent cell of speech and keyword-spotting models.

Per time step, gate order r, z, n everywhere (``torch.nn.GRU``'s order)::

    r_t = sigmoid(W_rx x_t + W_rh h_{t-1} + b_r)
    z_t = sigmoid(W_zx x_t + W_zh h_{t-1} + b_z)
    n_t = tanh(W_nx x_t + b_in + r_t * (W_nh h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

The candidate's recurrent product is scaled by the reset gate, so it is kept apart from its
input product: the cell description (``ese.cell.GRU``) has four accumulator blocks r, z, n_x,
n_h, and the bias is stored in that order, one entry per accumulator row. The step itself is the
description's, run by the one float recurrence (``ese.model.recurrence``) that calibration runs.

=============  ==========  =====================================================
name           shape       meaning
=============  ==========  =====================================================
``w_x``        (3H, D)     input matrices W_rx, W_zx, W_nx stacked by rows
``w_r``        (3H, H)     recurrent matrices W_rh, W_zh, W_nh stacked
``bias``       (4H,)       b_r, b_z, b_in, b_hn (accumulator blocks r, z, n_x, n_h)
=============  ==========  =====================================================

Exactly ``torch.nn.GRU(D, H)`` with ``weight_ih = w_x``, ``weight_hh = w_r``, and the bias
``[b_ih_r + b_hh_r, b_ih_z + b_hh_z, b_ih_n, b_hh_n]`` (see :func:`from_torch_gru`). There is no
projection: the layer's output y_t is h_t, and its state is ``(y, h)`` like the LSTMP's ``(y, c)``
(the same vector twice here).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ese.cell import GRU
from ese.model.recurrence import input_products, recurrence

GATES = ("r", "z", "n")  # row-block order of w_x and w_r (the bias: GRU.acc_blocks)
LayerState = tuple[Tensor, Tensor]  # (y, h), y == h


class GRULayer(nn.Module):
    """One GRU layer over batch-first sequences: (B, T, D) -> (B, T, H)."""

    def __init__(self, input_dim: int, hidden: int) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("hidden", hidden)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"GRULayer {name} must be a positive integer, not {value!r}")
        self.input_dim, self.hidden = input_dim, hidden
        self.w_x = nn.Parameter(torch.empty(3 * hidden, input_dim))
        self.w_r = nn.Parameter(torch.empty(3 * hidden, hidden))
        self.bias = nn.Parameter(torch.empty(4 * hidden))
        self.reset_parameters()

    @property
    def proj(self) -> int:
        return self.hidden  # y = h

    @property
    def output_dim(self) -> int:
        return self.hidden

    def reset_parameters(self) -> None:
        # nn.GRU's init: uniform +-1/sqrt(H) for every tensor (its b_ih + b_hh for r and z: the
        # sum of two such draws)
        k = 1.0 / math.sqrt(self.hidden)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-k, k)

    def initial_state(self, batch: int, like: Tensor) -> LayerState:
        h = like.new_zeros(batch, self.hidden)
        return (h, h)

    def forward(self, x: Tensor, state: LayerState | None = None) -> tuple[Tensor, LayerState]:
        """x (B, T, D), state (y, h) or None for zeros -> (hs (B, T, H), (y, h))."""
        y, h = self.initial_state(x.shape[0], x) if state is None else state
        params = self.params()
        xw = input_products(GRU, x.transpose(0, 1), params, self.hidden)  # (T, B, 4H): n_h block = b_hn
        hs, y, cell_state = recurrence(GRU, xw, params, y, {"h": h})
        return hs.transpose(0, 1), (y, cell_state["h"])

    def params(self) -> dict[str, Tensor]:
        """The layer's tensors by the cell description's names."""
        return {"w_x": self.w_x, "w_r": self.w_r, "bias": self.bias}

    def extra_repr(self) -> str:
        return f"input_dim={self.input_dim}, hidden={self.hidden}"


def from_torch_gru(gru: nn.GRU, layer: int = 0) -> GRULayer:
    """The ``layer``-th layer of a unidirectional ``nn.GRU`` (with biases) as a GRULayer."""
    if gru.bidirectional or not gru.bias:
        raise ValueError("only unidirectional nn.GRU layers with biases map to GRULayer")
    w_ih, w_hh = getattr(gru, f"weight_ih_l{layer}"), getattr(gru, f"weight_hh_l{layer}")
    b_ih, b_hh = getattr(gru, f"bias_ih_l{layer}"), getattr(gru, f"bias_hh_l{layer}")
    out = GRULayer(w_ih.shape[1], gru.hidden_size)
    h = gru.hidden_size
    with torch.no_grad():
        out.w_x.copy_(w_ih)
        out.w_r.copy_(w_hh)
        out.bias.copy_(torch.cat([b_ih[:2 * h] + b_hh[:2 * h], b_ih[2 * h:], b_hh[2 * h:]]))
    return out
