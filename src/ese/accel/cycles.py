"""The cycle-level model of ESE channels (docs/cycle-model.md is the contract; this implements it).

:func:`simulate` runs the recurrences of sections 1-3 over an utterance of ``n_frames`` frames
(the timing does not depend on the activation values, so no input is needed), applies the memory
rule of section 4, and explains the gap between the ideal and the real cycles term by term
(section 5): each term is the cycles one effect costs, measured by switching the effects off one
after the other, so the terms always add up to the total exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from ese.accel.errors import AccelError
from ese.accel.recurrence import run_stream
from ese.accel.retarget import check_hardware, retarget
from ese.accel.workload import Workload, workload_from_program
from ese.compiler.program import Program
from ese.compiler.roles import SPMV_CODE, SPMV_ROLES
from ese.config import HardwareConfig

BREAKDOWN_TERMS = ("mac_nonzero", "padding", "pointer_overhead", "load_imbalance", "queue_stalls",
                   "pipeline_fill_drain", "elementwise", "recurrence_dependency", "memory_bandwidth")
DEFAULT_FRAMES = 100

# items (layer, role, step offset, matrix name)
IssueOrder = tuple[tuple[tuple[int, str, int, str], ...], tuple[tuple[int, str, int, str], ...]]


def issue_order(schedule: Any) -> IssueOrder:
    """(prologue, steady) as ``(layer, role, step offset, matrix)`` items, from a compiler Schedule."""
    by_id = {o.id: o for o in schedule.ops}

    def items(seq):
        return tuple((by_id[i].layer, by_id[i].role, dt, by_id[i].matrix) for i, dt in seq)

    return items(schedule.prologue), items(schedule.steady)


@dataclass(frozen=True)
class _Stream:
    """The op instances of an utterance in broadcast order, and the work of every column."""

    role: np.ndarray
    layer: np.ndarray
    step: np.ndarray
    mat: np.ndarray
    mat_off: np.ndarray
    mat_cols: np.ndarray
    work: np.ndarray  # (N, total columns of all matrices) int64 cycles
    entries: np.ndarray  # (N, same) int64
    hidden: np.ndarray
    projects: np.ndarray  # (L,) bool: the layer's y comes from a ym SpMV (else: the element-wise output)
    n_steps: int
    names: tuple[str, ...]

    @property
    def n_columns(self) -> int:
        return int(self.mat_cols[self.mat].sum())


def _build_stream(wl: Workload, order: IssueOrder, hw: HardwareConfig, n_frames: int) -> _Stream:
    mats = wl.matrices()
    index = {(k, name): i for i, (k, name) in enumerate((k, n) for k, L in enumerate(wl.layers) for n in L)}
    entries = np.concatenate([m.entries for m in mats], axis=1).astype(np.int64)
    work = np.maximum(1, -(-entries // hw.entries_per_cycle))  # max(1, ceil(e / entries_per_cycle))
    if not hw.pointer_prefetch:
        work = work + hw.pointer_latency
    cols = np.array([m.n_cols for m in mats], dtype=np.int64)
    off = np.concatenate([[0], np.cumsum(cols)[:-1]]).astype(np.int64)
    prologue, steady = order
    seq = [(layer, role, dt, m) for layer, role, dt, m in prologue] + \
          [(layer, role, t + dt, m) for t in range(n_frames) for layer, role, dt, m in steady]
    seq = [(layer, role, t, m) for layer, role, t, m in seq if 0 <= t < n_frames]
    role = np.array([SPMV_CODE[r] for _, r, _, _ in seq], dtype=np.int64)
    layer = np.array([lay for lay, _, _, _ in seq], dtype=np.int64)
    step = np.array([t for _, _, t, _ in seq], dtype=np.int64)
    mat = np.array([index[(lay, m)] for lay, _, _, m in seq], dtype=np.int64)
    return _Stream(role, layer, step, mat, off, cols, np.ascontiguousarray(work), entries,
                   np.array(wl.hidden, dtype=np.int64),
                   np.array([any(lay == k and r == "ym" for lay, r, _, _ in steady) for k in range(len(wl.layers))]),
                   n_frames, tuple(m.name for m in mats))


@dataclass
class _Run:
    total: int  # in 1/unit cycles
    busy: np.ndarray
    idle: np.ndarray
    stalled: np.ndarray
    y_ready: np.ndarray
    record: dict[str, np.ndarray] | None = None


def _run(st: _Stream, hw: HardwareConfig, *, queue: bool = True, balanced: bool = False, ew: bool = True,
         latencies: bool = True, deps: bool = True, record: bool = False) -> _Run:
    """One pass of the recurrences, with the named effects switched off (breakdown variants)."""
    work, unit = st.work, 1
    if balanced:  # one virtual mean PE: the column's total work, every constant scaled by N
        unit = st.work.shape[0]
        work = np.ascontiguousarray(st.work.sum(axis=0, keepdims=True))
    n_pes = work.shape[0]
    lanes = hw.ew_lanes or hw.pes
    lp = hw.pointer_latency if hw.pointer_prefetch else 0
    busy, idle, stalled = (np.zeros(n_pes, dtype=np.int64) for _ in range(3))
    C = st.n_columns if record else 1
    rec_b, rec_avail = np.zeros(C, np.int64), np.zeros(C, np.int64)
    rec_s, rec_f = np.zeros((n_pes if record else 1, C), np.int64), np.zeros((n_pes if record else 1, C), np.int64)
    y_ready, f_last = run_stream(
        st.role, st.layer, st.step, st.mat, st.mat_off, st.mat_cols, work, st.hidden, st.projects, st.n_steps,
        hw.queue_depth if queue else 0, unit, unit if latencies else 0, lp * unit if latencies else 0,
        hw.mac_latency * unit if latencies else 0, hw.y_latency * unit if latencies else 0,
        hw.ew_latency * unit if ew else 0, lanes if ew else 0, deps, busy, idle, stalled,
        rec_b, rec_s, rec_f, rec_avail, record)
    total = int(y_ready[-1, -1])
    idle += total - f_last  # the PE waits for the pipeline drain and the last layer's y
    rec = {"b": rec_b, "s": rec_s, "f": rec_f, "avail": rec_avail} if record else None
    return _Run(total, busy, idle, stalled, y_ready, rec)


@dataclass
class CycleReport:
    """The timing of one channel (and of ``channels`` channels) per frame; see :meth:`to_json`."""

    hardware: HardwareConfig
    n_frames: int
    cycles_per_frame: Fraction
    compute_cycles_per_frame: Fraction
    memory_cycles_per_frame: Fraction
    ideal_cycles_per_frame: Fraction
    breakdown: dict[str, Fraction]  # term -> cycles per frame, sums to cycles_per_frame exactly
    pe_busy: np.ndarray  # (N,) cycles per frame
    pe_idle: np.ndarray
    pe_stalled: np.ndarray
    nnz: int
    padding: int
    dense_weights: int
    stream_bits: int
    per_op_cycles: dict[str, float] = field(default_factory=dict)

    @property
    def latency_us(self) -> float:
        return float(self.cycles_per_frame) / self.hardware.clock_mhz

    @property
    def utilization(self) -> float:
        """Share of the PE cycles spent on entries (non-zeros and padding): ideal / real."""
        return float(self.ideal_cycles_per_frame / self.cycles_per_frame)

    @property
    def mac_utilization(self) -> float:
        """Share of the PE cycles spent on non-zero weights (padding excluded)."""
        return float(self.breakdown["mac_nonzero"] / self.cycles_per_frame)

    @property
    def ops_sparse(self) -> int:
        return 2 * self.nnz

    @property
    def ops_dense_equivalent(self) -> int:
        return 2 * self.dense_weights

    def gops(self, ops: int, channels: int = 1) -> float:
        seconds = float(self.cycles_per_frame) / (self.hardware.clock_mhz * 1e6)
        return channels * ops / seconds / 1e9

    def limited_by(self) -> str:
        """The largest term beyond the ideal work."""
        extra = {k: v for k, v in self.breakdown.items() if k not in ("mac_nonzero", "padding")}
        return max(extra, key=lambda k: extra[k])

    def to_json(self) -> dict[str, Any]:
        hw = self.hardware
        ch = hw.channels
        total = float(self.cycles_per_frame)

        def spread(v: np.ndarray) -> dict[str, float]:
            return {"min": float(v.min()), "mean": float(v.mean()), "max": float(v.max())}

        return {
            "cycles_per_frame": total,
            "ideal_cycles_per_frame": float(self.ideal_cycles_per_frame),
            "compute_cycles_per_frame": float(self.compute_cycles_per_frame),
            "memory_cycles_per_frame": float(self.memory_cycles_per_frame),
            "latency_us": self.latency_us,
            "ideal_latency_us": float(self.ideal_cycles_per_frame) / hw.clock_mhz,
            "utilization": self.utilization,
            "mac_utilization": self.mac_utilization,
            "limited_by": self.limited_by(),
            "gops_sparse": self.gops(self.ops_sparse),
            "gops_dense_equivalent": self.gops(self.ops_dense_equivalent),
            "gops_sparse_all_channels": self.gops(self.ops_sparse, ch),
            "gops_dense_equivalent_all_channels": self.gops(self.ops_dense_equivalent, ch),
            "frames_per_s_all_channels": ch * hw.clock_mhz * 1e6 / total,
            "ops_per_frame": {"sparse": self.ops_sparse, "dense_equivalent": self.ops_dense_equivalent},
            "weights": {"nnz": self.nnz, "padding_entries": self.padding, "dense": self.dense_weights,
                        "stream_bits_per_frame": self.stream_bits},
            "breakdown": {k: float(v) for k, v in self.breakdown.items()},
            "breakdown_fraction": {k: float(v / self.cycles_per_frame) for k, v in self.breakdown.items()},
            "per_op_cycles_per_frame": self.per_op_cycles,
            "per_pe": {"busy": self.pe_busy.tolist(), "idle": self.pe_idle.tolist(), "stalled": self.pe_stalled.tolist(),
                   "busy_spread": spread(self.pe_busy), "idle_spread": spread(self.pe_idle),
                   "stalled_spread": spread(self.pe_stalled)},
            "n_frames": self.n_frames,
            "hardware": dataclasses.asdict(hw),
        }


def _check_frames(n_frames: int) -> None:
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise AccelError(f"n_frames must be a positive integer, not {n_frames!r}")


def simulate_workload(wl: Workload, order: IssueOrder, hardware: HardwareConfig,
                      n_frames: int = DEFAULT_FRAMES, *, breakdown: bool = True) -> CycleReport:
    """The cycle model on a workload (a program's or the sweep's analytic one) and an issue order."""
    check_hardware(hardware)
    _check_frames(n_frames)
    if (wl.n_pes, wl.index_bits) != (hardware.pes, hardware.index_bits):
        raise AccelError(f"the workload is encoded for {wl.n_pes} PEs / {wl.index_bits}-bit indices, the hardware "
                         f"asks for {hardware.pes} / {hardware.index_bits}: re-target the program first")
    hw, T, N = hardware, n_frames, wl.n_pes
    st = _build_stream(wl, order, hw, T)
    full = _run(st, hw)
    compute = Fraction(full.total, T)
    bits = wl.stream_bits()
    memory = Fraction(0) if hw.weights_on_chip else \
        Fraction(bits) * Fraction(hw.clock_mhz * 1e6) / Fraction(8e9 * hw.memory_gbytes_per_s)
    per_frame = max(compute, memory)
    mats = wl.matrices()
    total_entries = sum(int(mats[m].entries.sum()) for m in st.mat)  # over the op instances run
    nnz_instances = sum(mats[m].nnz for m in st.mat)
    epc = hw.entries_per_cycle
    ideal = Fraction(total_entries, N * epc * T)
    terms: dict[str, Fraction] = {}
    if breakdown:
        v1 = _run(st, hw, queue=False).total
        v2 = _run(st, hw, queue=False, balanced=True)
        v3 = _run(st, hw, queue=False, balanced=True, ew=False).total
        v4 = _run(st, hw, queue=False, balanced=True, ew=False, latencies=False).total
        v5 = _run(st, hw, queue=False, balanced=True, ew=False, latencies=False, deps=False).total
        terms = {
            "mac_nonzero": Fraction(nnz_instances, N * epc * T),
            "padding": Fraction(total_entries - nnz_instances, N * epc * T),
            "pointer_overhead": Fraction(v5, N * T) - ideal,
            "load_imbalance": Fraction(v1, T) - Fraction(v2.total, N * T),
            "queue_stalls": compute - Fraction(v1, T),
            "pipeline_fill_drain": Fraction(v3 - v4, N * T),
            "elementwise": Fraction(v2.total - v3, N * T),
            "recurrence_dependency": Fraction(v4 - v5, N * T),
            "memory_bandwidth": per_frame - compute,
        }
        terms = {k: terms[k] for k in BREAKDOWN_TERMS}
        assert sum(terms.values()) == per_frame, "breakdown terms must add up to the total"
    per_op: dict[str, float] = {}
    for m, name in enumerate(st.names):  # the busiest PE's cycles of each matrix
        per_op[name] = float(st.work[:, st.mat_off[m]:st.mat_off[m] + st.mat_cols[m]].sum(axis=1).max())
    return CycleReport(
        hardware=hw, n_frames=T, cycles_per_frame=per_frame, compute_cycles_per_frame=compute,
        memory_cycles_per_frame=memory, ideal_cycles_per_frame=ideal, breakdown=terms,
        pe_busy=full.busy / T, pe_idle=full.idle / T, pe_stalled=full.stalled / T,
        nnz=wl.nnz, padding=wl.padding, dense_weights=wl.dense, stream_bits=bits,
        per_op_cycles=per_op)


def simulate(program: Program, hardware: HardwareConfig | None = None, n_frames: int = DEFAULT_FRAMES, *,
             breakdown: bool = True) -> CycleReport:
    """Cycle model of ``program`` on ``hardware`` (default: the program's own); a different
    ``pes``/``index_bits`` recompiles from the decoded model (:func:`~ese.accel.retarget.retarget`)."""
    prog = retarget(program, hardware) if hardware is not None else program
    return simulate_workload(workload_from_program(prog), issue_order(prog.schedule), prog.hardware, n_frames,
                             breakdown=breakdown)


@dataclass
class Timeline:
    """Per-column, per-PE times of the full model (docs/cycle-model.md section 2 symbols).

    Column c of the stream is column ``k[c]`` of op ``op[c]`` (e.g. ``"r0"``) of step ``step[c]``;
    ``b`` (C,) broadcast cycles, ``s``/``f`` (N, C) pop and free cycles, ``avail`` (C,), ``work``
    (N, C); ``y_ready`` (L, T); ``total`` the utterance's cycles.
    """

    op: list[str]
    step: np.ndarray
    k: np.ndarray
    b: np.ndarray
    s: np.ndarray
    f: np.ndarray
    avail: np.ndarray
    work: np.ndarray
    y_ready: np.ndarray
    total: int

    def save(self, path) -> None:
        from ese.atomic import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, op=np.array(self.op), step=self.step, k=self.k, b=self.b, s=self.s, f=self.f,
                         avail=self.avail, work=self.work, y_ready=self.y_ready, total=np.int64(self.total))


MAX_TIMELINE_CELLS = 20_000_000


def timeline(program: Program, hardware: HardwareConfig | None = None, n_frames: int = 2) -> Timeline:
    """Every b, s, f of a (tiny) program's run, for cycle-by-cycle comparison with the RTL."""
    prog = retarget(program, hardware) if hardware is not None else program
    hw = prog.hardware
    check_hardware(hw)
    _check_frames(n_frames)
    st = _build_stream(workload_from_program(prog), issue_order(prog.schedule), hw, n_frames)
    if st.n_columns * hw.pes > MAX_TIMELINE_CELLS:
        raise AccelError(f"a timeline of {st.n_columns} columns x {hw.pes} PEs is too large; use fewer frames "
                         "or a smaller program")
    run = _run(st, hw, record=True)
    op, step, k, cols = [], [], [], []
    for r, lay, t, m in zip(st.role, st.layer, st.step, st.mat):
        K = int(st.mat_cols[m])
        op += [f"{SPMV_ROLES[int(r)]}{int(lay)}"] * K
        step.append(np.full(K, t, dtype=np.int64))
        k.append(np.arange(K, dtype=np.int64))
        cols.append(np.arange(st.mat_off[m], st.mat_off[m] + K))
    cols_all = np.concatenate(cols)
    assert run.record is not None
    return Timeline(op, np.concatenate(step), np.concatenate(k), run.record["b"], run.record["s"], run.record["f"],
                    run.record["avail"], st.work[:, cols_all], run.y_ready, run.total)


__all__ = ["BREAKDOWN_TERMS", "CycleReport", "Timeline", "issue_order", "simulate",
           "simulate_workload", "timeline"]
