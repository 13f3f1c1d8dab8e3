"""`ese run`: the whole flow (ese.pipeline) on a preset, with its summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ese.atomic import write_json
from ese.commands.shared import (ConfigOpt, JsonOpt, PresetOpt, QuietOpt, SetOpt, ThreadsOpt, config_from, console,
                                 threads_override)
from ese.outputs import check_writable
from ese.report.tables import print_table


def register(app: typer.Typer) -> None:
    """Add ``ese run`` to ``app``."""
    app.command("run")(run)


def run(
    preset: PresetOpt = "default",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workdir: Annotated[Optional[Path], typer.Option(help="Work directory (default runs/<preset>).")] = None,
    corpus: Annotated[Optional[Path], typer.Option(help="Use this corpus instead of synthesizing one.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Retrain from scratch instead of resuming.")] = False,
    rtl: Annotated[bool, typer.Option("--rtl", help="Also simulate the RTL on a few test frames (minutes for large models).")] = False,
    rtl_frames: Annotated[int, typer.Option("--rtl-frames", help="Test frames for --rtl.")] = 2,
    threads: ThreadsOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """The whole flow on the embedded default: synthesize corpus, features, train, prune, quantize,
    compile, simulate (and with --rtl the RTL), report."""
    from ese.pipeline import run as run_pipeline

    from ese.lock import work_lock

    cfg = config_from(preset, config, list(set_ or []) + threads_override(threads))
    workdir = workdir or Path("runs") / cfg.preset
    check_writable([json_path], [workdir])
    with work_lock(workdir, "ese run"):
        report = run_pipeline(cfg, workdir, corpus=corpus, resume=not fresh, progress=not quiet,
                              rtl_frames=rtl_frames if rtl else 0, console=Console(stderr=True, log_path=False))
    if report is None:  # a data-parallel job's other ranks: rank 0 reports
        return
    comp = report["compression"]
    rows = [[split, s["per"], s["frame_acc"], comp["per"][split]["pruned"], comp["per"][split]["quantized"]]
            for split, s in report["per"].items()]
    if report.get("proxy"):
        proxy = report["proxy"]
        rows.append(["proxy", proxy["per"]["dense"], proxy["dense"]["frame_acc"], proxy["per"]["pruned"],
                     proxy["per"]["quantized"]])
    print_table(f"ese run ({cfg.preset}): phone error rate, dense -> {100 * comp['density']:.0f}% density "
                f"({comp['balance']}) -> {comp['weight_bits']}-bit fixed point",
                ["split", "dense PER %", "frame acc %", "pruned PER %", "fixed-point PER %"], rows, console)
    console.print(f"report: {workdir / 'report.md'}, {workdir / 'report.html'}  ({report['timings']['total_s']:.0f} s)")
    if json_path:
        write_json(json_path, report)
