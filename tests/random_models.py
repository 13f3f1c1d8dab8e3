"""The one generator of random models for every test folder: fixed-point models of any cell
(``ese.cell``), programs compiled from them, integer inputs, float LSTMP models.

Built directly as integers (no training, no calibration), so hypothesis can draw hundreds
quickly. The binary points are plausible, not calibrated: each format class gets a fixed offset
from the width, and ``shift`` moves the activation points (rounding vs left shifts).
"""

from __future__ import annotations

import numpy as np
import torch

from ese.cell import LSTMP, CellSpec, cell_spec
from ese.compiler.program import Program, compile_qmodel
from ese.compress.fixedpoint import Format
from ese.compress.lut import build_table, lut_specs
from ese.compress.qmodel import QLayer, QModel
from ese.config import HardwareConfig, ModelConfig, QuantConfig
from ese.model.lstmp import AcousticModel

ACC_BITS = 32


def random_weights(rng: np.random.Generator, shape: tuple[int, ...], density: float, bits: int) -> np.ndarray:
    """Integers of ``bits`` bits (normal, sd a third of the range), each kept with probability ``density``."""
    hi = (1 << (bits - 1)) - 1
    w = np.clip(np.round(rng.normal(scale=hi / 3, size=shape)), -hi - 1, hi).astype(np.int64)
    return np.where(rng.random(shape) < density, w, 0)


def _formats(cell: CellSpec, A: int, W: int, shift: int, x_frac: int | None,
             fracs: dict[str, int] | None = None) -> dict[str, Format]:
    f: dict[str, int] = {"x": A - 4 + shift if x_frac is None else x_frac, "y": A - 4 + shift}
    for m in cell.matrices:
        f[m.name] = W - 1
    for v in cell.vectors:
        f[v.name] = A - 4 if v.rows is None else A - 2
    for s in cell.calibrated:
        f[s] = A - 5 - shift
    for s in cell.fixed_formats:
        f[s] = A - 2
    f.update({k: v for k, v in (fracs or {}).items() if k not in ("acc", "acc_y")})
    if x_frac is not None:
        f["x"] = x_frac
    f["acc"] = cell.sum_frac(f) - (fracs or {}).get("acc", 3)  # overrides of acc, acc_y: below the exact point
    proj = cell.projection
    if proj is not None:
        f["acc_y"] = f[proj.name] + f[proj.operand] - (fracs or {}).get("acc_y", 2)
    return {s: Format(ACC_BITS if s in ("acc", "acc_y") else W if s in cell.matrix_names else A, f[s])
            for s in cell.layer_signals}


def random_qmodel(*, D: int = 6, H: int = 8, P: int = 4, layers: int = 1, C: int = 5, peepholes: bool = True,
                  density: float = 0.3, weight_bits: int = 12, act_bits: int = 16, lut_bits: int = 8,
                  seed: int = 0, shift: int = 0, cell: CellSpec | str = LSTMP,
                  fracs: dict[str, int] | None = None, big_rows: bool = False) -> QModel:
    """A valid QModel of ``cell`` with random integer weights and plausible binary points.

    ``fracs`` overrides binary points by signal (``acc``/``acc_y``: how many bits below the
    exact sum's point). ``big_rows``: about 70% of every matrix's rows empty, so long runs of
    zeros need padding entries. Arrays are drawn in file order but the output matrix last."""
    spec = cell_spec(cell)
    rng = np.random.default_rng(seed)
    A, W = act_bits, weight_bits
    quant = QuantConfig(weight_bits=W, act_bits=A, acc_bits=ACC_BITS, lut_index_bits=lut_bits)
    model = ModelConfig(input_dim=D, hidden=H, proj=P, layers=layers, num_classes=C, peepholes=peepholes,
                        cell=spec.name)
    lim = (1 << (A - 1)) - 1
    qlayers: list[QLayer] = []
    for k in range(layers):
        d_in = D if k == 0 else P
        arrays: dict[str, np.ndarray] = {}
        proj = spec.projection
        for name in [n for n in spec.array_names if proj is None or n != proj.name] + ([proj.name] if proj else []):
            if name in spec.matrix_names:
                shape = spec.matrix_shape(name, H, P, d_in)
                arrays[name] = random_weights(rng, shape, density, W)
                if big_rows:
                    arrays[name] *= (rng.random(shape[0]) < 0.3)[:, None]
            elif name in spec.vector_names(model):
                scale = 8 if spec.vector_shape(name, H) == (len(spec.acc_blocks) * H,) else 2
                arrays[name] = rng.integers(-lim // scale, lim // scale + 1,
                                            size=spec.vector_shape(name, H)).astype(np.int64)
        x_frac = qlayers[-1].formats["y"].frac if k else None
        qlayers.append(QLayer(formats=_formats(spec, A, W, shift, x_frac, fracs), **arrays))
    f_logits = (W - 1) + qlayers[-1].formats["y"].frac
    specs = lut_specs(A, lut_bits, quant.sigmoid_range, quant.tanh_range)
    return QModel(quant=quant, model=model, output_delay=0, layers=qlayers,
                  w_out=random_weights(rng, (C, P), 1.0, W), b_out=rng.integers(-1000, 1000, size=C).astype(np.int64),
                  output_formats={"w": Format(W, W - 1), "b": Format(ACC_BITS, f_logits), "logits": Format(64, f_logits)},
                  luts={n: build_table(s) for n, s in specs.items()})


def random_program(*, pes: int = 2, index_bits: int = 4, **kw) -> Program:
    """``random_qmodel(**kw)`` compiled for ``pes`` PEs."""
    return compile_qmodel(random_qmodel(**kw), HardwareConfig(pes=pes, index_bits=index_bits))


def random_input(qm: QModel, frames: int, seed: int = 0) -> np.ndarray:
    """Integer frames (frames, D) uniform over the model's input format."""
    fmt = qm.input_format
    return np.random.default_rng(seed + 99).integers(fmt.lo, fmt.hi + 1, size=(frames, qm.model.input_dim))


def random_float_model(*, D: int = 7, H: int = 20, P: int = 6, layers: int = 2, peepholes: bool = True,
                       density: float = 0.3, seed: int = 0) -> AcousticModel:
    """A random LSTMP model with its recurrent-layer matrices pruned to ``density`` (random pattern)."""
    torch.manual_seed(seed)
    model = AcousticModel(ModelConfig(input_dim=D, hidden=H, proj=P, layers=layers, num_classes=5,
                                      peepholes=peepholes)).eval()
    with torch.no_grad():
        for layer in model.layers:
            for w in (p for n, p in layer.named_parameters() if n in LSTMP.matrix_names):
                w.mul_(3.0 * (torch.rand_like(w) < density))
    return model
