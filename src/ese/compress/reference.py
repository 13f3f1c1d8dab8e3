"""The integer reference model: the golden executor of a fixed-point model (docs/fixed-point.md).

Every other executor (the compiler's image decoded, the functional and cycle accelerator models,
the Amaranth RTL, the CPU engine's integer path) must reproduce :meth:`ReferenceModel.run`
**exactly**, vector by vector and step by step. Inside the step there are only numpy int64 arrays:
exact integer products and sums, :func:`~ese.compress.fixedpoint.align` (round half up by
"add half, arithmetic shift right"), :func:`~ese.compress.fixedpoint.saturate` (counted) and LUT
lookups by integer index. Floats appear only on the host side: quantizing input features
(:meth:`ReferenceModel.quantize_input`) and turning integer logits into log-probabilities.

One step of layer l, in this order (formats F* are binary points from ``QLayer.formats``; the
cell's description, ``ese.cell``, names the matrices, blocks and element-wise step)::

    sum   = bias aligned to Fsum + for each gate matrix M: align(M . operand, FM+Foperand -> Fsum),
            added into M's accumulator blocks; Fsum = the finest of these binary points, so
            left shifts only and the sum is exact                                       (blocks*H)
    acc   = sat_acc( align(sum, Fsum -> Facc) )          Facc <= Fsum     PE output
    signals, state = the cell's fixed-point element-wise step (acc, state)   (each H; for the
            LSTMP its exact order is in ``ese.cell._lstmp_fixed``)
    acc_y = sat_acc( align(W_out_matrix . out, Fw+Fout -> Facc_y) )    with a projection; else
    y     = sat_A( align(acc_y, Facc_y -> Fy) )                          y = the step's output

The output layer runs on the host in exact int64: ``logits = W_out y + b_out`` at binary point
Fwo + Fy (no rounding, no saturation); the predicted class is the first index of the maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sparse

from ese.cell import LSTMP, CellSpec
from ese.compress.fixedpoint import QuantError, SaturationCounter, align, quantize, saturate
from ese.compress.lut import lut_index
from ese.compress.qmodel import QLayer, QModel, validate_qmodel

TRACE_SIGNALS = LSTMP.trace_signals  # every model of another cell: QModel.cell.trace_signals
_SPARSE_BELOW = 0.5  # matrices sparser than this multiply as int64 CSR (exact, faster)


class _IntMatrix:
    """``a @ W.T`` for int64 row batches ``a`` (B, K) -> (B, N), dense or CSR; always exact."""

    def __init__(self, w: np.ndarray) -> None:
        self.shape = w.shape
        density = np.count_nonzero(w) / max(w.size, 1)
        self.csr = sparse.csr_matrix(w.astype(np.int64)) if density < _SPARSE_BELOW else None
        self.w = None if self.csr is not None else np.ascontiguousarray(w, dtype=np.int64)

    def rmul(self, a: np.ndarray) -> np.ndarray:
        if self.csr is not None:
            return np.asarray(self.csr @ a.T, dtype=np.int64).T  # (B, N)
        return (self.w @ a.T).T  # row-major dot products: ~5x faster than a @ W.T for int64


@dataclass
class Trace:
    """Every intermediate vector of every step of one utterance, and the event counters.

    ``layers[k][signal]`` is an int64 array (T, n) for each name in the cell's ``trace_signals``
    (``acc`` holds the accumulator blocks, for the LSTMP (T, 4H) in gate order i, f, g, o; ``x`` is
    the layer's integer input). ``logits`` (T, C) int64
    at the output binary point. ``saturation`` counts clipped elements per "layer{k}.signal";
    ``lut_clipped`` counts LUT inputs outside the table range per "layer{k}.<LUT output>".
    """

    layers: list[dict[str, np.ndarray]]
    logits: np.ndarray
    saturation: SaturationCounter = field(default_factory=SaturationCounter)
    lut_clipped: SaturationCounter = field(default_factory=SaturationCounter)

    @property
    def y(self) -> np.ndarray:
        """The accelerator's output: y of the last layer (T, P)."""
        return self.layers[-1]["y"]


class _Layer:
    """A QLayer prepared for execution: matrices for fast exact products, shifts resolved."""

    def __init__(self, layer: QLayer, qm: QModel) -> None:
        cell = self.cell = qm.cell
        f = layer.formats
        self.H = qm.model.hidden
        self.A, self.acc_bits = qm.quant.act_bits, qm.quant.acc_bits
        self.f = {k: v.frac for k, v in f.items()}
        self.mats = {m.name: _IntMatrix(getattr(layer, m.name)) for m in cell.matrices}
        self.f_sum = cell.sum_frac(self.f)
        self.scatter = {m.name: None if cell.acc_identity(m.name) else cell.acc_rows(m.name, self.H)
                        for m in cell.gate_matrices}
        self.bias_sum = align(layer.bias, f["bias"].frac, self.f_sum)  # static: an exact left shift
        self.vectors = ew_vectors(cell, layer)
        self.luts, self.specs = qm.luts, qm.lut_specs


def ew_vectors(cell: CellSpec, layer: QLayer) -> dict[str, np.ndarray]:
    """The vectors the element-wise step reads (all but the bias the accumulators start from)."""
    return {v.name: getattr(layer, v.name) for v in cell.vectors
            if v.rows is not None and getattr(layer, v.name) is not None}


class ReferenceModel:
    """Executes a :class:`QModel` exactly; see the module docstring for the order of operations."""

    def __init__(self, qmodel: QModel) -> None:
        validate_qmodel(qmodel, where="the reference model's input")
        self.qm = qmodel
        q = qmodel.quant
        widest_k = max(qmodel.model.input_dim, qmodel.model.proj, qmodel.model.hidden) + 1
        # products and sums stay exact in int64 only below 2**63: refuse configurations that could not
        worst = q.weight_bits + q.act_bits + math.ceil(math.log2(widest_k)) + _max_left_shift(qmodel)
        if worst > 62:
            raise QuantError(f"weight_bits={q.weight_bits} and act_bits={q.act_bits} with these binary points "
                             f"need {worst}-bit exact sums; the reference model supports at most 62")
        self.layers = [_Layer(layer, qmodel) for layer in qmodel.layers]
        self.w_out = _IntMatrix(qmodel.w_out)

    # ---- host side -------------------------------------------------------------------------
    def quantize_input(self, feats: np.ndarray, counter: SaturationCounter | None = None) -> np.ndarray:
        """Float features (T, D) -> int64 in the input format (host side; saturation counted as layer0.x)."""
        return quantize(feats, self.qm.input_format, counter, "layer0.x")

    # ---- the golden model ------------------------------------------------------------------
    def run(self, x_q: np.ndarray) -> Trace:
        """Run one utterance of integer features (T, D); returns every intermediate vector."""
        x_q = self._check_input(x_q)
        sat, clip = SaturationCounter(), SaturationCounter()
        traces: list[dict[str, np.ndarray]] = []
        h = x_q[None]  # (1, T, D)
        lengths = np.array([x_q.shape[0]])
        for k, layer in enumerate(self.layers):
            rec: dict[str, list[np.ndarray]] = {s: [] for s in layer.cell.trace_signals}
            h = _run_layer(layer, h, lengths, sat, clip, f"layer{k}", rec)
            traces.append({s: (np.concatenate(v, axis=0) if v else np.zeros((0, 0), np.int64))
                           for s, v in rec.items()})
        logits = self._logits(h)[0]
        return Trace(traces, logits, sat, clip)

    def run_batch(self, xs: list[np.ndarray]) -> tuple[list[np.ndarray], SaturationCounter, SaturationCounter]:
        """Integer logits (T_b, C) of several utterances at once, plus the event counters.

        Shorter utterances are zero-padded at the end; the model is causal, so their frames are
        unaffected, and padded frames are excluded from the counters. Equal to :meth:`run` per
        utterance, exactly.
        """
        xs = [self._check_input(x) for x in xs]
        lengths = np.array([len(x) for x in xs])
        h = np.zeros((len(xs), int(lengths.max(initial=0)), self.qm.model.input_dim), dtype=np.int64)
        for b, x in enumerate(xs):
            h[b, :len(x)] = x
        sat, clip = SaturationCounter(), SaturationCounter()
        for k, layer in enumerate(self.layers):
            h = _run_layer(layer, h, lengths, sat, clip, f"layer{k}", None)
        logits = self._logits(h)
        return [logits[b, :n] for b, n in enumerate(lengths)], sat, clip

    def _logits(self, y: np.ndarray) -> np.ndarray:
        B, T, P = y.shape
        flat = self.w_out.rmul(y.reshape(B * T, P)) + self.qm.b_out  # exact int64, frac Fwo + Fy
        return flat.reshape(B, T, -1)

    def _check_input(self, x_q: np.ndarray) -> np.ndarray:
        x_q = np.asarray(x_q)
        D = self.qm.model.input_dim
        if x_q.ndim != 2 or x_q.shape[1] != D:
            raise QuantError(f"reference model input must be (frames, {D}) integers, not shape {x_q.shape}")
        if x_q.dtype.kind not in "iu":
            raise QuantError(f"reference model input must be integers (use quantize_input), not {x_q.dtype}")
        fmt = self.qm.input_format
        if x_q.size and (x_q.min() < fmt.lo or x_q.max() > fmt.hi):
            raise QuantError(f"reference model input holds values outside the {fmt.bits}-bit input format")
        return x_q.astype(np.int64)


class _ShiftProbe:
    """Stands in for the arithmetic of a cell's fixed step and records its largest left shift."""

    def __init__(self, fracs: dict[str, int]) -> None:
        self.f, self.worst = fracs, 0

    def align(self, v: np.ndarray, frm: int, to: int) -> np.ndarray:
        self.worst = max(self.worst, to - frm)
        return v

    def sat(self, v: np.ndarray, signal: str) -> np.ndarray:
        return v

    def lut(self, name: str, z: np.ndarray, frac: int, signal: str) -> np.ndarray:
        return np.zeros_like(z)


def _max_left_shift(qm: QModel) -> int:
    """The largest left shift of any align of a step: the gate sum's, the output stage's and those
    the cell's element-wise step performs (read by running it on a probe, not restated)."""
    worst, cell, H = 0, qm.cell, qm.model.hidden
    for layer in qm.layers:
        f = {k: v.frac for k, v in layer.formats.items()}
        f_sum = cell.sum_frac(f)
        worst = max(worst, f_sum - f["bias"], *(f_sum - f[m.name] - f[m.operand] for m in cell.gate_matrices))
        proj = cell.projection
        if proj is not None:
            worst = max(worst, f["y"] - f["acc_y"], f["acc_y"] - f[proj.name] - f[proj.operand])
        probe = _ShiftProbe(f)
        zeros = np.zeros((1, H), dtype=np.int64)
        cell.fixed_step(probe, np.zeros((1, len(cell.acc_blocks) * H), np.int64), {s: zeros for s in cell.state},
                        ew_vectors(cell, layer))
        worst = max(worst, probe.worst)
    return max(worst, 0)


def _run_layer(L: _Layer, x: np.ndarray, lengths: np.ndarray, sat: SaturationCounter,
               clip: SaturationCounter, tag: str, rec: dict[str, list[np.ndarray]] | None) -> np.ndarray:
    """One layer over a padded batch x (B, T, D) int64 -> y (B, T, P) int64."""
    B, T, D = x.shape
    cell, H, A, f = L.cell, L.H, L.A, L.f
    proj = cell.projection
    P = L.mats[proj.name].shape[0] if proj else H
    gates = cell.gate_matrices
    # products with the input for every t at once: exact, frac Fw + Fx
    pre = {m.name: L.mats[m.name].rmul(x.reshape(B * T, D)).reshape(B, T, -1) for m in gates if m.operand == "x"}
    y = np.zeros((B, P), dtype=np.int64)
    state = {s: np.zeros((B, H), dtype=np.int64) for s in cell.state}
    ys = np.zeros((B, T, P), dtype=np.int64)
    for t in range(T):
        rows = t < lengths  # (B,) real frames of this step
        exact = np.broadcast_to(L.bias_sum, (B, L.bias_sum.shape[0])).copy()
        for m in gates:  # the exact gate sum at Fsum: left shifts only
            prod = pre[m.name][:, t] if m.name in pre else L.mats[m.name].rmul(y)
            term = align(prod, f[m.name] + f[m.operand], L.f_sum)
            if L.scatter[m.name] is None:
                exact = exact + term
            else:
                exact[:, L.scatter[m.name]] += term
        acc = saturate(align(exact, L.f_sum, f["acc"]), L.acc_bits, sat, f"{tag}.acc", rows)  # PE output
        ew, state = elementwise(cell, acc, state, L.vectors, f, A, L.luts, L.specs, sat, clip, tag, rows)
        out = ew[cell.output]
        if proj is not None:
            acc_y = saturate(align(L.mats[proj.name].rmul(out), f[proj.name] + f[proj.operand], f["acc_y"]),
                             L.acc_bits, sat, f"{tag}.acc_y", rows)  # (B, P)
            y = saturate(align(acc_y, f["acc_y"], f["y"]), A, sat, f"{tag}.y", rows)
            ew = {**ew, "acc_y": acc_y}
        else:
            y = out
        ys[:, t] = y
        if rec is not None:
            for name, v in (("x", x[:, t]), ("acc", acc), *ew.items(), ("y", y)):
                rec[name].append(v.copy())
    return ys


class FixedOps:
    """The exact arithmetic a cell's fixed-point step is written against (``ese.cell``):
    ``align`` (round half up), ``sat`` (to act_bits, counted per "tag.signal" on the real
    ``rows``), ``lut`` (index, clip counted, read)."""

    def __init__(self, f: dict[str, int], A: int, luts: dict[str, np.ndarray], specs: dict,
                 sat: SaturationCounter, clip: SaturationCounter, tag: str, rows: np.ndarray | None) -> None:
        self.f, self.A, self.luts, self.specs = f, A, luts, specs
        self._sat, self._clip, self.tag, self.rows = sat, clip, tag, rows

    align = staticmethod(align)

    def sat(self, v: np.ndarray, signal: str) -> np.ndarray:
        return saturate(v, self.A, self._sat, f"{self.tag}.{signal}", self.rows)

    def lut(self, name: str, z: np.ndarray, frac: int, signal: str) -> np.ndarray:
        k, outside = lut_index(z, frac, self.specs[name])
        rows = self.rows
        self._clip.record(f"{self.tag}.{signal}", int(np.count_nonzero(outside if rows is None else outside[rows])))
        return self.luts[name][k]


def elementwise(cell: CellSpec, acc: np.ndarray, state: dict[str, np.ndarray], vectors: dict[str, np.ndarray],
                f: dict[str, int], A: int, luts: dict[str, np.ndarray], specs: dict, sat: SaturationCounter,
                clip: SaturationCounter, tag: str, rows: np.ndarray | None = None
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The element-wise stage of one step: the cell's fixed step on the exact arithmetic.

    ``acc`` (..., blocks*H) saturated accumulators in the cell's block order, ``state`` the
    carried state (LSTMP: c_{t-1}), ``f`` the layer's binary points. Returns (the signals of
    ``cell.ew_signals`` in order, the new state); saturations and LUT clips are counted under
    ``tag``, only on the leading-axis ``rows`` when given (real frames of a padded batch). Every
    executor of the spec in numpy (this model, the functional accelerator model) runs this one.
    """
    signals, new_state = cell.fixed_step(FixedOps(f, A, luts, specs, sat, clip, tag, rows), acc, state, vectors)
    return {name: signals[name] for name in cell.ew_signals}, new_state


def exact_sum_bits(qm: QModel) -> list[dict[str, int]]:
    """Per layer, the signed width that holds the exact (pre-rounding) SpMV sums for any input.

    ``gates``: max over accumulator rows of the sum over the gate matrices of sum_j |w| 2**s
    (times the largest input magnitude 2**(A-1)) + |bias| 2**sb; ``proj``: the same for the
    output matrix (0 without one). An implementation whose accumulator register has at least
    this many bits computes the sums exactly in any order before the one rounding shift and
    saturation the spec defines.
    """
    out = []
    big = 1 << (qm.quant.act_bits - 1)
    cell, H = qm.cell, qm.model.hidden
    for layer in qm.layers:
        f = {k: v.frac for k, v in layer.formats.items()}
        f_sum = cell.sum_frac(f)
        row = np.abs(layer.bias) << (f_sum - f["bias"])
        for m in cell.gate_matrices:
            term = np.abs(getattr(layer, m.name)).sum(axis=1) * big << (f_sum - f[m.name] - f[m.operand])
            row = row.copy()
            np.add.at(row, cell.acc_rows(m.name, H), term)  # exact int64, into the matrix's blocks
        proj = cell.projection
        p = np.abs(getattr(layer, proj.name)).sum(axis=1) * big if proj else np.zeros(1, np.int64)
        out.append({"gates": int(row.max()).bit_length() + 1, "proj": int(p.max()).bit_length() + 1})
    return out
