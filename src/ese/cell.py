"""The recurrent cell: ONE description of its matrices, vectors, accumulators and element-wise step.

Every stage reads a :class:`CellSpec` instead of naming gates: the partition (which rows form one
cell's gate blocks), the float model and calibration (:attr:`CellSpec.float_step`), the fixed-point
model (which arrays and formats a layer has), the integer reference and the functional model
(:attr:`CellSpec.fixed_step`), the compiler (which matrices, in which op roles) and the cycle
model. A new cell is a new ``CellSpec`` plus its model file; the stages do not change
(``tests/test_toy_cell.py`` runs a cell defined only inside the tests through them).

One step of layer l of any cell, in the vocabulary of this module::

    acc   = sum over the gate matrices M of  M . operand(M)   + bias      (one exact sum per
            accumulator row; the row blocks of M add into the accumulator blocks M.blocks)
    state', out = element-wise step(acc, state, vectors)                   (per cell k)
    y     = projection(out)  if the cell has an output matrix, else out    (the recurrent input)

An accumulator block is what the hardware sums before an element-wise operation: the LSTMP sums
W_x x + W_r y + b for each of its gates i, f, g, o; the GRU (n = tanh(W_in x + b_in + r *
(W_hn h + b_hn))) keeps the candidate's recurrent product apart, so its accumulator blocks are
r, z, n_x, n_h while its matrices have three row blocks each (W_x into r, z, n_x; W_r into r, z,
n_h) and its bias four (b_ir + b_hr, b_iz + b_hz, b_in, b_hn).

How other frameworks hold a cell (PyTorch's ``nn.LSTM`` / ``nn.GRU``, the ONNX ``LSTM`` op: their
gate order, which of our arrays they have, how their two biases add into ours) is data here too,
:attr:`CellSpec.foreign` (a :class:`ForeignLayer` per framework), which ``ese.interop`` reads.

Role names are the program image's op roles (``ese.compiler.roles.ROLES``: x, r, ew, ym); a
cell uses a subset of them and never renumbers them. This module imports nothing from ``ese``:
the element-wise steps get their arithmetic (exact align/saturate/LUT in fixed point, sigmoid/tanh
in float) from the executor that calls them, so one function serves every executor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ese.errors import ConfigError

INPUT = "x"  # operand: the layer's input x_t
RECURRENT = "y"  # operand: the layer's own output y_{t-1}


@dataclass(frozen=True)
class MatrixSpec:
    """One weight matrix of a layer, as every stage addresses it.

    ``operand`` is the vector it multiplies: ``x`` (layer input, D), ``y`` (y_{t-1}, P) or an
    element-wise output signal (H, e.g. ``m``). ``blocks`` names the accumulator block each of its
    H-row blocks adds into (a *gate matrix*, rows partitioned by cell); empty for an output matrix
    of P rows (rows interleaved over the PEs).
    """

    name: str
    role: str
    operand: str
    blocks: tuple[str, ...] = ()

    @property
    def gate_blocks(self) -> int:
        """How many H-row blocks are stacked (1 for an output matrix)."""
        return max(len(self.blocks), 1)

    @property
    def is_gate(self) -> bool:
        return bool(self.blocks)


@dataclass(frozen=True)
class VectorSpec:
    """A per-layer vector held next to the element-wise unit. ``rows`` None: one entry per
    accumulator row (a bias); an int r: an (r, H) array. ``flag``: the ModelConfig switch that
    enables it (absent otherwise)."""

    name: str
    rows: int | None = None
    flag: str | None = None
    blocks: tuple[str, ...] = ()  # with ``rows``: the accumulator block each row belongs to


@dataclass(frozen=True)
class ForeignLayer:
    """How another framework's recurrent layer holds one layer of a cell; ``ese.interop`` reads
    only this (docs/interop.md). Its input and recurrent matrices are stacked H-row blocks, each
    named by the accumulator block it adds into, in the framework's order; its input and recurrent
    biases have the same blocks and add up into ours (the framework's bias of a block we keep
    apart, like the GRU's b_hn, lands on that block alone).

    ``vectors``: each optional vector of ours the framework holds -> (its name there, the block
    of each of its rows in its order); an optional vector not listed has no place there (export
    refuses non-zero values unless told to drop them). ``projection``: it holds the cell's output
    matrix (otherwise import sets it to the identity). ONNX ops also give their ``inputs`` in
    order, their default ``activations`` (the only ones ese runs) and ``attributes`` whose value
    ese needs: name -> (that value, what another value does); ``attribute_defaults``: the op's
    value of such an attribute when a node leaves it out, where that is not the needed one."""

    kind: str  # the framework's class or op (nn.LSTM, the ONNX LSTM op: "LSTM")
    input_blocks: tuple[str, ...]
    recurrent_blocks: tuple[str, ...]
    projection: bool = False
    vectors: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    activations: tuple[str, ...] = ()
    attributes: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    attribute_defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gate_blocks(self) -> tuple[int, int]:
        """How many H-row blocks its input and its recurrent matrix stack."""
        return len(self.input_blocks), len(self.recurrent_blocks)


def block_order(ours: tuple[str, ...], theirs: tuple[str, ...]) -> tuple[int, ...]:
    """Position in ``theirs`` of each block of ``ours`` (foreign row blocks -> ours)."""
    return tuple(theirs.index(b) for b in ours)


@dataclass(frozen=True)
class CellSpec:
    """A recurrent cell (module docstring). ``fixed_step(ops, acc, state, vectors)`` and
    ``float_step(fn, acc, state, vectors)`` (``fn``: sigmoid, tanh, split) both return ``(signals, new_state)``: ``signals``
    holds every name of ``ew_signals`` (the traced outputs, ``output`` among them)."""

    name: str
    acc_blocks: tuple[str, ...]
    matrices: tuple[MatrixSpec, ...]  # in execution order: gate matrices, then the output matrix
    vectors: tuple[VectorSpec, ...]
    state: tuple[str, ...]  # element-wise state carried from step to step, (B, H) each
    ew_signals: tuple[str, ...]  # what the element-wise step returns, in trace order
    output: str  # the element-wise signal the output stage takes (projected, or y itself)
    ew_formats: tuple[str, ...]  # fixed-point formats the element-wise step uses beyond acc and y
    calibrated: tuple[str, ...]  # signals whose float range calibration measures (acc, y and x too)
    fixed_step: Callable[..., tuple[dict[str, Any], dict[str, Any]]]
    float_step: Callable[..., tuple[dict[str, Any], dict[str, Any]]]
    lut_inputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # LUT -> formats feeding it
    fixed_formats: tuple[str, ...] = ()  # element-wise formats fixed at Q1.(A-2): values in [-1, 1]
    foreign: Mapping[str, ForeignLayer] = field(default_factory=dict)  # "torch" / "onnx" -> its layer

    # ---- matrices --------------------------------------------------------------------------
    def matrix(self, name: str) -> MatrixSpec:
        for m in self.matrices:
            if m.name == name:
                return m
        raise ConfigError(f"the {self.name} cell has no matrix {name!r}; it has "
                          f"{', '.join(self.matrix_names)}")

    @property
    def matrix_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.matrices)

    @property
    def gate_matrices(self) -> tuple[MatrixSpec, ...]:
        return tuple(m for m in self.matrices if m.is_gate)

    @property
    def projection(self) -> MatrixSpec | None:
        """The output matrix (its product is y), or None when y is the element-wise output."""
        out = [m for m in self.matrices if not m.is_gate]
        return out[0] if out else None

    @property
    def roles(self) -> tuple[str, ...]:
        """The op roles of one layer in dependency order: gate SpMVs, ``ew``, the output SpMV."""
        proj = self.projection
        return tuple(m.role for m in self.gate_matrices) + ("ew",) + ((proj.role,) if proj else ())

    def matrix_of_role(self, role: str) -> str | None:
        return next((m.name for m in self.matrices if m.role == role), None)

    def matrix_shape(self, name: str, hidden: int, proj: int, input_dim: int) -> tuple[int, int]:
        m = self.matrix(name)
        rows = len(m.blocks) * hidden if m.is_gate else proj
        cols = input_dim if m.operand == INPUT else proj if m.operand == RECURRENT else hidden
        return rows, cols

    def acc_rows(self, name: str, hidden: int) -> np.ndarray:
        """(rows,) int64: the accumulator row each row of gate matrix ``name`` adds into."""
        m = self.matrix(name)
        return np.concatenate([self.acc_blocks.index(b) * hidden + np.arange(hidden, dtype=np.int64)
                               for b in m.blocks]) if m.blocks else np.zeros(0, np.int64)

    def acc_identity(self, name: str) -> bool:
        """True when the matrix's row blocks are the accumulator blocks in order (no scatter)."""
        return self.matrix(name).blocks == self.acc_blocks

    # ---- vectors and formats ---------------------------------------------------------------
    def vector_names(self, model: Any) -> tuple[str, ...]:
        """The vectors a layer of ``model`` (a ModelConfig) stores."""
        return tuple(v.name for v in self.vectors if v.flag is None or getattr(model, v.flag))

    @property
    def array_names(self) -> tuple[str, ...]:
        """Every array a layer may store, in file order: the gate matrices, the vectors always
        present, the output matrix, the optional vectors."""
        always = tuple(v.name for v in self.vectors if v.flag is None)
        optional = tuple(v.name for v in self.vectors if v.flag is not None)
        proj = self.projection
        return (tuple(m.name for m in self.gate_matrices) + always + ((proj.name,) if proj else ())
                + optional)

    def vector(self, name: str) -> VectorSpec:
        return next(v for v in self.vectors if v.name == name)

    @property
    def input_matrix(self) -> MatrixSpec:
        """The gate matrix that multiplies the layer input x."""
        return next(m for m in self.gate_matrices if m.operand == INPUT)

    @property
    def recurrent_matrix(self) -> MatrixSpec:
        """The gate matrix that multiplies y_{t-1}."""
        return next(m for m in self.gate_matrices if m.operand == RECURRENT)

    @property
    def flags(self) -> dict[str, str]:
        """ModelConfig switch -> the optional vector it enables."""
        return {v.flag: v.name for v in self.vectors if v.flag is not None}

    def vector_shape(self, name: str, hidden: int) -> tuple[int, ...]:
        v = next(v for v in self.vectors if v.name == name)
        return (len(self.acc_blocks) * hidden,) if v.rows is None else (v.rows, hidden)

    @property
    def layer_signals(self) -> tuple[str, ...]:
        """Every key of a fixed-point layer's ``formats`` (docs/fixed-point.md)."""
        proj = self.projection
        return ((INPUT,) + tuple(m.name for m in self.gate_matrices) + tuple(v.name for v in self.vectors)
                + ("acc",) + self.ew_formats + ((proj.name, "acc_y") if proj else ()) + (RECURRENT,))

    @property
    def trace_signals(self) -> tuple[str, ...]:
        """Every vector an executor's trace holds per step, in order."""
        return (INPUT, "acc") + self.ew_signals + (("acc_y",) if self.projection else ()) + (RECURRENT,)

    def sum_frac(self, fracs: Mapping[str, int]) -> int:
        """Fsum: the finest binary point of the gate sum's terms, so each moves there exactly."""
        return max(max(fracs[m.name] + fracs[m.operand] for m in self.gate_matrices), fracs["bias"])


CELLS: dict[str, CellSpec] = {}


def register_cell(spec: CellSpec) -> CellSpec:
    """Make ``spec`` known by name (a model config's ``cell``); re-registering replaces it."""
    roles = {m.role for m in spec.matrices}
    if len(roles) != len(spec.matrices) or "ew" in roles:
        raise ConfigError(f"cell {spec.name!r}: every matrix needs its own SpMV role (not 'ew')")
    if spec.output not in spec.ew_signals:
        raise ConfigError(f"cell {spec.name!r}: output {spec.output!r} is not an element-wise signal")
    CELLS[spec.name] = spec
    return spec


def known_arrays() -> list[str]:
    """Every array name some registered cell defines, each cell's in its file order: a layer
    lacking one (a model without peepholes) reads it as None."""
    names: list[str] = []
    for spec in CELLS.values():
        names += [n for n in spec.array_names if n not in names]
    return names


def cell_spec(name_or_model: Any) -> CellSpec:
    """The cell named by a string or by a ModelConfig's ``cell`` setting (a CellSpec: itself)."""
    if isinstance(name_or_model, CellSpec):
        return name_or_model
    name = name_or_model if isinstance(name_or_model, str) else getattr(name_or_model, "cell", "lstmp")
    if name not in CELLS:
        raise ConfigError(f"unknown cell {name!r}; known: {', '.join(sorted(CELLS))}")
    return CELLS[name]


# ---- the LSTMP (ESE.md section 1; ese.model.lstmp is its float model) -----------------------
def _lstmp_fixed(ops: Any, acc: Any, state: dict[str, Any], vec: dict[str, Any]) -> tuple[dict, dict]:
    """The LSTMP element-wise stage in fixed point (docs/fixed-point.md section 5).

    ``ops`` gives the exact arithmetic: ``f`` (binary points), ``align(v, from, to)``,
    ``sat(v, signal)`` (to act_bits, counted), ``lut(table, z, frac, signal)`` (counted clips).
    With acc in gate order i, f, g, o and the peephole rows p_i, p_f, p_o::

        sum   = align(W_x x, Fwx+Fx -> Fsum) + align(W_r y_prev, Fwr+Fy -> Fsum) + align(bias, Fb -> Fsum)
                with Fsum = max(Fwx+Fx, Fwr+Fy, Fb): left shifts only, so the sum is exact  (4H)
        acc   = sat_acc( align(sum, Fsum -> Facc) )          Facc <= Fsum     (4H)  PE output
        z_k   = sat_A( align(acc_k, Facc -> Fz_k) + align(p_k * c_prev, Fp+Fc -> Fz_k) )   k = i, f
        z_g   = sat_A( align(acc_g, Facc -> Fz_g) )
        i, f  = LUT_sigmoid(z_i), LUT_sigmoid(z_f);  g = LUT_tanh(z_g)         (format Fg = A-2)
        c     = sat_A( align( align(f*c_prev, Fg+Fc -> Fs) + align(i*g, 2Fg -> Fs), Fs -> Fc) )
                with Fs = max(Fg+Fc, 2Fg): the two products are aligned exactly, rounded once
        z_o   = sat_A( align(acc_o, Facc -> Fz_o) + align(p_o * c, Fp+Fc -> Fz_o) )  (the new c)
        o     = LUT_sigmoid(z_o);  tanh_c = LUT_tanh(c)                            (input Fc)
        m     = sat_A( align(o * tanh_c, 2Fg -> Fm) )                               Fm = A-2
        acc_y = sat_acc( align(W_ym m, Fwy+Fm -> Facc_y) )                  Facc_y <= Fwy+Fm
        y     = sat_A( align(acc_y, Facc_y -> Fy) )
    """
    f, Fg, c_prev = ops.f, ops.f["gate"], state["c"]
    H = c_prev.shape[-1]
    a_i, a_f, a_g, a_o = (acc[..., k * H:(k + 1) * H] for k in range(4))
    p = vec.get("peephole")
    z_i = ops.align(a_i, f["acc"], f["z_i"])
    z_f = ops.align(a_f, f["acc"], f["z_f"])
    if p is not None:
        z_i = z_i + ops.align(p[0] * c_prev, f["peephole"] + f["c"], f["z_i"])  # w_ic * c_{t-1}
        z_f = z_f + ops.align(p[1] * c_prev, f["peephole"] + f["c"], f["z_f"])  # w_fc * c_{t-1}
    z_i, z_f = ops.sat(z_i, "z_i"), ops.sat(z_f, "z_f")
    z_g = ops.sat(ops.align(a_g, f["acc"], f["z_g"]), "z_g")
    i = ops.lut("sigmoid", z_i, f["z_i"], "i")
    fg = ops.lut("sigmoid", z_f, f["z_f"], "f")
    g = ops.lut("tanh", z_g, f["z_g"], "g")
    fs = max(Fg + f["c"], 2 * Fg)  # exact common binary point of the two products
    c_sum = ops.align(fg * c_prev, Fg + f["c"], fs) + ops.align(i * g, 2 * Fg, fs)
    c = ops.sat(ops.align(c_sum, fs, f["c"]), "c")  # c_t
    z_o = ops.align(a_o, f["acc"], f["z_o"])
    if p is not None:
        z_o = z_o + ops.align(p[2] * c, f["peephole"] + f["c"], f["z_o"])  # w_oc * c_t
    z_o = ops.sat(z_o, "z_o")
    o = ops.lut("sigmoid", z_o, f["z_o"], "o")
    tanh_c = ops.lut("tanh", c, f["c"], "tanh_c")
    m = ops.sat(ops.align(o * tanh_c, 2 * Fg, f["m"]), "m")
    return ({"z_i": z_i, "z_f": z_f, "z_g": z_g, "z_o": z_o, "i": i, "f": fg, "g": g, "o": o, "c": c,
             "tanh_c": tanh_c, "m": m}, {"c": c})


def _lstmp_float(fn: Any, acc: Any, state: dict[str, Any], vec: dict[str, Any]) -> tuple[dict, dict]:
    """The LSTMP element-wise stage in float; ``fn`` has ``sigmoid``, ``tanh`` and ``split(a, n)``
    (n equal blocks of the last axis; ``ese.model.recurrence.TORCH``).
    The output gate peeks at the new cell state c_t, the input and forget gates at c_{t-1}."""
    c = state["c"]
    i, f, g, o = fn.split(acc, 4)
    p = vec.get("peephole")
    if p is not None:
        i = i + p[0] * c  # w_ic (.) c_{t-1}
        f = f + p[1] * c  # w_fc (.) c_{t-1}
    c = fn.sigmoid(f) * c + fn.sigmoid(i) * fn.tanh(g)  # c_t
    if p is not None:
        o = o + p[2] * c  # w_oc (.) c_t
    m = fn.sigmoid(o) * fn.tanh(c)
    return {"z_i": i, "z_f": f, "z_g": g, "z_o": o, "c": c, "m": m}, {"c": c}


LSTMP = register_cell(CellSpec(
    name="lstmp",
    acc_blocks=("i", "f", "g", "o"),
    matrices=(MatrixSpec("w_x", "x", INPUT, ("i", "f", "g", "o")),
              MatrixSpec("w_r", "r", RECURRENT, ("i", "f", "g", "o")),
              MatrixSpec("w_ym", "ym", "m")),
    vectors=(VectorSpec("bias"), VectorSpec("peephole", rows=3, flag="peepholes", blocks=("i", "f", "o"))),
    state=("c",),
    ew_signals=("z_i", "z_f", "z_g", "z_o", "i", "f", "g", "o", "c", "tanh_c", "m"),
    output="m",
    ew_formats=("z_i", "z_f", "z_g", "z_o", "gate", "c", "tanh_c", "m"),
    calibrated=("z_i", "z_f", "z_g", "z_o", "c"),
    fixed_step=_lstmp_fixed,
    float_step=_lstmp_float,
    lut_inputs={"sigmoid": ("z_i", "z_f", "z_o"), "tanh": ("z_g", "c")},
    fixed_formats=("gate", "tanh_c", "m"),
    foreign={
        # nn.LSTM: our gate order, weight_hr is w_ym (proj_size), no peepholes
        "torch": ForeignLayer("LSTM", ("i", "f", "g", "o"), ("i", "f", "g", "o"), projection=True),
        # the ONNX LSTM op: W, R, B in order i o f c (c: our g), peepholes P in order i o f
        "onnx": ForeignLayer("LSTM", ("i", "o", "f", "g"), ("i", "o", "f", "g"),
                             vectors={"peephole": ("P", ("i", "o", "f"))},
                             inputs=("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"),
                             activations=("Sigmoid", "Tanh", "Tanh"),
                             attributes={"input_forget": (0, "couples the input and forget gates")}),
    },
))


# ---- the GRU (ese.model.gru is its float model; docs/fixed-point.md section 10) ----------------
def _gru_fixed(ops: Any, acc: Any, state: dict[str, Any], vec: dict[str, Any]) -> tuple[dict, dict]:
    """The GRU element-wise stage in fixed point (docs/fixed-point.md section 10).

    acc holds four blocks, r, z, n_x, n_h: the gate sums ``W_rx x + W_rh h + b_r`` and
    ``W_zx x + W_zh h + b_z``, the candidate's input part ``W_nx x + b_in`` and its recurrent part
    ``W_nh h + b_hn`` (its own accumulator block, so the reset gate can scale it)::

        z_r   = sat_A( align(acc_r, Facc -> Fz_r) );   r = LUT_sigmoid(z_r)        (Fg = A-2)
        z_z   = sat_A( align(acc_z, Facc -> Fz_z) );   z = LUT_sigmoid(z_z)
        z_hn  = sat_A( align(acc_nh, Facc -> Fz_hn) )           the recurrent candidate term
        z_n   = sat_A( align(acc_nx, Facc -> Fz_n) + align(r * z_hn, Fg+Fz_hn -> Fz_n) )
        n     = LUT_tanh(z_n)
        h     = sat_A( align( align(z * h_prev, Fg+Fy -> Fs) + align((1 - z) * n, 2Fg -> Fs), Fs -> Fy) )
                with Fs = max(Fg+Fy, 2Fg); 1 - z is (1 << Fg) - z, exact
        y     = h                                              (no projection; Fy = A-2, fixed)

    Every multiplier is A x A bits, as the LSTMP's. h is a convex combination of n in [-1, 1] and
    h_prev, so with Fy = A-2 the last saturation never fires (it is counted all the same).
    """
    f, Fg, h_prev = ops.f, ops.f["gate"], state["h"]
    H = h_prev.shape[-1]
    a_r, a_z, a_nx, a_nh = (acc[..., k * H:(k + 1) * H] for k in range(4))
    z_r = ops.sat(ops.align(a_r, f["acc"], f["z_r"]), "z_r")
    r = ops.lut("sigmoid", z_r, f["z_r"], "r")
    z_z = ops.sat(ops.align(a_z, f["acc"], f["z_z"]), "z_z")
    z = ops.lut("sigmoid", z_z, f["z_z"], "z")
    z_hn = ops.sat(ops.align(a_nh, f["acc"], f["z_hn"]), "z_hn")
    z_n = ops.sat(ops.align(a_nx, f["acc"], f["z_n"]) + ops.align(r * z_hn, Fg + f["z_hn"], f["z_n"]), "z_n")
    n = ops.lut("tanh", z_n, f["z_n"], "n")
    fs = max(Fg + f["y"], 2 * Fg)  # exact common binary point of the two products
    one = 1 << Fg
    h_sum = ops.align(z * h_prev, Fg + f["y"], fs) + ops.align((one - z) * n, 2 * Fg, fs)
    h = ops.sat(ops.align(h_sum, fs, f["y"]), "h")
    return {"z_r": z_r, "r": r, "z_z": z_z, "z": z, "z_hn": z_hn, "z_n": z_n, "n": n, "h": h}, {"h": h}


def _gru_float(fn: Any, acc: Any, state: dict[str, Any], vec: dict[str, Any]) -> tuple[dict, dict]:
    """The GRU element-wise stage in float (torch.nn.GRU's equations, gate order r, z, n)."""
    a_r, a_z, a_nx, a_nh = fn.split(acc, 4)
    r, z = fn.sigmoid(a_r), fn.sigmoid(a_z)
    z_n = a_nx + r * a_nh
    n = fn.tanh(z_n)
    h = n + z * (state["h"] - n)  # (1 - z) n + z h_prev
    return {"z_r": a_r, "z_z": a_z, "z_hn": a_nh, "z_n": z_n, "h": h}, {"h": h}


GRU = register_cell(CellSpec(
    name="gru",
    acc_blocks=("r", "z", "n_x", "n_h"),
    matrices=(MatrixSpec("w_x", "x", INPUT, ("r", "z", "n_x")),
              MatrixSpec("w_r", "r", RECURRENT, ("r", "z", "n_h"))),
    vectors=(VectorSpec("bias"),),  # 4H in acc-block order: b_ir + b_hr, b_iz + b_hz, b_in, b_hn
    state=("h",),  # h_{t-1}: the same vector as y_{t-1} (no projection)
    ew_signals=("z_r", "r", "z_z", "z", "z_hn", "z_n", "n", "h"),
    output="h",
    ew_formats=("z_r", "z_z", "z_hn", "z_n", "gate"),
    calibrated=("z_r", "z_z", "z_hn", "z_n"),
    fixed_step=_gru_fixed,
    float_step=_gru_float,
    lut_inputs={"sigmoid": ("z_r", "z_z"), "tanh": ("z_n",)},
    fixed_formats=("gate", "y"),  # h = y in [-1, 1]: Q1.(A-2)
    foreign={
        # nn.GRU: r, z, n; its bias_hh_n stays apart (b_hn, inside the reset product)
        "torch": ForeignLayer("GRU", ("r", "z", "n_x"), ("r", "z", "n_h")),
        # the ONNX GRU op: W, R, B in order z r h (h: our n); Rbh is b_hn only with
        # linear_before_reset=1 (r scales R_h h + Rb_h, as ours); the op's default 0 does not
        "onnx": ForeignLayer("GRU", ("z", "r", "n_x"), ("z", "r", "n_h"),
                             inputs=("X", "W", "R", "B", "sequence_lens", "initial_h"),
                             activations=("Sigmoid", "Tanh"),
                             attributes={"linear_before_reset": (
                                 1, "applies the reset gate to h before the recurrent product, where ese's "
                                    "GRU (as torch.nn.GRU) applies it after")},
                             attribute_defaults={"linear_before_reset": 0}),
    },
))
