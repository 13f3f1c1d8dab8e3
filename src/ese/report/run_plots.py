"""Figures of the run report that no stage draws itself: PER by stage, the cycle breakdown,
per-PE utilisation and engine speed (headless; written atomically as PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ese.report.plots import plt, save_figure  # Agg backend already selected there


def per_by_stage(per: Mapping[str, Mapping[str, float]], path: str | Path) -> Path:
    """Grouped bars: PER of each split (dev, test) after each stage (dense, pruned, quantized)."""
    splits = list(per)
    stages = list(next(iter(per.values())))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    width = 0.8 / len(stages)
    for j, stage in enumerate(stages):
        xs = [i + (j - (len(stages) - 1) / 2) * width for i in range(len(splits))]
        vals = [per[s][stage] for s in splits]
        bars = ax.bar(xs, vals, width, label=stage)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(splits)), splits)
    ax.set_ylabel("phone error rate (%)")
    ax.set_title("PER after each stage")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save_figure(fig, path)


def cycle_breakdown(breakdown: Mapping[str, float], path: str | Path, total: float | None = None) -> Path:
    """Horizontal bars: cycles per frame of each term of the cycle model."""
    terms = list(breakdown)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(terms) + 1.2))
    bars = ax.barh(range(len(terms)), [breakdown[t] for t in terms], color="tab:blue")
    ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_yticks(range(len(terms)), terms)
    ax.invert_yaxis()
    ax.set_xlabel("cycles per frame")
    ax.set_title("cycle breakdown" + (f" (total {total:.0f} cycles per frame)" if total else ""))
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return save_figure(fig, path)


def pe_utilisation(per_pe: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Stacked bars per PE: busy, stalled and idle cycles per frame."""
    n = len(per_pe["busy"])
    fig, ax = plt.subplots(figsize=(max(5.0, 0.18 * n + 2), 3.4))
    bottom = [0.0] * n
    for key, colour in (("busy", "tab:green"), ("stalled", "tab:orange"), ("idle", "tab:grey")):
        vals = list(per_pe[key])
        ax.bar(range(n), vals, bottom=bottom, color=colour, label=key, width=0.85)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xlabel("PE")
    ax.set_ylabel("cycles per frame")
    ax.set_title("per-PE utilisation")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def engine_speed(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Horizontal bars: microseconds per step of every benchmarked engine (log scale)."""
    labels = [f"{r['engine']} {r.get('mode', '')} b{r.get('batch', 1)} t{r.get('threads', '')}".strip() for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.3))
    ax.barh(range(len(rows)), [r["us_per_step"] for r in rows], color="tab:purple")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("microseconds per step (lower is faster)")
    ax.set_title("engine speed")
    ax.grid(alpha=0.3, axis="x", which="both")
    fig.tight_layout()
    return save_figure(fig, path)
