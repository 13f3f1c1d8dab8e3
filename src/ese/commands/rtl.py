"""`ese rtl`: export the Amaranth RTL to Verilog, simulate it against the models, synthesize it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ese.errors import ConfigError
from ese.filekind import model_kind_or_suffix
from ese.outputs import writes

ModelArg = Annotated[Path, typer.Argument(help="A program image (.ese) or a fixed-point model (.qnpz).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output directory.")]
PesOpt = Annotated[Optional[int], typer.Option("--pes", help="PEs per channel (recompiles if it differs).")]
QueueOpt = Annotated[Optional[int], typer.Option("--queue-depth", help="ActQueue depth.")]
CropOpt = Annotated[Optional[str], typer.Option("--crop", help="Cut the model's first layer to H,P[,D] (cells, "
                                                               "projection, inputs) so the simulation stays small.")]
FramesOpt = Annotated[int, typer.Option("--frames", help="Random input frames (seeded) to run.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random input frames.")]


def register(app: typer.Typer) -> None:
    """Add ``ese rtl export | sim | synth`` to ``app``."""
    rtl_app = typer.Typer(help="The Amaranth RTL: Verilog export, simulation against the models, yosys synthesis.",
                          no_args_is_help=True)
    rtl_app.command("export")(export)
    rtl_app.command("sim")(sim)
    rtl_app.command("synth")(synth)
    app.add_typer(rtl_app, name="rtl")


def _crop(text: Optional[str]) -> Optional[tuple[int, ...]]:
    if not text:
        return None
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) not in (2, 3) or min(vals) < 1:
        raise ConfigError(f"--crop must be H,P or H,P,D with positive integers, not {text!r}")
    return vals


def load_program_for_rtl(model: Path, pes: Optional[int] = None, queue_depth: Optional[int] = None,
                         crop: Optional[str] = None):
    """A program from an image or a fixed-point model, re-targeted / cropped as asked."""
    from ese.compiler.program import compile_qmodel
    from ese.compress.qmodel import load_qmodel
    from ese.config import HardwareConfig
    from ese.rtl.toy import crop_qmodel

    changes = {k: v for k, v in (("pes", pes), ("queue_depth", queue_depth)) if v is not None}
    cut = _crop(crop)
    if model_kind_or_suffix(model) == "image":  # by content; the name only for a damaged file
        from ese.compiler.image import load_program
        prog = load_program(model)
        if not changes and not cut:
            return prog
        qm, hw = prog.to_qmodel(), dataclasses.replace(prog.hardware, **changes)
    else:
        qm, hw = load_qmodel(model), HardwareConfig(**changes)
    if cut:
        qm = crop_qmodel(qm, hidden=cut[0], proj=cut[1], input_dim=cut[2] if len(cut) > 2 else None)
    return compile_qmodel(qm, hw)


@writes(dirs=("out",))
def export(model: ModelArg, out: OutOpt = Path("build/rtl"), pes: PesOpt = None, queue_depth: QueueOpt = None,
           crop: CropOpt = None, frames: FramesOpt = 4, seed: SeedOpt = 0, lint: Annotated[bool, typer.Option(
               "--lint/--no-lint", help="Run verilator --lint-only on the export.")] = True) -> None:
    """Write ese_top.v (memories initialised from the program), tb.v and frames.hex for Icarus."""
    from ese.commands.shared import console
    from ese.rtl.export import export_verilog, verilator_lint, write_testbench
    from ese.rtl.params import rtl_params
    from ese.rtl.toy import random_frames

    prog = load_program_for_rtl(model, pes, queue_depth, crop)
    params = rtl_params(prog, max_frames=frames)
    path = export_verilog(params, out)
    write_testbench(params, random_frames(prog.to_qmodel(), frames, seed), out)
    console.print(f"wrote {path} ({path.stat().st_size} bytes), {out / 'tb.v'}, {out / 'frames.hex'}; run: "
                  f"cd {out} && iverilog -g2005 -o tb.vvp tb.v ese_top.v && vvp -n tb.vvp")
    if lint:
        ok, messages = verilator_lint(path)
        n_warn = messages.count("%Warning-")
        console.print(f"verilator --lint-only: {'no errors' if ok else 'ERRORS'}, {n_warn} warnings")
        if not ok:
            raise typer.Exit(1)


@writes("json_path", dirs=("out",))
def sim(model: ModelArg, frames: FramesOpt = 4, seed: SeedOpt = 0, pes: PesOpt = None,
        queue_depth: QueueOpt = None, crop: CropOpt = None,
        simulator: Annotated[str, typer.Option("--simulator", help="amaranth or iverilog.")] = "amaranth",
        out: OutOpt = Path("build/rtl/sim"),
        json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the result here.")] = None) -> None:
    """Run the RTL on random frames: y_t equal to the reference model? cycles equal to the cycle model?"""
    from ese.atomic import write_json
    from ese.commands.shared import console
    from ese.report.tables import print_table
    from ese.rtl.check import rtl_check
    from ese.rtl.toy import random_frames

    if simulator not in ("amaranth", "iverilog"):
        raise ConfigError(f"--simulator must be amaranth or iverilog, not {simulator!r}")
    prog = load_program_for_rtl(model, pes, queue_depth, crop)
    res = rtl_check(prog, random_frames(prog.to_qmodel(), frames, seed), simulator=simulator, workdir=out)
    print_table(f"ese rtl sim ({simulator}, {prog.hardware.pes} PEs)", ["frames", "y equal", "RTL cycles",
                "cycle model", "cycles equal"],
                [[res["frames"], res["match"], res["rtl_cycles"], res["model_cycles"], res["cycles_match"]]])
    if json_path:
        write_json(json_path, res)
    if not res["match"] or res["cycles_match"] is False:
        console.print(f"[red]mismatch: {res}[/red]")
        raise typer.Exit(1)


@writes(dirs=("out",), all_or_none=True)
def synth(model: Annotated[Optional[Path], typer.Argument(help="Model whose first layer is cropped for the "
                                                                  "channel (default: the shipped paper model).")] = None,
          crop: Annotated[str, typer.Option("--crop", help="Channel model shape H,P,D.")] = "64,32,32",
          pes: Annotated[str, typer.Option("--pes", help="PE counts of the channel sweep.")] = "4,8,16,32",
          out: OutOpt = Path("build/rtl/synth")) -> None:
    """yosys synth_xilinx: LUT / FF / BRAM / DSP and logic depth of a PE, a lane and channels."""
    from ese.atomic import atomic_open, write_json
    from ese.commands.shared import console
    from ese.compiler.program import compile_qmodel
    from ese.compress.qmodel import load_qmodel
    from ese.config import HardwareConfig
    from ese.rtl.params import rtl_params
    from ese.rtl.synth import markdown_table, synth_report
    from ese.rtl.toy import crop_qmodel

    cut = _crop(crop)
    try:
        counts = tuple(int(v) for v in pes.split(","))
    except ValueError:
        raise ConfigError(f"--pes must be comma-separated integers like 4,8,16,32, not {pes!r}") from None
    src = model or Path(__file__).resolve().parents[3] / "models" / "paper" / "paper-b32-d11-w12a16.qnpz"
    qm = load_program_for_rtl(src).to_qmodel() if model_kind_or_suffix(src) == "image" else load_qmodel(src)
    qm = crop_qmodel(qm, hidden=cut[0], proj=cut[1], input_dim=cut[2] if len(cut) > 2 else None)
    params = {n: rtl_params(compile_qmodel(qm, HardwareConfig(pes=n)), max_frames=16) for n in counts}
    rows = synth_report(params, out)
    result: dict[str, Any] = {"model": str(src), "shape": {"hidden": cut[0], "proj": cut[1], "input_dim": qm.model.input_dim},
                              "family": "xcu", "blocks": rows}
    write_json(out / "synth.json", result)
    with atomic_open(out / "synth.md") as fh:
        fh.write(markdown_table(rows))
    console.print(markdown_table(rows))
    console.print(f"wrote {out / 'synth.json'} and {out / 'synth.md'}")
