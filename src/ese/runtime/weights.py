"""One recurrent layer's weights packed for the CPU engine (float or fixed point), and its shifts.

Packing reads the cell description (:mod:`ese.cell`): the input and recurrent gate matrices are
laid out by accumulator row (:func:`acc_matrix`), the bias is one entry per accumulator row, the
vectors with rows (the LSTMP's three c-weights) go to the element-wise step, and the output matrix is
the cell's projection or, for a cell whose output is y itself (the GRU), the identity: an exact
extra product of one non-zero per row (1.0, or the integer 1 with zero shifts), so every kernel
has the same three matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ese.cell import INPUT, RECURRENT, CellSpec
from ese.compress.qmodel import QLayer, QModel
from ese.runtime import cells
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

    ``w_x``, ``w_r`` (blocks * Hp internal rows): the input and the recurrent matrix by
    accumulator row; ``w_y`` (Pp rows): the output matrix. ``bias`` (blocks * Hp): float bias, or
    the fixed-point bias already aligned to Fsum (int64). ``vec`` (rows, Hp): the element-wise
    vectors, a (1, 1) dummy when ``has_vec`` is False. ``shifts``: fixed point only.
    """

    input_dim: int
    hidden: int
    proj: int
    blocks: int  # accumulator blocks per cell
    kind: int  # the cell's branch in ese.runtime.cells
    w_x: SparseMatrix
    w_r: SparseMatrix
    w_y: SparseMatrix
    bias: np.ndarray
    vec: np.ndarray
    has_vec: bool
    gx: SortedSell  # [w_x | w_r] over z = [x; y], one stream, streaming
    gr: SortedSell  # w_r alone (utterance mode: W_x x batched ahead)
    gp: SortedSell  # w_y
    bias_o: np.ndarray  # (blocks * H,) accumulator-row order (fixed: aligned to Fsum)
    vec_o: np.ndarray  # (rows, H) or (1, 1) dummy
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
            return int(self.gx.nbytes + self.gp.nbytes + self.bias_o.nbytes + self.vec_o.nbytes)
        mats = sum(mat.nbytes("csr") for mat in (self.w_x, self.w_r, self.w_y))
        return int(mats + self.bias.nbytes + self.vec.nbytes)


def acc_matrix(spec: CellSpec, name: str, w: np.ndarray, hidden: int) -> np.ndarray:
    """Gate matrix ``name`` with its rows at their accumulator rows (blocks * H rows; the rows of
    blocks it does not feed are zero): the LSTMP's matrices as they are, the GRU's three row
    blocks spread over its four accumulator blocks."""
    if spec.acc_identity(name):
        return w
    out = np.zeros((len(spec.acc_blocks) * hidden, w.shape[1]), dtype=w.dtype)
    out[spec.acc_rows(name, hidden)] = w
    return out


def gate_pair(spec: CellSpec) -> tuple[str, str]:
    """The names of the cell's input and recurrent gate matrices (the engine runs cells with one
    of each, as both real cells have)."""
    by = {op: [m.name for m in spec.gate_matrices if m.operand == op] for op in (INPUT, RECURRENT)}
    if len(spec.gate_matrices) != 2 or len(by[INPUT]) != 1 or len(by[RECURRENT]) != 1:
        raise EngineError(f"the CPU engine runs cells with one input and one recurrent gate matrix; "
                          f"the {spec.name!r} cell has {', '.join(m.name for m in spec.gate_matrices)}")
    return by[INPUT][0], by[RECURRENT][0]


