"""One LSTMP layer's weights packed for the CPU engine (float or fixed point), and its shifts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ese.compress.qmodel import QLayer, QModel, sum_frac
from ese.runtime import kernels_fixed as KF
from ese.runtime.errors import EngineError
from ese.runtime.layout import (
    SortedSell,
    SparseMatrix,
    gate_row_order,
    pack,
    pack_sorted,
    padded,
    plain_row_order,
)


@dataclass(frozen=True, eq=False)
class LayerWeights:
    """Packed matrices (internal row order, see :mod:`ese.runtime.layout`) and vectors of a layer.

    ``bias`` (4Hp): float bias, or the fixed-point bias already aligned to Fsum (int64).
    ``peephole`` (3, Hp) or a (3, 1) dummy when ``has_peep`` is False. ``shifts``: fixed point only.
    """

    input_dim: int
    hidden: int
    proj: int
    w_x: SparseMatrix
    w_r: SparseMatrix
    w_ym: SparseMatrix
    bias: np.ndarray
    peephole: np.ndarray
    has_peep: bool
    gx: SortedSell  # [w_x | w_r] over z = [x; y], one stream, streaming
    gr: SortedSell  # w_r alone (utterance mode: W_x x batched ahead)
    gp: SortedSell  # w_ym
    bias_o: np.ndarray  # (4H,) original order (fixed: aligned to Fsum)
    peep_o: np.ndarray  # (3, H) or (3, 1) dummy
    shifts: np.ndarray | None = None

    @property
    def hp(self) -> int:
        return padded(self.hidden)

    @property
    def pp(self) -> int:
        return padded(self.proj)

    def nbytes(self, batch: int = 1) -> int:
        """Resident bytes of the weights the kernels for ``batch`` streams read, plus vectors."""
        if batch == 1:
            return int(self.gx.nbytes + self.gp.nbytes + self.bias_o.nbytes + self.peep_o.nbytes)
        mats = sum(mat.nbytes("csr") for mat in (self.w_x, self.w_r, self.w_ym))
        return int(mats + self.bias.nbytes + self.peephole.nbytes)


def _vectors(bias: np.ndarray, peephole: np.ndarray | None, hidden: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    order = gate_row_order(hidden)
    b = np.zeros(order.size, dtype=dtype)
    b[order >= 0] = bias[order[order >= 0]]
    if peephole is None:
        return b, np.zeros((3, 1), dtype=dtype)
    p = np.zeros((3, padded(hidden)), dtype=dtype)
    p[:, :hidden] = peephole
    return b, p


def float_layer(w_x: np.ndarray, w_r: np.ndarray, bias: np.ndarray, peephole: np.ndarray | None,
                w_ym: np.ndarray) -> LayerWeights:
    """Pack float matrices (gate order i, f, g, o by rows) as fp32."""
    H, P = w_ym.shape[1], w_ym.shape[0]
    f32 = np.float32
    b, p = _vectors(np.asarray(bias, f32), None if peephole is None else np.asarray(peephole, f32), H, f32)
    go = gate_row_order(H)
    w_x, w_r, w_ym = (np.asarray(a, f32) for a in (w_x, w_r, w_ym))
    return LayerWeights(w_x.shape[1], H, P, pack(w_x, go, f32), pack(w_r, go, f32),
                        pack(w_ym, plain_row_order(P), f32), b, p, peephole is not None,
                        pack_sorted(np.hstack([w_x, w_r]), f32), pack_sorted(w_r, f32),
                        pack_sorted(w_ym, f32), np.asarray(bias, f32).copy(),
                        np.zeros((3, 1), f32) if peephole is None else np.asarray(peephole, f32).copy())


def fixed_shifts(layer: QLayer, qm: QModel) -> np.ndarray:
    """The ``sh`` vector of :mod:`ese.runtime.kernels_fixed` for one layer (docs/fixed-point.md)."""
    f = {k: v.frac for k, v in layer.formats.items()}
    specs = qm.lut_specs
    e_sig, e_tanh = specs["sigmoid"].step_log2, specs["tanh"].step_log2
    fsum = sum_frac(f)
    fg = f["gate"]
    fs = max(fg + f["c"], 2 * fg)
    sh = np.zeros(KF.N_SHIFTS, dtype=np.int64)
    vals = {
        KF.SX: f["w_x"] + f["x"] - fsum, KF.SR: f["w_r"] + f["y"] - fsum, KF.SACC: fsum - f["acc"],
        KF.ZI: f["acc"] - f["z_i"], KF.ZF: f["acc"] - f["z_f"], KF.ZG: f["acc"] - f["z_g"],
        KF.ZO: f["acc"] - f["z_o"], KF.PI: f["peephole"] + f["c"] - f["z_i"],
        KF.PF: f["peephole"] + f["c"] - f["z_f"], KF.PO: f["peephole"] + f["c"] - f["z_o"],
        KF.LI: f["z_i"] + e_sig, KF.LF: f["z_f"] + e_sig, KF.LG: f["z_g"] + e_tanh,
        KF.LO: f["z_o"] + e_sig, KF.LC: f["c"] + e_tanh, KF.CF: fg + f["c"] - fs,
        KF.CIG: 2 * fg - fs, KF.CC: fs - f["c"], KF.SM: 2 * fg - f["m"],
        KF.SAY: f["w_ym"] + f["m"] - f["acc_y"], KF.SY: f["acc_y"] - f["y"],
        KF.ABITS: qm.quant.act_bits, KF.ACCBITS: qm.quant.acc_bits,
        KF.NSIG: qm.luts["sigmoid"].size, KF.NTANH: qm.luts["tanh"].size,
    }
    for k, v in vals.items():
        sh[k] = v
    if max(abs(int(v)) for v in sh[:KF.ABITS]) > 62:
        raise EngineError("fixed-point model needs shifts beyond 62 bits; it is not runnable")
    return sh


def fixed_layer(layer: QLayer, qm: QModel) -> LayerWeights:
    """Pack a fixed-point layer: int16 weights, bias aligned to Fsum, shifts resolved."""
    if qm.quant.weight_bits > 16 or qm.quant.act_bits > 16:
        raise EngineError(f"the CPU engine runs weights and activations of at most 16 bits, not "
                          f"{qm.quant.weight_bits}/{qm.quant.act_bits}")
    sh = fixed_shifts(layer, qm)
    f = {k: v.frac for k, v in layer.formats.items()}
    fsum = sum_frac(f)
    bias_sum = layer.bias.astype(np.int64) << (fsum - f["bias"])
    H, P = layer.w_ym.shape[1], layer.w_ym.shape[0]
    b, p = _vectors(bias_sum, layer.peephole, H, np.int64)
    go = gate_row_order(H)
    i16 = np.int16
    return LayerWeights(layer.w_x.shape[1], H, P, pack(layer.w_x, go, i16), pack(layer.w_r, go, i16),
                        pack(layer.w_ym, plain_row_order(P), i16), b, p, layer.peephole is not None,
                        pack_sorted(np.hstack([layer.w_x, layer.w_r]), i16), pack_sorted(layer.w_r, i16),
                        pack_sorted(layer.w_ym, i16), bias_sum.astype(np.int64),
                        np.zeros((3, 1), np.int64) if layer.peephole is None
                        else layer.peephole.astype(np.int64), sh)
