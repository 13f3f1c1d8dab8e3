"""``ese run``: the whole flow on one work directory, each stage resumable.

synth corpus -> features -> train -> eval -> prune -> quantize -> report. Later issues append
their stages here (compile, simulate). Every stage skips work whose output already exists, so
re-running after an interruption continues where it stopped.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ese import __version__
from ese.atomic import atomic_open, write_json
from ese.config import Config
from ese.data.store import load_split
from ese.model.phone_loop import SWITCH_PENALTY
from ese.report.plots import learning_curve
from ese.report.tables import markdown_table
from ese.run_report import write_html_report

REPORT_VERSION = 1


@dataclass(frozen=True)
class RunPaths:
    """Where each artefact of a run lives inside its work directory."""

    workdir: Path
    corpus: Path

    features = property(lambda self: self.workdir / "features")
    checkpoint = property(lambda self: self.workdir / "model.pt")
    pruned = property(lambda self: self.workdir / "pruned.pt")
    qmodel = property(lambda self: self.workdir / "model.qnpz")
    image = property(lambda self: self.workdir / "model.ese")
    report_json = property(lambda self: self.workdir / "report.json")
    report_md = property(lambda self: self.workdir / "report.md")
    report_html = property(lambda self: self.workdir / "report.html")
    curve_png = property(lambda self: self.workdir / "learning_curve.png")


def run(cfg: Config, workdir: str | Path, *, corpus: str | Path | None = None, resume: bool = True,
        progress: bool = True, console: Console | None = None, rtl_frames: int = 0) -> dict[str, Any] | None:
    """Run every stage and return the report (also written as JSON and Markdown in ``workdir``).

    Under ``torchrun`` (:mod:`ese.distributed`) every rank trains and retrains (data parallel);
    rank 0 alone synthesizes, extracts the feature cache first, scores, quantizes, compiles,
    simulates and writes the report; the other ranks return None after the pruning stage.

    ``rtl_frames > 0`` adds the RTL check: the Amaranth design of the compiled program simulated
    on that many frames of the first test utterance, against the reference and cycle models.
    """
    from ese.stages.quantize import quantize_and_report
    from ese.stages.prune import prune_checkpoint
    from ese.model.decode import evaluate
    from ese.model.train import train_model

    from ese import distributed

    main = distributed.is_main()
    console = console or Console(stderr=True, log_path=False)
    if not main:
        console, progress = Console(stderr=True, log_path=False, quiet=True), False
    workdir = Path(workdir)
    paths = RunPaths(workdir, Path(corpus) if corpus else workdir / "corpus")
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    synth_summary = None
    if corpus is None and main:
        from ese.data.synth import synthesize_corpus

        console.log(f"[bold]1/8 synthesize corpus[/] -> {paths.corpus}")
        t0 = time.perf_counter()
        synth_summary = synthesize_corpus(paths.corpus, cfg.synth, progress=progress)
        timings["synth_s"] = time.perf_counter() - t0

    distributed.wait_for_main("the corpus")
    console.log("[bold]2/8 features[/]")
    t0 = time.perf_counter()
    if not main:  # rank 0 fills the feature cache; the others read it
        distributed.wait_for_main("the feature cache")
    sets = {s: load_split(paths.corpus, s, cfg.features, cache_dir=paths.features, progress=progress)
            for s in ("train", "dev", "test")}
    if main:
        distributed.wait_for_main("the feature cache")
    timings["features_s"] = time.perf_counter() - t0

    console.log(f"[bold]3/8 train[/] {cfg.model} on {sets['train'].num_frames} frames")
    t0 = time.perf_counter()
    result = train_model(cfg, sets["train"], sets["dev"], paths.checkpoint, resume=resume, progress=progress,
                         extra={"corpus": str(paths.corpus)})
    timings["train_s"] = time.perf_counter() - t0

    console.log("[bold]4/8 evaluate[/]")
    t0 = time.perf_counter()
    scores = ({s: evaluate(result.model, sets[s], cfg.train.output_delay) for s in ("dev", "test")}
              if main else {})
    timings["eval_s"] = time.perf_counter() - t0
    distributed.wait_for_main("scoring the dense model")

    console.log(f"[bold]5/8 prune[/] to density {cfg.prune.density} ({cfg.prune.balance})")
    t0 = time.perf_counter()
    pruned = prune_checkpoint(paths.checkpoint, cfg, sets, paths.pruned, resume=resume, progress=progress,
                              say=console.log if progress else None)
    timings["prune_s"] = time.perf_counter() - t0
    if not main:
        return None

    console.log(f"[bold]6/8 quantize[/] {cfg.quant.weight_bits}-bit weights, {cfg.quant.act_bits}-bit activations")
    t0 = time.perf_counter()
    quantized = quantize_and_report(paths.pruned, cfg, sets, paths.qmodel, progress=progress,
                                    console=console if progress else None)
    timings["quantize_s"] = time.perf_counter() - t0

    console.log(f"[bold]7/8 compile[/] for {cfg.hardware.pes} PEs, {cfg.hardware.index_bits}-bit relative indices")
    t0 = time.perf_counter()
    from ese.stages.compile import compile_file
    program, compiled, warning = compile_file(paths.qmodel, cfg.hardware, paths.image)
    timings["compile_s"] = time.perf_counter() - t0
    if warning:
        console.log(warning, markup=False)

    proxy = None
    if has_proxy(paths.corpus):
        console.log("[bold]+ proxy[/] held-out synthesiser, reverberated and noisy: dense, pruned, fixed point")
        t0 = time.perf_counter()
        proxy = proxy_stage(paths, cfg, result.model, progress)
        timings["proxy_s"] = time.perf_counter() - t0

    console.log(f"[bold]8/8 simulate[/] cycle model, {cfg.hardware.pes} PEs at {cfg.hardware.clock_mhz:g} MHz")
    t0 = time.perf_counter()
    from ese.stages.simulate import simulate_summary
    simulated = simulate_summary(program, cfg.hardware)
    timings["simulate_s"] = time.perf_counter() - t0

    rtl = None
    if rtl_frames > 0:
        console.log(f"[bold]+ rtl[/] Amaranth simulation of the design on {rtl_frames} test frame(s)")
        t0 = time.perf_counter()
        rtl = rtl_stage(program, sets["test"], rtl_frames)
        timings["rtl_s"] = time.perf_counter() - t0
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
        "training": {"best_epoch": result.best_epoch, "threads": result.threads,
                     "history": result.history},
        "per": scores,
        "compression": compression_summary(scores, pruned, quantized),
        "proxy": proxy,
        "prune": pruned,
        "quantize": quantized,
        "compile": compiled,
        "simulate": simulated,
        "rtl": rtl,
        "timings": timings,
    }
    write_report(report, paths)
    return report


def has_proxy(corpus: Path) -> bool:
    """Whether the corpus's splits.json has a proxy split (docs/synth-corpus.md)."""
    from ese.data.timit import load_split_speakers

    lists = load_split_speakers(corpus)
    return bool(lists and lists.get("proxy"))