def engine_matrices(spec: CellSpec, arrays: dict, hidden: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input matrix, recurrent matrix, output matrix) of a layer given by the description's
    names: the gate matrices by accumulator row, the projection or the identity."""
    nx, nr = gate_pair(spec)
    proj = spec.projection
    w_y = np.asarray(arrays[proj.name], dtype) if proj else np.eye(hidden, dtype=dtype)
    return (acc_matrix(spec, nx, np.asarray(arrays[nx], dtype), hidden),
            acc_matrix(spec, nr, np.asarray(arrays[nr], dtype), hidden), w_y)


def _ew_vectors(spec: CellSpec, arrays: dict) -> np.ndarray | None:
    """The element-wise vectors (those with rows) the layer has, stacked (rows, H), or None."""
    vs = [np.asarray(arrays[v.name]) for v in spec.vectors if v.rows is not None and arrays.get(v.name) is not None]
    return np.concatenate(vs) if vs else None


def _layer(spec: CellSpec, w_x, w_r, w_y, bias, vec, dtype, shifts=None) -> LayerWeights:
    H, P = w_y.shape[1], w_y.shape[0]
    nb = len(spec.acc_blocks)
    order = gate_row_order(H, nb)
    b = np.zeros(order.size, dtype=bias.dtype)
    b[order >= 0] = bias[order[order >= 0]]
    if vec is None:
        v_int, v_o = np.zeros((1, 1), bias.dtype), np.zeros((1, 1), bias.dtype)
    else:
        v_int = np.zeros((vec.shape[0], padded(H)), dtype=bias.dtype)
        v_int[:, :H] = vec
        v_o = vec.astype(bias.dtype)
    return LayerWeights(w_x.shape[1], H, P, nb, cells.engine_cell(spec).kind,
                        pack(w_x, order, dtype), pack(w_r, order, dtype), pack(w_y, plain_row_order(P), dtype),
                        b, v_int, vec is not None, pack_sorted(np.hstack([w_x, w_r]), dtype),
                        pack_sorted(w_r, dtype), pack_sorted(w_y, dtype), bias.copy(), v_o, shifts)


def float_layer(spec: CellSpec, arrays: dict) -> LayerWeights:
    """Pack a float layer given by the description's names (an optional vector may be None) as fp32."""
    f32 = np.float32
    cells.engine_cell(spec)
    H = np.asarray(arrays["bias"]).shape[0] // len(spec.acc_blocks)  # one bias entry per accumulator row
    w_x, w_r, w_y = engine_matrices(spec, arrays, H, f32)
    vec = _ew_vectors(spec, arrays)
    return _layer(spec, w_x, w_r, w_y, np.asarray(arrays["bias"], f32), None if vec is None else vec.astype(f32), f32)


def fixed_shifts(layer: QLayer, qm: QModel) -> np.ndarray:
    """The ``sh`` vector of the fixed-point kernels for one layer (layout: :mod:`ese.runtime.cells`)."""
    spec = qm.cell
    f = {k: v.frac for k, v in layer.formats.items()}
    specs = qm.lut_specs
    fsum = spec.sum_frac(f)
    nx, nr = gate_pair(spec)
    sh = np.zeros(cells.N_SHIFTS, dtype=np.int64)
    vals = {cells.SX: f[nx] + f[INPUT] - fsum, cells.SR: f[nr] + f[RECURRENT] - fsum, cells.SACC: fsum - f["acc"],
            cells.ABITS: qm.quant.act_bits, cells.ACCBITS: qm.quant.acc_bits,
            cells.NSIG: qm.luts["sigmoid"].size, cells.NTANH: qm.luts["tanh"].size}
    proj = spec.projection
    if proj is not None:  # without one, the identity output matrix runs at zero shifts: y = out
        vals[cells.SAY] = f[proj.name] + f[proj.operand] - f["acc_y"]
        vals[cells.SY] = f["acc_y"] - f["y"]
    vals.update(cells.engine_cell(spec).shifts(f, specs["sigmoid"].step_log2, specs["tanh"].step_log2))
    for k, v in vals.items():
        sh[k] = v
    if max(abs(int(v)) for v in sh[cells.SHIFTS0:]) > 62:
        raise EngineError("fixed-point model needs shifts beyond 62 bits; it is not runnable")
    return sh


def fixed_arrays(layer: QLayer, qm: QModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The integer (input, recurrent, output) matrices of :func:`engine_matrices` (int64)."""
    return engine_matrices(qm.cell, layer.arrays(), qm.model.hidden, np.int64)


def fixed_layer(layer: QLayer, qm: QModel) -> LayerWeights:
    """Pack a fixed-point layer: int16 weights, bias aligned to Fsum, shifts resolved."""
    if qm.quant.weight_bits > 16 or qm.quant.act_bits > 16:
        raise EngineError(f"the CPU engine runs weights and activations of at most 16 bits, not "
                          f"{qm.quant.weight_bits}/{qm.quant.act_bits}")
    spec = qm.cell
    cells.engine_cell(spec)
    sh = fixed_shifts(layer, qm)
    f = {k: v.frac for k, v in layer.formats.items()}
    bias_sum = layer.bias.astype(np.int64) << (spec.sum_frac(f) - f["bias"])
    w_x, w_r, w_y = fixed_arrays(layer, qm)
    vec = _ew_vectors(spec, layer.arrays())
    return _layer(spec, w_x, w_r, w_y, bias_sum, None if vec is None else vec.astype(np.int64), np.int16, sh)
