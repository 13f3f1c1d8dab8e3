"""``ese import`` and ``ese export``: models in from and out to PyTorch and ONNX (docs/interop.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ese.commands.shared import ConfigOpt, JsonOpt, PresetOpt, SetOpt
from ese.outputs import writes


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("import")(import_)
    app.command("export")(export)


@writes("out", "json_path")
def import_(
    src: Annotated[Path, typer.Argument(help="A PyTorch state dict (.pt/.pth) of nn.LSTM (or nn.GRU) + nn.Linear, or an "
                                             "ONNX model (.onnx) of LSTM ops + MatMul/Gemm.")],
    out: Annotated[Path, typer.Option("--out", help="ese checkpoint to write (.pt).")],
    from_: Annotated[str, typer.Option("--from", help="auto (by suffix: .onnx is ONNX), torch or onnx.")] = "auto",
    phones: Annotated[Optional[Path], typer.Option(
        "--phones", help="Text file: the source's output classes in order (48 TIMIT phones, whitespace-"
                         "separated); default: already in ese's order (sorted 48-phone set).")] = None,
    preset: PresetOpt = "default",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    json_path: JsonOpt = None,
) -> None:
    """Import a foreign LSTM acoustic model as an ese checkpoint, checked against the source.

    What the source does not say comes from the config: the feature recipe (default 153-dim
    log-mel + deltas, speaker CMVN), the output delay (train.output_delay, default 3)."""
    from ese.atomic import write_json
    from ese.commands.shared import console
    from ese.config import Config
    from ese.errors import InteropError
    from ese.interop.build import import_model
    from ese.report.tables import print_table

    cfg = Config.load(config, preset=preset, overrides=set_ or [])
    names = None
    if phones is not None:
        try:
            names = phones.read_text(encoding="utf-8").split()
        except (OSError, UnicodeDecodeError) as exc:
            raise InteropError(f"--phones {str(phones)!r} is unreadable: {getattr(exc, 'strerror', None) or exc}") from None
    report = import_model(src, out, cfg, fmt=from_, phones=names)
    m, check = report["model"], report["check"]
    console.print(f"imported {src} ({report['source']['format']})")
    print_table("imported model", ["key", "value"],
                [["cell", m["cell"]], ["layers", m["layers"]], ["input dim", m["input_dim"]], ["cells", m["hidden"]],
                 ["projection", m["proj"] if any(report["source"]["projection"]) else "none (identity)"],
                 ["peepholes", m["peepholes"]], ["classes", m["num_classes"]]], console)
    f = cfg.features
    console.print(f"from the config, not the source (change with --preset/--config/--set): features "
                  f"{f.num_mel_bins} log-mel bins{' + energy' if f.use_energy else ''}, {f.delta_order} delta "
                  f"orders = {f.dim} inputs, {f.cmvn} CMVN; output delay {cfg.train.output_delay} frames; phone "
                  + ("order from --phones" if names else "order: ese's 48 TIMIT classes, sorted (--phones to give yours)"))
    console.print(f"check: max |ese - source| = {check['max_abs_diff']:.2e} on random input "
                  f"({check['batch']} x {check['frames']} frames), tolerance {check['tolerance']:.1e}: equal")
    console.print(f"wrote {out}")
    if json_path:
        write_json(json_path, report)

@writes("out", "json_path")
def export(
    model: Annotated[Path, typer.Argument(help="An ese float checkpoint (dense or pruned).")],
    to: Annotated[str, typer.Option("--to", help="torch (state dict for nn.LSTM(proj_size) + nn.Linear) or onnx.")],
    out: Annotated[Path, typer.Option("--out", help="File to write (.pt or .onnx).")],
    drop_peepholes: Annotated[bool, typer.Option(
        "--drop-peepholes", help="torch: drop non-zero peepholes (nn.LSTM has none); the change is reported.")] = False,
    json_path: JsonOpt = None,
) -> None:
    """Export an ese checkpoint as a PyTorch state dict or an ONNX model (checked after writing)."""
    from ese.atomic import write_json
    from ese.commands.shared import console
    from ese.interop.export import export_model
    report = export_model(model, to, out, drop_peepholes=drop_peepholes)
    for line in report["notes"]:
        console.print(line)
    check = report["check"]
    console.print(f"check: max |export - ese| = {check['max_abs_diff']:.2e} "
                  f"({check['runner']}, lengths {check['lengths']}), tolerance {check['tolerance']:.1e}: equal")
    console.print(f"wrote {out}")
    if json_path:
        write_json(json_path, report)
