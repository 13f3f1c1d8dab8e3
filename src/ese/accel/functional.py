"""The bit-exact functional model: executes a compiled :class:`~ese.compiler.program.Program`.

It works the way the hardware does (ESE.md sections 4 and 6), so that a mismatch with the integer
reference model points at the encoding or the data flow, not at arithmetic:

* every PE owns an accumulator buffer in its local row order (``ese.partition``);
* the activations of an SpMV are broadcast column by column; for column j every PE walks its own
  entries ``ptr[p, j] .. ptr[p, j+1]``, decoding the relative row index on the fly
  (``row += rel + 1``; padding entries carry weight 0) and accumulating ``weight * a_j`` exactly;
* the gate SpMV is one sum over [x_t ; y_{t-1}]: the accumulators start at the bias and every
  product is shifted left to the common binary point Fsum (exact), as docs/fixed-point.md section 4
  defines the sum; only the complete sum is rounded to Facc and saturated;
* the element-wise unit is the spec's own function (``ese.compress.reference.elementwise``) on
  the program's stored LUTs; the projection is a second broadcast SpMV.

Result: a :class:`~ese.compress.reference.Trace` equal to ``ReferenceModel(program.to_qmodel())``
on every signal of every step, saturation and LUT-clip counters included.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ese.accel.errors import AccelError
from ese.compiler.encode import EncodedMatrix, EncodingError
from ese.compiler.program import LayerProgram, Program
from ese.compress.fixedpoint import SaturationCounter, align, saturate
from ese.compress.lut import lut_specs
from ese.compress.qmodel import sum_frac
from ese.compress.reference import TRACE_SIGNALS, Trace, elementwise


@njit(cache=True, nogil=True)
def _broadcast_columns(acc: np.ndarray, ptr: np.ndarray, entry_start: np.ndarray, rel: np.ndarray,
                       weight: np.ndarray, act: np.ndarray, shift: int) -> None:
    """acc[p, local_row] += (weight * act[j]) << shift over every entry of every column j, per PE."""
    n_pes, n_cols = ptr.shape[0], ptr.shape[1] - 1
    for j in range(n_cols):  # one broadcast activation per column
        a = act[j]
        for p in range(n_pes):  # all PEs take the same activation
            base = entry_start[p]
            row = -1
            for e in range(base + ptr[p, j], base + ptr[p, j + 1]):
                row += rel[e] + 1  # relative index: zero rows skipped since the previous entry
                acc[p, row] += (weight[e] * a) << shift


class _PeMatrix:
    """One encoded matrix as the PEs hold it, plus the wiring of local rows back to global rows."""

    def __init__(self, m: EncodedMatrix) -> None:
        try:
            m.validate()
        except EncodingError as exc:
            raise AccelError(f"refusing a corrupt program: {exc}") from None
        self.name = m.name
        self.ptr = np.ascontiguousarray(m.ptr, dtype=np.int64)
        self.entry_start = np.ascontiguousarray(m.entry_start, dtype=np.int64)
        self.rel = np.ascontiguousarray(m.rel, dtype=np.int64)
        self.weight = np.ascontiguousarray(m.weight, dtype=np.int64)
        part = m.partition
        self.n_pes, self.n_rows, self.n_cols = m.n_pes, m.n_rows, m.n_cols
        self.local_rows = max(int(part.rows_per_pe.max()), 1)
        # flat index into the (N, local_rows) accumulator buffer of every global row
        self.gather = part.pe_of_row * self.local_rows + part.local_index

    def buffer(self, init_global: np.ndarray | None = None) -> np.ndarray:
        """A fresh (N, local_rows) accumulator buffer, optionally preloaded with a global vector."""
        acc = np.zeros(self.n_pes * self.local_rows, dtype=np.int64)
        if init_global is not None:
            acc[self.gather] = init_global
        return acc.reshape(self.n_pes, self.local_rows)

    def run(self, acc: np.ndarray, act: np.ndarray, shift: int = 0) -> None:
        _broadcast_columns(acc, self.ptr, self.entry_start, self.rel, self.weight,
                           np.ascontiguousarray(act, dtype=np.int64), shift)

    def to_global(self, acc: np.ndarray) -> np.ndarray:
        return acc.reshape(-1)[self.gather]


class _LayerUnit:
    """One layer's PE matrices, vectors and binary points."""

    def __init__(self, L: LayerProgram) -> None:
        self.w_x, self.w_r, self.w_ym = _PeMatrix(L.w_x), _PeMatrix(L.w_r), _PeMatrix(L.w_ym)
        self.H, self.P = L.w_ym.n_cols, L.w_ym.n_rows
        self.f = {k: v.frac for k, v in L.formats.items()}
        f = self.f
        self.f_sum = sum_frac(f)
        self.shift_x = self.f_sum - f["w_x"] - f["x"]  # >= 0: products move to Fsum exactly
        self.shift_r = self.f_sum - f["w_r"] - f["y"]
        self.bias_sum = L.bias.astype(np.int64) << np.int64(self.f_sum - f["bias"])
        self.peephole = None if L.peephole is None else L.peephole.astype(np.int64)


