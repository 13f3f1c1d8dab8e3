"""Calibration and quantization: a float checkpoint -> a fixed-point :class:`QModel`; its PER.

Dynamic fixed point (docs/fixed-point.md): every weight matrix and vector gets the binary point
that fits its own largest magnitude; every activation gets the one that fits the largest
magnitude measured while running the float model over (up to) ``calibration_utterances`` train
utterances, plus ``act_headroom_bits`` spare bits. Rule: ``frac = bits - 1 - I - headroom`` with
``I`` the smallest integer such that ``max|v| < 2**I``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from rich.progress import Progress

from ese.cell import cell_spec
from ese.compress.fixedpoint import (Format, QuantError, SaturationCounter, check_quant_config,
                                     choose_frac, dequantize, log_softmax, quantize)
from ese.compress.lut import build_table, lut_error_report
from ese.compress.qmodel import QLayer, QModel
from ese.compress.reference import ReferenceModel
from ese.config import Config, FeatureConfig, HardwareConfig, QuantConfig
from ese.data.dataset import FeatureSet
from ese.data.frontend import Normalisation
from ese.data.phones import output_classes, output_kind
from ese.model.ctc import sequence_nll
from ese.model.lstmp import AcousticModel
from ese.model.recurrence import input_products, recurrence
from ese.model.decode import pad_for_delay
from ese.model.phone_loop import SWITCH_PENALTY
from ese.model.scoring import score_utterances

# ---- calibration --------------------------------------------------------------------------------
def calibration_utterances(fset: FeatureSet, count: int) -> list[np.ndarray]:
    """Up to ``count`` utterances of ``fset``, evenly spaced over the set (deterministic)."""
    n = len(fset)
    if n == 0:
        raise QuantError(f"calibration needs utterances, but the {fset.name!r} set is empty")
    idx = sorted({int(round(k)) for k in np.linspace(0, n - 1, min(count, n))})
    return [np.asarray(fset.utterances[k].feats, dtype=np.float32) for k in idx]


@torch.no_grad()
def measure_ranges(model: AcousticModel, feats: list[np.ndarray]) -> list[dict[str, float]]:
    """Run the float model's own recurrence (``ese.model.recurrence``) in float64; per layer the
    largest |v| of ``x``, ``acc`` (the gate sums the element-wise step starts from), the cell's
    ``calibrated`` signals and ``y``, over the real frames."""
    model.eval()
    cell = cell_spec(model.cfg)
    lengths = torch.tensor([len(f) for f in feats])
    T = int(lengths.max())
    x = torch.zeros(len(feats), T, model.cfg.input_dim, dtype=torch.float64)
    for b, f in enumerate(feats):
        x[b, :len(f)] = torch.from_numpy(f).double()
    ranges: list[dict[str, float]] = []
    for layer in model.layers:
        params = {n: None if p is None else p.detach().double() for n, p in layer.params().items()}
        mx = dict.fromkeys(("x", "acc") + cell.calibrated + ("y",), 0.0)

        def seen(name: str, v: torch.Tensor, rows: torch.Tensor) -> None:
            if rows.any():
                mx[name] = max(mx[name], float(v[rows].abs().max()))

        def record(t: int, acc: torch.Tensor, signals: dict[str, torch.Tensor], y: torch.Tensor) -> None:
            rows = t < lengths
            seen("acc", acc, rows)
            for name in cell.calibrated:
                seen(name, signals[name], rows)
            seen("y", y, rows)

        seen("x", x.reshape(-1, x.shape[-1]), (torch.arange(T)[None, :] < lengths[:, None]).reshape(-1))
        y0, *state0 = layer.initial_state(len(feats), x)
        xw = input_products(cell, x.transpose(0, 1), params, layer.hidden)  # (T, B, blocks*H)
        ys, _, _ = recurrence(cell, xw, params, y0, dict(zip(cell.state, state0)), record)
        ranges.append(mx)
        x = ys.transpose(0, 1)
    return ranges


# ---- building the fixed-point model -------------------------------------------------------------
def _max_abs(t: torch.Tensor | np.ndarray) -> float:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t
    return float(np.abs(a).max()) if a.size else 0.0


def build_qmodel(model: AcousticModel, ranges: list[dict[str, float]], qcfg: QuantConfig, *,
                 output_delay: int, source: dict[str, Any] | None = None,
                 features: FeatureConfig | None = None, normalisation: Normalisation | None = None) -> QModel:
    """Quantize ``model``'s weights per matrix and choose every activation's binary point from ``ranges``.

    ``features`` and ``normalisation`` (the source checkpoint's) are carried into the file, so
    that it transcribes audio on its own."""
    check_quant_config(qcfg)
    bad = model.non_finite_parameters()
    if bad:
        raise QuantError(f"cannot quantize a model with non-finite (NaN/inf) weights in {', '.join(bad)}")
    W, A, hr = qcfg.weight_bits, qcfg.act_bits, qcfg.act_headroom_bits
    cell = cell_spec(model.cfg)
    counter = SaturationCounter()  # weights whose rounding reaches 2**(bits-1): clipped by one LSB
    layers: list[QLayer] = []
    x_fmt = Format(A, choose_frac(ranges[0]["x"], A, hr))
    for k, (layer, r) in enumerate(zip(model.layers, ranges)):
        tag = f"layer{k}"
        npw = {n: p.detach().double().cpu().numpy() for n, p in layer.named_parameters()}
        fm: dict[str, Format] = {"x": x_fmt}
        for name in cell.matrix_names:
            fm[name] = Format(W, choose_frac(_max_abs(npw[name]), W))
        for v in cell.vectors:  # a vector the model lacks still gets a format (every layer has all keys)
            fm[v.name] = Format(A, choose_frac(_max_abs(npw[v.name]) if v.name in npw else 0.0, A))
        fm["y"] = Format(A, choose_frac(r["y"], A, hr))
        # accumulators: the exact sum's binary point, unless the measured range needs fewer fractional bits
        exact = cell.sum_frac({name: fmt.frac for name, fmt in fm.items()})
        fm["acc"] = Format(qcfg.acc_bits, min(exact, choose_frac(r["acc"], qcfg.acc_bits, hr)))
        for signal in cell.calibrated:
            fm[signal] = Format(A, choose_frac(r[signal], A, hr))
        for fixed in cell.fixed_formats:
            fm[fixed] = Format(A, A - 2)  # values in [-1, 1]: Q1.(A-2) holds 1.0 exactly
        proj = cell.projection
        if proj is not None:
            fm["acc_y"] = Format(qcfg.acc_bits, min(fm[proj.name].frac + fm[proj.operand].frac,
                                                    choose_frac(r["y"], qcfg.acc_bits, hr)))
        q = {name: quantize(npw[name], fm[name], counter, f"{tag}.{name}")
             for name in cell.matrix_names + cell.vector_names(model.cfg)}
        layers.append(QLayer(formats=fm, **q))
        x_fmt = fm["y"]
    w_out = model.output.weight.detach().double().cpu().numpy()
    b_out = model.output.bias.detach().double().cpu().numpy()
    fw = Format(W, choose_frac(_max_abs(w_out), W))
    logits_frac = fw.frac + x_fmt.frac
    out_fmt = {"w": fw, "b": Format(qcfg.acc_bits, logits_frac), "logits": Format(64, logits_frac)}
    qm = QModel(
        quant=qcfg, model=model.cfg, output_delay=output_delay, layers=layers,
        w_out=quantize(w_out, fw, counter, "output.w"),
        b_out=quantize(b_out, out_fmt["b"], counter, "output.b"),
        output_formats=out_fmt, luts={}, phones=output_classes(model.cfg.num_classes),
        calibration={"ranges": ranges, "weight_clipped": dict(counter)}, source=dict(source or {}),
        features=features, normalisation=normalisation)
    qm.luts = {name: build_table(spec) for name, spec in qm.lut_specs.items()}
    return qm


def quantize_checkpoint(model: AcousticModel, cfg: Config, calib: FeatureSet, *,
                        output_delay: int | None = None, source: dict[str, Any] | None = None,
                        normalisation: Normalisation | None = None) -> QModel:
    """Calibrate on up to ``cfg.quant.calibration_utterances`` utterances of ``calib`` and quantize.

    ``output_delay`` defaults to ``cfg.train.output_delay`` (pass the checkpoint's own).
    """
    check_quant_config(cfg.quant)
    bad = model.non_finite_parameters()
    if bad:
        raise QuantError(f"cannot quantize a model with non-finite (NaN/inf) weights in {', '.join(bad)}")
    ranges = measure_ranges(model, calibration_utterances(calib, cfg.quant.calibration_utterances))
    delay = cfg.train.output_delay if output_delay is None else output_delay
    # features that are not audio features (toy data of another width) have no front end to record
    audio = cfg.features.dim == model.cfg.input_dim
    return build_qmodel(model, ranges, cfg.quant, output_delay=delay, source=source,
                        features=cfg.features if audio else None,
                        normalisation=(normalisation or calib.normalisation) if audio else None)


def dequantized_model(qm: QModel) -> AcousticModel:
    """A float AcousticModel whose weights are exactly the fixed-point weights' real values."""
    model = AcousticModel(qm.model)
    layers, w_out, b_out = qm.dequantized()
    state = {f"layers.{k}.{name}": torch.from_numpy(arr).float() for k, arrays in enumerate(layers)
             for name, arr in arrays.items()}
    state["output.weight"] = torch.from_numpy(w_out).float()
    state["output.bias"] = torch.from_numpy(b_out).float()
    model.load_state_dict(state)
    model.eval()
    return model


# ---- evaluation with the integer reference model ------------------------------------------------
def quantized_logits(ref: ReferenceModel, feats: list[np.ndarray], *, batch_size: int = 16,
                     saturation: SaturationCounter | None = None, lut_clipped: SaturationCounter | None = None,
                     progress: bool = False, label: str = "reference") -> Iterable[tuple[int, np.ndarray]]:
    """Yield (index into ``feats``, integer logits (T, C) aligned to the input frames), in length order.

    Features are padded for the output delay (copies of the last frame) exactly as
    :func:`ese.model.decode.batched_log_probs` does, quantized on the host, run through the
    reference model, and the first ``output_delay`` outputs dropped. Events are added to the
    ``saturation`` and ``lut_clipped`` counters when given.
    """
    d = ref.qm.output_delay
    order = sorted(range(len(feats)), key=lambda k: len(feats[k]))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(label, total=len(feats))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            sat = SaturationCounter()
            xs = [ref.quantize_input(pad_for_delay(feats[k], d), sat) for k in idx]
            logits, sat_run, clip = ref.run_batch(xs)
            if saturation is not None:
                saturation.update(sat)
                saturation.update(sat_run)
            if lut_clipped is not None:
                lut_clipped.update(clip)
            for k, lg in zip(idx, logits):
                yield k, lg[d:d + len(feats[k])]
            bar.advance(task, len(idx))


def evaluate_quantized(qmodel: QModel, fset: FeatureSet, *, batch_size: int = 16, progress: bool = False,
                       return_hyps: bool = False, switch_penalty: float = SWITCH_PENALTY) -> dict[str, Any]:
    """PER and frame accuracy of the fixed-point model on ``fset``, run by the integer reference model.

    Same scoring as :func:`ese.model.decode.evaluate` (``loss`` from the dequantized integer
    logits), plus ``saturation`` and ``lut_clipped`` (per signal, summed over layers) and their
    per-layer detail ``saturation_detail``.
    """
    ref = ReferenceModel(qmodel)
    D = qmodel.model.input_dim
    for u in fset.utterances:
        if u.feats.ndim != 2 or u.feats.shape[1] != D:
            raise QuantError(f"utterance {u.utt_id!r} has feature shape {tuple(u.feats.shape)}, but the "
                             f"fixed-point model expects (frames, {D})")
    feats = [np.asarray(u.feats, dtype=np.float64) for u in fset.utterances]
    sat, clip = SaturationCounter(), SaturationCounter()
    logit_frac = qmodel.output_formats["logits"].frac
    kind = output_kind(qmodel.model.num_classes)

    def outputs() -> Iterator[tuple[int, np.ndarray, float]]:
        for k, logits in quantized_logits(ref, feats, batch_size=batch_size, saturation=sat, lut_clipped=clip,
                                          progress=progress, label=f"fixed point {fset.name}"):
            labels = np.asarray(fset.utterances[k].labels, dtype=np.int64)
            logp = log_softmax(dequantize(logits, logit_frac))  # host-side float: decoder and loss
            if kind == "ctc":
                yield k, logp, sequence_nll(logp, fset.utterances[k].phones)
                continue
            keep = labels >= 0
            # log-softmax is monotonic, so its argmax is the integer argmax (first index of the maximum)
            yield k, logp, -float(logp[np.nonzero(keep)[0], labels[keep]].sum())

    result = score_utterances(fset.utterances, outputs(), return_hyps=return_hyps, kind=kind,
                              switch_penalty=switch_penalty)
    result["saturation"] = _by_signal(sat)
    result["saturation_detail"] = dict(sorted(sat.items()))
    result["lut_clipped"] = _by_signal(clip)
    return result


def _by_signal(counter: SaturationCounter) -> dict[str, int]:
    return dict(sorted(SaturationCounter(counter).by_signal().items()))


# ---- figures for the report ---------------------------------------------------------------------
def lut_errors(qm: QModel) -> dict[str, dict[str, Any]]:
    """Per table, the worst :func:`lut_error_report` over the input formats the model feeds it."""
    inputs = qm.cell.lut_inputs
    out: dict[str, dict[str, Any]] = {}
    for name, spec in qm.lut_specs.items():
        fmts = {layer.formats[s] for layer in qm.layers for s in inputs[name]}
        reports = [lut_error_report(spec, fmt, qm.luts[name]) for fmt in sorted(fmts, key=lambda f: f.frac)]
        out[name] = max(reports, key=lambda r: r["max_abs_error"])
    return out


def model_bits(qm: QModel, *, index_bits: int | None = None) -> dict[str, Any]:
    """The stored size by the paper's count, in bits.

    Counts ``nnz x (weight_bits + index_bits)`` for the LSTM matrices (each non-zero with its
    relative row index of ``index_bits``, the encoder's ``hardware.index_bits``; default: the
    config's default) plus ``act_bits`` per vector element, against 32-bit floats for
    every dense weight and vector element. Not counted: padding entries and column pointers
    (the compiler counts those exactly, ``ese compile``) and the output layer, which runs on the
    host (``output_layer_bits``, apart).
    """
    if index_bits is None:
        index_bits = HardwareConfig().index_bits
    q = qm.quant
    nnz = sum(qm.nnz().values())
    dense = sum(getattr(layer, n).size for layer in qm.layers for n in qm.cell.matrix_names)
    vectors = sum(a.size for layer in qm.layers for n, a in layer.arrays().items() if n not in qm.cell.matrix_names)
    matrix_bits = nnz * (q.weight_bits + index_bits)
    vector_bits = vectors * q.act_bits
    total = matrix_bits + vector_bits
    dense_float = (dense + vectors) * 32
    return {"lstm_nnz": nnz, "lstm_weights": dense, "density": nnz / dense if dense else 0.0,
            "index_bits": index_bits, "matrix_bits": matrix_bits, "vector_bits": vector_bits,
            "total_bits": total, "dense_float_bits": dense_float,
            "compression_ratio": dense_float / total if total else float("inf"),
            "output_layer_bits": int(qm.w_out.size * q.weight_bits + qm.b_out.size * qm.output_formats["b"].bits)}


def with_weight_bits(cfg: QuantConfig, bits: int) -> QuantConfig:
    return dataclasses.replace(cfg, weight_bits=bits)
