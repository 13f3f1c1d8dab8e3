"""`ese transcribe`, `ese eval` and `ese complete`: any model file ese writes, on the engine that runs it."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ese.commands.shared import CacheOpt, CorpusOpt, JsonOpt, QuietOpt, console, err_console
from ese.outputs import writes

ModelArg = Annotated[Path, typer.Argument(help="A model file: checkpoint (.pt), fixed-point model (.qnpz) or "
                                               "program image (.ese), told apart by content.")]
EngineOpt = Annotated[Optional[str], typer.Option(
    help="torch (checkpoints) or ese-cpu (the numba CPU engine; bit-exact fixed point for .qnpz/.ese). "
         "Default: torch for a checkpoint, ese-cpu otherwise.")]
SwitchPenaltyOpt = Annotated[Optional[float], typer.Option(
    "--switch-penalty", help="Decoder: nats per change of frame class in the phone-loop Viterbi (0 = frame-wise "
                             "argmax; CTC models decode greedy). Default: 6, chosen on dev (docs/decoding.md).")]
QModelOpt = Annotated[Optional[Path], typer.Option(
    help="Older form: run this .qnpz (or .ese) instead of MODEL on ese-cpu; MODEL then only supplies "
         "what the file lacks (features, normalisation).")]


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.command("transcribe")(transcribe)
    app.command("eval")(eval_)
    app.command("complete")(complete)


def _open(model: Path, qmodel: Optional[Path], engine: Optional[str]):
    """The artefact to run: ``qmodel`` if given (with MODEL's metadata where it lacks any), else MODEL."""
    from ese.artefact import ArtefactError, open_artefact
    if qmodel is None:
        return open_artefact(model)
    if engine not in (None, "ese-cpu"):
        raise ArtefactError("--qmodel runs on the ese-cpu engine only; add --engine ese-cpu")
    art, base = open_artefact(qmodel), open_artefact(model)
    if not art.fixed_point:
        raise ArtefactError(f"--qmodel {qmodel} is {art.what}, not a fixed-point model")
    art.features = art.features or base.features
    art.normalisation = art.normalisation or base.normalisation
    art.phones = art.phones or base.phones
    return art


def _penalty(value: Optional[float]) -> float:
    """--switch-penalty, checked; the decoder's default when not given."""
    from ese.model.phone_loop import SWITCH_PENALTY, check_penalty
    return SWITCH_PENALTY if value is None else check_penalty(value)


@writes("json_path")
def transcribe(
    model: ModelArg,
    audio: Annotated[list[str], typer.Argument(help="16 kHz mono WAV or NIST SPHERE files; with --stream also "
                                                    "raw 16-bit PCM, and - for standard input.")],
    engine: EngineOpt = None,
    stream: Annotated[bool, typer.Option("--stream", help="Read the audio in chunks and print each phone as "
                                                          "soon as it is final; real-time factor on stderr.")] = False,
    chunk_ms: Annotated[float, typer.Option("--chunk-ms", help="--stream: audio per chunk, in milliseconds.")] = 100.0,
    threads: Annotated[int, typer.Option(help="ese-cpu threads (0: chosen from the machine's load, docs/threads.md).")] = 0,
    qmodel: QModelOpt = None,
    switch_penalty: SwitchPenaltyOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Print the recognised phones (39-set) of each audio file.

    Features are normalised as the model file says (its training-set statistics, adapted over the
    stream: docs/api.md), the same with and without --stream. Audio shorter than one analysis
    window (25 ms) is refused."""
    from ese.api import Recognizer
    from ese.atomic import write_json
    from ese.errors import EseError

    art = _open(model, qmodel, engine)
    rec = Recognizer(art, engine, threads, _penalty(switch_penalty))
    if not stream and "-" in audio:
        raise EseError("standard input (-) is read with --stream only")
    if chunk_ms <= 0:
        raise EseError(f"--chunk-ms must be > 0, not {chunk_ms!r}")
    out: dict[str, str] = {}
    totals = {"audio_s": 0.0, "compute_s": 0.0}
    for name in audio:
        if stream:
            phones = _stream_one(rec, name, chunk_ms, totals)
        else:
            t0 = time.perf_counter()
            phones = rec.transcribe(Path(name))
            totals["compute_s"] += time.perf_counter() - t0
            console.print(f"{name}: {' '.join(phones)}", highlight=False, soft_wrap=True)
        out[name] = " ".join(phones)
    if stream:
        rtf = totals["compute_s"] / totals["audio_s"] if totals["audio_s"] else float("nan")
        err_console.print(f"real-time factor {rtf:.3f} ({totals['compute_s']:.2f} s for "
                          f"{totals['audio_s']:.2f} s of audio, {rec.engine})", highlight=False)
    if json_path:
        write_json(json_path, out)


def _stream_one(rec, name: str, chunk_ms: float, totals: dict[str, float]) -> list[str]:
    """Feed ``name`` (or stdin for -) chunk by chunk, printing phones to stdout as they come."""
    from ese.data.pcm_stream import pcm_chunks
    from ese.errors import AudioError

    label = "standard input" if name == "-" else name
    chunk = max(1, int(round(rec.sample_rate * chunk_ms / 1000)))
    s = rec.stream(label)
    first = True

    def emit(phones: list[str]) -> None:
        nonlocal first
        for p in phones:
            sys.stdout.write(p if first else " " + p)
            first = False
        if phones:
            sys.stdout.flush()

    if name == "-":
        fh, close = sys.stdin.buffer, False
    else:
        path = Path(name)
        if not path.is_file():
            raise AudioError(f"{name}: " + ("is a directory, not an audio file" if path.is_dir() else "no such file"))
        fh, close = open(path, "rb"), True
    try:
        for samples in pcm_chunks(fh, rec.sample_rate, chunk, label):
            emit(s.feed(samples))
        emit(s.finish())
    finally:
        if close:
            fh.close()
    sys.stdout.write("\n")
    sys.stdout.flush()
    totals["audio_s"] += s.audio_seconds
    totals["compute_s"] += s.seconds
    return s.phones


@writes("json_path", dirs=("cache_dir",))
def eval_(
    model: ModelArg,
    corpus: CorpusOpt,
    split: Annotated[Optional[list[str]], typer.Option(help="Splits to score (repeatable; default dev, test and, when the corpus has one, proxy).")] = None,
    cache_dir: CacheOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
    engine: EngineOpt = None,
    qmodel: QModelOpt = None,
    switch_penalty: SwitchPenaltyOpt = None,
) -> None:
    """Phone error rate (39 classes) and frame accuracy of a model on corpus splits (phone-loop
    Viterbi decoding; a CTC model decodes CTC-greedy).

    Features are computed as in training (the model's feature configuration and CMVN mode, per
    speaker), so the figures compare with ese train / prune / quantize."""
    from ese.artefact import ArtefactError
    from ese.data.store import load_split
    from ese.model.decode import evaluate
    from ese.report.tables import print_table
    from ese.runtime.decode import evaluate_engine
    from ese.runtime.engine import Engine
    from ese.atomic import write_json

    switch_penalty = _penalty(switch_penalty)
    art = _open(model, qmodel, engine)
    engine = art.check_engine(engine)
    if art.features is None:
        raise ArtefactError(f"{art.path} ({art.what}) lacks the feature configuration that scoring needs; make a "
                            f"complete copy with ese complete {art.path} --from SOURCE.pt --out COMPLETE"
                            f"{art.path.suffix}")
    if art.fixed_point:
        eng = Engine.from_qmodel(art.qmodel, "fixed")
    elif engine == "ese-cpu":
        eng = Engine.from_model(art.model, art.output_delay)
    else:
        eng = None
    if not split:
        from ese.pipeline import has_proxy

        split = ["dev", "test"] + (["proxy"] if has_proxy(corpus) else [])
    scores = {}
    for s in split:
        fset = load_split(corpus, s, art.features, cache_dir=cache_dir, progress=not quiet)
        scores[s] = (evaluate(art.model, fset, art.output_delay, switch_penalty=switch_penalty) if eng is None
                     else evaluate_engine(eng, fset, switch_penalty=switch_penalty))
    rows = [[s, v["per"], v["sub"], v["del"], v["ins"], v["n_ref"], v["frame_acc"]] for s, v in scores.items()]
    print_table(f"{art.path} ({engine})", ["split", "PER %", "sub", "del", "ins", "ref phones", "frame acc %"],
                rows, console)
    if json_path:
        from ese.data.phones import output_kind
        decoder = output_kind(eng.num_classes if eng is not None else art.model.cfg.num_classes)
        write_json(json_path, {"checkpoint": str(model), "model": str(art.path), "kind": art.kind,
                               "engine": engine, "decoder": decoder,
                               "switch_penalty": 0.0 if decoder == "ctc" else switch_penalty, "per": scores})


@writes("out", "json_path", dirs=("cache_dir",))
def complete(
    model: ModelArg,
    out: Annotated[Path, typer.Option("--out", help="The complete copy to write (same kind as MODEL).")],
    source: Annotated[Optional[Path], typer.Option("--from", help="A model file of the same network that carries "
                                                                  "what MODEL lacks (the checkpoint it was made from).")] = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Measure missing normalisation statistics on "
                                                                    "this corpus's train split.")] = None,
    cache_dir: CacheOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write a copy of MODEL that carries everything inference needs (features, normalisation,
    phones); its weights are checked bit-identical to MODEL's."""
    from ese.atomic import write_json
    from ese.complete import complete_artefact

    report = complete_artefact(model, out, source=source, corpus=corpus, cache_dir=cache_dir, progress=not quiet)
    filled = ", ".join(f"{k} from {v}" for k, v in report["filled"].items()) or "nothing (it was complete)"
    console.print(f"{out}: {report['summary']['what']}, filled {filled}; weights bit-identical", highlight=False,
                  soft_wrap=True)
    if json_path:
        write_json(json_path, report)
