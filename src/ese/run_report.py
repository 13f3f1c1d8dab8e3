"""``report.html`` of a work directory: every stage that ran, its table and its plot, in one file.

Built from what the directory holds: ``report.json`` (``ese run``), the program image
``model.ese`` (per-PE utilisation and the schedule's Gantt chart, recomputed: about a second),
``bench.json`` when ``ese bench --json WORKDIR/bench.json`` was run, and any other PNG found at
the top of the directory. A stage missing from the report is left out; one whose data is
incomplete (an older report) is shown with a note instead of failing the page.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable

from ese.atomic import atomic_open
from ese.errors import EseError
from ese.report.html import Figure, Section, Table, render_html

HTML_NAME = "report.html"


class ReportError(EseError):
    """A work directory has no usable ``report.json``."""


def write_html_report(workdir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``out`` (default ``WORKDIR/report.html``) from the artefacts of ``workdir``."""
    workdir = Path(workdir)
    path = workdir / "report.json"
    if not path.is_file():
        raise ReportError(f"{str(workdir)!r} has no report.json: run `ese run --workdir {workdir}` first")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"{str(path)!r} is not valid JSON ({exc}); re-run ese run to rewrite it") from None
    if not isinstance(report, dict):
        raise ReportError(f"{str(path)!r} is not an ese run report")
    out = Path(out) if out is not None else workdir / HTML_NAME
    with tempfile.TemporaryDirectory(prefix="ese-report-") as tmp:
        sections = build_sections(report, workdir, Path(tmp))
    machine = report.get("machine", {})
    page = render_html(f"ese run — preset {report.get('preset', '?')}",
                       f"ese {report.get('ese_version', '?')}, {machine.get('platform', '')}; "
                       f"work directory {workdir}", sections)
    with atomic_open(out, "w", encoding="utf-8") as fh:
        fh.write(page)
    return out


def build_sections(report: dict[str, Any], workdir: Path, tmp: Path) -> list[Section]:
    """One section per stage present in ``report``; plots drawn into ``tmp`` and inlined."""
    drawn: set[str] = set()
    builders: list[tuple[str, str, Callable[[], Section | None]]] = [
        ("Summary", "summary", lambda: _summary(report)),
        ("Training: learning curve", "training", lambda: _training(report, tmp)),
        ("PER by stage", "per", lambda: _per_by_stage(report, tmp)),
        ("Pruning: PER vs density", "pruning", lambda: _pruning(report, tmp)),
        ("Quantization: weight-width sweep", "quantization", lambda: _quantization(report, tmp, drawn)),
        ("Compiled model", "compile", lambda: _compile(report)),
        ("Cycle model: breakdown, utilisation, schedule", "accelerator", lambda: _accelerator(report, workdir, tmp)),
        ("RTL", "rtl", lambda: _rtl(report)),
        ("Engine speed", "speed", lambda: _speed(report, workdir, tmp)),
    ]
    sections = []
    for title, anchor, build in builders:
        try:
            section = build()
        except (KeyError, TypeError, ValueError, IndexError) as exc:  # an older or partial report
            section = Section(title, anchor, text=[f"This stage's data in report.json is incomplete ({exc!r}); "
                                                   "re-run ese run to redraw it."])
        if section is not None:
            section.title, section.anchor = title, anchor
            sections.append(section)
    others = _other_pngs(workdir, drawn | {"learning_curve.png"})
    if others:
        sections.append(Section("Other figures in the work directory", "other", figures=others))
    return sections


def _png(draw: Callable[..., Any], tmp: Path, name: str, *args: Any, **kwargs: Any) -> bytes:
    path = tmp / name
    draw(*args, path, **kwargs)
    return path.read_bytes()


def _summary(report: dict[str, Any]) -> Section:
    corpus = report.get("corpus", {}).get("splits", {})
    shift = report.get("config", {}).get("features", {}).get("frame_shift_ms", 10.0) / 1000
    tables = [Table(["split", "utterances", "frames", "minutes"],
                    [[s, v["utterances"], v["frames"], v["frames"] * shift / 60] for s, v in corpus.items()])]
    timings = report.get("timings", {})
    if timings:
        tables.append(Table(["stage", "seconds"], [[k, v] for k, v in timings.items()]))
    per = report.get("per", {})
    if per:
        tables.insert(0, Table(["split", "dense PER %", "sub", "del", "ins", "ref phones", "frame acc %"],
                               [[s, v["per"], v["sub"], v["del"], v["ins"], v["n_ref"], v["frame_acc"]]
                                for s, v in per.items()]))
    return Section("", "", text=["Phone error rate on 39 classes (silence dropped); corpus and wall time."],
                   tables=tables)


