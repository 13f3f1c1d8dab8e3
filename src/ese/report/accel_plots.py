"""Figures of the accelerator sweep (headless; written atomically): utilisation against PEs,
latency against queue depth, and the Pareto front of latency against PE count."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ese.report.plots import plt, save_figure  # Agg backend already selected there


def _models(rows: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in rows))


def utilization_vs_pes(rows: Sequence[dict[str, Any]], path: str | Path, queue_depth: int) -> Path:
    """At ``queue_depth`` if the grid has it, else at the deepest queue it has."""
    depths = {r["queue_depth"] for r in rows if r["family"] == "pes_x_queue"}
    queue_depth = queue_depth if queue_depth in depths else max(depths)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label in _models(rows):
        pts = sorted((r["pes"], 100 * r["utilization"]) for r in rows
                     if r["model"] == label and r["family"] == "pes_x_queue" and r["queue_depth"] == queue_depth)
        ax.plot([p for p, _ in pts], [u for _, u in pts], marker="o", label=label)
    ax.axhline(95, color="grey", linestyle=":", label="95%")
    return _finish(fig, ax, path, "PEs per channel", "utilisation (%)",
                   f"utilisation vs PEs (queue depth {queue_depth})", log_y=False)


def latency_vs_queue(rows: Sequence[dict[str, Any]], path: str | Path, label: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    mine = [r for r in rows if r["model"] == label and r["family"] == "pes_x_queue"]
    for n in sorted({r["pes"] for r in mine}):
        pts = sorted((r["queue_depth"], r["latency_us"]) for r in mine if r["pes"] == n)
        ax.plot([q for q, _ in pts], [t for _, t in pts], marker="o", label=f"{n} PEs")
    return _finish(fig, ax, path, "ActQueue depth", "latency per frame (us)", f"latency vs queue depth ({label})")


def pareto_latency_vs_pes(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label in _models(rows):
        mine = [r for r in rows if r["model"] == label and r["weights_on_chip"]]
        ax.scatter([r["pes"] for r in mine], [r["latency_us"] for r in mine], s=12, alpha=0.4)
        front, best = [], float("inf")
        for r in sorted(mine, key=lambda r: (r["pes"], r["latency_us"])):
            if r["latency_us"] < best:
                best = r["latency_us"]
                front.append(r)
        ax.plot([r["pes"] for r in front], [r["latency_us"] for r in front], marker="o", label=f"{label} (Pareto)")
    return _finish(fig, ax, path, "PEs per channel", "latency per frame (us)", "latency vs PE count")


def _finish(fig, ax, path: str | Path, xlabel: str, ylabel: str, title: str, *, log_y: bool = True) -> Path:
    """The axes every sweep plot shares: log2 x (PEs, depths), log y for latencies, grid, legend."""
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
