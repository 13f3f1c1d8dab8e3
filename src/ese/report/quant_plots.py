"""Figures of the quantization report: PER against weight width (headless; written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ese.report.plots import plt, save_figure  # Agg backend already selected there

_COLORS = {"dev": "tab:blue", "test": "tab:orange"}


def sweep_plot(rows: Sequence[dict[str, Any]], per_float: dict[str, float], path: str | Path, *,
               weight_bits: int | None = None, act_bits: int | None = None) -> Path:
    """PER (%) of the fixed-point model per weight width, one line per split, float PER dashed."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    bits = [r["weight_bits"] for r in rows]
    for split, per in per_float.items():
        color = _COLORS.get(split)
        ax.plot(bits, [r.get(f"per_{split}", float("nan")) for r in rows], marker="o", color=color,
                label=f"{split}, fixed point")
        ax.axhline(per, linestyle="--", color=color, alpha=0.7, label=f"{split}, float")
    if weight_bits is not None:
        ax.axvline(weight_bits, color="grey", alpha=0.3, linewidth=6, label=f"chosen ({weight_bits} bits)")
    ax.set_xlabel("weight bits")
    ax.set_ylabel("phone error rate (%)")
    ax.set_xticks(bits)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("PER vs weight width" + (f" ({act_bits}-bit activations)" if act_bits else ""))
    fig.tight_layout()
    return save_figure(fig, path)
