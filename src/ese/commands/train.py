"""`ese train`: the float model (`ese eval` and `ese transcribe` are in commands/recognize.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ese.atomic import write_json
from ese.commands.shared import (CacheBesideOutOpt, ConfigOpt, CorpusOpt, JsonOpt, PresetOpt, QuietOpt,
                                 SetOpt, ThreadsOpt, config_from, console, err_console, threads_override)
from ese.distributed import is_main
from ese.outputs import writes
from ese.report.tables import print_table


def register(app: typer.Typer) -> None:
    """Add ``ese train`` to ``app``."""
    app.command("train")(train)


@writes("out", "json_path", dirs=("cache_dir",))
def train(
    corpus: CorpusOpt,
    out: Annotated[Path, typer.Option(help="Checkpoint to write (updated after every epoch).")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run saved in --out.")] = False,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this checkpoint's weights (same model shape) instead of a random initialisation: fine-tuning on a new corpus.")] = None,
    cache_dir: CacheBesideOutOpt = None,
    preset: PresetOpt = "default",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    threads: ThreadsOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Train an LSTMP acoustic model (frame-wise cross-entropy, early stopping on dev)."""
    from ese.data.store import load_split
    from ese.model.train import train_model

    cfg = config_from(preset, config, list(set_ or []) + threads_override(threads))
    if resume and not out.exists():
        err_console.print(f"[yellow]warning:[/] --resume: there is no checkpoint {str(out)!r} yet; "
                          "training from scratch")
    init_weights = None
    if init is not None:
        from ese.model.checkpoint import load_checkpoint

        init_weights = load_checkpoint(init, expect=cfg.model)[0].state_dict()
    cache_dir = cache_dir or out.parent / "features"
    sets = {s: load_split(corpus, s, cfg.features, cache_dir=cache_dir, progress=not quiet) for s in ("train", "dev")}
    result = train_model(cfg, sets["train"], sets["dev"], out, resume=resume, progress=not quiet,
                         extra={"corpus": str(corpus), **({"init": str(init)} if init else {})},
                         init_weights=init_weights)
    rows = [[h["epoch"], h["train_loss"], h["dev_loss"], h["dev_frame_acc"], h["lr"]] for h in result.history]
    print_table(f"training (best epoch {result.best_epoch})", ["epoch", "train loss", "dev loss", "dev acc %", "lr"],
                rows, console)
    if json_path and is_main():  # a data-parallel job's rank 0
        write_json(json_path, {"best_epoch": result.best_epoch, "loss": cfg.train.loss,
                               "threads": result.threads, "history": result.history})
