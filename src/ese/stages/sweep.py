"""The design-space sweep's report: the rows of ``ese.accel.sweep.run_sweep`` as a Markdown table
(``ese sweep``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ese.atomic import atomic_open
from ese.report.tables import markdown_table


def write_markdown(rows: list[dict[str, Any]], path: Path) -> None:
    header = ["model", "slice", "PEs", "index bits", "queue", "channels", "on chip", "cycles/frame", "ideal",
              "latency us", "util %", "GOPS sparse (all ch.)", "limited by"]
    body = [[r["model"], r["family"], r["pes"], r["index_bits"], r["queue_depth"], r["channels"],
             "yes" if r["weights_on_chip"] else "no", r["cycles_per_frame"], r["ideal_cycles_per_frame"],
             r["latency_us"], 100 * r["utilization"], r["gops_sparse_all_channels"], r["limited_by"]] for r in rows]
    with atomic_open(path) as fh:
        fh.write("# ese sweep\n\n" + markdown_table(header, body) + "\n")
