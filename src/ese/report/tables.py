"""Small table helpers shared by the CLI (rich, for terminals) and reports (Markdown)."""

from __future__ import annotations

from typing import Any, Sequence

from rich.console import Console
from rich.table import Table


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2e}"
    return str(value)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
                console: Console | None = None) -> None:
    table = Table(title=title)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(v) for v in row))
    (console or Console()).print(table)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
