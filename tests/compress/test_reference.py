"""The integer reference model: integer-only, exact, every operation within the spec's rounding
bound of the float operation on the same (dequantized) inputs, saturation counted."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from ese.compress import reference as R
from ese.compress.fixedpoint import Format, QuantError, dequantize
from ese.compress.lut import true_function
from ese.compress.qmodel import sum_frac
from ese.compress.quantize import dequantized_model, quantize_checkpoint
from ese.compress.reference import TRACE_SIGNALS, ReferenceModel, exact_sum_bits
from ese.config import Config, ModelConfig
from ese.data.dataset import FeatureSet, Utterance
from ese.model.lstmp import AcousticModel

D, H, P = 10, 16, 8


def _random_set(n: int, seed: int, frames: tuple[int, int] = (20, 45)) -> FeatureSet:
    rng = np.random.default_rng(seed)
    utts = []
    for k in range(n):
        T = int(rng.integers(*frames))
        utts.append(Utterance(f"u{k}", "s", (1.5 * rng.normal(size=(T, D))).astype(np.float32),
                              np.zeros(T, np.int64), ("aa",)))
    return FeatureSet("train", utts)


def _model(peepholes: bool, seed: int = 0) -> AcousticModel:
    torch.manual_seed(seed)
    model = AcousticModel(ModelConfig(input_dim=D, hidden=H, proj=P, layers=2, peepholes=peepholes))
    with torch.no_grad():  # larger weights than the init, so gates and cells use their range
        for layer in model.layers:
            layer.w_x.mul_(2.0)
            layer.w_r.mul_(2.0)
            layer.w_ym.mul_(1.5)
    return model.eval()


@pytest.fixture(scope="module", params=[True, False], ids=["peepholes", "no-peepholes"])
def setup(request):
    model = _model(request.param)
    cfg = Config(model=model.cfg)
    qm = quantize_checkpoint(model, cfg, _random_set(8, seed=1))
    return model, qm, ReferenceModel(qm)


def test_trace_is_integer_only_with_every_vector(setup):
    _, qm, ref = setup
    x = ref.quantize_input(_random_set(1, seed=5).utterances[0].feats)
    trace = ref.run(x)
    T = len(x)
    widths = {"x": None, "acc": 4 * H, "acc_y": P, "y": P}
    for k, layer in enumerate(trace.layers):
        assert set(layer) == set(TRACE_SIGNALS)
        for name, arr in layer.items():
            assert arr.dtype == np.int64, f"layer{k}.{name} has dtype {arr.dtype}"
            assert arr.shape == (T, widths.get(name, H) or (D if k == 0 else P)), f"layer{k}.{name} {arr.shape}"
    assert trace.logits.dtype == np.int64 and trace.logits.shape == (T, qm.model.num_classes)
    assert np.array_equal(trace.layers[1]["x"], trace.layers[0]["y"])


def test_every_operation_is_within_its_rounding_bound(setup):
    """Each vector equals the float operation on the dequantized integer inputs of the same step,
    up to the rounding the spec allows there (half an LSB per rounding, the LUT bound)."""
    _, qm, ref = setup
    x = ref.quantize_input(_random_set(1, seed=6, frames=(60, 61)).utterances[0].feats)
    trace = ref.run(x)
    assert sum(trace.saturation.values()) == 0
    specs = qm.lut_specs
    lut_bound = {n: max(s.predicted_error(), s.tail_error()) for n, s in specs.items()}
    for k, (layer, tr) in enumerate(zip(qm.layers, trace.layers)):
        f = {n: v.frac for n, v in layer.formats.items()}
        deq = {n: dequantize(v, f[n if n in f else "gate"]) for n, v in tr.items()
               if n not in ("i", "f", "g", "o", "tanh_c")}
        for n in ("i", "f", "g", "o", "tanh_c"):
            deq[n] = dequantize(tr[n], f["gate"])
        w = {n: dequantize(a, f[n]) for n, a in layer.arrays().items()}
        T = len(x)
        y_prev = np.vstack([np.zeros((1, P)), deq["y"][:-1]])
        c_prev = np.vstack([np.zeros((1, H)), deq["c"][:-1]])
        lsb = {n: 2.0 ** -f[n] for n in f}

        acc = deq["x"] @ w["w_x"].T + y_prev @ w["w_r"].T + w["bias"]
        f_sum = sum_frac(f)
        assert np.abs(deq["acc"] - acc).max() <= (0.5 * lsb["acc"] if f["acc"] < f_sum else 0.0)
        a = np.split(deq["acc"], 4, axis=1)
        peep = w.get("peephole", np.zeros((3, H)))
        two = 1.0 if "peephole" in w else 0.5  # two roundings with a peephole term, else one
        assert np.abs(deq["z_i"] - (a[0] + peep[0] * c_prev)).max() <= two * lsb["z_i"]
        assert np.abs(deq["z_f"] - (a[1] + peep[1] * c_prev)).max() <= two * lsb["z_f"]
        assert np.abs(deq["z_g"] - a[2]).max() <= 0.5 * lsb["z_g"]
        for gate, z, fn in (("i", "z_i", "sigmoid"), ("f", "z_f", "sigmoid"), ("g", "z_g", "tanh"),
                            ("o", "z_o", "sigmoid"), ("tanh_c", "c", "tanh")):
            err = np.abs(deq[gate] - true_function(fn, deq[z])).max()
            assert err <= lut_bound[fn], f"layer{k}.{gate}: LUT error {err} > {lut_bound[fn]}"
        c = deq["f"] * c_prev + deq["i"] * deq["g"]
        assert np.abs(deq["c"] - c).max() <= 0.5 * lsb["c"]
        assert np.abs(deq["z_o"] - (a[3] + peep[2] * deq["c"])).max() <= two * lsb["z_o"]
        assert np.abs(deq["m"] - deq["o"] * deq["tanh_c"]).max() <= 0.5 * lsb["m"]
        acc_y = deq["m"] @ w["w_ym"].T
        assert np.abs(deq["acc_y"] - acc_y).max() <= 0.5 * lsb["acc_y"] + 1e-15
        assert np.abs(deq["y"] - deq["acc_y"]).max() <= 0.5 * lsb["y"]
        assert T == len(deq["y"])


def test_agrees_with_the_float_model_on_dequantized_weights(setup):
    """End to end the errors compound through the recurrence; they stay a small fraction of the
    signal (16-bit activations, 12-bit weights), and the class decisions agree."""
    _, qm, ref = setup
    fm = dequantized_model(qm)
    feats = _random_set(3, seed=7).utterances
    agree = total = 0
    for u in feats:
        x = ref.quantize_input(u.feats)
        trace = ref.run(x)
        with torch.no_grad():
            logits, _ = fm(torch.from_numpy(dequantize(x, qm.input_format.frac)).float()[None])
        want = logits[0].double().numpy()
        got = dequantize(trace.logits, qm.output_formats["logits"].frac)
        assert np.abs(got - want).max() <= 0.02 * np.abs(want).max()
        agree += int((got.argmax(1) == want.argmax(1)).sum())
        total += len(x)
    assert agree / total >= 0.9


def test_run_batch_equals_run_exactly(setup):
    _, _, ref = setup
    xs = [ref.quantize_input(u.feats) for u in _random_set(4, seed=8).utterances]
    logits, sat, clip = ref.run_batch(xs)
    total_clip = {}
    for x, lg in zip(xs, logits):
        trace = ref.run(x)
        assert np.array_equal(lg, trace.logits), "run_batch differs from run"
        for key, n in trace.lut_clipped.items():
            total_clip[key] = total_clip.get(key, 0) + n
    assert dict(clip) == total_clip  # padded frames are not counted
    again, _, _ = ref.run_batch(xs)
    assert all(np.array_equal(a, b) for a, b in zip(logits, again))


def test_sparse_and_dense_products_are_identical(setup, monkeypatch):
    _, qm, _ = setup
    pruned = copy.deepcopy(qm)
    rng = np.random.default_rng(0)
    for layer in pruned.layers:
        for name in ("w_x", "w_r", "w_ym"):
            arr = getattr(layer, name)
            arr[rng.random(arr.shape) < 0.8] = 0
    x = ReferenceModel(pruned).quantize_input(_random_set(1, seed=9).utterances[0].feats)
    monkeypatch.setattr(R, "_SPARSE_BELOW", 0.0)
    dense = ReferenceModel(pruned).run(x)
    monkeypatch.setattr(R, "_SPARSE_BELOW", 2.0)
    sparse = ReferenceModel(pruned).run(x)
    for k in range(2):
        for name in TRACE_SIGNALS:
            assert np.array_equal(dense.layers[k][name], sparse.layers[k][name]), f"layer{k}.{name}"


def test_crafted_overflow_is_saturated_and_counted(setup):
    _, qm, _ = setup
    bad = copy.deepcopy(qm)
    bad.quant = dataclasses.replace(qm.quant, acc_bits=20)
    layer = bad.layers[0]
    layer.w_x[:] = (1 << (qm.quant.weight_bits - 1)) - 1  # every weight maximal
    fmts = dict(layer.formats)
    fmts["acc"] = Format(20, max(fmts["w_x"].frac + fmts["x"].frac, fmts["w_r"].frac + fmts["y"].frac,
                                 fmts["bias"].frac))  # no rounding: the sum overflows 20 bits
    fmts["acc_y"] = Format(20, fmts["acc_y"].frac)
    layer.w_ym[:] = (1 << (qm.quant.weight_bits - 1)) - 1
    fmts["y"] = Format(16, fmts["acc_y"].frac)  # y = acc_y unshifted: cannot fit 16 bits
    layer.formats = fmts
    bad.layers[1].formats = dict(bad.layers[1].formats, x=fmts["y"])
    ref = ReferenceModel(bad)
    fmt = bad.input_format
    x = np.full((5, D), fmt.hi, dtype=np.int64)  # every input maximal
    trace = ref.run(x)
    acc, y = trace.layers[0]["acc"], trace.layers[0]["y"]
    assert trace.saturation["layer0.acc"] > 0 and trace.saturation["layer0.y"] > 0
    assert acc.max() == (1 << 19) - 1 and acc.min() >= -(1 << 19)
    assert y.max() <= (1 << 15) - 1 and y.min() >= -(1 << 15)
    assert ((y == (1 << 15) - 1) | (y == -(1 << 15))).any()  # clipped to the 16-bit range
    assert trace.saturation.by_signal()["acc"] == trace.saturation["layer0.acc"] + trace.saturation["layer1.acc"]


def test_input_checks_name_the_problem(setup):
    _, _, ref = setup
    with pytest.raises(QuantError, match=r"must be \(frames, 10\) integers, not shape \(4, 3\)"):
        ref.run(np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(QuantError, match="must be integers \\(use quantize_input\\), not float64"):
        ref.run(np.zeros((4, D)))
    with pytest.raises(QuantError, match="outside the 16-bit input format"):
        ref.run(np.full((2, D), 1 << 20, dtype=np.int64))


def test_exact_sum_width_fits_a_dsp_accumulator(setup):
    _, qm, ref = setup
    widths = exact_sum_bits(qm)
    assert all(w["gates"] <= 48 and w["proj"] <= 48 for w in widths)
