"""What the hardware is generated from: the channel's parameters and every memory image (data only).

:func:`ese.rtl.params.rtl_params` derives an :class:`RtlParams` from a compiled program and the
cell description (``ese.cell``); the components (PE, element-wise lanes, channel) are built from
it alone, so each can be built and tested on its own. Nothing here names a cell's gates: the
matrices, their op roles and accumulator blocks, and the per-cell vectors of the lanes are read
from the ``CellSpec``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ese.cell import INPUT, RECURRENT


@dataclass(frozen=True)
class MatrixPlan:
    """One matrix of the cell as the PEs hold it: its SpMV role code (``compiler.roles.SPMV_CODE``),
    its operand (``x``, ``y`` or an element-wise signal) and the accumulator block each of its
    row blocks adds into (``()`` for the output matrix, whose rows are interleaved over the PEs)."""

    name: str
    role: int
    operand: str
    blocks: tuple[int, ...]

    @property
    def is_gate(self) -> bool:
        return bool(self.blocks)

    @property
    def remaps(self) -> bool:
        """Its row blocks are not the accumulator blocks in order (the PE moves their rows)."""
        return self.blocks != tuple(range(len(self.blocks)))


@dataclass(frozen=True)
class PeImage:
    """One PE's memory images: entry words, column pointers (absolute), bias rows (at Fsum)."""

    words: tuple[int, ...]  # entries of every matrix of every layer of this PE, back to back
    ptr: tuple[int, ...]  # K+1 pointers per matrix (layer by layer, matrices in cell order), absolute
    bias: tuple[tuple[int, ...], ...]  # per layer (blocks * cells,) bias << (Fsum - Fb), block-major
    cells: int  # cells of this PE
    proj_rows: int  # rows of the output matrix this PE owns (0 without one)


@dataclass(frozen=True)
class LaneImage:
    """One element-wise lane's constants: the cell's per-cell vectors (``VectorSpec.rows``) over
    the lane's cells, by name (empty when the layer has none)."""

    vectors: dict  # name -> (rows, cells) tuple of tuples
    cells: int


@dataclass(frozen=True)
class LayerFormats:
    """The binary points and derived shifts of one layer."""

    frac: dict  # signal -> frac
    f_sum: int
    shifts: dict  # gate matrix role code -> product -> Fsum left shift
    input_dim: int  # columns of the input matrix


@dataclass(frozen=True)
class RtlParams:
    """Parameters of one channel (``ese.rtl.params`` says what is implemented)."""

    cell: str  # the cell's name (``ese.cell``): which element-wise lane (``ese.rtl.lanes``)
    acc_blocks: tuple[str, ...]  # the cell's accumulator blocks, in order
    matrices: tuple[MatrixPlan, ...]  # the cell's matrices in execution order
    pes: int
    queue_depth: int
    pointer_latency: int
    pointer_prefetch: bool
    mac_latency: int
    ew_latency: int
    y_latency: int
    weight_bits: int
    act_bits: int
    acc_bits: int
    index_bits: int
    gate_acc_bits: int  # exact gate sum width (exact_sum_bits)
    proj_acc_bits: int  # exact projection sum width (1 without a projection)
    input_dim: int  # D (layer 0)
    hidden: int  # H
    proj: int  # P: the length of y (H for a cell without projection)
    layer_formats: tuple[LayerFormats, ...]
    sigmoid: tuple[int, ...]
    tanh: tuple[int, ...]
    sigmoid_shift: int  # LUT index shift for an input at binary point 0 (add the input's frac)
    tanh_shift: int
    pe_images: tuple[PeImage, ...]
    lanes: tuple[tuple[LaneImage, ...], ...]  # [layer][pe]
    items: tuple[tuple[int, int, int, bool], ...]  # issue order: (layer, role, step offset, steady?)
    max_frames: int

    @property
    def n_layers(self) -> int:
        return len(self.layer_formats)

    @property
    def groups(self) -> int:
        """Element-wise issue cycles per step: ceil(H / lanes), lanes = pes."""
        return -(-self.hidden // self.pes)

    @property
    def gate_matrices(self) -> tuple[MatrixPlan, ...]:
        return tuple(mp for mp in self.matrices if mp.is_gate)

    @property
    def projection(self) -> MatrixPlan | None:
        """The output matrix (y is its rounded product), or None: y is the lanes' output."""
        return next((mp for mp in self.matrices if not mp.is_gate), None)

    def matrix(self, role: int) -> MatrixPlan:
        return next(mp for mp in self.matrices if mp.role == role)

    # single-layer conveniences (layer 0)
    @property
    def frac(self) -> dict:
        return self.layer_formats[0].frac

    @property
    def f_sum(self) -> int:
        return self.layer_formats[0].f_sum

    def shift(self, role: int, layer: int = 0) -> int:
        return self.layer_formats[layer].shifts[role]

    def cols(self, role: int, layer: int = 0) -> int:
        """Columns of the matrix of ``role``: its operand's length."""
        operand = self.matrix(role).operand
        return self.layer_formats[layer].input_dim if operand == INPUT else self.proj if operand == RECURRENT \
            else self.hidden

    def ptr_offset(self, role: int, layer: int = 0) -> int:
        """Index of column 0's pointer of (layer, role) in the PE pointer memory."""
        off = sum(self.cols(mp.role, lay) + 1 for lay in range(layer) for mp in self.matrices)
        for mp in self.matrices:
            if mp.role == role:
                return off
            off += self.cols(mp.role, layer) + 1
        raise KeyError(role)

    @property
    def n_ptr(self) -> int:
        return sum(self.cols(mp.role, lay) + 1 for lay in range(self.n_layers) for mp in self.matrices)
