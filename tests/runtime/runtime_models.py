"""Small random fixed-point and float models for the CPU engine tests (no training)."""

from __future__ import annotations

import numpy as np
import torch

from ese.compress.fixedpoint import Format
from ese.compress.lut import build_table, lut_specs
from ese.compress.qmodel import QLayer, QModel, sum_frac
from ese.config import ModelConfig, QuantConfig
from ese.model.lstmp import AcousticModel


def _sparse_ints(rng: np.random.Generator, shape: tuple[int, int], density: float, bits: int) -> np.ndarray:
    hi = (1 << (bits - 1)) - 1
    w = rng.integers(-hi - 1, hi + 1, size=shape)
    return np.where(rng.random(shape) < density, w, 0).astype(np.int64)


def tiny_qmodel(*, D: int = 5, H: int = 20, P: int = 6, layers: int = 1, C: int = 4, peepholes: bool = True,
                density: float = 0.4, seed: int = 0, shift: int = 0) -> QModel:
    """A valid random QModel; ``shift`` moves the activation binary points (rounding vs left shifts)."""
    rng = np.random.default_rng(seed)
    A, W, ACC = 16, 12, 32
    quant = QuantConfig(weight_bits=W, act_bits=A, acc_bits=ACC, lut_index_bits=8)
    model = ModelConfig(input_dim=D, hidden=H, proj=P, layers=layers, num_classes=C, peepholes=peepholes)
    qlayers = []
    for k in range(layers):
        f = {"x": A - 5 + shift, "w_x": W + 1, "w_r": W, "w_ym": W - 1, "bias": A - 3, "peephole": A - 1,
             "y": A - 5 + shift, "gate": A - 2, "tanh_c": A - 2, "m": A - 2, "c": A - 4 - shift,
             "z_i": A - 5, "z_f": A - 4, "z_g": A - 6 + shift, "z_o": A - 5}
        if k:
            f["x"] = f["y"]
        f["acc"] = sum_frac(f) - 6
        f["acc_y"] = f["w_ym"] + f["m"] - 3
        formats = {s: Format(ACC if s in ("acc", "acc_y") else W if s.startswith("w_") else A, v)
                   for s, v in f.items()}
        lim = (1 << (A - 1)) - 1
        d_in = D if k == 0 else P
        qlayers.append(QLayer(
            w_x=_sparse_ints(rng, (4 * H, d_in), density, W), w_r=_sparse_ints(rng, (4 * H, P), density, W),
            bias=rng.integers(-lim // 4, lim // 4 + 1, size=4 * H).astype(np.int64),
            peephole=rng.integers(-lim, lim + 1, size=(3, H)).astype(np.int64) if peepholes else None,
            w_ym=_sparse_ints(rng, (P, H), density, W), formats=formats))
    f_logits = (W - 1) + qlayers[-1].formats["y"].frac
    specs = lut_specs(A, 8, quant.sigmoid_range, quant.tanh_range)
    return QModel(quant=quant, model=model, output_delay=0, layers=qlayers,
                  w_out=_sparse_ints(rng, (C, P), 1.0, W), b_out=rng.integers(-999, 999, size=C).astype(np.int64),
                  output_formats={"w": Format(W, W - 1), "b": Format(ACC, f_logits), "logits": Format(64, f_logits)},
                  luts={n: build_table(s) for n, s in specs.items()})


def int_input(qm: QModel, frames: int, seed: int = 0) -> np.ndarray:
    fmt = qm.input_format
    return np.random.default_rng(seed + 7).integers(fmt.lo, fmt.hi + 1, size=(frames, qm.model.input_dim))


def tiny_float_model(*, D: int = 7, H: int = 20, P: int = 6, layers: int = 2, peepholes: bool = True,
                     density: float = 0.3, seed: int = 0) -> AcousticModel:
    """A random LSTMP model with its LSTM matrices pruned to ``density`` (random pattern)."""
    torch.manual_seed(seed)
    model = AcousticModel(ModelConfig(input_dim=D, hidden=H, proj=P, layers=layers, num_classes=5,
                                      peepholes=peepholes)).eval()
    with torch.no_grad():
        for layer in model.layers:
            for w in (layer.w_x, layer.w_r, layer.w_ym):
                w.mul_(3.0 * (torch.rand_like(w) < density))
    return model
