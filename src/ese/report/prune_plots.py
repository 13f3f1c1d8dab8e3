"""Figures of the pruning stage: sensitivity curves and PER vs density (balanced vs not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ese.report.plots import plt, save_figure  # Agg backend already selected there


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    return save_figure(fig, path)


def sensitivity_plot(table: Mapping[str, Any], path: str | Path, title: str = "sensitivity") -> Path:
    """Dev PER vs density, one line per matrix pruned alone (no retraining)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    dens = [100 * d for d in table["densities"]]
    for name, row in table["matrices"].items():
        ax.plot(dens, row["per"], marker="o", label=name)
    ax.axhline(table["dense_per"], color="grey", linestyle="--", linewidth=1, label="dense")
    ax.set_xscale("log")
    ax.set_xlabel("density of the one pruned matrix (%)")
    ax.set_ylabel("dev PER (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, path)


def density_sweep_plot(series: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path,
                       title: str = "PER vs density", key: str = "per_test") -> Path:
    """PER (``key`` of each row) vs achieved density, one line per series (e.g. balance mode),
    with error bars where rows carry ``<key>_std`` (the spread over seeds)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, rows in series.items():
        pts = sorted((100 * r["density"], r[key], r.get(f"{key}_std") or 0.0)
                     for r in rows if r.get(key) is not None)
        if pts:
            x, y, err = zip(*pts)
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("density (%)")
    ax.set_ylabel(f"{key.replace('per_', '')} PER (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)