def _training(report: dict[str, Any], tmp: Path) -> Section | None:
    from ese.report.plots import learning_curve

    training = report.get("training")
    if not training or not training.get("history"):
        return None
    history = training["history"]
    png = _png(learning_curve, tmp, "curve.png", history, title=f"training ({report.get('preset', '')})")
    rows = [[h["epoch"], h["train_loss"], h["dev_loss"], h["dev_frame_acc"], h.get("lr", "")] for h in history]
    return Section("", "", text=[f"Best epoch {training.get('best_epoch')}."],
                   tables=[Table(["epoch", "train loss", "dev loss", "dev frame acc %", "lr"], rows)],
                   figures=[Figure("train and dev cross-entropy, dev frame accuracy per epoch", png)])


def _per_by_stage(report: dict[str, Any], tmp: Path) -> Section | None:
    from ese.report.run_plots import per_by_stage

    comp = report.get("compression")
    if not comp:
        return None
    per = dict(comp["per"])
    if report.get("proxy"):  # the held-out synthesiser in rooms and noise, beside the clean splits
        per["proxy"] = report["proxy"]["per"]
    png = _png(per_by_stage, tmp, "per_stage.png", per)
    rows = [[s, v["dense"], v["pruned"], v["quantized"], v["quantized"] - v["dense"]] for s, v in per.items()]
    text = (f"Density {100 * comp['density']:.1f}% ({comp['balance']}), {comp['weight_bits']}-bit weights and "
            f"{comp['act_bits']}-bit activations: {comp['model_bits'] / 8e6:.3f} MB against "
            f"{comp['dense_float_bits'] / 8e6:.3f} MB dense float32 ({comp['compression_ratio']:.1f}x).")
    return Section("", "", text=[text],
                   tables=[Table(["split", "dense PER %", "pruned PER %", "fixed-point PER %", "loss (pp)"], rows)],
                   figures=[Figure("PER of the dense, pruned and fixed-point models", png)])


def _pruning(report: dict[str, Any], tmp: Path) -> Section | None:
    from ese.report.prune_plots import density_sweep_plot

    pruned = report.get("prune")
    if not pruned or not pruned.get("steps"):
        return None
    steps = pruned["steps"]
    series = {split: [{"density": s["density"], "per": s[f"per_{split}"]} for s in steps]
              for split in ("dev", "test") if all(s.get(f"per_{split}") is not None for s in steps)}
    png = _png(density_sweep_plot, tmp, "density.png", series, title="PER vs density (pruning steps)", key="per")
    rows = [[100 * s["density"], s.get("per_dev"), s.get("per_test"), s.get("imbalance_max_over_mean")]
            for s in steps]
    return Section("", "", text=[f"Recipe {pruned.get('method', pruned.get('recipe', 'ese'))}, balance "
                                 f"{pruned.get('balance')}; PE max/mean non-zeros "
                                 f"{pruned.get('imbalance_max_over_mean', float('nan')):.3f} at the end."],
                   tables=[Table(["density %", "dev PER %", "test PER %", "PE max/mean"], rows)],
                   figures=[Figure("PER at each pruning step's density", png)])


def _quantization(report: dict[str, Any], tmp: Path, drawn: set[str]) -> Section | None:
    from ese.report.quant_plots import sweep_plot

    q = report.get("quantize")
    if not q:
        return None
    if q.get("plot"):
        drawn.add(Path(q["plot"]).name)  # the stage's own PNG of the same sweep
    splits = list(q["per_float"])
    tables = [Table(["split", "PER float %", "PER fixed %"],
                    [[s, q["per_float"][s], q["per_quantized"][s]] for s in splits])]
    figures = []
    if q.get("sweep"):
        tables.append(Table(["weight bits", *[f"PER {s} %" for s in splits]],
                            [[r["weight_bits"], *[r.get(f"per_{s}") for s in splits]] for r in q["sweep"]]))
        figures.append(Figure("PER against weight width (float PER dashed)",
                              _png(sweep_plot, tmp, "sweep.png", q["sweep"], q["per_float"],
                                   weight_bits=q.get("weight_bits"), act_bits=q.get("act_bits"))))
    sat = sum((q.get("saturation") or {}).values())
    return Section("", "", text=[f"{q['weight_bits']}-bit weights, {q['act_bits']}-bit activations; "
                                 f"{sat} saturation events."], tables=tables, figures=figures)


