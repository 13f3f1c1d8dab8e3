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

With zero peepholes the layer is exactly ``torch.nn.LSTM(D, H, proj_size=P)``: ``weight_ih`` is
``w_x``, ``weight_hh`` is ``w_r``, ``bias_ih + bias_hh`` is ``bias`` and ``weight_hr`` is ``w_ym``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ese.config import ModelConfig

# (y, c) of one layer: projected output (B, P) and cell state (B, H)
LayerState = tuple[Tensor, Tensor]

GATES = ("i", "f", "g", "o")  # row-block order of w_x, w_r and bias
PEEPHOLES = ("ic", "fc", "oc")  # row order of peephole


def _recurrence(xw: Tensor, w_r: Tensor, w_ym: Tensor, peephole: Tensor | None,
                y: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Run the recurrence over precomputed input terms ``xw`` (T, B, 4H); returns (ys, y, c).

    A plain loop: torch.jit.script measured no faster once the per-step slicing uses ``unbind``
    (and is deprecated); see benchmarks/bench_training.py for the throughput.
    """
    w_r_t = w_r.t()  # (P, 4H)
    w_ym_t = w_ym.t()  # (H, P)
    ys: list[Tensor] = []
    for xt in xw.unbind(0):  # unbind, not xw[t]: its backward would build T full-size zero tensors
        gates = torch.addmm(xt, y, w_r_t)  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
        if peephole is not None:
            i = i + peephole[0] * c  # w_ic (.) c_{t-1}
            f = f + peephole[1] * c  # w_fc (.) c_{t-1}
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # c_t (B, H)
        if peephole is not None:
            o = o + peephole[2] * c  # w_oc (.) c_t: the output gate peeks at the new cell
        m = torch.sigmoid(o) * torch.tanh(c)  # (B, H)
        y = torch.mm(m, w_ym_t)  # projection y_t = W_ym m_t: (B, P)
        ys.append(y)
    return torch.stack(ys, dim=0), y, c  # (T, B, P)


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
        # all W_x x_t + b at once: one big matmul instead of T small ones
        xw = torch.nn.functional.linear(x.transpose(0, 1), self.w_x, self.bias)  # (T, B, 4H)
        ys, y, c = _recurrence(xw, self.w_r, self.w_ym, self.peephole, y, c)
        return ys.transpose(0, 1), (y, c)  # (B, T, P)

    def extra_repr(self) -> str:
        return (f"input_dim={self.input_dim}, hidden={self.hidden}, proj={self.proj}, "
                f"peepholes={self.peepholes}")


class AcousticModel(nn.Module):
    """A stack of LSTMP layers and a linear layer over phone classes (softmax applied by the loss).

    ``forward`` takes and returns per-layer state, so a stream can be processed in chunks:
    running chunks with the returned state equals running the whole sequence at once.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.layers <= 0:
            raise ValueError(f"ModelConfig.layers must be at least 1, not {cfg.layers!r}")
        self.cfg = cfg
        dims = [cfg.input_dim] + [cfg.proj] * (cfg.layers - 1)
        self.layers = nn.ModuleList(
            LSTMPLayer(d, cfg.hidden, cfg.proj, peepholes=cfg.peepholes) for d in dims)
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
