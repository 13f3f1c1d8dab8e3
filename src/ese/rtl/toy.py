"""Inputs for exercising the RTL (tests, ``ese rtl`` demos): random integer frames, and
:func:`crop_qmodel`, the first cells of a trained model of any cell (``ese.cell``).

Random fixed-point models for the tests come from ``tests/random_models.py``, the one generator.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ese.cell import INPUT, RECURRENT
from ese.compress.qmodel import QLayer, QModel


def random_frames(qm: QModel, frames: int, seed: int) -> np.ndarray:
    """(frames, D) int64 inputs over the whole input format."""
    fmt = qm.input_format
    return np.random.default_rng(seed).integers(fmt.lo, fmt.hi + 1, size=(frames, qm.model.input_dim))


def crop_qmodel(qm: QModel, *, hidden: int, proj: int, input_dim: int | None = None) -> QModel:
    """The first layer of ``qm`` cut to its first ``hidden`` cells, ``proj`` outputs and inputs.

    Keeps the trained weights, formats and tables of those rows and columns (a smaller model of
    the same statistics; its outputs are of course not the big model's). A cell without an
    output matrix has y = h: ``proj`` is ``hidden`` whatever is asked.
    """
    spec, L, H0 = qm.cell, qm.layers[0], qm.model.hidden
    D = input_dim or qm.model.input_dim
    P = proj if spec.projection is not None else hidden
    keep = np.arange(hidden)
    arrays = {}
    for m in spec.matrices:
        rows = np.concatenate([b * H0 + keep for b in range(len(m.blocks))]) if m.is_gate else np.arange(P)
        cols = D if m.operand == INPUT else P if m.operand == RECURRENT else hidden
        arrays[m.name] = getattr(L, m.name)[rows, :cols].copy()
    for v in spec.vectors:
        a = getattr(L, v.name)
        if a is not None:
            arrays[v.name] = (a[np.concatenate([b * H0 + keep for b in range(len(spec.acc_blocks))])] if v.rows is None
                              else a[:, :hidden]).copy()
    model = dataclasses.replace(qm.model, input_dim=D, hidden=hidden, proj=P, layers=1)
    return QModel(quant=qm.quant, model=model, output_delay=qm.output_delay, layers=[QLayer(formats=dict(L.formats), **arrays)],
                  w_out=qm.w_out[:, :P].copy(), b_out=qm.b_out.copy(), output_formats=dict(qm.output_formats),
                  luts={k: v.copy() for k, v in qm.luts.items()}, phones=list(qm.phones),
                  source={**qm.source, "cropped": [D, hidden, P]})
