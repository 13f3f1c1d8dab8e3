"""`ese` commands of the quantize stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ese.outputs import writes


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("quantize")(quantize)


@writes("out", "json_path", dirs=("cache_dir",))
def quantize(
    checkpoint: Annotated[Path, typer.Argument(help="A float checkpoint (dense or pruned).")],
    corpus: Annotated[Path, typer.Option("--corpus", help="Corpus root in TIMIT layout (train calibrates; dev and test are scored).")],
    out: Annotated[Path, typer.Option("--out", help="Fixed-point model file to write (.qnpz).")] = Path("model.qnpz"),
    weight_bits: Annotated[Optional[int], typer.Option("--weight-bits", help="Weight width (overrides quant.weight_bits).")] = None,
    act_bits: Annotated[Optional[int], typer.Option("--act-bits", help="Activation width (overrides quant.act_bits).")] = None,
    sweep: Annotated[str, typer.Option("--sweep", help="Comma-separated weight widths to sweep, e.g. 8,10,12,16 ('' for none).")] = "8,10,12,16",
    cache_dir: Annotated[Optional[Path], typer.Option(help="Feature cache directory (default: features/ next to --out).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: quant.key=value.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Report JSON (default: --out with .json).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Quantize a checkpoint to dynamic fixed point and report float vs fixed-point PER (docs/fixed-point.md)."""
    from rich.console import Console

    from ese.commands.shared import console
    from ese.compress.fixedpoint import check_quant_config
    from ese.stages.quantize import quantize_and_report
    from ese.config import Config
    from ese.data.store import load_split
    from ese.errors import ConfigError
    from ese.model.checkpoint import read_checkpoint
    from ese.report.tables import print_table

    try:
        widths = [int(w) for w in sweep.split(",") if w.strip()]
    except ValueError:
        raise ConfigError(f"--sweep must be comma-separated integers like 8,10,12,16, not {sweep!r}") from None
    # the checkpoint's own config (features, train delay), then the quant flags
    data = dict(read_checkpoint(checkpoint).get("config") or {})
    overrides = list(set_ or [])
    for key, value in (("weight_bits", weight_bits), ("act_bits", act_bits)):
        if value is not None:
            overrides.append(f"quant.{key}={value}")
    cfg = Config.from_saved(data, overrides)
    check_quant_config(cfg.quant)  # before minutes of feature loading
    cache_dir = cache_dir or out.parent / "features"
    sets = {s: load_split(corpus, s, cfg.features, cache_dir=cache_dir, progress=not quiet)
            for s in ("train", "dev", "test")}
    report = quantize_and_report(checkpoint, cfg, sets, out, progress=not quiet, sweep=widths,
                                 json_path=json_path, console=None if quiet else Console(stderr=True, log_path=False))
    splits = list(report["per_float"])
    print_table(f"float vs fixed point ({report['weight_bits']}-bit weights, {report['act_bits']}-bit activations)",
                ["split", "PER float %", "PER fixed %", "delta"],
                [[s, report["per_float"][s], report["per_quantized"][s],
                  report["per_quantized"][s] - report["per_float"][s]] for s in splits], console)
    if report["sweep"]:
        print_table("weight-width sweep", ["weight bits", *[f"PER {s} %" for s in splits]],
                    [[r["weight_bits"], *[r[f"per_{s}"] for s in splits]] for r in report["sweep"]], console)
    sat = {k: v for k, v in report["saturation"].items() if v}
    mb = report["model_bits"]
    console.print(f"saturation events: {sat or 'none'};  LUT max error: sigmoid {report['lut_error']['sigmoid']:.2e}, "
                  f"tanh {report['lut_error']['tanh']:.2e}")
    console.print(f"model: {mb['lstm_nnz']} non-zeros, {mb['total_bits'] / 8e6:.3f} MB "
                  f"({mb['compression_ratio']:.1f}x vs dense float32)")
    console.print(f"wrote {out}, {report['json']}, {report['plot']}")
