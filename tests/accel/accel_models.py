"""Random fixed-point models for the accelerator tests: any shape, density and width, built
directly as integers (no training, no calibration) so hypothesis can draw hundreds quickly."""

from __future__ import annotations

import numpy as np

from ese.compiler.program import Program, compile_qmodel
from ese.compress.fixedpoint import Format
from ese.compress.lut import build_table, lut_specs
from ese.compress.qmodel import QLayer, QModel, sum_frac
from ese.config import HardwareConfig, ModelConfig, QuantConfig


def _weights(rng: np.random.Generator, shape: tuple[int, int], density: float, bits: int) -> np.ndarray:
    hi = (1 << (bits - 1)) - 1
    w = np.clip(np.round(rng.normal(scale=hi / 3, size=shape)), -hi - 1, hi).astype(np.int64)
    return np.where(rng.random(shape) < density, w, 0)


def random_qmodel(*, D: int = 6, H: int = 8, P: int = 4, layers: int = 1, C: int = 5, peepholes: bool = True,
                  density: float = 0.3, weight_bits: int = 12, act_bits: int = 16, lut_bits: int = 8,
                  seed: int = 0) -> QModel:
    """A valid QModel with random integer weights and plausible binary points."""
    rng = np.random.default_rng(seed)
    A, W, ACC = act_bits, weight_bits, 32
    quant = QuantConfig(weight_bits=W, act_bits=A, acc_bits=ACC, lut_index_bits=lut_bits)
    model = ModelConfig(input_dim=D, hidden=H, proj=P, layers=layers, num_classes=C, peepholes=peepholes)
    qlayers = []
    fy = A - 4
    for k in range(layers):
        d_in = D if k == 0 else P
        f = {"x": A - 4, "w_x": W - 1, "w_r": W - 1, "w_ym": W - 1, "bias": A - 4, "peephole": A - 2,
             "y": fy, "gate": A - 2, "tanh_c": A - 2, "m": A - 2, "c": A - 5,
             "z_i": A - 5, "z_f": A - 5, "z_g": A - 5, "z_o": A - 5}
        f_sum = sum_frac(f)
        f["acc"] = f_sum - 3
        f["acc_y"] = f["w_ym"] + f["m"] - 2
        formats = {s: Format(ACC if s in ("acc", "acc_y") else W if s.startswith("w_") else A, v) for s, v in f.items()}
        lim = (1 << (A - 1)) - 1
        qlayers.append(QLayer(
            w_x=_weights(rng, (4 * H, d_in), density, W), w_r=_weights(rng, (4 * H, P), density, W),
            bias=rng.integers(-lim // 8, lim // 8 + 1, size=4 * H).astype(np.int64),
            peephole=rng.integers(-lim // 2, lim // 2 + 1, size=(3, H)).astype(np.int64) if peepholes else None,
            w_ym=_weights(rng, (P, H), density, W), formats=formats))
    f_logits = (W - 1) + fy
    specs = lut_specs(A, lut_bits, quant.sigmoid_range, quant.tanh_range)
    return QModel(quant=quant, model=model, output_delay=0, layers=qlayers,
                  w_out=_weights(rng, (C, P), 1.0, W), b_out=rng.integers(-1000, 1000, size=C).astype(np.int64),
                  output_formats={"w": Format(W, W - 1), "b": Format(ACC, f_logits), "logits": Format(64, f_logits)},
                  luts={n: build_table(s) for n, s in specs.items()})


def random_program(*, pes: int = 2, index_bits: int = 4, **kw) -> Program:
    return compile_qmodel(random_qmodel(**kw), HardwareConfig(pes=pes, index_bits=index_bits))


def random_input(qm: QModel, frames: int, seed: int = 0) -> np.ndarray:
    fmt = qm.input_format
    return np.random.default_rng(seed + 99).integers(fmt.lo, fmt.hi + 1, size=(frames, qm.model.input_dim))
