"""Calibration, quantization of a trained model, its PER, the report and ``ese quantize``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ese.compress.fixedpoint import QuantError
from ese.compress.qmodel import load_qmodel
from ese.compress.quantize import (build_qmodel, calibration_utterances, evaluate_quantized, measure_ranges,
                                   quantize_checkpoint)
from ese.config import Config
from ese.data.store import load_split
from ese.model.checkpoint import load_checkpoint
from ese.model.decode import evaluate
from ese.stages.quantize import quantize_and_report
from ese.model.train import train_model


@pytest.fixture(scope="module")
def trained(tone_corpus, tmp_path_factory):
    """A tiny LSTMP trained for seconds on the tone corpus, its checkpoint and feature sets."""
    cfg = Config.load(preset="tiny", overrides=["train.epochs=8", "train.threads=1"])
    work = tmp_path_factory.mktemp("quant")
    sets = {s: load_split(tone_corpus, s, cfg.features, cache_dir=work / "features", progress=False)
            for s in ("train", "dev", "test")}
    train_model(cfg, sets["train"], sets["dev"], work / "model.pt", progress=False)
    model, meta = load_checkpoint(work / "model.pt")
    return cfg, sets, model, work


def test_calibration_measures_the_float_model(trained):
    cfg, sets, model, _ = trained
    feats = calibration_utterances(sets["train"], 5)
    ranges = measure_ranges(model, feats)
    with torch.no_grad():
        ys = [model.layers[0](torch.from_numpy(f)[None])[0][0].numpy() for f in feats]
    assert ranges[0]["y"] == pytest.approx(max(np.abs(y).max() for y in ys), rel=1e-5)
    assert ranges[0]["x"] == pytest.approx(max(np.abs(f).max() for f in feats), rel=1e-6)
    assert len(feats) == 5 and len(calibration_utterances(sets["train"], 1000)) == len(sets["train"])


def test_pruned_zeros_stay_exactly_zero(trained):
    cfg, sets, model, _ = trained
    pruned = load_checkpoint(trained[3] / "model.pt")[0]
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for layer in pruned.layers:
            for w in (layer.w_x, layer.w_r, layer.w_ym):
                w[torch.from_numpy(rng.random(tuple(w.shape)) < 0.9)] = 0.0
    qm = quantize_checkpoint(pruned, cfg, sets["train"])
    for layer, q in zip(pruned.layers, qm.layers):
        for name in ("w_x", "w_r", "w_ym"):
            w = getattr(layer, name).detach().numpy()
            assert np.all(getattr(q, name)[w == 0] == 0), f"{name}: a pruned weight became non-zero"
            assert np.count_nonzero(getattr(q, name)) <= np.count_nonzero(w)
            # per-matrix binary point: the largest weight uses the top of the 12-bit range
            assert 1 << 10 <= np.abs(getattr(q, name)).max() <= (1 << 11) - 1


def test_fixed_point_per_matches_float_per(trained):
    cfg, sets, model, _ = trained
    qm = quantize_checkpoint(model, cfg, sets["train"])
    assert qm.output_delay == cfg.train.output_delay
    for split in ("dev", "test"):
        want = evaluate(model, sets[split], cfg.train.output_delay)
        got = evaluate_quantized(qm, sets[split])
        assert abs(got["per"] - want["per"]) <= 3.0, (split, got["per"], want["per"])
        assert abs(got["frame_acc"] - want["frame_acc"]) <= 1.0
        assert abs(got["loss"] - want["loss"]) <= 0.05
        assert sum(got["saturation"].values()) == 0
    coarse = build_qmodel(model, measure_ranges(model, calibration_utterances(sets["train"], 64)),
                          dataclasses.replace(cfg.quant, weight_bits=3), output_delay=3)
    assert evaluate_quantized(coarse, sets["dev"])["frame_acc"] < want["frame_acc"]  # 3 bits do hurt


def test_nan_weights_are_refused(trained):
    cfg, sets, _, work = trained
    model = load_checkpoint(work / "model.pt")[0]
    with torch.no_grad():
        model.layers[0].w_r[0, 0] = float("nan")
    with pytest.raises(QuantError, match=r"cannot quantize a model with non-finite \(NaN/inf\) weights in "
                                         r"layers\.0\.w_r"):
        quantize_checkpoint(model, cfg, sets["train"])


def test_quantize_and_report_writes_everything(trained, tmp_path):
    cfg, sets, model, work = trained
    report = quantize_and_report(work / "model.pt", cfg, sets, tmp_path / "m.qnpz", progress=False, sweep=(8, 12))
    for key in ("per_float", "per_quantized", "weight_bits", "act_bits", "saturation", "lut_error", "sweep",
                "model_bits"):
        assert key in report
    assert set(report["per_float"]) == {"dev", "test"} == set(report["per_quantized"])
    assert [r["weight_bits"] for r in report["sweep"]] == [8, 12]
    assert report["sweep"][1]["per_test"] == report["per_quantized"]["test"]
    assert report["lut_error"]["sigmoid"] < 2e-3 and report["lut_error"]["tanh"] < 4e-3
    mb = report["model_bits"]
    assert mb["matrix_bits"] == mb["lstm_nnz"] * 16 and mb["compression_ratio"] == pytest.approx(2.0, rel=0.01)
    assert json.loads((tmp_path / "m.json").read_text())["per_quantized"] == report["per_quantized"]
    assert (tmp_path / "m_sweep.png").stat().st_size > 1000
    assert load_qmodel(tmp_path / "m.qnpz").source["checkpoint"] == str(work / "model.pt")


def test_report_counts_the_configured_index_width(trained, tmp_path):
    cfg, sets, _, work = trained
    cfg = dataclasses.replace(cfg, hardware=dataclasses.replace(cfg.hardware, index_bits=6))
    report = quantize_and_report(work / "model.pt", cfg, sets, tmp_path / "m.qnpz", progress=False,
                                 sweep=(cfg.quant.weight_bits,))
    mb = report["model_bits"]
    assert mb["index_bits"] == 6 and mb["matrix_bits"] == mb["lstm_nnz"] * (cfg.quant.weight_bits + 6)


def _ese(*args):
    return subprocess.run([sys.executable, "-m", "ese", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # quantizes and scores through the CLI
def test_cli_quantize_end_to_end(trained, tone_corpus, tmp_path):
    _, _, _, work = trained
    out, js = tmp_path / "cli.qnpz", tmp_path / "cli.json"
    result = _ese("quantize", str(work / "model.pt"), "--corpus", str(tone_corpus), "--weight-bits", "10",
                  "--act-bits", "16", "--out", str(out), "--json", str(js), "--sweep", "10", "--quiet",
                  "--cache-dir", str(work / "features"))
    assert result.returncode == 0, result.stderr
    report = json.loads(js.read_text())
    assert report["weight_bits"] == 10 and report["act_bits"] == 16
    assert load_qmodel(out).quant.weight_bits == 10
    assert "PER float %" in result.stdout and "weight-width sweep" in result.stdout


def test_cli_refuses_a_bad_width_before_any_work(trained, tone_corpus, tmp_path):
    from typer.testing import CliRunner

    from ese.cli import app

    work = trained[3]
    result = CliRunner().invoke(app, ["quantize", str(work / "model.pt"), "--corpus", str(tone_corpus),
                                      "--weight-bits", "40", "--out", str(tmp_path / "x.qnpz"), "--quiet"])
    assert isinstance(result.exception, QuantError)  # main() prints it as one line, exit code 1
    assert str(result.exception) == "QuantConfig.weight_bits must be an integer in [2, 24], not 40"
    assert not (tmp_path / "x.qnpz").exists() and not (tmp_path / "features").exists()