def _compile(report: dict[str, Any]) -> Section | None:
    c = report.get("compile")
    if not c:
        return None
    rows = [[name, m["nnz"], m["padding_entries"], f"{m['nnz_per_pe']['min']}-{m['nnz_per_pe']['max']}",
             m["entries_per_pe"]["max_over_mean"]] for name, m in c["matrices"].items()]
    return Section("", "", text=[f"{c['pes']} PEs, {c['index_bits']}-bit relative indices + {c['weight_bits']}-bit "
                                 f"weights: {c['bits_per_nonzero']:.2f} bits per non-zero, "
                                 f"{c['compression_ratio']:.2f}x smaller than the dense float32 LSTM."],
                   tables=[Table(["matrix", "nnz", "padding", "nnz per PE", "entries max/mean"], rows)])


def _accelerator(report: dict[str, Any], workdir: Path, tmp: Path) -> Section | None:
    from ese.report.run_plots import cycle_breakdown, pe_utilisation

    sim = report.get("simulate")
    if not sim:
        return None
    text = [f"{sim['cycles_per_frame']:.1f} cycles per frame (ideal {sim['ideal_cycles_per_frame']:.1f}), "
            f"{sim['latency_us']:.2f} us per frame, utilisation {100 * sim['utilization']:.1f}%, "
            f"{sim['gops_sparse']:.2f} GOPS sparse / {sim['gops_dense_equivalent']:.2f} GOPS dense-equivalent."]
    figures = [Figure("cycles per frame by term (the terms sum to the total)",
                      _png(cycle_breakdown, tmp, "breakdown.png", sim["breakdown"], total=sim["cycles_per_frame"]))]
    image = workdir / "model.ese"
    if image.is_file():
        from ese.accel.cycles import simulate
        from ese.compiler.image import load_program
        from ese.report.schedule_plots import schedule_gantt

        program = load_program(image)
        per_pe = simulate(program).to_json()["per_pe"]
        figures.append(Figure("busy, stalled and idle cycles per frame of every PE",
                              _png(pe_utilisation, tmp, "pes.png", per_pe)))
        figures.append(Figure("estimated schedule of three steps (Gantt chart)",
                              _png(schedule_gantt, tmp, "gantt.png", program.schedule)))
    else:
        text.append("No model.ese in the work directory: per-PE utilisation and the Gantt chart are not drawn.")
    return Section("", "", text=text, tables=[Table(["term", "cycles per frame"], list(sim["breakdown"].items()))],
                   figures=figures)


def _rtl(report: dict[str, Any]) -> Section | None:
    rtl = report.get("rtl")
    if not rtl:
        return None
    return Section("", "", tables=[Table(["check", "value"], [
        ["frames", rtl["frames"]], ["every y_t equals the reference", rtl["match"]],
        ["RTL cycles", rtl["rtl_cycles"]], ["cycle-model cycles", rtl["model_cycles"]],
        ["cycles equal", rtl["cycles_match"]]])])


def _speed(report: dict[str, Any], workdir: Path, tmp: Path) -> Section | None:
    from ese.report.run_plots import engine_speed

    rows: list[dict[str, Any]] = []
    sim, q = report.get("simulate") or {}, report.get("quantize") or {}
    if sim.get("latency_us"):
        mhz = (sim.get("hardware") or {}).get("clock_mhz")
        rows.append({"engine": f"accelerator (cycle model{f', {mhz:g} MHz' if mhz else ''})",
                     "mode": "frame", "batch": 1, "threads": "", "us_per_step": sim["latency_us"]})
    if q.get("reference_us_per_frame"):
        rows.append({"engine": "integer reference model (numpy)", "mode": "frame", "batch": 1, "threads": "",
                     "us_per_step": q["reference_us_per_frame"]})
    bench = workdir / "bench.json"
    note = "No bench.json in the work directory (ese bench --json WORKDIR/bench.json adds the CPU engines)."
    if bench.is_file():
        try:
            rows += [r for r in json.loads(bench.read_text(encoding="utf-8"))["rows"] if r.get("us_per_step")]
            note = "CPU engines from bench.json (ese bench)."
        except (ValueError, KeyError, TypeError):
            note = "bench.json is unreadable; its rows are left out."
    if not rows:
        return None
    return Section("", "", text=["Time per frame (one LSTM step of every layer). " + note],
                   tables=[Table(["engine", "mode", "batch", "threads", "us per step"],
                                 [[r["engine"], r.get("mode", ""), r.get("batch", ""), r.get("threads", ""),
                                   r["us_per_step"]] for r in rows])],
                   figures=[Figure("microseconds per step", _png(engine_speed, tmp, "speed.png", rows))])


def _other_pngs(workdir: Path, skip: set[str]) -> list[Figure]:
    out = []
    for png in sorted(workdir.glob("*.png")):
        if png.name not in skip:
            data = png.read_bytes()
            if data.startswith(b"\x89PNG"):
                out.append(Figure(png.name, data))
    return out
