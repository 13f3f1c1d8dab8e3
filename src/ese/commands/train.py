"""`ese train`, `ese eval`, `ese transcribe`: the float model, its scores and its transcripts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ese.atomic import write_json
from ese.commands.shared import (CacheBesideOutOpt, CacheOpt, ConfigOpt, CorpusOpt, JsonOpt, PresetOpt, QuietOpt,
                                 SetOpt, ThreadsOpt, config_from, console, err_console, threads_override)
from ese.distributed import is_main
from ese.outputs import writes
from ese.report.tables import print_table


def register(app: typer.Typer) -> None:
    """Add ``ese train``, ``ese eval`` and ``ese transcribe`` to ``app``."""
    app.command("train")(train)
    app.command("eval")(eval_)
    app.command("transcribe")(transcribe)


@writes("out", "json_path", dirs=("cache_dir",))
def train(
    corpus: CorpusOpt,
    out: Annotated[Path, typer.Option(help="Checkpoint to write (updated after every epoch).")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run saved in --out.")] = False,
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
    cache_dir = cache_dir or out.parent / "features"
    sets = {s: load_split(corpus, s, cfg.features, cache_dir=cache_dir, progress=not quiet) for s in ("train", "dev")}
    result = train_model(cfg, sets["train"], sets["dev"], out, resume=resume, progress=not quiet,
                         extra={"corpus": str(corpus)})
    rows = [[h["epoch"], h["train_loss"], h["dev_loss"], h["dev_frame_acc"], h["lr"]] for h in result.history]
    print_table(f"training (best epoch {result.best_epoch})", ["epoch", "train loss", "dev loss", "dev acc %", "lr"],
                rows, console)
    if json_path and is_main():  # a data-parallel job's rank 0
        write_json(json_path, {"best_epoch": result.best_epoch, "history": result.history})


@writes("json_path", dirs=("cache_dir",))
def eval_(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by ese train / ese run.")],
    corpus: CorpusOpt,
    split: Annotated[list[str], typer.Option(help="Splits to score (repeatable).")] = ["dev", "test"],
    cache_dir: CacheOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
    engine: Annotated[str, typer.Option(help="torch, or ese-cpu (the numba CPU engine, ese.runtime).")] = "torch",
    qmodel: Annotated[Optional[Path], typer.Option(help="ese-cpu: run this fixed-point model (.qnpz) bit-exactly instead of the checkpoint's float weights.")] = None,
) -> None:
    """Phone error rate (39 classes) and frame accuracy of a checkpoint on corpus splits."""
    from ese.data.store import load_split
    from ese.model.checkpoint import checkpoint_config, load_checkpoint
    from ese.model.decode import evaluate
    from ese.runtime.decode import engine_runner

    model, meta = load_checkpoint(checkpoint)
    cfg = checkpoint_config(meta)
    run = engine_runner(engine, qmodel, model, cfg.train.output_delay)
    scores = {}
    for s in split:
        fset = load_split(corpus, s, cfg.features, cache_dir=cache_dir, progress=not quiet)
        scores[s] = evaluate(model, fset, cfg.train.output_delay) if run is None else run[0](fset)
    rows = [[s, v["per"], v["sub"], v["del"], v["ins"], v["n_ref"], v["frame_acc"]] for s, v in scores.items()]
    print_table(f"{checkpoint} ({engine})", ["split", "PER %", "sub", "del", "ins", "ref phones", "frame acc %"], rows, console)
    if json_path:
        write_json(json_path, {"checkpoint": str(checkpoint), "engine": engine, "per": scores})


@writes("json_path")
def transcribe(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by ese train / ese run.")],
    audio: Annotated[list[Path], typer.Argument(help="16 kHz mono WAV or NIST SPHERE files.")],
    json_path: JsonOpt = None,
    engine: Annotated[str, typer.Option(help="torch, or ese-cpu (the numba CPU engine, ese.runtime).")] = "torch",
    qmodel: Annotated[Optional[Path], typer.Option(help="ese-cpu: run this fixed-point model (.qnpz) bit-exactly instead of the checkpoint's float weights.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Print the recognised phone string (39-set) of each audio file (CMVN over the file itself).

    Audio shorter than one analysis window (25 ms) is refused, as the corpus reader refuses it."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ese.data import features as F
    from ese.data.store import finish_features
    from ese.data.timit import read_audio
    from ese.model.checkpoint import checkpoint_config, load_checkpoint
    from ese.model.decode import transcribe as decode_phones
    from ese.runtime.decode import engine_runner

    model, meta = load_checkpoint(checkpoint)
    cfg = checkpoint_config(meta)
    run = engine_runner(engine, qmodel, model, cfg.train.output_delay)
    out = {}
    feat_cfg = cfg.features if cfg.features.cmvn == "none" else _replace(cfg.features, cmvn="utterance")
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True,
                  disable=quiet or not err_console.is_terminal) as bar:
        for k, path in enumerate(audio):
            samples = read_audio(path, cfg.features.sample_rate)
            task = bar.add_task(f"transcribing {path} ({k + 1}/{len(audio)}, "
                                f"{len(samples) / cfg.features.sample_rate:.0f} s of audio)")
            static = F.static_features(samples, cfg.features, str(path))
            feats = finish_features([static], [str(path)], feat_cfg)[0]
            phones = decode_phones(model, feats, cfg.train.output_delay) if run is None else run[1](feats)
            out[str(path)] = " ".join(phones)
            bar.remove_task(task)
            console.print(f"{path}: {out[str(path)]}")
    if json_path:
        write_json(json_path, out)


def _replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)
