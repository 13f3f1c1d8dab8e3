"""Per-matrix pruning sensitivity, and per-matrix densities chosen from it (ESE.md section 2).

The scan prunes ONE matrix at a time (the others dense) to each density of a grid, without
retraining, and measures dev PER. The allocation rule turns the table into per-matrix densities
that meet an overall target:

1. Each matrix's PER loss curve (PER minus dense PER) is made monotone: the loss at density d is
   the worst loss measured at any density >= d (noise cannot make a sparser matrix look better),
   clipped at 0, and linearly interpolated between grid points; density 1.0 has loss 0.
2. One tolerance tau is shared by all matrices: each matrix gets the smallest density whose loss
   is <= tau (never below the smallest density scanned). Robust matrices therefore get sparse,
   sensitive ones keep more weights.
3. tau is bisected so the total kept weights sum(d_m * n_m) is just above target * sum(n_m), and
   the densities are then scaled by one common factor (capped at 1) to hit the target exactly.
   A target below the smallest scanned density gives every matrix the target (uniform).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from rich.progress import Progress

from ese.compress.prune import MagnitudePruner, check_density, prunable_names
from ese.data.dataset import FeatureSet
from ese.errors import ConfigError
from ese.model.decode import evaluate
from ese.model.lstmp import AcousticModel

TABLE_VERSION = 1


def sensitivity_table(model: AcousticModel, dev: FeatureSet, output_delay: int,
                      pruner: MagnitudePruner, densities: Sequence[float], *,
                      names: Sequence[str] | None = None, progress: bool = True,
                      backend: str = "local", ray_address: str | None = None,
                      threads: int = 0) -> dict[str, Any]:
    """Dev PER with one matrix pruned to each density (the rest dense), for every matrix.

    Returns ``{"version", "densities": [...] (descending), "dense_per", "pruner",
    "matrices": {name: {"shape", "weights", "per": [PER at each density]}}}``; PER in percent.
    ``backend="ray"`` scores every (matrix, density) point as one Ray task (:mod:`ese.parallel`),
    the model and the dev set shipped once; each task uses ``threads`` torch threads (0: as
    many as this process uses), so the numbers are the local ones.
    """
    grid = sorted({check_density(d, "sensitivity density") for d in densities}, reverse=True)
    names = list(names or prunable_names(model))
    work = copy.deepcopy(model)
    params = dict(work.named_parameters())
    unknown = [n for n in names if n not in params or n not in prunable_names(model)]
    if unknown:
        raise ConfigError(f"no prunable matrix named {', '.join(map(repr, unknown))}; "
                          f"the model has {', '.join(prunable_names(model))}")
    dense_per = evaluate(work, dev, output_delay)["per"]
    table: dict[str, Any] = {"version": TABLE_VERSION, "densities": grid, "dense_per": dense_per,
                             "pruner": pruner.state_dict(), "matrices": {}}
    if backend == "ray":
        return _ray_table(table, work, dev, output_delay, pruner, names, grid, progress, ray_address,
                          threads or torch.get_num_threads())
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("sensitivity", total=len(names) * len(grid))
        for name in names:
            original = params[name].detach().clone()
            pers = []
            for d in grid:
                if d >= 1.0:
                    pers.append(dense_per)  # nothing pruned: the dense model
                else:
                    mask = pruner.update_mask(name, original, d)
                    with torch.no_grad():
                        params[name].copy_(original * mask.to(original.dtype))
                    pers.append(evaluate(work, dev, output_delay)["per"])
                bar.advance(task)
            with torch.no_grad():
                params[name].copy_(original)
            table["matrices"][name] = {"shape": list(original.shape),
                                       "weights": int(original.numel()), "per": pers}
    return table


def _ray_table(table: dict[str, Any], model: AcousticModel, dev: FeatureSet, output_delay: int,
               pruner: MagnitudePruner, names: list[str], grid: list[float], progress: bool,
               address: str | None, threads: int) -> dict[str, Any]:
    from ese.parallel import map_points

    params = dict(model.named_parameters())
    points = [(n, d) for n in names for d in grid if d < 1.0]
    shared = {"model": model, "dev": dev, "delay": output_delay, "pruner": pruner, "threads": threads}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("sensitivity (ray)", total=len(points))
        pers = dict(zip(points, map_points(_scan_point, shared, points, backend="ray", address=address,
                                           progress=lambda: bar.advance(task))))
    for name in names:
        p = params[name]
        table["matrices"][name] = {"shape": list(p.shape), "weights": int(p.numel()),
                                   "per": [table["dense_per"] if d >= 1.0 else pers[(name, d)] for d in grid]}
    return table


def _scan_point(shared: Mapping[str, Any], point: tuple[str, float]) -> float:
    """One (matrix, density) point of the scan, as a Ray task: dev PER with that matrix pruned."""
    from ese.threads import torch_threads

    name, d = point
    model = copy.deepcopy(shared["model"])  # writable tensors (the object store's are read-only)
    model.eval()
    param = dict(model.named_parameters())[name]
    original = param.detach().clone()
    mask = shared["pruner"].update_mask(name, original, d)
    with torch.no_grad():
        param.copy_(original * mask.to(original.dtype))
    with torch_threads(shared["threads"]):
        return evaluate(model, shared["dev"], shared["delay"])["per"]


def _loss_curve(densities: Sequence[float], pers: Sequence[float], dense_per: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """(grid ascending, monotone non-increasing loss) with density 1.0 at loss 0."""
    d = np.asarray(densities, dtype=np.float64)
    loss = np.asarray(pers, dtype=np.float64) - dense_per
    order = np.argsort(d)
    d, loss = d[order], loss[order]
    if d[-1] < 1.0:
        d, loss = np.append(d, 1.0), np.append(loss, 0.0)
    loss[-1] = 0.0
    loss = np.maximum(np.maximum.accumulate(loss[::-1])[::-1], 0.0)  # worst loss at >= d
    return d, loss


def _density_at(d: np.ndarray, loss: np.ndarray, tau: float) -> float:
    """Smallest density on the interpolated curve with loss <= tau."""
    if loss[0] <= tau:
        return float(d[0])
    for i in range(len(d) - 1):
        if loss[i] > tau >= loss[i + 1]:
            return float(d[i] + (d[i + 1] - d[i]) * (loss[i] - tau) / (loss[i] - loss[i + 1]))
    return 1.0


def _fit_total(dens: np.ndarray, sizes: np.ndarray, goal: float) -> np.ndarray:
    """Scale ``dens`` by one factor (each capped at 1) so that sum(dens * sizes) == goal."""
    lo, hi = 0.0, 1.0 / max(float(dens.min()), 1e-12)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if float((np.minimum(dens * mid, 1.0) * sizes).sum()) < goal:
            lo = mid
        else:
            hi = mid
    return np.minimum(dens * hi, 1.0)


def allocate_densities(table: Mapping[str, Any], target: float) -> dict[str, float]:
    """Per-matrix densities meeting ``target`` overall, by the rule of the module docstring."""
    target = check_density(target, "target density")
    names = list(table["matrices"])
    sizes = np.array([table["matrices"][n]["weights"] for n in names], dtype=np.float64)
    curves = [_loss_curve(table["densities"], table["matrices"][n]["per"], table["dense_per"])
              for n in names]
    goal = target * sizes.sum()
    floor = min(float(c[0][0]) for c in curves)
    if target <= floor:
        return {n: target for n in names}

    def dens(tau: float) -> np.ndarray:
        return np.array([max(_density_at(d, loss, tau), floor) for d, loss in curves])

    lo, hi = 0.0, max(float(loss.max()) for _, loss in curves)  # total(lo) >= total(hi)
    if float((dens(hi) * sizes).sum()) >= goal:
        lo = hi
    else:
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if float((dens(mid) * sizes).sum()) >= goal:
                lo = mid
            else:
                hi = mid
    fitted = _fit_total(dens(lo), sizes, goal)
    return {n: float(v) for n, v in zip(names, fitted)}
