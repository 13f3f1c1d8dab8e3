"""`ese compile` and `ese inspect`: fixed-point model -> program image, and what an image holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ese.outputs import writes


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("compile")(compile_)
    app.command("inspect")(inspect)


@writes("out", "json_path", "dot", "gantt", all_or_none=True)
def compile_(
    model: Annotated[Path, typer.Argument(help="Fixed-point model (.qnpz from ese quantize).")],
    out: Annotated[Path, typer.Option("--out", help="Program image to write (.ese).")] = Path("model.ese"),
    pes: Annotated[Optional[int], typer.Option("--pes", help="PEs per channel (hardware.pes).")] = None,
    index_bits: Annotated[Optional[int], typer.Option("--index-bits", help="Relative row index width (hardware.index_bits).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file with a [hardware] table.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: hardware.key=value.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Report JSON (default: --out with .json).")] = None,
    dot: Annotated[Optional[Path], typer.Option("--dot", help="Also write the schedule's dependency graph (Graphviz).")] = None,
    gantt: Annotated[Optional[Path], typer.Option("--gantt", help="Also write a Gantt chart of two steps (PNG).")] = None,
) -> None:
    """Encode every matrix per PE (relative-indexed sparse columns), schedule one step, write the image."""
    from ese.atomic import atomic_open, write_json
    from ese.commands.shared import err_console
    from ese.config import Config
    from ese.stages.compile import compile_file

    overrides = list(set_ or [])
    for key, value in (("pes", pes), ("index_bits", index_bits)):
        if value is not None:
            overrides.append(f"hardware.{key}={value}")
    hw = Config.load(config, overrides=overrides).hardware
    program, report, warning = compile_file(model, hw, out)
    if warning:
        err_console.print(warning, markup=False, highlight=False)
    report["model"] = str(model)
    write_json(json_path or out.with_suffix(".json"), report)
    if dot is not None:
        with atomic_open(dot, "w") as fh:
            fh.write(program.schedule.to_dot())
    if gantt is not None:
        from ese.report.schedule_plots import schedule_gantt
        schedule_gantt(program.schedule, gantt)
    print_compile_report(report)


@writes("json_path")
def inspect(
    image: Annotated[Path, typer.Argument(help="Program image (.ese).")],
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write header and statistics as JSON.")] = None,
) -> None:
    """Validate an image (checksums, sections, pointers) and print its header and statistics."""
    from ese.atomic import write_json
    from ese.compiler.image import load_image
    from ese.compiler.stats import compile_report

    header, program = load_image(image)  # validates everything (ImageError otherwise)
    report = compile_report(program, header["file_length"])
    report["header"] = header
    report["hardware"] = _asdict(program.hardware)
    report["model_config"] = _asdict(program.model)
    report["quant"] = _asdict(program.quant)
    from ese.report.tables import print_table
    print_table(f"{image} (format version {header['version']}, {header['file_length']} bytes, "
                f"{header['n_sections']} sections, SHA-256 ok)", ["setting", "value"],
                [["model", f"{program.model.layers} layer(s), {program.model.input_dim} -> {program.model.hidden} "
                           f"cells -> {program.model.proj}, {program.model.num_classes} classes"],
                 ["hardware", f"{program.hardware.pes} PEs, {program.hardware.index_bits}-bit index, "
                              f"{program.quant.weight_bits}-bit weights, {program.quant.act_bits}-bit activations"],
                 ["fixed-point spec", str(program.spec_version)]])
    if json_path is not None:
        write_json(json_path, report)
    print_compile_report(report)


def _asdict(obj: Any) -> dict[str, Any]:
    import dataclasses
    return dataclasses.asdict(obj)


def print_compile_report(report: dict[str, Any]) -> None:
    """The tables `ese compile` and `ese inspect` print."""
    from ese.report.tables import print_table

    rows = []
    for name, m in report["matrices"].items():
        n, e = m["nnz_per_pe"], m["entries_per_pe"]
        rows.append([name, f"{m['shape'][0]}x{m['shape'][1]}", m["nnz"], m["padding_entries"],
                     f"{n['min']}-{n['max']}", f"{e['max']}/{e['mean']:.0f}"])
    print_table(f"per matrix over {report['pes']} PEs ({report['index_bits']}+{report['weight_bits']}-bit entries)",
                ["matrix", "shape", "nnz", "padding", "nnz/PE", "entries/PE max/mean"], rows)
    store = report["storage_bits"]
    print_table("stored bits (accelerator)", ["part", "bits", "share"],
                [[k, v, f"{v / report['accelerator_bits']:.1%}"] for k, v in store.items() if k != "output_layer"]
                + [["total", report["accelerator_bits"], "100%"],
                   ["bits per non-zero (all included)", report["bits_per_nonzero"], ""],
                   ["dense fp32 bits", report["dense_float_bits"], ""],
                   ["compression ratio vs dense fp32", f"{report['compression_ratio']:.2f}x", ""]])
    cp = report["schedule"]["critical_path"]
    print_table("schedule (one step, estimated cycles)", ["op", "depends on", "est. cycles"],
                [[o["name"], ", ".join(f"{d['op']}{'(t-1)' if d['step_offset'] else ''}" for d in o["deps"]) or "-",
                  o["est_cycles"]] for o in report["schedule"]["ops"]]
                + [["critical path", " -> ".join(cp["ops"]), cp["est_cycles"]]])
