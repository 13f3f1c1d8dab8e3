"""Small random fixed-point models for exercising the RTL (tests, ``ese rtl`` demos).

Binary points are fixed plausible values (not calibrated); weights, biases, peepholes and inputs
are uniform random integers with a given density, so every rounding and saturation path of the
spec is exercised. Also :func:`crop_qmodel`, the first cells of a trained model.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ese.compress.fixedpoint import Format
from ese.compress.lut import build_table, lut_specs
from ese.compress.qmodel import QLayer, QModel, sum_frac
from ese.config import ModelConfig, QuantConfig


def random_qmodel(seed: int, *, input_dim: int = 5, hidden: int = 6, proj: int = 4, peepholes: bool = True,
                  density: float = 0.4, weight_bits: int = 12, act_bits: int = 16, lut_index_bits: int = 6,
                  big_rows: bool = False, layers: int = 1) -> QModel:
    """A QModel of this shape with random integers (``big_rows``: long zero runs -> padding)."""
    rng = np.random.default_rng(seed)
    A, W = act_bits, weight_bits
    q = QuantConfig(weight_bits=W, act_bits=A, acc_bits=32, lut_index_bits=lut_index_bits)
    H, P, D = hidden, proj, input_dim

    def weights(shape):
        w = rng.integers(-(1 << (W - 1)), 1 << (W - 1), size=shape)
        keep = rng.random(shape) < density
        if big_rows:
            keep &= rng.random(shape[0])[:, None] < 0.3
        return np.where(keep, w, 0).astype(np.int64)

    fa = A - 4  # activations in about +-8
    fmt = {"x": Format(A, fa), "w_x": Format(W, W - 2), "w_r": Format(W, W - 2), "bias": Format(A, fa),
           "peephole": Format(A, A - 2), "z_i": Format(A, fa - 1), "z_f": Format(A, fa), "z_g": Format(A, fa - 1),
           "z_o": Format(A, fa), "gate": Format(A, A - 2), "c": Format(A, fa), "tanh_c": Format(A, A - 2),
           "m": Format(A, A - 2), "w_ym": Format(W, W - 2), "y": Format(A, fa)}
    f_sum = sum_frac({name: f.frac for name, f in fmt.items()})
    fmt["acc"] = Format(32, f_sum - 4)
    fmt["acc_y"] = Format(32, fmt["w_ym"].frac + fmt["m"].frac - 3)
    qlayers = []
    for k in range(layers):
        bias = rng.integers(-(1 << (A - 2)), 1 << (A - 2), size=4 * H)
        peep = rng.integers(-(1 << (A - 2)), 1 << (A - 2), size=(3, H)) if peepholes else None
        qlayers.append(QLayer(w_x=weights((4 * H, D if k == 0 else P)), w_r=weights((4 * H, P)),
                              bias=bias.astype(np.int64), peephole=None if peep is None else peep.astype(np.int64),
                              w_ym=weights((P, H)), formats=dict(fmt)))
    specs = lut_specs(A, lut_index_bits, q.sigmoid_range, q.tanh_range)
    model = ModelConfig(input_dim=D, hidden=H, proj=P, layers=layers, num_classes=3, peepholes=peepholes)
    return QModel(quant=q, model=model, output_delay=0, layers=qlayers, w_out=weights((3, P)),
                  b_out=np.zeros(3, dtype=np.int64),
                  output_formats={"w": Format(W, W - 2), "b": Format(32, W - 2 + fa), "logits": Format(64, W - 2 + fa)},
                  luts={k: build_table(s) for k, s in specs.items()}, source={"toy": seed})


def random_frames(qm: QModel, frames: int, seed: int) -> np.ndarray:
    """(frames, D) int64 inputs over the whole input format."""
    fmt = qm.input_format
    return np.random.default_rng(seed).integers(fmt.lo, fmt.hi + 1, size=(frames, qm.model.input_dim))


def crop_qmodel(qm: QModel, *, hidden: int, proj: int, input_dim: int | None = None) -> QModel:
    """The first layer of ``qm`` cut to its first ``hidden`` cells, ``proj`` outputs and inputs.

    Keeps the trained weights, formats and tables of those rows and columns (a smaller model of
    the same statistics; its outputs are of course not the big model's).
    """
    L = qm.layers[0]
    H0 = L.w_ym.shape[1]
    D = input_dim or L.w_x.shape[1]
    rows = np.concatenate([g * H0 + np.arange(hidden) for g in range(4)])
    layer = QLayer(w_x=L.w_x[rows, :D].copy(), w_r=L.w_r[rows, :proj].copy(), bias=L.bias[rows].copy(),
                   peephole=None if L.peephole is None else L.peephole[:, :hidden].copy(),
                   w_ym=L.w_ym[:proj, :hidden].copy(), formats=dict(L.formats))
    model = dataclasses.replace(qm.model, input_dim=D, hidden=hidden, proj=proj, layers=1)
    return QModel(quant=qm.quant, model=model, output_delay=qm.output_delay, layers=[layer],
                  w_out=qm.w_out[:, :proj].copy(), b_out=qm.b_out.copy(), output_formats=dict(qm.output_formats),
                  luts={k: v.copy() for k, v in qm.luts.items()}, phones=list(qm.phones),
                  source={**qm.source, "cropped": [D, hidden, proj]})
