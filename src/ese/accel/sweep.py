"""Design-space sweep of the cycle model over PE counts, queue depths, index widths and channels.

Points that share a model, a PE count and an index width share one workload, counted straight
from the fixed-point weights (:func:`~ese.accel.workload.workload_from_qmodel`, equal to the
encoder's, tested) instead of compiling a program per point; groups run in parallel processes.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from collections.abc import Iterable
from typing import Any

from ese.accel.cycles import issue_order, simulate_workload
from ese.accel.workload import Workload, workload_from_qmodel
from ese.compiler.schedule import build_schedule
from ese.config import HardwareConfig

PES = (8, 16, 32, 64, 128)
QUEUE_DEPTHS = (1, 2, 4, 8, 16, 32)
INDEX_BITS = (2, 3, 4, 5, 6, 8)
CHANNELS = (1, 2, 4, 8)


@dataclass(frozen=True)
class SweepPoint:
    """One hardware setting for one model (``label`` names the model file)."""

    label: str
    path: str
    pes: int
    index_bits: int
    queue_depth: int
    channels: int = 1
    weights_on_chip: bool = True
    family: str = "pes_x_queue"  # which slice of the grid the point belongs to


def grid(models: dict[str, str], base: HardwareConfig, pes: Iterable[int] = PES,
         queue_depths: Iterable[int] = QUEUE_DEPTHS, index_bits: Iterable[int] = INDEX_BITS,
         channels: Iterable[int] = CHANNELS, full: bool = False) -> list[SweepPoint]:
    """PEs x queue depths at the base index width; index widths and channels (weights streamed
    from external memory, the case where channels interact) at the base PEs and queue depth.
    ``full`` adds PEs x queue depths at every other index width (family ``pes_x_queue_x_index``)."""
    pts: list[SweepPoint] = []
    pes, queue_depths, index_bits = list(pes), list(queue_depths), list(index_bits)
    for label, path in models.items():
        pts += [SweepPoint(label, path, n, base.index_bits, q) for n in pes for q in queue_depths]
        if full:
            pts += [SweepPoint(label, path, n, b, q, family="pes_x_queue_x_index")
                    for b in index_bits if b != base.index_bits for n in pes for q in queue_depths]
        pts += [SweepPoint(label, path, base.pes, b, base.queue_depth, family="index_bits") for b in index_bits]
        pts += [SweepPoint(label, path, base.pes, base.index_bits, base.queue_depth, c, False, family="channels")
                for c in channels]
    return list(dict.fromkeys(pts))


class _ScheduleView:
    """Just what ``build_schedule`` reads from a program, taken from a workload."""

    class _Layer:
        def __init__(self, mats, hidden):
            self.hidden = hidden
            for name, m in mats.items():
                setattr(self, name, type("M", (), {"entries_per_pe": m.entries.sum(axis=1),
                                                   "n_entries": int(m.entries.sum())})())

    def __init__(self, wl: Workload, hw: HardwareConfig, model) -> None:
        self.hardware, self.model = hw, model
        self.layers = [self._Layer(L, h) for L, h in zip(wl.layers, wl.hidden)]


@lru_cache(maxsize=4)
def _qmodel(path: str):
    from ese.compress.qmodel import load_qmodel

    return load_qmodel(path)


def _point_row(wl: Workload, p: SweepPoint, base: HardwareConfig, n_frames: int, model) -> dict[str, Any]:
    """The table row of one point, simulated on its workload (``model``: the qmodel's shape)."""
    hw = dataclasses.replace(base, pes=p.pes, index_bits=p.index_bits, queue_depth=p.queue_depth,
                             channels=p.channels, weights_on_chip=p.weights_on_chip)
    js = simulate_workload(wl, issue_order(build_schedule(_ScheduleView(wl, hw, model))), hw, n_frames).to_json()
    return {"model": p.label, "family": p.family, "pes": p.pes, "index_bits": p.index_bits,
            "queue_depth": p.queue_depth, "channels": p.channels, "weights_on_chip": p.weights_on_chip,
            **{k: js[k] for k in ("cycles_per_frame", "ideal_cycles_per_frame", "latency_us", "utilization",
                                  "mac_utilization", "gops_sparse", "gops_dense_equivalent",
                                  "gops_sparse_all_channels", "gops_dense_equivalent_all_channels",
                                  "limited_by", "breakdown")},
            "stream_bits_per_frame": js["weights"]["stream_bits_per_frame"]}


def _run_group(args: tuple[list[SweepPoint], HardwareConfig, int]) -> list[dict[str, Any]]:
    points, base, n_frames = args
    p0 = points[0]
    qm = _qmodel(p0.path)
    wl = workload_from_qmodel(qm, p0.pes, p0.index_bits)
    return [_point_row(wl, p, base, n_frames, qm.model) for p in points]


_workloads: dict[tuple[str, int, int], Workload] = {}  # a Ray worker's, reused by its later tasks


def _ray_point(shared: dict[str, Any], p: SweepPoint) -> dict[str, Any]:
    """One point as one Ray task; ``shared`` (the fixed-point models by path) came through the
    object store once. Workloads are cached per worker process."""
    key = (p.path, p.pes, p.index_bits)
    if key not in _workloads:
        _workloads[key] = workload_from_qmodel(shared["qmodels"][p.path], p.pes, p.index_bits)
    return _point_row(_workloads[key], p, shared["base"], shared["frames"], shared["qmodels"][p.path].model)


def run_sweep(points: list[SweepPoint], base: HardwareConfig, n_frames: int = 20, jobs: int = 0, *,
              backend: str = "local", ray_address: str | None = None) -> list[dict[str, Any]]:
    """Simulate every point (``jobs`` processes, 0 = all cores); rows in the order of ``points``.

    ``backend="ray"`` runs every point as one Ray task (:mod:`ese.parallel`), the models shipped
    once through the object store; the rows are the same numbers."""
    if backend == "ray":
        from ese.parallel import map_points

        shared = {"qmodels": {p.path: _qmodel(p.path) for p in points}, "base": base, "frames": n_frames}
        return map_points(_ray_point, shared, points, backend="ray", address=ray_address)
    groups: dict[tuple[str, int, int], list[SweepPoint]] = {}
    for p in points:
        groups.setdefault((p.path, p.pes, p.index_bits), []).append(p)
    tasks = [(g, base, n_frames) for g in groups.values()]
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(tasks) == 1:
        results = [_run_group(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            results = list(pool.map(_run_group, tasks))
    by_point = {}
    for g, rows in zip(groups.values(), results):
        by_point.update(zip(g, rows))
    return [by_point[p] for p in points]


def propose(rows: list[dict[str, Any]], target: float = 0.95, metric: str = "mac_utilization") -> dict[str, Any]:
    """The lowest-latency point of each model whose ``metric`` reaches ``target``, or, if none does,
    the best point and the term that stops it. The default metric excludes padding, which
    ``utilization`` counts as work (narrow indices would otherwise "reach" the target by padding)."""
    out: dict[str, Any] = {}
    for label in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == label and r["weights_on_chip"]]
        ok = [r for r in mine if r[metric] >= target]
        if ok:
            best = min(ok, key=lambda r: (r["latency_us"], r["pes"], r["queue_depth"]))
            out[label] = {"metric": metric, "reaches_target": True, "point": best}
        else:
            best = max(mine, key=lambda r: r[metric])
            out[label] = {"metric": metric, "reaches_target": False, "point": best, "stopped_by": best["limited_by"]}
    return out
