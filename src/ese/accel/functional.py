"""The bit-exact functional model: executes a compiled :class:`~ese.compiler.program.Program`.

It works the way the hardware does (ESE.md sections 4 and 6), so that a mismatch with the integer
reference model points at the encoding or the data flow, not at arithmetic:

* every PE owns an accumulator buffer in its local row order (``ese.partition``);
* the activations of an SpMV are broadcast column by column; for column j every PE walks its own
  entries ``ptr[p, j] .. ptr[p, j+1]``, decoding the relative row index on the fly
  (``row += rel + 1``; padding entries carry weight 0) and accumulating ``weight * a_j`` exactly;
* the gate SpMV is one sum over the cell's gate matrices (LSTMP: [x_t ; y_{t-1}]): the
  accumulators start at the bias and every product is shifted left to the common binary point
  Fsum (exact), as docs/fixed-point.md section 4 defines the sum; only the complete sum is rounded
  to Facc and saturated. A matrix whose row blocks are the accumulator blocks adds into the same
  buffer; one feeding other blocks (the GRU's recurrent candidate) is wired by its rows;
* the element-wise unit is the spec's own function (``ese.compress.reference.elementwise``, the
  cell's fixed step) on the program's stored LUTs; the projection is a second broadcast SpMV.

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
from ese.cell import cell_spec
from ese.compress.reference import Trace, elementwise


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

    def __init__(self, L: LayerProgram, cell) -> None:
        self.cell = cell
        self.mats = {name: _PeMatrix(m) for name, m in L.matrices().items()}
        self.gates = cell.gate_matrices
        self.proj = cell.projection
        self.H = L.hidden
        self.P = L.matrices()[self.proj.name].n_rows if self.proj else self.H
        self.f = {k: v.frac for k, v in L.formats.items()}
        f = self.f
        self.f_sum = cell.sum_frac(f)
        self.shift = {m.name: self.f_sum - f[m.name] - f[m.operand] for m in self.gates}  # >= 0: exact
        self.bias_sum = L.bias.astype(np.int64) << np.int64(self.f_sum - f["bias"])
        self.vectors = {name: v.astype(np.int64) for name, v in L.vectors.items()}
        self.wiring = {m.name: cell.acc_rows(m.name, self.H) for m in self.gates if not cell.acc_identity(m.name)}
        # the matrices whose row blocks are the accumulator blocks share one buffer (LSTMP: both)
        self.shared = [m for m in self.gates if m.name not in self.wiring]


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
        self.cell = cell_spec(program.model)
        self.layers = [_LayerUnit(L, self.cell) for L in program.layers]
        self.w_out = np.asarray(program.w_out, dtype=np.int64)
        self.b_out = np.asarray(program.b_out, dtype=np.int64)

    def run(self, x_q: np.ndarray) -> Trace:
        """Run one utterance of integer input frames (T, D) through every layer."""
        x_q = np.asarray(x_q)
        D = self.layers[0].mats[self.cell.gate_matrices[0].name].n_cols
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
        rec: dict[str, np.ndarray] = {s: np.zeros((T, H), dtype=np.int64) for s in u.cell.trace_signals}
        rec["x"] = xs.copy()
        rec["acc"] = np.zeros((T, len(u.bias_sum)), dtype=np.int64)
        if u.proj is not None:
            rec["acc_y"] = np.zeros((T, u.P), dtype=np.int64)
        rec["y"] = np.zeros((T, u.P), dtype=np.int64)
        y = np.zeros(u.P, dtype=np.int64)
        state = {s: np.zeros(H, dtype=np.int64) for s in u.cell.state}
        for t in range(T):
            operands = {"x": xs[t], "y": y}
            # gate SpMV: one accumulator per row, preloaded with the bias; every gate matrix whose row
            # blocks are the accumulator blocks shares the partition, so the same buffer
            if u.shared:
                first = u.mats[u.shared[0].name]
                buf = first.buffer(u.bias_sum)
                for m in u.shared:
                    u.mats[m.name].run(buf, operands[m.operand], u.shift[m.name])
                exact = first.to_global(buf)
            else:
                exact = u.bias_sum.copy()
            for name, rows in u.wiring.items():  # rows of cell k add into cell k's blocks, on its PE
                spec = u.cell.matrix(name)
                own = u.mats[name].buffer()
                u.mats[name].run(own, operands[spec.operand], u.shift[name])
                exact[rows] += u.mats[name].to_global(own)
            acc = saturate(align(exact, u.f_sum, f["acc"]), self.acc_bits, sat, f"{tag}.acc")
            # element-wise unit: the spec's one implementation (ese.compress.reference.elementwise)
            ew, state = elementwise(u.cell, acc, state, u.vectors, f, A, self.luts, self.specs, sat, clip, tag)
            out = ew[u.cell.output]
            if u.proj is not None:  # projection SpMV: the output broadcast cell by cell
                pm = u.mats[u.proj.name]
                buf_y = pm.buffer()
                pm.run(buf_y, out)
                acc_y = saturate(align(pm.to_global(buf_y), f[u.proj.name] + f[u.proj.operand], f["acc_y"]),
                                 self.acc_bits, sat, f"{tag}.acc_y")
                y = saturate(align(acc_y, f["acc_y"], f["y"]), A, sat, f"{tag}.y")
                ew = {**ew, "acc_y": acc_y}
            else:
                y = out
            for name, v in (("acc", acc), *ew.items(), ("y", y)):
                rec[name][t] = v
        return rec


def run_program(program: Program, x_q: np.ndarray) -> Trace:
    """Convenience: ``FunctionalModel(program).run(x_q)``."""
    return FunctionalModel(program).run(x_q)
