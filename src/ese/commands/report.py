"""``ese report``: the self-contained ``report.html`` of a work directory (``ese run`` writes it too)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ese.outputs import writes


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("report")(report)


@writes("out")
def report(
    workdir: Annotated[Path, typer.Argument(help="Work directory of an ese run (holds report.json).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="HTML file to write (default WORKDIR/report.html).")] = None,
) -> None:
    """Write one self-contained HTML page with the table and plot of every stage that ran."""
    from ese.commands.shared import console
    from ese.run_report import write_html_report

    console.print(f"wrote {write_html_report(workdir, out)}")
