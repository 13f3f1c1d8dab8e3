"""``ese bench``: the CPU engine against PyTorch dense, torch.sparse and scipy (issue 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ese.outputs import writes


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("bench")(bench)


@writes("json_path")
def bench(
    model: Annotated[Path, typer.Option(help="Fixed-point model (.qnpz) of the paper preset.")] = Path("models/paper/paper-b32-d11-w12a16.qnpz"),
    extra: Annotated[list[Path] | None, typer.Option(help="More models to time (ours only): .qnpz, or a pruned checkpoint (its pattern, requantized).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Main rows only, fewer repeats (under a minute).")] = False,
    threads: Annotated[int, typer.Option(help="Threads of the main rows (0 = all cores); scaling rows go 1 -> this.")] = 0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write one record per row here.")] = None,
) -> None:
    """Time the CPU engine (float, fixed point) beside PyTorch dense/sparse and scipy; µs per step.

    The shipped LSTMP's rows, then a GRU of the same shape beside ``nn.GRU`` (the ``cell`` column)."""
    from rich.console import Console

    from ese.atomic import write_json
    from ese.commands.shared import console
    from ese.report.tables import print_table
    from ese.runtime.bench import benchmark

    _check_cells([model, *(extra or [])])
    result = benchmark(model, extra, quick, threads, log=lambda s: console.print(s, highlight=False))
    rows = result["rows"]
    table = [[r["cell"], r["engine"], r["kernel"], r["model"], r["pattern"], r["mode"], r["batch"], f"{100 * r['density']:.1f}",
              r["threads"], f"{r['us_per_step']:.1f}" + (f" (alone {r['us_per_step_alone']:.1f})"
                                                         if r["engine"] == "torch-dense" else ""),
              f"{r['speedup_vs_torch_dense']:.2f}", f"{r['weight_bytes'] / 2**20:.2f}", f"{r['load_avg']:.1f}"]
             for r in rows]
    m = result["machine"]
    print_table(f"CPU engine ({m['cpu']}, {m['cores']} cores); peak RSS "
                f"{result['peak_rss_bytes'] / 2**20:.0f} MiB",
                ["cell", "engine", "kernel", "model", "pattern", "mode", "batch", "density %", "threads", "µs/step",
                 "× torch dense", "weights MiB", "load"], table, Console(width=max(console.width, 170)))
    if json_path:
        write_json(json_path, result)


def _check_cells(paths: list[Path]) -> None:
    """EngineError (one line) for a fixed-point model of a cell the CPU engine has no kernels for."""
    from ese.compress.qmodel import load_qmodel
    from ese.runtime.cells import engine_cell

    for path in paths:
        if path.suffix == ".qnpz" and path.is_file():
            engine_cell(load_qmodel(path).cell)
