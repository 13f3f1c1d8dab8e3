"""`ese data synth|convert|info|features`: corpora and their features."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ese.atomic import write_json
from ese.commands.shared import (CacheOpt, ConfigOpt, CorpusOpt, JsonOpt, PresetOpt, QuietOpt, SetOpt, config_from,
                                 console)
from ese.outputs import writes
from ese.report.tables import print_table

data_app = typer.Typer(help="Corpora: synthesize a TIMIT-layout corpus, convert it, inspect one, extract features.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``ese data`` group to ``app``."""
    app.add_typer(data_app, name="data")


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
    """Synthesize a corpus in TIMIT layout with festival, espeak-ng and flite (exact phone alignments)."""
    from ese.data.synth import synthesize_corpus

    overrides = list(set_ or [])
    for key, value in (("hours", hours), ("seed", seed), ("jobs", jobs)):
        if value is not None:
            overrides.append(f"synth.{key}={value}")
    cfg = config_from(preset, config, overrides)
    summary = synthesize_corpus(out, cfg.synth, progress=not quiet)
    rows = [[split, s["utterances"], s["speakers"], s["hours"]] for split, s in summary["splits"].items()]
    print_table(f"synthetic corpus {out}", ["split", "utterances", "speakers", "hours"], rows, console)
    if json_path:
        write_json(json_path, summary)


@data_app.command("convert")
@writes("json_path", dirs=("out",))
def data_convert(
    src: Annotated[Path, typer.Argument(help="A TIMIT-layout corpus with .TXT word transcripts (ese data synth's).")],
    out: Annotated[Path, typer.Argument(help="Directory to write the converted corpus into.")],
    layout: Annotated[str, typer.Option(help="librispeech (SPEAKER/CHAPTER/*.flac + *.trans.txt) or manifest (<split>.tsv).")] = "librispeech",
    json_path: JsonOpt = None,
) -> None:
    """Write a TIMIT-layout corpus in LibriSpeech or manifest layout with word transcripts only
    (no phone alignments): what a CTC model trains on."""
    from ese.data.export import write_layout

    summary = write_layout(src, out, layout)
    print_table(f"{layout} corpus {out}", ["split", "utterances", "speakers"],
                [[s, v["utterances"], v["speakers"]] for s, v in summary.items()], console)
    if json_path:
        write_json(json_path, {"layout": layout, "splits": summary})


@data_app.command("info")
@writes("json_path")
def data_info(
    corpus: Annotated[Path, typer.Argument(help="Corpus root: TIMIT, LibriSpeech or manifest layout.")],
    json_path: JsonOpt = None,
) -> None:
    """Count utterances, speakers and audio per split; for word-transcript corpora (LibriSpeech,
    manifest) also the words missing from the pronunciation dictionary and the utterances they cost."""
    import soundfile as sf

    from ese.data.corpora import corpus_layout, split_records
    from ese.data.store import pronounce_records
    from ese.data.timit import SPLITS, load_split_speakers

    layout = corpus_layout(corpus)
    lists = (load_split_speakers(corpus) or {}) if layout == "timit" else {}
    info = {}
    for split in (*SPLITS, *(["proxy"] if lists.get("proxy") else [])):
        recs = split_records(corpus, split)
        seconds = sum(sf.info(str(r.wav)).duration for r in recs)
        _, _, oov, skipped = pronounce_records(recs, split, refuse_empty=False)
        info[split] = {"utterances": len(recs), "speakers": len({r.speaker for r in recs}), "hours": seconds / 3600,
                       "layout": layout, "oov_utterances": len(skipped),
                       "oov_words": sorted(oov, key=lambda w: (-oov[w], w))}
    print_table(f"corpus {corpus} ({layout} layout)",
                ["split", "utterances", "speakers", "hours", "OOV utterances", "OOV words"],
                [[s, v["utterances"], v["speakers"], v["hours"], v["oov_utterances"], len(v["oov_words"])]
                 for s, v in info.items()], console)
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

    cfg = config_from(preset, config, set_)
    t0 = time.perf_counter()
    fset = load_split(corpus, split, cfg.features, cache_dir=cache_dir, progress=not quiet)
    seconds = time.perf_counter() - t0
    stats = {"split": split, "utterances": len(fset), "frames": fset.num_frames, "dim": fset.feature_dim,
             "seconds": seconds, "real_time_factor": seconds / max(fset.num_frames * cfg.features.frame_shift_ms / 1000, 1e-9)}
    print_table("features", ["key", "value"], [[k, v] for k, v in stats.items()], console)
    if json_path:
        write_json(json_path, stats)
