"""``ese``: the command line. Thin: parse flags into the config, call one stage, print and write JSON."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ese import __version__
from ese.atomic import write_json
# console and err_console are also imported from here by older command modules (commands/prune.py)
from ese.commands.shared import (CacheBesideOutOpt, CacheOpt, ConfigOpt, CorpusOpt, JsonOpt, PresetOpt,  # noqa: F401
                                 QuietOpt, SetOpt, ThreadsOpt, console, err_console, threads_override)
from ese.config import Config
from ese.errors import EseError
from ese.outputs import check_writable, writes
from ese.report.tables import print_table

app = typer.Typer(help="ESE in Python: train, compress, compile and accelerate a sparse LSTM acoustic model.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Corpora: synthesize a TIMIT-layout corpus, inspect one, extract features.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")



def _version(value: bool) -> None:
    if value:
        console.print(f"ese {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """ESE in Python: train, compress, compile and accelerate a sparse LSTM acoustic model."""


def _config(preset: str, config: Optional[Path], overrides: Optional[list[str]]) -> Config:
    return Config.load(config, preset=preset, overrides=overrides or [])


@app.command()
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

    cfg = _config(preset, config, list(set_ or []) + threads_override(threads))
    workdir = workdir or Path("runs") / cfg.preset
    check_writable([json_path], [workdir])
    with work_lock(workdir, "ese run"):
        report = run_pipeline(cfg, workdir, corpus=corpus, resume=not fresh, progress=not quiet,
                              rtl_frames=rtl_frames if rtl else 0, console=Console(stderr=True, log_path=False))
    comp = report["compression"]
    rows = [[split, s["per"], s["frame_acc"], comp["per"][split]["pruned"], comp["per"][split]["quantized"]]
            for split, s in report["per"].items()]
    print_table(f"ese run ({cfg.preset}): phone error rate, dense -> {100 * comp['density']:.0f}% density "
                f"({comp['balance']}) -> {comp['weight_bits']}-bit fixed point",
                ["split", "dense PER %", "frame acc %", "pruned PER %", "fixed-point PER %"], rows, console)
    console.print(f"report: {workdir / 'report.md'}, {workdir / 'report.html'}  ({report['timings']['total_s']:.0f} s)")
    if json_path:
        write_json(json_path, report)


@data_app.command("synth")
@writes("json_path", dirs=("out",))
def data_synth(
    out: Annotated[Path, typer.Argument(help="Directory to write the corpus into (resumes if present).")],
    hours: Annotated[Optional[float], typer.Option(help="Total hours of audio (overrides synth.hours).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (overrides synth.seed).")] = None,
    jobs: Annotated[Optional[int], typer.Option(help="Worker processes, 0 = all cores.")] = None,
    preset: PresetOpt = "default",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Synthesize a corpus in TIMIT layout with festival and espeak-ng (exact phone alignments)."""
    from ese.data.synth import synthesize_corpus

    overrides = list(set_ or [])
    for key, value in (("hours", hours), ("seed", seed), ("jobs", jobs)):
        if value is not None:
            overrides.append(f"synth.{key}={value}")
    cfg = _config(preset, config, overrides)
    summary = synthesize_corpus(out, cfg.synth, progress=not quiet)
    rows = [[split, s["utterances"], s["speakers"], s["hours"]] for split, s in summary["splits"].items()]
    print_table(f"synthetic corpus {out}", ["split", "utterances", "speakers", "hours"], rows, console)
    if json_path:
        write_json(json_path, summary)


@data_app.command("info")
@writes("json_path")
def data_info(
    corpus: Annotated[Path, typer.Argument(help="Corpus root in TIMIT layout.")],
    json_path: JsonOpt = None,
) -> None:
    """Count utterances, speakers and audio per split of a TIMIT-layout corpus."""
    import soundfile as sf

    from ese.data.timit import SPLITS, split_records

    info = {}
    for split in SPLITS:
        recs = split_records(corpus, split)
        seconds = sum(sf.info(str(r.wav)).duration for r in recs)
        info[split] = {"utterances": len(recs), "speakers": len({r.speaker for r in recs}), "hours": seconds / 3600}
    print_table(f"corpus {corpus}", ["split", "utterances", "speakers", "hours"],
                [[s, v["utterances"], v["speakers"], v["hours"]] for s, v in info.items()], console)
    if json_path:
        write_json(json_path, info)


@data_app.command("features")
@writes("json_path", dirs=("cache_dir",))
def data_features(
    corpus: CorpusOpt,
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "train",
    cache_dir: CacheOpt = None,
    preset: PresetOpt = "default",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Extract (or load cached) features of one split and print their statistics."""
    from ese.data.store import load_split

    cfg = _config(preset, config, set_)
    t0 = time.perf_counter()
    fset = load_split(corpus, split, cfg.features, cache_dir=cache_dir, progress=not quiet)
    seconds = time.perf_counter() - t0
    stats = {"split": split, "utterances": len(fset), "frames": fset.num_frames, "dim": fset.feature_dim,
             "seconds": seconds, "real_time_factor": seconds / max(fset.num_frames * cfg.features.frame_shift_ms / 1000, 1e-9)}
    print_table("features", ["key", "value"], [[k, v] for k, v in stats.items()], console)
    if json_path:
        write_json(json_path, stats)


@app.command()
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

    cfg = _config(preset, config, list(set_ or []) + threads_override(threads))
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
    if json_path:
        write_json(json_path, {"best_epoch": result.best_epoch, "history": result.history})


@app.command("eval")
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


@app.command()
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


# each stage's commands live in ese/commands/<stage>.py with a register(app); a stage whose
# module is absent (not yet built) is skipped
import importlib  # noqa: E402

for _name in ("prune", "quantize", "compile", "simulate", "bench", "rtl", "interop", "report"):
    try:
        _stage = importlib.import_module(f"ese.commands.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"ese.commands.{_name}":
            raise
        continue
    _stage.register(app)


def main() -> None:
    """Entry point: project errors become one red line and a non-zero exit code.

    A write that fails outside ``ese.atomic`` (a full or read-only disk under a tool's output
    directory) is reported the same way, naming the file and the cause.
    """
    from ese.atomic import WRITE_ERRNOS, describe_write_error

    _log_warnings()
    try:
        app()
    except EseError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS or not exc.filename:
            raise
        err_console.print(f"[bold red]error:[/] {describe_write_error(exc.filename, exc)}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted; re-run the same command to resume")
        sys.exit(130)


def _log_warnings() -> None:
    """Warnings logged by ese's modules reach the user as one plain line each."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.getLogger("ese").addHandler(handler)


if __name__ == "__main__":
    main()
