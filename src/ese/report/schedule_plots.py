"""A Gantt chart of the estimated schedule: which unit does what, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ese.report.plots import plt, save_figure


def schedule_gantt(schedule: Any, path: str | Path, steps: int = 3) -> Path:
    """Bars per unit (PEs, element-wise) over ``steps`` steps of ``schedule.timeline``."""
    rows = schedule.timeline(steps)
    units = ["PEs", "element-wise"]
    colours = {"x": "tab:blue", "r": "tab:orange", "ew": "tab:green", "ym": "tab:red"}
    fig, ax = plt.subplots(figsize=(10, 2.6))
    for row in rows:
        y = units.index(row["unit"])
        role = row["op"].rstrip("0123456789")
        ax.barh(y, row["end"] - row["start"], left=row["start"], color=colours[role], edgecolor="black", height=0.6)
        ax.text((row["start"] + row["end"]) / 2, y, f"{row['op']}\nt={row['step']}", ha="center", va="center",
                fontsize=7)
    ax.set_yticks(range(len(units)), units)
    ax.set_xlabel("estimated cycles")
    path_ops, length = schedule.critical_path()
    ax.set_title(f"schedule, {steps} steps (overlap_input={schedule.overlap_input}); recurrence "
                 f"{' -> '.join(path_ops)} = {length} cycles/step")
    return save_figure(fig, path)
