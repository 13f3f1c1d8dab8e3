"""The LSTM-with-peepholes-and-projection (LSTMP) acoustic model of ESE.md section 1.

Per time step, with gate order i, f, g, o everywhere::

    i_t = sigmoid(W_ix x_t + W_ir y_{t-1} + w_ic * c_{t-1} + b_i)
    f_t = sigmoid(W_fx x_t + W_fr y_{t-1} + w_fc * c_{t-1} + b_f)
    g_t = tanh(W_cx x_t + W_cr y_{t-1} + b_c)
    c_t = f_t * c_{t-1} + i_t * g_t
    o_t = sigmoid(W_ox x_t + W_or y_{t-1} + w_oc * c_t + b_o)
    m_t = o_t * tanh(c_t)
    y_t = W_ym m_t

Parameter names are the contract with the later stages (pruning, quantization, compiler), which
address the matrices by name:

=============  ==========  =====================================================
name           shape       meaning
=============  ==========  =====================================================
``w_x``        (4H, D)     input matrices W_ix, W_fx, W_cx, W_ox stacked by rows
``w_r``        (4H, P)     recurrent matrices W_ir, W_fr, W_cr, W_or stacked
``bias``       (4H,)       b_i, b_f, b_c, b_o
``peephole``   (3, H)      rows w_ic, w_fc, w_oc (absent when peepholes=False)
``w_ym``       (P, H)      projection
=============  ==========  =====================================================

The step itself (the element-wise function) is the cell description's (``ese.cell.LSTMP``), run
by the one float recurrence (``ese.model.recurrence``) that calibration runs too.

With zero peepholes the layer is exactly ``torch.nn.LSTM(D, H, proj_size=P)``: ``weight_ih`` is
``w_x``, ``weight_hh`` is ``w_r``, ``bias_ih + bias_hh`` is ``bias`` and ``weight_hr`` is ``w_ym``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ese.cell import LSTMP
from ese.config import ModelConfig
from ese.model.gru import GRULayer
from ese.model.recurrence import input_products, recurrence

# (y, c) of one layer: projected output (B, P) and cell state (B, H)
LayerState = tuple[Tensor, Tensor]

GATES = LSTMP.acc_blocks  # row-block order of w_x, w_r and bias: i, f, g, o
PEEPHOLES = ("ic", "fc", "oc")  # row order of peephole


class LSTMPLayer(nn.Module):
    """One LSTMP layer over batch-first sequences: (B, T, D) -> (B, T, P)."""

    def __init__(self, input_dim: int, hidden: int, proj: int, peepholes: bool = True) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("hidden", hidden), ("proj", proj)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"LSTMPLayer {name} must be a positive integer, not {value!r}")
        self.input_dim, self.hidden, self.proj = input_dim, hidden, proj
        self.w_x = nn.Parameter(torch.empty(4 * hidden, input_dim))
        self.w_r = nn.Parameter(torch.empty(4 * hidden, proj))
        self.bias = nn.Parameter(torch.empty(4 * hidden))
        self.peephole = nn.Parameter(torch.empty(3, hidden)) if peepholes else None
        self.w_ym = nn.Parameter(torch.empty(proj, hidden))
        self.reset_parameters()

    @property
    def peepholes(self) -> bool:
        return self.peephole is not None

    def reset_parameters(self) -> None:
        # nn.LSTM's init (uniform +-1/sqrt(H)) for every tensor, then a forget-gate bias of +1 so
        # the cells start by remembering (a common, cheap help for CE-trained LSTMs).
        k = 1.0 / math.sqrt(self.hidden)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-k, k)
            self.bias[self.hidden:2 * self.hidden] += 1.0

    def initial_state(self, batch: int, like: Tensor) -> LayerState:
        return (like.new_zeros(batch, self.proj), like.new_zeros(batch, self.hidden))

    def forward(self, x: Tensor, state: LayerState | None = None) -> tuple[Tensor, LayerState]:
        """x (B, T, D), state (y (B, P), c (B, H)) or None for zeros -> (ys (B, T, P), state)."""
        batch = x.shape[0]
        y, c = self.initial_state(batch, x) if state is None else state
        params = self.params()
        xw = input_products(LSTMP, x.transpose(0, 1), params, self.hidden)  # all W_x x_t + b: (T, B, 4H)
        ys, y, cell_state = recurrence(LSTMP, xw, params, y, {"c": c})
        return ys.transpose(0, 1), (y, cell_state["c"])  # (B, T, P)

    def params(self) -> dict[str, Tensor | None]:
        """The layer's tensors by the cell description's names."""
        return {"w_x": self.w_x, "w_r": self.w_r, "bias": self.bias, "peephole": self.peephole, "w_ym": self.w_ym}

    def extra_repr(self) -> str:
        return (f"input_dim={self.input_dim}, hidden={self.hidden}, proj={self.proj}, "
                f"peepholes={self.peepholes}")


def recurrent_layer(cfg: ModelConfig, input_dim: int) -> nn.Module:
    """One recurrent layer of ``cfg.cell``: an LSTMPLayer, or a GRULayer (``ese.model.gru``)."""
    if cfg.cell == "gru":
        return GRULayer(input_dim, cfg.hidden)
    return LSTMPLayer(input_dim, cfg.hidden, cfg.proj, peepholes=cfg.peepholes)


class AcousticModel(nn.Module):
    """A stack of recurrent layers of ``cfg.cell`` (LSTMP or GRU) and a linear layer over phone
    classes (softmax applied by the loss).

    ``forward`` takes and returns per-layer state, so a stream can be processed in chunks:
    running chunks with the returned state equals running the whole sequence at once.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.layers <= 0:
            raise ValueError(f"ModelConfig.layers must be at least 1, not {cfg.layers!r}")
        self.cfg = cfg
        dims = [cfg.input_dim] + [cfg.proj] * (cfg.layers - 1)
        self.layers = nn.ModuleList(recurrent_layer(cfg, d) for d in dims)
        self.output = nn.Linear(cfg.proj, cfg.num_classes)

    def forward(self, x: Tensor, state: list[LayerState] | None = None
                ) -> tuple[Tensor, list[LayerState]]:
        """x (B, T, D) -> (logits (B, T, C), [state of each layer])."""
        new_state: list[LayerState] = []
        h = x
        for k, layer in enumerate(self.layers):
            h, s = layer(h, None if state is None else state[k])  # (B, T, P)
            new_state.append(s)
        return self.output(h), new_state  # (B, T, C)

    def non_finite_parameters(self) -> list[str]:
        """Names of parameters holding NaN or inf (empty when the model is healthy)."""
        return [n for n, p in self.named_parameters() if not torch.isfinite(p).all()]
