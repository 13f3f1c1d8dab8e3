"""The engine benchmark (issue 6): ours vs PyTorch dense, torch.sparse CSR and scipy CSR.

All rows of one run use the same inputs and thread counts; warm-up is excluded and each figure is
the median over repeats of µs per time step (one frame of every stream). Speed-up is against
PyTorch's dense layer of the same cell (``nn.LSTM(153, 1024, proj_size=512)``; for the other
cells of ``Settings.cells``, e.g. ``nn.GRU(153, 1024)``) at the same mode, batch and threads,
measured in the same rounds.
"""

from __future__ import annotations

import copy
import os
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numba
import numpy as np
import torch

from ese.compress.qmodel import QModel, load_qmodel
from ese.runtime.baselines import ScipySparse, TorchDense, TorchSparse
from ese.runtime.engine import Engine, float32_layers
from ese.runtime.patterns import detect as detect_pattern
from ese.runtime.perm_layout import perm_supported
from ese.threads import numba_threads, torch_threads

DEFAULT_MODEL = Path("models/paper/paper-b32-d11-w12a16.qnpz")
ENGINES = ("torch-dense", "torch-sparse-csr", "scipy-csr", "ese-float", "ese-fixed", "ese-dense-float",
           "ese-dense-fixed")
DENSE_OURS = ("ese-dense-float", "ese-dense-fixed")  # our kernels on a dense model: the fast dense path
PATTERN_GROUPS = (4, 8, 16)  # cluster:G models of the shipped shape timed at batch 1 streaming


@dataclass
class Row:
    engine: str
    mode: str  # streaming | utterance
    batch: int
    density: float
    threads: int
    us_per_step: float
    speedup_vs_torch_dense: float = float("nan")
    density_limit: float = float("nan")  # 1 / density
    frames_per_s: float = float("nan")
    weight_bytes: int = 0
    model: str = ""
    kernel: str = ""  # the kernel that ran (ours: chosen from the pattern and the CPU)
    pattern: str = ""  # sparsity pattern of the model (ese.runtime.patterns) or "dense"
    us_per_step_alone: float = float("nan")  # torch-dense only: timed with no other engine between rounds
    alone_deviation: float = float("nan")  # torch-dense only: us_per_step / us_per_step_alone - 1
    steps_per_round: int = 0  # calls per timed round
    load_avg: float = float("nan")  # 1-minute load average when the row was measured
    cell: str = ""  # the recurrent cell of the model (ese.cell): lstmp, gru


@dataclass
class Settings:
    steps: int = 16  # streaming steps per repeat
    frames: int = 64  # utterance length
    repeats: int = 5
    min_round_s: float = 0.1  # every timed round lasts at least this long
    settle_s: float = 0.01  # pause before each round (OpenMP workers spin ~1 ms after a region)
    batches: tuple[int, ...] = (1, 32)
    modes: tuple[str, ...] = ("streaming", "utterance")
    densities: tuple[float, ...] = (0.5, 0.25, 0.11, 0.05)
    sweep: bool = True
    scaling: bool = True
    cells: tuple[str, ...] = ("gru",)  # other cells timed at the shipped shape beside PyTorch's layer


def all_threads() -> int:
    return numba.config.NUMBA_NUM_THREADS


def synthetic_qmodel(template: QModel, density: float, seed: int = 0) -> QModel:
    """``template`` with every recurrent-layer matrix replaced by a random pruned one at ``density``
    (uniformly placed non-zeros, values drawn from the template's non-zeros)."""
    rng = np.random.default_rng(seed)
    qm = copy.deepcopy(template)
    for L in qm.layers:
        for name in qm.cell.matrix_names:
            w = getattr(L, name)
            pool = w[w != 0]
            keep = rng.random(w.shape) < density
            new = np.zeros_like(w)
            new[keep] = rng.choice(pool, size=int(keep.sum()))
            setattr(L, name, new)
    return qm


