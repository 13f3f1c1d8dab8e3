"""The quantize stage: calibrate and quantize a checkpoint, score float vs fixed point, sweep the
weight width, write the fixed-point model, its report JSON and plot. ``ese quantize`` and
``ese run`` both call :func:`quantize_and_report`; the algorithms are ``ese.compress.quantize``'s.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Iterable

from ese.compress.fixedpoint import QuantError, check_quant_config
from ese.compress.prune import balanced_pes
from ese.compress.qmodel import save_qmodel
from ese.compress.quantize import (build_qmodel, calibration_utterances, evaluate_quantized, lut_errors,
                                   measure_ranges, model_bits, with_weight_bits)
from ese.atomic import write_json
from ese.config import Config
from ese.data.dataset import FeatureSet
from ese.data.frontend import Normalisation
from ese.model.checkpoint import load_checkpoint
from ese.model.decode import evaluate
from ese.report.quant_plots import sweep_plot

DEFAULT_SWEEP = (8, 10, 12, 16)


def quantize_and_report(ckpt_path: str | Path, cfg: Config, sets: dict[str, FeatureSet], out_path: str | Path, *,
                        progress: bool = True, sweep: Iterable[int] = DEFAULT_SWEEP,
                        json_path: str | Path | None = None, plot_path: str | Path | None = None,
                        console: Any = None) -> dict[str, Any]:
    """Quantize the checkpoint at ``ckpt_path`` with ``cfg.quant``, write the fixed-point model to
    ``out_path``, and report float vs fixed-point PER on the ``dev`` / ``test`` sets present.

    ``sets`` needs ``train`` (calibration); ``dev`` and ``test`` are scored when present. The
    output delay is the checkpoint's own. Writes the report JSON (default: ``out_path`` with
    ``.json``) and the sweep plot (default: ``<stem>_sweep.png``) and returns the report, whose
    keys include ``per_float``, ``per_quantized`` ({split: PER %}), ``weight_bits``, ``act_bits``,
    ``saturation`` ({signal: count} over the scored splits), ``lut_error`` ({sigmoid, tanh}: max
    abs error), ``sweep`` ([{weight_bits, per_dev, per_test}]) and ``model_bits``.
    """
    t_start = time.perf_counter()
    out_path = Path(out_path)
    json_path = Path(json_path) if json_path else out_path.with_suffix(".json")
    plot_path = Path(plot_path) if plot_path else out_path.with_name(out_path.stem + "_sweep.png")
    if "train" not in sets:
        raise QuantError("quantization needs the train split for calibration")
    check_quant_config(cfg.quant)
    model, meta = load_checkpoint(ckpt_path)
    delay = int(meta.get("config", {}).get("train", {}).get("output_delay", cfg.train.output_delay))
    splits = [s for s in ("dev", "test") if s in sets]
    log = console.log if console is not None else (lambda *a, **k: None)

    log(f"calibrating on up to {cfg.quant.calibration_utterances} train utterances")
    calib = calibration_utterances(sets["train"], cfg.quant.calibration_utterances)
    ranges = measure_ranges(model, calib)
    source: dict[str, Any] = {"checkpoint": str(ckpt_path), "calibration_utterances": len(calib)}
    pes = balanced_pes(meta)
    if pes is not None:
        source["balanced_for_pes"] = pes  # the PE count stated once: compile checks it against hardware.pes
    qm = build_qmodel(model, ranges, cfg.quant, output_delay=delay, source=source,
                      **_frontend(cfg, model, meta, sets["train"]))
    save_qmodel(out_path, qm)

    float_scores = {s: evaluate(model, sets[s], delay) for s in splits}
    log(f"fixed point ({cfg.quant.weight_bits}-bit weights, {cfg.quant.act_bits}-bit activations)")
    t0 = time.perf_counter()
    q_scores = {s: evaluate_quantized(qm, sets[s], progress=progress) for s in splits}
    ref_seconds = time.perf_counter() - t0
    frames = sum(sets[s].num_frames for s in splits)

    sweep_rows = []
    for bits in sorted(set(int(b) for b in sweep)):
        if bits == cfg.quant.weight_bits:
            scores = q_scores
        else:
            log(f"sweep: {bits}-bit weights")
            qb = build_qmodel(model, ranges, with_weight_bits(cfg.quant, bits), output_delay=delay, source=source,
                              features=qm.features, normalisation=qm.normalisation)
            scores = {s: evaluate_quantized(qb, sets[s], progress=progress) for s in splits}
        sweep_rows.append({"weight_bits": bits, **{f"per_{s}": scores[s]["per"] for s in splits},
                           **{f"saturation_{s}": sum(scores[s]["saturation"].values()) for s in splits}})

    saturation: dict[str, int] = {}
    for s in splits:
        for sig, n in q_scores[s]["saturation"].items():
            saturation[sig] = saturation.get(sig, 0) + n
    luts = lut_errors(qm)
    report: dict[str, Any] = {
        "fixed_point_spec_version": qm.spec_version,
        "checkpoint": str(ckpt_path),
        "qmodel": str(out_path),
        "weight_bits": cfg.quant.weight_bits,
        "act_bits": cfg.quant.act_bits,
        "acc_bits": cfg.quant.acc_bits,
        "quant_config": dataclasses.asdict(cfg.quant),
        "output_delay": delay,
        "per_float": {s: float_scores[s]["per"] for s in splits},
        "per_quantized": {s: q_scores[s]["per"] for s in splits},
        "frame_acc_float": {s: float_scores[s]["frame_acc"] for s in splits},
        "frame_acc_quantized": {s: q_scores[s]["frame_acc"] for s in splits},
        "saturation": saturation,
        "saturation_detail": {s: q_scores[s]["saturation_detail"] for s in splits},
        "lut_clipped": {s: q_scores[s]["lut_clipped"] for s in splits},
        "lut_error": {name: r["max_abs_error"] for name, r in luts.items()},
        "lut_error_detail": luts,
        "sweep": sweep_rows,
        "model_bits": model_bits(qm, index_bits=cfg.hardware.index_bits),
        "formats": [{k: f.to_list() for k, f in layer.formats.items()} for layer in qm.layers],
        "calibration": {"utterances": len(calib), "ranges": ranges},
        "reference_us_per_frame": 1e6 * ref_seconds / max(frames, 1),
        "seconds": time.perf_counter() - t_start,
        "json": str(json_path),
        "plot": str(plot_path),
    }
    sweep_plot(sweep_rows, report["per_float"], plot_path, weight_bits=cfg.quant.weight_bits,
               act_bits=cfg.quant.act_bits)
    write_json(json_path, report)
    return report


def _frontend(cfg: Config, model: Any, meta: dict[str, Any], train: FeatureSet) -> dict[str, Any]:
    """What the fixed-point file needs to transcribe audio: the features the sets were made with
    and the checkpoint's normalisation (the train split's when the checkpoint predates it)."""
    if cfg.features.dim != model.cfg.input_dim:  # toy features of another width: no audio front end
        return {"features": None, "normalisation": None}
    norm = meta.get("normalisation")
    return {"features": cfg.features,
            "normalisation": Normalisation.from_dict(norm) if norm is not None else train.normalisation}
