"""The data-flow schedule of one time step (ESE.md section 5), built from the cell's description.

Every cell has the same kinds of operation (``ese.cell``): SpMVs with the layer input (role x),
with y_{t-1} (role r), the element-wise stage (ew) and, when the cell projects, the SpMV that
makes y (ym); the op whose completion makes y_t is ym, or ew for a cell without projection.
For the LSTMP, operations of layer l at step t, with their dependencies (``(op, dt)``: op of
step t + dt)::

    x_l   SpMV W_x · x_t        needs x_t: the input frame (l = 0) or y_t of layer l-1 (ym_{l-1}, 0)
    r_l   SpMV W_r · y_{t-1}    needs y_{t-1} of this layer                              (ym_l, -1)
    ew_l  element-wise stage    needs the gate sums and c_{t-1}               (x_l, 0) (r_l, 0) (ew_l, -1)
    ym_l  SpMV W_ym · m_t       needs m_t                                                (ew_l, 0)

x_0 depends on nothing of the recurrence, so it may run ahead: with ``overlap_input`` its columns
of step t+1 enter the broadcast stream right after r_0 of step t, while the PEs would otherwise
wait for the element-wise stage. The loop r_l -> ew_l -> ym_l -> r_l (next step) is the
recurrence that nothing can overlap: its length is the critical path.

The **issue order** is the order in which SpMV operations put their columns on the one
activation broadcast of a channel (the element-wise stage is not a broadcast; it gates ym_l's
columns). ``prologue`` is issued once before step 0; ``steady`` every step, each item
``(op id, step offset)``. Durations are estimates from the encoded matrices (the busiest PE's
entries plus pipeline latencies); ``ese.accel.cycles`` computes the real timing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ese.cell import INPUT, RECURRENT, cell_spec
from ese.compiler.roles import ELEMENTWISE

KINDS = ("spmv", "elementwise")


@dataclass(frozen=True)
class Op:
    """One operation of one step. ``deps``: ((op id, step offset), ...), offset 0 or -1."""

    id: int
    layer: int
    role: str  # x | r | ew | ym
    deps: tuple[tuple[int, int], ...]
    est_cycles: int
    matrix: str | None = None  # the SpMV's matrix (the cell's name for it); None for ew

    @property
    def kind(self) -> str:
        return "elementwise" if self.role == ELEMENTWISE else "spmv"

    @property
    def name(self) -> str:
        return f"{self.role}{self.layer}"


@dataclass(frozen=True)
class Schedule:
    """The ops of one step, the broadcast issue order and the recurrence's critical path."""

    ops: tuple[Op, ...]
    prologue: tuple[tuple[int, int], ...]
    steady: tuple[tuple[int, int], ...]
    overlap_input: bool

    def op(self, layer: int, role: str) -> Op:
        return next(o for o in self.ops if o.layer == layer and o.role == role)

    @property
    def n_layers(self) -> int:
        return 1 + max(o.layer for o in self.ops)

    def recurrence_loop(self, layer: int) -> list[Op]:
        """The ops of the layer's recurrence, read from the graph: from the op that needs an op of
        the previous step (other than itself) along same-step dependencies to that op (LSTMP:
        ``r_l -> ew_l -> ym_l``)."""
        ops = [o for o in self.ops if o.layer == layer]
        head = next(o for o in ops if any(dt == -1 and d != o.id for d, dt in o.deps))
        tail = next(d for d, dt in head.deps if dt == -1)
        loop = [head]
        while loop[-1].id != tail:
            loop.append(next(o for o in ops if (loop[-1].id, 0) in o.deps))
        return loop

    def critical_path(self) -> tuple[list[str], int]:
        """The longest recurrence loop (names, estimated cycles per step)."""
        best: tuple[list[str], int] = ([], 0)
        for layer in range(self.n_layers):
            loop = self.recurrence_loop(layer)
            total = sum(o.est_cycles for o in loop)
            if total > best[1]:
                best = ([o.name for o in loop], total)
        return best

    def pe_cycles(self) -> int:
        """Estimated cycles per step the PEs are busy (all SpMVs share one channel's PEs)."""
        return sum(o.est_cycles for o in self.ops if o.kind == "spmv")

    def timeline(self, steps: int = 3) -> list[dict[str, Any]]:
        """An estimated timeline of ``steps`` steps: SpMVs run one after another on the PEs in
        issue order (each as soon as its dependencies are done); element-wise stages run on their
        own unit as soon as theirs are. Estimates only; ``ese.accel.cycles`` is the real timing."""
        done: dict[tuple[int, int], int] = {}
        rows: list[dict[str, Any]] = []
        pe_free = 0
        items = [(op, dt, -1) for op, dt in self.prologue]
        for t in range(steps):
            items += [(op, dt, t) for op, dt in self.steady]

        def ready(op: Op, step: int) -> int:
            return max([done.get((d, step + dt), 0) for d, dt in op.deps if step + dt >= 0], default=0)

        for op_id, dt, t in items:
            step = (max(t, 0)) + dt
            if not 0 <= step < steps:
                continue
            op = self.ops[op_id]
            start = max(pe_free, ready(op, step))
            pe_free = done[(op_id, step)] = start + op.est_cycles
            rows.append({"op": op.name, "step": step, "start": start, "end": pe_free, "unit": "PEs"})
            ew = self.op(op.layer, ELEMENTWISE)
            # the element-wise stage follows as soon as all the gate SpMVs it needs are done
            if (op.id, 0) in ew.deps and (ew.id, step) not in done and \
                    all((d, step + dt) in done for d, dt in ew.deps if dt == 0):
                s0 = ready(ew, step)
                done[(ew.id, step)] = s0 + ew.est_cycles
                rows.append({"op": ew.name, "step": step, "start": s0, "end": s0 + ew.est_cycles,
                             "unit": "element-wise"})
        return rows

    def to_json(self) -> dict[str, Any]:
        path, length = self.critical_path()
        names = {o.id: o.name for o in self.ops}
        return {
            "ops": [{"id": o.id, "name": o.name, "kind": o.kind, "layer": o.layer, "role": o.role,
                     "matrix": o.matrix, "est_cycles": o.est_cycles,
                     "deps": [{"op": names[d], "step_offset": dt} for d, dt in o.deps]} for o in self.ops],
            "issue_order": {"prologue": [{"op": names[i], "step_offset": dt} for i, dt in self.prologue],
                            "steady": [{"op": names[i], "step_offset": dt} for i, dt in self.steady]},
            "overlap_input": self.overlap_input,
            "critical_path": {"ops": path, "est_cycles": length},
            "est_pe_cycles_per_step": self.pe_cycles(),
            "est_cycles_per_step_lower_bound": max(length, self.pe_cycles()),
        }

    def to_dot(self) -> str:
        """Graphviz source of the dependency graph (dashed edges cross a step)."""
        names = {o.id: o.name for o in self.ops}
        lines = ["digraph schedule {", "  rankdir=LR;"]
        for o in self.ops:
            shape = "ellipse" if o.kind == "elementwise" else "box"
            lines.append(f'  {o.name} [shape={shape}, label="{o.name}\\n{o.est_cycles} cyc"];')
        for o in self.ops:
            for d, dt in o.deps:
                style = ', style=dashed, label="t-1"' if dt else ""
                lines.append(f"  {names[d]} -> {o.name} [{style.lstrip(', ')}];")
        lines.append("}")
        return "\n".join(lines) + "\n"


