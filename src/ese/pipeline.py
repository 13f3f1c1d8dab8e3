"""``ese run``: the whole flow on one work directory, each stage resumable.

synth corpus -> features -> train -> eval -> report. Later issues append their stages here
(prune, quantize, compile, simulate). Every stage skips work whose output already exists, so
re-running after an interruption continues where it stopped.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from ese import __version__
from ese.atomic import atomic_open, write_json
from ese.config import Config
from ese.data.store import load_split
from ese.report.plots import learning_curve
from ese.report.tables import markdown_table

REPORT_VERSION = 1


@dataclass
class RunPaths:
    workdir: Path
    corpus: Path
    features: Path = field(init=False)
    checkpoint: Path = field(init=False)
    report_json: Path = field(init=False)
    report_md: Path = field(init=False)
    curve_png: Path = field(init=False)

    def __post_init__(self) -> None:
        self.features = self.workdir / "features"
        self.checkpoint = self.workdir / "model.pt"
        self.report_json = self.workdir / "report.json"
        self.report_md = self.workdir / "report.md"
        self.curve_png = self.workdir / "learning_curve.png"


def run(cfg: Config, workdir: str | Path, *, corpus: str | Path | None = None, resume: bool = True,
        progress: bool = True, console: Console | None = None) -> dict[str, Any]:
    """Run every stage and return the report (also written as JSON and Markdown in ``workdir``)."""
    from ese.model.decode import evaluate
    from ese.model.train import train_model

    console = console or Console(stderr=True)
    workdir = Path(workdir)
    paths = RunPaths(workdir, Path(corpus) if corpus else workdir / "corpus")
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    synth_summary = None
    if corpus is None:
        from ese.data.synth import synthesize_corpus

        console.log(f"[bold]1/4 synthesize corpus[/] -> {paths.corpus}")
        t0 = time.perf_counter()
        synth_summary = synthesize_corpus(paths.corpus, cfg.synth, progress=progress)
        timings["synth_s"] = time.perf_counter() - t0

    console.log("[bold]2/4 features[/]")
    t0 = time.perf_counter()
    sets = {s: load_split(paths.corpus, s, cfg.features, cache_dir=paths.features, progress=progress)
            for s in ("train", "dev", "test")}
    timings["features_s"] = time.perf_counter() - t0

    console.log(f"[bold]3/4 train[/] {cfg.model} on {sets['train'].num_frames} frames")
    t0 = time.perf_counter()
    result = train_model(cfg, sets["train"], sets["dev"], paths.checkpoint, resume=resume, progress=progress,
                         extra={"corpus": str(paths.corpus)})
    timings["train_s"] = time.perf_counter() - t0

    console.log("[bold]4/4 evaluate[/]")
    t0 = time.perf_counter()
    scores = {s: evaluate(result.model, sets[s], cfg.train.output_delay) for s in ("dev", "test")}
    timings["eval_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_all

    report = {
        "report_version": REPORT_VERSION,
        "ese_version": __version__,
        "preset": cfg.preset,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "config": cfg.to_dict(),
        "corpus": {"path": str(paths.corpus), "synth": synth_summary,
                   "splits": {s: {"utterances": len(f), "frames": f.num_frames} for s, f in sets.items()}},
        "checkpoint": str(paths.checkpoint),
        "training": {"best_epoch": result.best_epoch, "history": result.history},
        "per": scores,
        "timings": timings,
    }
    write_report(report, paths)
    return report


def write_report(report: dict[str, Any], paths: RunPaths) -> None:
    write_json(paths.report_json, report)
    learning_curve(report["training"]["history"], paths.curve_png, title=f"ese run ({report['preset']})")
    with atomic_open(paths.report_md, "w", encoding="utf-8") as fh:
        fh.write(render_markdown(report, paths))


def render_markdown(report: dict[str, Any], paths: RunPaths) -> str:
    per = report["per"]
    rows = [[split, s["per"], s["sub"], s["del"], s["ins"], s["n_ref"], s["frame_acc"]]
            for split, s in per.items()]
    splits = report["corpus"]["splits"]
    corpus_rows = [[s, v["utterances"], v["frames"], v["frames"] / 100 / 60] for s, v in splits.items()]
    timing_rows = [[k, v] for k, v in report["timings"].items()]
    return "\n\n".join([
        f"# ese run — preset `{report['preset']}`",
        f"ese {report['ese_version']}, {report['machine']['platform']}",
        "## Phone error rate (39 classes, silence dropped)",
        markdown_table(["split", "PER %", "sub", "del", "ins", "ref phones", "frame acc %"], rows),
        "## Corpus",
        markdown_table(["split", "utterances", "frames", "minutes"], corpus_rows),
        "## Training",
        f"best epoch {report['training']['best_epoch']}; checkpoint `{report['checkpoint']}`",
        f"![learning curve]({paths.curve_png.name})",
        "## Wall time (s)",
        markdown_table(["stage", "seconds"], timing_rows),
    ]) + "\n"