def proxy_stage(paths: RunPaths, cfg: Config, dense: Any, progress: bool) -> dict[str, Any]:
    """PER on the proxy split (a synthesiser and voices never trained on, in rooms, noise and
    channels) of the dense, the pruned and the fixed-point model: the transfer estimate."""
    from ese.compress.qmodel import load_qmodel
    from ese.compress.quantize import evaluate_quantized
    from ese.model.checkpoint import load_checkpoint
    from ese.model.decode import evaluate

    pset = load_split(paths.corpus, "proxy", cfg.features, cache_dir=paths.features, progress=progress)
    delay = cfg.train.output_delay
    dense_scores = evaluate(dense, pset, delay)
    pruned_model, _ = load_checkpoint(paths.pruned)
    return {
        "utterances": len(pset),
        "frames": pset.num_frames,
        "dense": dense_scores,
        "per": {"dense": dense_scores["per"], "pruned": evaluate(pruned_model, pset, delay)["per"],
                "quantized": evaluate_quantized(load_qmodel(paths.qmodel), pset)["per"]},
    }


def rtl_stage(program: Any, test: Any, frames: int) -> dict[str, Any]:
    """The RTL on the first ``frames`` frames of the first test utterance (quantized on the host)."""
    from ese.compress.fixedpoint import quantize
    from ese.rtl.check import rtl_check

    x_q = quantize(test.utterances[0].feats[:frames], program.layers[0].formats["x"])  # host side
    result = rtl_check(program, x_q)
    result["frames"] = len(x_q)
    result["utterance"] = test.utterances[0].utt_id
    return result


