"""Which PE owns which row of every matrix of a recurrent layer (ESE.md sections 2 and 4).

This is the ONE place the row -> PE mapping is defined; pruning, the encoder, the accelerator
models, the RTL and the CPU engine call it and never re-derive it. It sits below all of them
(it imports only ``ese.cell``, ``ese.config`` and ``ese.errors``; docs/architecture.md). Which
matrices a layer has, and how many gate blocks each stacks, is the cell's description
(``ese.cell.CellSpec``); this module never names them.

Rules, for N PEs:

* A plain (output) matrix with R rows (P, the projection): row r goes to PE
  ``r mod N`` and is the PE's local row ``r // N`` (interleaving, ESE.md section 2).
* A gate matrix of G stacked H-row blocks (the LSTMP's ``w_x``, ``w_r``: G = 4, blocks i, f, g,
  o, so row ``g*H + k`` is gate g of cell k): cell k goes to PE ``k mod N`` with all G of its
  gate rows, so the element-wise stage of cell k runs next to the accumulators that produced its
  inputs.
* Local order inside a PE is always ascending global row index. For a gate matrix that is
  **gate-major**: the PE's accumulator buffer holds G contiguous vectors (``[i | f | g | o]``)
  over its cells ``k = p, p + N, p + 2N, ...``; the gate-g row of the PE's j-th cell has local
  index ``g * n_cells(p) + j``, so the element-wise unit reads the gates of a cell at the same
  offset j of G blocks.

N need not divide the rows (or cells): PE p then owns ``ceil`` or ``floor`` of rows / N rows
(cells), the first ``rows mod N`` PEs holding one more; per-PE row counts differ by at most one
(times G for gate matrices, one cell = G rows). More PEs than rows (cells) is allowed: the
PEs past the last row own nothing and idle, which the imbalance statistics show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ese.cell import CellSpec, cell_spec
from ese.config import ModelConfig
from ese.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Partition:
    """Rows of one matrix distributed over ``n_pes`` PEs.

    Attributes
    ----------
    n_pes : int
        Number of PEs.
    gate_blocks : int
        1 for a plain matrix, G for a matrix of G stacked gate blocks.
    pe_of_row : np.ndarray
        (R,) int64, the PE owning each row.
    local_index : np.ndarray
        (R,) int64, the row's position in its PE's local row order.
    rows_of_pe : tuple[np.ndarray, ...]
        ``rows_of_pe[p]`` (n_p,) int64: global rows of PE p in local order (ascending).
    """

    n_pes: int
    gate_blocks: int
    pe_of_row: np.ndarray
    local_index: np.ndarray
    rows_of_pe: tuple[np.ndarray, ...]

    @property
    def n_rows(self) -> int:
        return int(self.pe_of_row.shape[0])

    @property
    def rows_per_pe(self) -> np.ndarray:
        """(N,) int64: how many rows each PE owns."""
        return np.array([len(r) for r in self.rows_of_pe], dtype=np.int64)

    def count_per_pe(self, row_values: np.ndarray) -> np.ndarray:
        """(N,) sums of ``row_values`` (R,) per PE, e.g. the non-zeros per row of a mask."""
        return np.bincount(self.pe_of_row, weights=np.asarray(row_values, dtype=np.float64),
                           minlength=self.n_pes).astype(np.int64)


# The paper's channel has 32 PEs. 4096 (128x that) is as many rows as the paper model's largest
# matrices have (4 x 1024 cells), so beyond it every PE holds at most one row of any model of
# that size, and the cycle model's per-PE arrays (PEs x columns) reach gigabytes: 100 000 PEs
# took 6.8 GB. Larger counts are refused rather than run for minutes.
MAX_PES = 4096


def check_pes(n_pes: object, what: str = "the PE count") -> int:
    """``n_pes`` as an int in [1, MAX_PES]; ConfigError otherwise."""
    if isinstance(n_pes, bool) or not isinstance(n_pes, (int, np.integer)) or n_pes < 1:
        raise ConfigError(f"{what} must be a positive integer, not {n_pes!r}")
    if n_pes > MAX_PES:
        raise ConfigError(f"{what} {n_pes} is more than {MAX_PES}, the most this model of the "
                          f"accelerator takes (128x the paper's 32 PEs)")
    return int(n_pes)


def partition_rows(n_rows: int, n_pes: int, *, gate_blocks: int = 1) -> Partition:
    """The partition of a matrix of ``n_rows`` rows (``gate_blocks`` stacked blocks) over ``n_pes``.

    Raises ConfigError for a non-positive row or PE count, or rows not divisible into the blocks.
    """
    check_pes(n_pes, "partition n_pes")
    for what, value in (("n_rows", n_rows), ("n_pes", n_pes), ("gate_blocks", gate_blocks)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"partition {what} must be a positive integer, not {value!r}")
    n_rows, n_pes, gate_blocks = int(n_rows), int(n_pes), int(gate_blocks)
    if n_rows % gate_blocks:
        raise ConfigError(f"a matrix of {n_rows} rows cannot hold {gate_blocks} equal gate blocks")
    block = n_rows // gate_blocks  # cells per gate block (H), or rows of a plain matrix
    rows = np.arange(n_rows, dtype=np.int64)
    cell = rows % block  # (R,) cell k of row g*H + k
    pe_of_row = cell % n_pes
    # ascending global order inside each PE: gate-major for gate matrices, r // N for plain ones
    order = np.argsort(pe_of_row, kind="stable")  # rows grouped by PE, ascending within a PE
    counts = np.bincount(pe_of_row, minlength=n_pes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    local_index = np.empty(n_rows, dtype=np.int64)
    local_index[order] = np.arange(n_rows, dtype=np.int64) - np.repeat(starts, counts)
    rows_of_pe = tuple(order[s:s + c] for s, c in zip(starts, counts))
    for arr in (pe_of_row, local_index, *rows_of_pe):
        arr.setflags(write=False)
    return Partition(n_pes, gate_blocks, pe_of_row, local_index, rows_of_pe)


def matrix_partition(name: str, n_rows: int, n_pes: int, cell: CellSpec | str = "lstmp") -> Partition:
    """The partition of a matrix of ``cell`` addressed by parameter name (``layers.0.w_x`` or ``w_x``)."""
    spec = cell_spec(cell)
    short = name.rsplit(".", 1)[-1]
    if short not in spec.matrix_names:
        raise ConfigError(f"{name!r} is not a PE-partitioned {spec.name.upper()} matrix; expected a name ending in "
                          f"one of {', '.join(spec.matrix_names)}")
    return partition_rows(n_rows, n_pes, gate_blocks=spec.matrix(short).gate_blocks)


def layer_partitions(cfg: ModelConfig, n_pes: int) -> dict[str, Partition]:
    """Partitions of one layer's matrices by name, in the cell's order (same for every layer:
    the input width D changes columns, never rows)."""
    spec = cell_spec(cfg)
    return {name: matrix_partition(name, spec.matrix_shape(name, cfg.hidden, cfg.proj, cfg.input_dim)[0],
                                   n_pes, spec) for name in spec.matrix_names}
