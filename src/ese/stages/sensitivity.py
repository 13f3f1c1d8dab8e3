"""The sensitivity stage's outputs: the scan's table as JSON, Markdown and a plot (``ese
sensitivity`` and the prune driver's per-matrix allocation); the scan itself is
``ese.compress.sensitivity``'s."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ese.atomic import atomic_open, write_json
from ese.report.prune_plots import sensitivity_plot
from ese.report.tables import markdown_table


def sensitivity_markdown(table: Mapping[str, Any]) -> str:
    """The table as Markdown: dev PER per matrix and density, and the allocation if present."""
    alloc = table.get("allocation", {}).get("densities", {})
    header = ["matrix", "weights"] + [f"{100 * d:g}%" for d in table["densities"]]
    header += ["allocated %"] if alloc else []
    rows = [[name, row["weights"]] + list(row["per"])
            + ([100 * alloc[name]] if alloc else [])
            for name, row in table["matrices"].items()]
    lines = ["# Pruning sensitivity (dev PER %, one matrix pruned at a time, no retraining)",
             f"dense dev PER {table['dense_per']:.2f}%; pruner {table['pruner']}", "",
             markdown_table(header, rows)]
    if alloc:
        lines += ["", f"allocation for an overall density of {table['allocation']['target']:g} "
                      "(rule: ese.compress.sensitivity, docs/pruning.md)"]
    return "\n".join(lines) + "\n"


def write_sensitivity(table: Mapping[str, Any], out_dir: str | Path,
                      title: str = "sensitivity") -> list[Path]:
    """Write ``sensitivity.json``, ``sensitivity.md`` and ``sensitivity.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    paths = [out_dir / "sensitivity.json", out_dir / "sensitivity.md", out_dir / "sensitivity.png"]
    write_json(paths[0], table)
    with atomic_open(paths[1], "w", encoding="utf-8") as fh:
        fh.write(sensitivity_markdown(table))
    sensitivity_plot(table, paths[2], title=title)
    return paths