def compression_summary(dense: dict[str, Any], pruned: dict[str, Any], quantized: dict[str, Any]) -> dict[str, Any]:
    """PER of the dense, pruned and pruned + fixed-point models side by side, and the size."""
    bits = quantized["model_bits"]
    return {
        "density": pruned["density"],
        "balance": pruned["balance"],
        "imbalance_max_over_mean": pruned["imbalance_max_over_mean"],
        "weight_bits": quantized["weight_bits"],
        "act_bits": quantized["act_bits"],
        "index_bits": bits["index_bits"],
        "recipe": pruned.get("method", "ese"),
        "distill": pruned.get("distill", 0.0),
        "per": {
            split: {"dense": dense[split]["per"], "pruned": pruned[f"per_{split}"],
                    "quantized": quantized["per_quantized"][split]}
            for split in ("dev", "test")
        },
        "loss_pp": {split: quantized["per_quantized"][split] - dense[split]["per"]
                    for split in ("dev", "test")},
        "model_bits": bits["total_bits"],
        "dense_float_bits": bits["dense_float_bits"],
        "compression_ratio": bits["compression_ratio"],
        "saturation_events": int(sum(quantized["saturation"].values())),
    }


def write_report(report: dict[str, Any], paths: RunPaths) -> None:
    write_json(paths.report_json, report)
    learning_curve(report["training"]["history"], paths.curve_png, title=f"ese run ({report['preset']})")
    with atomic_open(paths.report_md, "w", encoding="utf-8") as fh:
        fh.write(render_markdown(report, paths))
    write_html_report(paths.workdir, paths.report_html)


def _compile_markdown(compiled: dict[str, Any] | None) -> list[str]:
    if not compiled:
        return []
    rows = [[name, m["nnz"], m["padding_entries"], f"{m['nnz_per_pe']['min']}-{m['nnz_per_pe']['max']}",
             m["entries_per_pe"]["max_over_mean"]] for name, m in compiled["matrices"].items()]
    return [
        f"Compiled for {compiled['pes']} PEs ({compiled['index_bits']}-bit relative index + "
        f"{compiled['weight_bits']}-bit weight entries): {compiled['bits_per_nonzero']:.2f} bits per non-zero "
        f"with padding, pointers, vectors and LUTs counted; **{compiled['compression_ratio']:.2f}x** smaller than "
        f"the dense float32 LSTM in stored bits; {compiled['padding_entries']} padding entries "
        f"({100 * compiled['padding_fraction']:.1f}% of entries). Image `{compiled['image']}`.",
        markdown_table(["matrix", "nnz", "padding", "nnz per PE", "entries max/mean"], rows),
    ]


def _simulate_markdown(sim: dict[str, Any] | None) -> list[str]:
    if not sim:
        return []
    rows = [[term, cycles] for term, cycles in sim["breakdown"].items()]
    return [
        "## Accelerator (cycle model, docs/cycle-model.md)",
        f"{sim['cycles_per_frame']:.1f} cycles per frame (ideal {sim['ideal_cycles_per_frame']:.1f}), "
        f"{sim['latency_us']:.2f} us per frame, utilisation {100 * sim['utilization']:.1f}%, "
        f"{sim['gops_sparse']:.2f} GOPS sparse / {sim['gops_dense_equivalent']:.2f} GOPS dense-equivalent.",
        markdown_table(["term", "cycles per frame"], rows),
    ]


def _rtl_markdown(rtl: dict[str, Any] | None) -> list[str]:
    if not rtl:
        return []
    verdict = "every y_t equal to the integer reference model" if rtl["match"] else \
        f"MISMATCH at (step, index) {rtl['first_mismatch']}"
    return ["## RTL (Amaranth simulation, docs/hardware.md)",
            f"{rtl['frames']} frame(s) of `{rtl['utterance']}`: {verdict}; {rtl['rtl_cycles']} cycles in the RTL "
            f"against {rtl['model_cycles']} in the cycle model "
            f"({'equal' if rtl['cycles_match'] else 'DIFFERENT'}; every broadcast and pop cycle "
            f"{'equal' if rtl.get('columns_match') else 'not equal'})."]