def build_schedule(program: Any) -> Schedule:
    """The schedule of a :class:`~ese.compiler.program.Program` (durations from its encoding)."""
    hw = program.hardware
    cell = cell_spec(program.model)
    lanes = hw.ew_lanes or hw.pes
    roles = cell.roles
    y_role = roles[-1]  # the op whose completion makes y_t
    ops: list[Op] = []
    ids: dict[tuple[int, str], int] = {}
    for layer_no in range(len(program.layers)):
        for role in roles:
            ids[(layer_no, role)] = len(ids)
    gate_roles = [m.role for m in cell.gate_matrices]
    for layer_no, layer in enumerate(program.layers):
        for role in roles:
            if role == ELEMENTWISE:
                deps = tuple((ids[(layer_no, r)], 0) for r in gate_roles) + ((ids[(layer_no, role)], -1),)
                est = math.ceil(layer.hidden / lanes) + hw.ew_latency
                name = None
            else:
                spec = cell.matrix(cell.matrix_of_role(role))
                if spec.operand == INPUT:
                    deps = ((ids[(layer_no - 1, y_role)], 0),) if layer_no else ()
                elif spec.operand == RECURRENT:
                    deps = ((ids[(layer_no, y_role)], -1),)
                else:
                    deps = ((ids[(layer_no, ELEMENTWISE)], 0),)
                m = getattr(layer, spec.name)
                busiest = int(np.max(m.entries_per_pe)) if m.n_entries else 0
                est = math.ceil(busiest / hw.entries_per_cycle) + hw.pointer_latency + hw.mac_latency
                name = spec.name
            ops.append(Op(ids[(layer_no, role)], layer_no, role, deps, est, name))
    return Schedule(tuple(ops), *issue_lists(cell, len(program.layers), ids, bool(hw.overlap_input)),
                    bool(hw.overlap_input))


def issue_lists(cell: Any, n_layers: int, ids: dict[tuple[int, str], int], overlap: bool
                ) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """(prologue, steady): every layer's SpMVs in order, input, recurrent, output; with
    ``overlap`` layer 0's input SpMVs of step t+1 go right after its recurrent ones of step t."""
    by = {kind: [m.role for m in cell.matrices if (m.operand == kind if kind != "out" else not m.is_gate)]
          for kind in (INPUT, RECURRENT, "out")}
    prologue: list[tuple[int, int]] = []
    steady: list[tuple[int, int]] = []
    for layer_no in range(n_layers):
        inp, rec, out = ([(ids[(layer_no, r)], 0) for r in by[k]] for k in (INPUT, RECURRENT, "out"))
        if layer_no == 0 and overlap:
            prologue += inp
            steady += rec + [(i, 1) for i, _ in inp] + out
        else:
            steady += inp + rec + out
    return tuple(prologue), tuple(steady)
