"""The one float recurrence of a layer, for any cell (``ese.cell``): training, inference and the
quantizer's calibration all run this loop, so calibration measures the model that was trained.

Per step: the accumulators (the input products and bias, precomputed for every frame by
:func:`input_products`, plus the recurrent products) go through the cell's float element-wise
step; its output is projected (LSTMP) or is y itself. A hook sees every step's accumulators,
element-wise signals and y (what calibration records).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from ese.cell import INPUT, RECURRENT, CellSpec


class _TorchFns:
    """The float arithmetic a cell's ``float_step`` is written against, in torch."""

    sigmoid = staticmethod(torch.sigmoid)
    tanh = staticmethod(torch.tanh)

    @staticmethod
    def split(a: Tensor, n: int) -> tuple[Tensor, ...]:
        return a.chunk(n, dim=-1)


TORCH = _TorchFns()
Hook = Callable[[int, Tensor, dict[str, Tensor], Tensor], None]


def _rows(cell: CellSpec, name: str, hidden: int, like: Tensor) -> Tensor | None:
    """None when the matrix's row blocks are the accumulator blocks, else its accumulator rows."""
    return None if cell.acc_identity(name) else torch.from_numpy(cell.acc_rows(name, hidden)).to(like.device)


def input_products(cell: CellSpec, x: Tensor, params: Mapping[str, Tensor], hidden: int) -> Tensor:
    """``bias + sum of W x_t`` over the input gate matrices, for every frame: x (T, B, D) ->
    (T, B, blocks * H), one big matmul instead of T small ones."""
    gates = [m for m in cell.gate_matrices if m.operand == INPUT]
    bias = params["bias"]
    if len(gates) == 1 and cell.acc_identity(gates[0].name):
        return torch.nn.functional.linear(x, params[gates[0].name], bias)
    out = bias.expand(*x.shape[:-1], bias.shape[0])
    for m in gates:
        prod = torch.nn.functional.linear(x, params[m.name])
        rows = _rows(cell, m.name, hidden, x)
        out = out + prod if rows is None else out.index_add(x.dim() - 1, rows, prod)
    return out


def recurrence(cell: CellSpec, xw: Tensor, params: Mapping[str, Tensor | None], y: Tensor,
               state: dict[str, Tensor], hook: Hook | None = None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Run the cell over precomputed input terms ``xw`` (T, B, blocks*H); returns (ys (T, B, P),
    y, state). A plain loop: torch.jit.script measured no faster once the per-step slicing uses
    ``unbind`` (and is deprecated); see benchmarks/bench_training.py for the throughput."""
    hidden = xw.shape[-1] // len(cell.acc_blocks)
    rec = [(params[m.name].t(), _rows(cell, m.name, hidden, xw))  # (P, rows) each
           for m in cell.gate_matrices if m.operand == RECURRENT]
    proj = cell.projection
    w_out_t = params[proj.name].t() if proj is not None else None  # (H, P)
    vectors = {v.name: params[v.name] for v in cell.vectors
               if v.rows is not None and params.get(v.name) is not None}
    ys: list[Tensor] = []
    for t, xt in enumerate(xw.unbind(0)):  # unbind, not xw[t]: its backward would build T full-size zero tensors
        acc = xt
        for w_t, rows in rec:
            acc = torch.addmm(acc, y, w_t) if rows is None else acc.index_add(1, rows, torch.mm(y, w_t))
        signals, state = cell.float_step(TORCH, acc, state, vectors)
        out = signals[cell.output]
        y = torch.mm(out, w_out_t) if w_out_t is not None else out  # y_t: (B, P)
        if hook is not None:
            hook(t, acc, signals, y)
        ys.append(y)
    return torch.stack(ys, dim=0), y, state
