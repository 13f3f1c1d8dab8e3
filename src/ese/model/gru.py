"""The GRU layer: the other recurrent cell of speech and keyword-spotting models.

Per time step, gate order r, z, n everywhere (``torch.nn.GRU``'s order)::

    r_t = sigmoid(W_rx x_t + W_rh h_{t-1} + b_r)
    z_t = sigmoid(W_zx x_t + W_zh h_{t-1} + b_z)
    n_t = tanh(W_nx x_t + b_n + r_t * (W_nh h_{t-1} + b_nh))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

The candidate's recurrent product is scaled by the reset gate, so it must be kept apart from its
input product (in the accelerator: its own accumulator, see docs/fixed-point.md); for r and z the
two products simply add. That is also why there are two biases: ``bias`` (3H) adds to the input
side (b_r and b_z are ``nn.GRU``'s ``b_ih + b_hh`` for those gates, b_n its ``b_in``), and
``bias_nh`` (H) is ``nn.GRU``'s ``b_hn``, inside the reset product.

=============  ==========  =====================================================
name           shape       meaning
=============  ==========  =====================================================
``w_x``        (3H, D)     input matrices W_rx, W_zx, W_nx stacked by rows
``w_r``        (3H, H)     recurrent matrices W_rh, W_zh, W_nh stacked
``bias``       (3H,)       b_r, b_z, b_n
``bias_nh``    (H,)        b_nh (scaled by r_t with W_nh h_{t-1})
=============  ==========  =====================================================

Exactly ``torch.nn.GRU(D, H)`` with ``weight_ih = w_x``, ``weight_hh = w_r``,
``bias_ih + bias_hh = bias`` on the r and z rows, ``bias_ih = bias`` and ``bias_hh = bias_nh``
on the n rows (see :func:`from_torch_gru`). There is no projection: the layer's output is h_t.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

GATES = ("r", "z", "n")  # row-block order of w_x, w_r and bias


def _recurrence(xw: Tensor, w_r: Tensor, bias_nh: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    """Run the recurrence over precomputed input terms ``xw`` (T, B, 3H); returns (hs, h)."""
    hidden = h.shape[1]
    w_rz_t = w_r[:2 * hidden].t()  # (H, 2H)
    w_n_t = w_r[2 * hidden:].t()  # (H, H)
    hs: list[Tensor] = []
    for xt in xw.unbind(0):
        x_rz, x_n = xt[:, :2 * hidden], xt[:, 2 * hidden:]
        r, z = torch.sigmoid(torch.addmm(x_rz, h, w_rz_t)).chunk(2, dim=1)
        n = torch.tanh(x_n + r * torch.addmm(bias_nh, h, w_n_t))
        h = n + z * (h - n)  # (1 - z) n + z h
        hs.append(h)
    return torch.stack(hs, dim=0), h


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
        self.bias = nn.Parameter(torch.empty(3 * hidden))
        self.bias_nh = nn.Parameter(torch.empty(hidden))
        self.reset_parameters()

    @property
    def output_dim(self) -> int:
        return self.hidden

    def reset_parameters(self) -> None:
        # nn.GRU's init: uniform +-1/sqrt(H) for every tensor
        k = 1.0 / math.sqrt(self.hidden)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-k, k)

    def initial_state(self, batch: int, like: Tensor) -> Tensor:
        return like.new_zeros(batch, self.hidden)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, T, D), state h (B, H) or None for zeros -> (hs (B, T, H), h)."""
        h = self.initial_state(x.shape[0], x) if state is None else state
        xw = torch.nn.functional.linear(x.transpose(0, 1), self.w_x, self.bias)  # (T, B, 3H)
        hs, h = _recurrence(xw, self.w_r, self.bias_nh, h)
        return hs.transpose(0, 1), h

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
        out.bias[:2 * h].copy_(b_ih[:2 * h] + b_hh[:2 * h])
        out.bias[2 * h:].copy_(b_ih[2 * h:])
        out.bias_nh.copy_(b_hh[2 * h:])
    return out