class FunctionalModel:
    """Executes a program; :meth:`run` returns the same :class:`Trace` as the reference model."""

    def __init__(self, program: Program) -> None:
        self.program = program
        q = program.quant
        self.A, self.acc_bits = q.act_bits, q.acc_bits
        self.specs = lut_specs(q.act_bits, q.lut_index_bits, q.sigmoid_range, q.tanh_range)
        for name, spec in self.specs.items():
            table = program.luts.get(name)
            if table is None or table.shape != (spec.entries,):
                raise AccelError(f"refusing a corrupt program: LUT {name!r} must hold {spec.entries} entries")
        self.luts = {k: np.asarray(v, dtype=np.int64) for k, v in program.luts.items()}
        self.layers = [_LayerUnit(L) for L in program.layers]
        self.w_out = np.asarray(program.w_out, dtype=np.int64)
        self.b_out = np.asarray(program.b_out, dtype=np.int64)

    def run(self, x_q: np.ndarray) -> Trace:
        """Run one utterance of integer input frames (T, D) through every layer."""
        x_q = np.asarray(x_q)
        D = self.layers[0].w_x.n_cols
        if x_q.ndim != 2 or x_q.shape[1] != D or x_q.dtype.kind not in "iu":
            raise AccelError(f"functional model input must be integer frames (T, {D}), not {x_q.dtype} {x_q.shape}")
        fmt = self.program.layers[0].formats["x"]
        if x_q.size and (x_q.min() < fmt.lo or x_q.max() > fmt.hi):
            raise AccelError(f"functional model input holds values outside the {fmt.bits}-bit input format")
        sat, clip = SaturationCounter(), SaturationCounter()
        h = x_q.astype(np.int64)
        layers = []
        for k, unit in enumerate(self.layers):
            rec = self._run_layer(unit, h, sat, clip, f"layer{k}")
            layers.append(rec)
            h = rec["y"]
        logits = (self.w_out @ h.T).T + self.b_out if len(h) else np.zeros((0, len(self.b_out)), np.int64)
        return Trace(layers, np.asarray(logits, dtype=np.int64), sat, clip)

    def _run_layer(self, u: _LayerUnit, xs: np.ndarray, sat: SaturationCounter, clip: SaturationCounter,
                   tag: str) -> dict[str, np.ndarray]:
        T, H, A, f = xs.shape[0], u.H, self.A, u.f
        rec = {s: np.zeros((T, H), dtype=np.int64) for s in TRACE_SIGNALS}
        rec["x"] = xs.copy()
        rec["acc"] = np.zeros((T, 4 * H), dtype=np.int64)
        rec["acc_y"] = np.zeros((T, u.P), dtype=np.int64)
        rec["y"] = np.zeros((T, u.P), dtype=np.int64)
        y = np.zeros(u.P, dtype=np.int64)
        c = np.zeros(H, dtype=np.int64)
        for t in range(T):
            # gate SpMV over [x_t ; y_{t-1}]: one accumulator per row, preloaded with the bias
            buf = u.w_x.buffer(u.bias_sum)
            u.w_x.run(buf, xs[t], u.shift_x)
            u.w_r.run(buf, y, u.shift_r)  # same rows, same partition: the same buffer
            acc = saturate(align(u.w_x.to_global(buf), u.f_sum, f["acc"]), self.acc_bits, sat, f"{tag}.acc")
            # element-wise unit: the spec's one implementation (ese.compress.reference.elementwise)
            ew = elementwise(acc, c, u.peephole, f, A, self.luts, self.specs, sat, clip, tag)
            c, m = ew["c"], ew["m"]
            # projection SpMV: m broadcast cell by cell
            buf_y = u.w_ym.buffer()
            u.w_ym.run(buf_y, m)
            acc_y = saturate(align(u.w_ym.to_global(buf_y), f["w_ym"] + f["m"], f["acc_y"]), self.acc_bits,
                             sat, f"{tag}.acc_y")
            y = saturate(align(acc_y, f["acc_y"], f["y"]), A, sat, f"{tag}.y")
            for name, v in (("acc", acc), *ew.items(), ("acc_y", acc_y), ("y", y)):
                rec[name][t] = v
        return rec


def run_program(program: Program, x_q: np.ndarray) -> Trace:
    """Convenience: ``FunctionalModel(program).run(x_q)``."""
    return FunctionalModel(program).run(x_q)