def cluster_qmodel(template: QModel, density: float, group: int, seed: int = 0) -> QModel:
    """``template`` with every recurrent-layer matrix replaced by a random ``cluster:group`` one at
    ``density``: each aligned ``group``-row cluster keeps the same random columns, values drawn
    from the template's non-zeros (a model of the shipped shape in that pattern, for speed)."""
    rng = np.random.default_rng(seed)
    qm = copy.deepcopy(template)
    for L in qm.layers:
        for name in qm.cell.matrix_names:
            w = getattr(L, name)
            pool = w[w != 0]
            R, K = w.shape
            keep = np.repeat(rng.random((R // group, K)) < density, group, axis=0)
            new = np.zeros_like(w)
            vals = rng.choice(pool, size=int(keep.sum()))
            new[keep] = vals
            setattr(L, name, new)
    return qm


def cell_qmodel(cell: str, template: QModel, density: float, seed: int = 0) -> QModel:
    """A random fixed-point model of ``cell`` with ``template``'s input, units, layers and
    quantization: nn-initialized weights pruned load-balance-aware to ``density`` over 32 PEs,
    ranges measured on random frames (a model of the shipped shape in that cell, for speed)."""
    import dataclasses

    from ese.compress.prune import BalancedPruner, apply_masks
    from ese.compress.quantize import build_qmodel, measure_ranges
    from ese.model.lstmp import AcousticModel

    torch.manual_seed(seed)
    cfg = dataclasses.replace(template.model, cell=cell)
    model = AcousticModel(cfg).eval()
    apply_masks(model, BalancedPruner(density, 32, cell).compute_masks(model))
    rng = np.random.default_rng(seed)
    feats = [rng.normal(size=(40, cfg.input_dim)).astype(np.float32) for _ in range(2)]
    return build_qmodel(model, measure_ranges(model, feats), template.quant, output_delay=0)


def model_density(qm: QModel) -> float:
    nnz = sum(qm.nnz().values())
    size = sum(getattr(L, n).size for L in qm.layers for n in qm.cell.matrix_names)
    return nnz / size


class _Ours:
    def __init__(self, eng: Engine, B: int) -> None:
        self.eng, self.rec = eng, eng.recognizer(B)
        self.name = f"ese-{eng.mode}"
        self.kernel = self.rec.kernel
        self.pattern = eng.pattern

    def weight_bytes(self) -> int:
        return self.eng.weight_bytes(self.rec.B)

    def stream(self, x):
        return self.rec.step_layers(x)

    def utterance(self, X):
        return self.rec.run_frames(X)


def _timed(run: Callable[[int], None], units: int) -> float:
    t0 = time.perf_counter()
    run(units)
    return time.perf_counter() - t0


@dataclass
class Timing:
    """µs per step of every engine of a group, and PyTorch dense timed on its own."""

    us: dict[str, float]
    alone_us: float  # torch-dense, rounds back to back with no other engine between them
    units: dict[str, int]  # calls per timed round (steps or utterances)


def _round(run: Callable[[int], None], units: int, settle_s: float) -> float:
    """One timed round: a pause (so the threads of the engine timed before, which spin for a
    while after their last parallel region, have gone to sleep), one untimed call (wakes this
    engine's own threads and caches), then ``units`` calls timed."""
    time.sleep(settle_s)
    run(1)
    return _timed(run, units)


MAX_UNITS = 2000  # calls per round at most (a 10 µs step at min_round_s = 0.02 s)


def measure_side_by_side(calls: dict[str, tuple[Callable[[int], None], int]], st: Settings,
                         alone: str | None = "torch-dense") -> Timing:
    """µs per step of each ``name -> (run(units), steps per unit)``.

    One warm-up each (excluded) also sizes the rounds: every timed round lasts at least
    ``st.min_round_s``. Then ``st.repeats`` rounds run every engine once in turn (so load changes
    hit all alike), each round preceded by a pause of ``st.settle_s`` and an untimed call
    (:func:`_round`); the median over rounds. ``alone`` (PyTorch dense) is also timed in
    ``st.repeats`` rounds back to back, before and after the shared rounds (the median of all of
    them): the benchmark's check that the shared rounds do not slow it (docs/performance.md).
    """
    units = {}
    for name, (run, _) in calls.items():
        run(1)
        t = max(min(_timed(run, 1) for _ in range(3)), 1e-6)
        units[name] = int(np.clip(np.ceil(st.min_round_s / t), 1, MAX_UNITS))
    alone_t: list[float] = []

    def alone_rounds() -> None:
        if alone in calls:
            run = calls[alone][0]
            alone_t.extend(_round(run, units[alone], st.settle_s) for _ in range(st.repeats))

    alone_rounds()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(st.repeats):
        for name, (run, _) in calls.items():
            times[name].append(_round(run, units[name], st.settle_s))
    alone_rounds()
    per = {k: calls[k][1] * units[k] for k in calls}
    us = {k: float(np.median(v)) * 1e6 / per[k] for k, v in times.items()}
    a = float(np.median(alone_t)) * 1e6 / per[alone] if alone_t else float("nan")
    return Timing(us, a, units)


def _call(runner, mode: str, inputs: np.ndarray, st: Settings) -> tuple[Callable[[int], None], int]:
    """``run(units)`` and steps per unit: a unit is one step (streaming, cycling over the inputs)
    or one utterance of ``st.frames`` frames."""
    if mode == "streaming":
        xs = inputs[:st.steps]
        pos = [0]

        def run(units: int) -> None:
            i = pos[0]
            for _ in range(units):
                runner.stream(xs[i])
                i = (i + 1) % len(xs)
            pos[0] = i
        return run, 1
    X = inputs[:st.frames]

    def utt(units: int) -> None:
        for _ in range(units):
            runner.utterance(X)
    return utt, len(X)


def _runner(engine: str, qm: QModel, float_layers, B: int, threads: int, dense: QModel | None = None):
    D, H, P = qm.model.input_dim, qm.model.hidden, qm.model.proj
    if engine in DENSE_OURS:
        return _Ours(Engine.from_qmodel(dense, engine.rsplit("-", 1)[1], threads=threads), B)
    if engine == "torch-dense":
        return TorchDense(D, H, P, B, qm.cell)
    if engine == "torch-sparse-csr":
        return TorchSparse(float_layers, B, qm.cell)
    if engine == "scipy-csr":
        return ScipySparse(float_layers, B, qm.cell)
    return _Ours(Engine.from_qmodel(qm, engine.split("-")[1], threads=threads), B)


def run_rows(qm: QModel, label: str, engines: Iterable[str], st: Settings, threads: int,
             emitted: set, log: Callable[[str], None]) -> list[Row]:
    """Rows of one model: PyTorch dense and each engine, per batch and mode, at ``threads``.

    PyTorch dense (the layer of the model's cell) is measured in every group, side by side with
    the others, and is the base of that group's speed-ups; its row is emitted once per (cell,
    batch, mode, threads)."""
    with torch_threads(threads), numba_threads(threads):
        return _measure_rows(qm, label, engines, st, threads, emitted, log)


def _measure_rows(qm: QModel, label: str, engines: Iterable[str], st: Settings, threads: int,
                  emitted: set, log: Callable[[str], None]) -> list[Row]:
    """:func:`run_rows` inside its thread-count block."""
    density = model_density(qm)
    pattern = detect_pattern(getattr(L, k) for L in qm.layers for k in qm.cell.matrix_names)
    fl = float32_layers(qm.dequantized()[0])[0]
    rng = np.random.default_rng(1)
    engines = ["torch-dense", *[e for e in engines if e != "torch-dense"]]
    dense = synthetic_qmodel(qm, 1.0) if any(e in DENSE_OURS for e in engines) else None
    rows = []
    for B in st.batches:
        feats = rng.standard_normal((max(st.steps, st.frames), B, qm.model.input_dim)).astype(np.float32)
        for mode in st.modes:
            group = [e for e in engines if B == 1 or e not in DENSE_OURS]  # our dense path: batch 1
            runners = {e: _runner(e, qm, fl, B, threads, dense) for e in group}
            calls = {e: _call(r, mode, r.eng.quantize_input(feats) if e.endswith("-fixed") else feats, st)
                     for e, r in runners.items()}
            timing = measure_side_by_side(calls, st)
            us, base = timing.us, timing.us["torch-dense"]
            for e, r in runners.items():
                if e == "torch-dense":
                    if (qm.model.cell, B, mode, threads) in emitted:
                        continue
                    emitted.add((qm.model.cell, B, mode, threads))
                is_dense = e == "torch-dense" or e in DENSE_OURS
                dens = 1.0 if is_dense else density
                alone = timing.alone_us if e == "torch-dense" else float("nan")
                rows.append(Row(e, mode, B, dens, threads, us[e], base / us[e], 1.0 / dens,
                                B * 1e6 / us[e], r.weight_bytes(), "dense" if is_dense else label,
                                getattr(r, "kernel", e), "dense" if is_dense else pattern, alone,
                                us[e] / alone - 1.0 if e == "torch-dense" else float("nan"),
                                timing.units[e], os.getloadavg()[0], qm.model.cell))
                extra = f"  (alone {alone:.1f}: {100 * (us[e] / alone - 1):+.1f}%)" if e == "torch-dense" else ""
                log(f"{qm.model.cell:5s} {e:16s} {mode:9s} B={B:<3d} d={dens:.3f} T={threads} {us[e]:9.1f} us/step "
                    f"x{base / us[e]:.2f} {getattr(r, 'kernel', e)}{extra}")
    return rows


def benchmark(model: Path = DEFAULT_MODEL, extra: list[Path] | None = None, quick: bool = False,
              threads: int = 0, log: Callable[[str], None] = print) -> dict:
    """Run the whole benchmark; returns {"rows": [...], "machine": {...}, "peak_rss_bytes", ...}.

    ``threads``: the thread count of the main rows (0 = all cores); the scaling rows go 1 -> it.
    """
    st = Settings(steps=8, frames=32, repeats=3, min_round_s=0.05, sweep=False, scaling=False) if quick else Settings()
    qm = load_qmodel(model)
    n_all = min(threads or all_threads(), all_threads())
    emitted: set = set()
    rows = run_rows(qm, model.name, ENGINES, st, n_all, emitted, log)
    one = replace(st, batches=(1,), modes=("streaming",))
    for G in PATTERN_GROUPS:  # one row per pattern at the shipped density, batch 1 streaming
        rows += run_rows(cluster_qmodel(qm, model_density(qm), G), f"cluster{G}-d{100 * model_density(qm):.0f}",
                         ("ese-float", "ese-fixed"), one, n_all, emitted, log)
    for cell in st.cells:  # the other cells at the shipped shape and density, beside PyTorch's layer of each
        if cell != qm.model.cell:
            rows += run_rows(cell_qmodel(cell, qm, model_density(qm)), f"random-{cell}-d{100 * model_density(qm):.0f}",
                             ("ese-float", "ese-fixed"), st, n_all, emitted, log)
    if st.scaling:
        for t in sorted({1, *(t for t in (2, 4, 8, 16, 32, 64) if t < n_all)} - {n_all}):
            rows += run_rows(qm, model.name, ("ese-float", "ese-fixed"), st, t, emitted, log)
    if st.sweep:
        for dens in st.densities:
            rows += run_rows(synthetic_qmodel(qm, dens), f"synthetic-{dens:g}",
                             ("ese-float", "ese-fixed", "torch-sparse-csr"), st, n_all, emitted, log)
    for path in extra or []:
        rows += run_rows(_load_any(path, qm), path.name, ("ese-float", "ese-fixed"), st, n_all, emitted, log)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rows": [asdict(r) for r in rows], "machine": machine(), "peak_rss_bytes": peak,
            "settings": asdict(st)}


def _load_any(path: Path, template: QModel) -> QModel:
    """A ``.qnpz`` as is; a float checkpoint requantized in ``template``'s formats (speed only:
    the same sparsity pattern, not a calibrated model)."""
    if path.suffix == ".qnpz":
        return load_qmodel(path)
    from ese.compress.fixedpoint import quantize
    from ese.model.checkpoint import load_checkpoint
    model, _ = load_checkpoint(path)
    qm = copy.deepcopy(template)
    for L, ml in zip(qm.layers, model.layers):
        for name in qm.cell.matrix_names:
            w = getattr(ml, name).detach().numpy()
            q = quantize(w, L.formats[name])
            q[(w != 0) & (q == 0)] = 1  # keep the pattern
            setattr(L, name, q.astype(np.int64))
    return qm


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "numba_threads": all_threads(),
            "cpu_features": simd_features(), "perm64": perm_supported(),
            "torch": torch.__version__, "numba": numba.__version__,
            "threading_layer": _threading_layer(),
            "omp_env": {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
                        if k in os.environ}}


SIMD_FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512vbmi", "avx512vnni", "avxvnni")


def simd_features() -> list[str]:
    """The SIMD extensions of the CPU numba compiles for that the kernels' choice depends on."""
    from llvmlite import binding
    feats = set((numba.config.CPU_FEATURES or binding.get_host_cpu_features().flatten()).split(","))
    return [f for f in SIMD_FEATURES if f"+{f}" in feats]


def _threading_layer() -> str:
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return ""


def markdown(result: dict) -> str:
    """docs/performance.md's tables from a ``--json`` result (the doc is regenerated, not edited)."""
    rows, m = result["rows"], result["machine"]
    main_t = rows[0]["threads"] if rows else 0
    main_model = next((r["model"] for r in rows if r["engine"] != "torch-dense" and r["model"] != "dense"), "")
    out = [(f"Machine: **{m['cpu']}**, {m['cores']} cores ({', '.join(m.get('cpu_features', []))}); numba "
            f"{m['numba']} ({m.get('threading_layer', '')}), torch {m['torch']}; peak RSS of the run "
            f"{result['peak_rss_bytes'] / 2**20:.0f} MiB."), ""]
    header = ("| cell | engine | kernel | model | pattern | mode | batch | density % | threads | µs/step "
              "| × torch dense | weights MiB | load |")
    main_cell = rows[0].get("cell", "lstmp") if rows else "lstmp"

    def table(title: str, sel: list[dict]) -> None:
        out.extend([f"### {title}", "", header, "|" + "---|" * 13])
        for r in sel:
            us = f"{r['us_per_step']:.1f}"
            if r["engine"] == "torch-dense" and r.get("us_per_step_alone") == r.get("us_per_step_alone"):
                us += f" (alone {r['us_per_step_alone']:.1f})"
            out.append(f"| {r.get('cell', 'lstmp')} | {r['engine']} | {r.get('kernel', '')} | {r['model']} | {r.get('pattern', '')} "
                       f"| {r['mode']} | {r['batch']} | {100 * r['density']:.1f} | {r['threads']} | {us} "
                       f"| {r['speedup_vs_torch_dense']:.2f} | {r['weight_bytes'] / 2**20:.2f} "
                       f"| {r.get('load_avg', float('nan')):.1f} |")
        out.append("")

    def main_or_dense(r: dict) -> bool:
        return r["model"] in (main_model, "dense") and r.get("cell", "lstmp") == main_cell

    table(f"Shipped model ({main_model}), {main_t} thread(s)",
          [r for r in rows if r["threads"] == main_t and main_or_dense(r)])
    others = [r for r in rows if r.get("cell", "lstmp") != main_cell]
    if others:
        table("Other cells (random models of the shipped shape and density, pruned load-balance-aware; "
              "PyTorch dense is that cell's layer)", others)
    rows = [r for r in rows if r.get("cell", "lstmp") == main_cell]
    pats = [r for r in rows if r["model"].startswith("cluster")]
    if pats:
        table("Patterns (cluster:G models of the shipped shape and density, random values; batch 1 streaming)", pats)
    scaling = [r for r in rows if r["threads"] != main_t]
    if scaling:
        table("Thread scaling (shipped model)", scaling)
    sweep = [r for r in rows if r["model"].startswith("synthetic")]
    if sweep:
        table("Density sweep (synthetic, uniformly random pruning; PyTorch dense as above)", sweep)
    extra = [r for r in rows if not main_or_dense(r) and not r["model"].startswith(("synthetic", "cluster"))]
    if extra:
        table("Other models (pattern of the checkpoint, requantized; PyTorch dense as above)", extra)
    return "\n".join(out)