def _prune_steps_heading(pruned: dict[str, Any]) -> str:
    cost = pruned.get("compute") or {}
    spent = (f" ({cost['epochs']} training epochs, {cost['seconds']:.0f} s)"
             if cost.get("epochs") else "")
    if pruned.get("method") == "gradual":
        kd = f", distillation weight {pruned['distill']:g}" if pruned.get("distill") else ""
        return f"Gradual pruning (cubic density ramp inside one training run{kd}){spent}:"
    return f"Pruning steps (each followed by masked retraining){spent}:"


def render_markdown(report: dict[str, Any], paths: RunPaths) -> str:
    per = report["per"]
    rows = [[split, s["per"], s["sub"], s["del"], s["ins"], s["n_ref"], s["frame_acc"]]
            for split, s in per.items()]
    splits = report["corpus"]["splits"]
    shift_s = report["config"]["features"]["frame_shift_ms"] / 1000
    corpus_rows = [[s, v["utterances"], v["frames"], v["frames"] * shift_s / 60] for s, v in splits.items()]
    timing_rows = [[k, v] for k, v in report["timings"].items()]
    comp = report["compression"]
    comp_rows = [[split, v["dense"], v["pruned"], v["quantized"]] for split, v in comp["per"].items()]
    proxy = report.get("proxy")
    if proxy:
        rows.append(["proxy", *(proxy["dense"][k] for k in ("per", "sub", "del", "ins", "n_ref", "frame_acc"))])
        comp_rows.append(["proxy", proxy["per"]["dense"], proxy["per"]["pruned"], proxy["per"]["quantized"]])
    return "\n\n".join([
        f"# ese run — preset `{report['preset']}`",
        f"ese {report['ese_version']}, {report['machine']['platform']}",
        "## Phone error rate (39 classes, silence dropped)",
        f"Decoded by the phone-loop Viterbi, {SWITCH_PENALTY:g} nats per change of frame class "
        "(docs/decoding.md; `ese eval --switch-penalty 0` gives the frame-wise argmax).",
        *(["proxy: a synthesiser and voices never trained on, reverberated, noisy and band-limited "
           "(docs/synth-corpus.md): the transfer estimate beside the clean test split."] if proxy else []),
        markdown_table(["split", "PER %", "sub", "del", "ins", "ref phones", "frame acc %"], rows),
        "## Compression (ESE.md sections 2-3)",
        f"density {100 * comp['density']:.1f}% ({comp['balance']}, PE max/mean non-zeros "
        f"{comp['imbalance_max_over_mean']:.3f}), {comp['weight_bits']}-bit weights / {comp['act_bits']}-bit "
        f"activations: {comp['model_bits'] / 8e6:.3f} MB against {comp['dense_float_bits'] / 8e6:.3f} MB dense "
        f"float32 ({comp['compression_ratio']:.1f}x, {comp['weight_bits'] + comp['index_bits']} bits per "
        f"non-zero incl. its {comp['index_bits']}-bit index); "
        f"{comp['saturation_events']} saturation events.",
        markdown_table(["split", "dense PER %", "pruned PER %", "pruned + fixed point PER %"], comp_rows),
        *_compile_markdown(report.get("compile")),
        _prune_steps_heading(report["prune"]),
        markdown_table(["density %", "dev PER %", "test PER %", "PE max/mean"],
                       [[100 * st["density"], st["per_dev"], st["per_test"], st["imbalance_max_over_mean"]]
                        for st in report["prune"]["steps"]]),
        *_simulate_markdown(report.get("simulate")),
        *_rtl_markdown(report.get("rtl")),
        "## Corpus",
        markdown_table(["split", "utterances", "frames", "minutes"], corpus_rows),
        "## Training",
        f"best epoch {report['training']['best_epoch']}; checkpoint `{report['checkpoint']}`",
        f"![learning curve]({paths.curve_png.name})",
        "## Wall time (s)",
        markdown_table(["stage", "seconds"], timing_rows),
    ]) + "\n"
