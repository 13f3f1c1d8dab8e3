"""What the cycle model consumes: per matrix, the entries of every column in every PE.

:func:`workload_from_program` reads them from a compiled program's encoding (exact by definition).
:func:`workload_from_qmodel` is the sweep's analytic shortcut: it counts the same entries straight
from the fixed-point weights (``ese.compiler.encode.column_entries``: the encoder's own counting,
without packing words or building a program), so a design-space sweep over PE counts and index
widths skips compilation. The two agree exactly
(``tests/accel/test_workload.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ese.compiler.encode import column_entries
from ese.compress.qmodel import QModel


@dataclass(frozen=True, eq=False)
class MatrixWork:
    """One encoded matrix as the cycle model sees it."""

    name: str  # "layer0.w_x"
    entries: np.ndarray  # (N, K) int64 entries (non-zeros + padding) of column k in PE p
    nnz: int
    padding: int
    dense: int  # rows * columns of the dense matrix (dense-equivalent operations: 2 per weight)

    @property
    def n_cols(self) -> int:
        return int(self.entries.shape[1])

    @property
    def pointer_bits(self) -> int:
        """Width of one column pointer: enough for the largest per-PE entry count (at least 1 bit)."""
        return max(1, int(self.entries.sum(axis=1).max(initial=0)).bit_length())


@dataclass(frozen=True, eq=False)
class Workload:
    """All matrices of all layers for ``n_pes`` PEs, plus the widths that size the weight stream."""

    n_pes: int
    index_bits: int
    weight_bits: int
    layers: tuple[dict[str, MatrixWork], ...]  # the cell's matrices by name, in execution order
    hidden: tuple[int, ...] = ()  # cells per layer (H), for the element-wise unit's timing

    def matrices(self) -> list[MatrixWork]:
        return [m for L in self.layers for m in L.values()]

    @property
    def nnz(self) -> int:
        return sum(m.nnz for m in self.matrices())

    @property
    def padding(self) -> int:
        return sum(m.padding for m in self.matrices())

    @property
    def dense(self) -> int:
        return sum(m.dense for m in self.matrices())

    def stream_bits(self) -> int:
        """Bits of one frame's weight stream: every entry word and every column pointer once."""
        word = self.index_bits + self.weight_bits
        return sum(int(m.entries.sum()) * word + self.n_pes * (m.n_cols + 1) * m.pointer_bits
                   for m in self.matrices())


def workload_from_program(program) -> Workload:
    """The workload of a compiled :class:`~ese.compiler.program.Program` (from its encoding)."""
    layers = []
    for L in program.layers:
        layers.append({name: MatrixWork(m.name, np.asarray(m.column_entries, dtype=np.int64), m.nnz, m.padding,
                                        m.n_rows * m.n_cols)
                       for name, m in L.matrices().items()})
    hw = program.hardware
    return Workload(hw.pes, hw.index_bits, program.quant.weight_bits, tuple(layers),
                    tuple(L.hidden for L in program.layers))


def workload_from_qmodel(qm: QModel, n_pes: int, index_bits: int) -> Workload:
    """The workload ``compile_qmodel(qm, HardwareConfig(pes=n_pes, index_bits=index_bits))`` would
    have, counted directly from the weights (the sweep's shortcut)."""
    layers = []
    for k, L in enumerate(qm.layers):
        mats = {}
        for name in qm.cell.matrix_names:
            w = getattr(L, name)
            entries, pad = column_entries(f"layer{k}.{name}", w, n_pes, index_bits, qm.cell.name)
            mats[name] = MatrixWork(f"layer{k}.{name}", entries, int(np.count_nonzero(w)), pad, int(w.size))
        layers.append(mats)
    return Workload(n_pes, index_bits, qm.quant.weight_bits, tuple(layers), (qm.model.hidden,) * len(layers))
