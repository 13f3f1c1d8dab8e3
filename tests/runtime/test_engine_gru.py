"""The CPU engine runs GRU models: fixed point bit-exact with the integer reference (every kernel:
int32 / int64 gathers, many streams, column clusters, utterance mode), float within fp32
tolerance of torch.nn.GRU; the sparse baselines run the same cell."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_models import random_input, random_qmodel
from test_narrow_kernels import clusterize

from ese.compiler.program import compile_qmodel
from ese.compress.reference import ReferenceModel
from ese.config import HardwareConfig, ModelConfig
from ese.model.decode import posteriors
from ese.model.gru import from_torch_gru
from ese.model.lstmp import AcousticModel
from ese.runtime import Engine
from ese.runtime.baselines import ScipySparse, TorchSparse
import ese.runtime.engine as engine_mod
from ese.runtime.engine import float32_layers


def gru_qmodel(*, D: int = 6, H: int = 20, layers: int = 1, **kw):
    return random_qmodel(cell="gru", D=D, H=H, P=H, layers=layers, **kw)  # y = h: P = H


def assert_exact(eng: Engine, qm, x: np.ndarray) -> None:
    """Every traced vector of one stream (acc, h, y), then utterance mode, equal to the reference."""
    want = ReferenceModel(qm).run(x)
    got = eng.recognizer(1).trace(x)
    for k, layer in enumerate(got):
        assert set(layer) == {"acc", "h", "y"}
        for s, v in layer.items():
            np.testing.assert_array_equal(v, want.layers[k][s], err_msg=f"layer {k} {s}")
    (y,) = eng.run_layers([x])
    np.testing.assert_array_equal(eng.logits_fixed(y), want.logits)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(D=st.integers(1, 9), H=st.sampled_from([1, 5, 16, 20, 33]), layers=st.integers(1, 2),
       density=st.sampled_from([0.0, 0.1, 0.5, 1.0]), shift=st.integers(-2, 2), seed=st.integers(0, 10**6))
def test_random_gru_models_match_the_reference_exactly(D, H, layers, density, shift, seed):
    qm = gru_qmodel(D=D, H=H, layers=layers, density=density, shift=shift, seed=seed)
    eng = Engine.from_qmodel(qm)
    xs = [random_input(qm, T, seed + T) for T in (7, 3, 11)]
    assert_exact(eng, qm, xs[0])
    want, _, _ = ReferenceModel(qm).run_batch(xs)
    for y, w in zip(eng.run_layers(xs), want):  # several streams
        np.testing.assert_array_equal(eng.logits_fixed(y), w)


@pytest.mark.parametrize("shift", [-2, 2])
def test_many_streams_are_exact_in_every_stream(shift):
    """37 streams (vector loops plus a tail) on 2 threads, streaming."""
    qm = gru_qmodel(H=48, layers=2, shift=shift, seed=11, density=0.4)
    eng, ref = Engine.from_qmodel(qm, threads=2), ReferenceModel(qm)
    xs = [random_input(qm, 5, s) for s in range(37)]
    rec = eng.recognizer(len(xs))
    assert rec.kernel == "csr-pairs-x-batch-i16"
    ys = np.array([rec.step_layers(np.stack([x[t] for x in xs])).copy() for t in range(5)])
    for b, x in enumerate(xs):
        np.testing.assert_array_equal(ys[:, b], ref.run(x).y)


def test_int64_and_int32_gathers_and_the_program_image_are_exact(monkeypatch):
    """The gathered kernels (a CPU without AVX-512BW; tests/runtime/test_perm_kernels.py runs
    the same models on perm64)."""
    monkeypatch.setattr(engine_mod, "PERM_KERNELS", False)
    qm = gru_qmodel(D=300, H=16, density=0.9, seed=6)  # rows whose int32 sum could overflow
    eng = Engine.from_qmodel(qm, threads=2)
    rec = eng.recognizer(1)
    assert rec.kernel == "sell16-gather-i32" and rec.states[0].narrow.gx.any()
    fmt = qm.input_format
    assert_exact(eng, qm, np.where(np.random.default_rng(3).random((5, 300)) < 0.5, fmt.lo, fmt.hi))
    wide = gru_qmodel(H=20, seed=2, fracs={"x": -5})  # x 19 bits coarser than Fsum: no int32 pre-shift
    assert Engine.from_qmodel(wide).recognizer(1).kernel == "sell16-gather-i64"
    assert_exact(Engine.from_qmodel(wide), wide, random_input(wide, 6))
    prog = compile_qmodel(qm, HardwareConfig(pes=4))
    assert_exact(Engine.from_program(prog), qm, random_input(qm, 6))


@pytest.mark.parametrize("G", [8, 16])
def test_cluster_gru_models_run_gather_free_and_exactly(G):
    qm = clusterize(gru_qmodel(D=9, H=16, layers=2, seed=G, shift=-1), G, 0.4, G)
    eng = Engine.from_qmodel(qm, threads=2)
    assert eng.pattern.startswith("cluster:")
    assert eng.recognizer(1).kernel.endswith("-pairs-i16")
    assert_exact(eng, qm, random_input(qm, 8, G))
    flt = Engine.from_qmodel(qm, "float", threads=2)
    assert flt.recognizer(1).kernel.endswith("-bcast-f32")
    X = np.random.default_rng(1).standard_normal((7, 9)).astype(np.float32)
    np.testing.assert_allclose(flt.posteriors(X), _float_reference(qm, X), atol=2e-5)


def _float_reference(qm, X):
    """Posteriors of ``qm``'s dequantized weights under the PyTorch model (the float GRU)."""
    from ese.compress.quantize import dequantized_model
    return posteriors(dequantized_model(qm), X, qm.output_delay)


@pytest.fixture(scope="module")
def torch_gru():
    """nn.GRU (2 layers, non-zero biases, 60% of its weights zeroed) and the same model as ours."""
    torch.manual_seed(0)
    ref = torch.nn.GRU(7, 36, num_layers=2)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            p.mul_(torch.rand_like(p) < 0.4) if "weight" in name else p.uniform_(-1, 1)
    model = AcousticModel(ModelConfig(input_dim=7, hidden=36, layers=2, num_classes=5, cell="gru")).eval()
    with torch.no_grad():
        for k, layer in enumerate(model.layers):
            for name, p in from_torch_gru(ref, k).named_parameters():
                getattr(layer, name).copy_(p)
    return ref.eval(), model


def feats(T: int, seed: int) -> np.ndarray:
    return (1.5 * np.random.default_rng(seed).normal(size=(T, 7))).astype(np.float32)


def test_float_engine_equals_torch_gru(torch_gru):
    ref, model = torch_gru
    eng = Engine.from_model(model, output_delay=2)
    xs = [feats(T, s) for s, T in ((0, 30), (1, 5), (2, 17))]
    with torch.no_grad():
        want = [ref(torch.from_numpy(x)[:, None])[0][:, 0].numpy() for x in xs]
    for got, w in zip(eng.run_layers(xs), want):  # several streams
        np.testing.assert_allclose(got, w, atol=1e-5, rtol=0)
    (one,) = eng.run_layers(xs[:1])  # one stream: W_x batched over frames
    np.testing.assert_allclose(one, want[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(eng.posteriors(xs[0]), posteriors(model, xs[0], 2), atol=2e-5, rtol=0)


def test_streaming_recognizer_equals_utterance_mode(torch_gru):
    _, model = torch_gru
    eng = Engine.from_model(model)
    xs = [feats(T, s) for s, T in ((3, 12), (4, 1), (5, 9))]
    single = [eng.posteriors(x) for x in xs]
    rec = eng.recognizer(len(xs))
    out = [rec.push(np.stack([x[t] if t < len(x) else np.zeros(7, np.float32) for x in xs])) for t in range(12)]
    for b, x in enumerate(xs):
        np.testing.assert_allclose(np.array([o[b] for o in out[:len(x)]]), single[b], atol=1e-5)
    rec.reset(1)
    np.testing.assert_allclose(rec.push(np.stack([xs[0][0]] * 3))[1], single[0][0], atol=1e-5)
    one = eng.recognizer(1)
    np.testing.assert_allclose(np.array([one.push(f)[0] for f in xs[0]]), single[0], atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstmp"])
def test_sparse_baselines_run_the_same_cell(cell):
    qm = gru_qmodel(H=20, seed=1) if cell == "gru" else random_qmodel(H=20, P=6, seed=1)
    eng = Engine.from_qmodel(qm, "float")
    layer = float32_layers(qm.dequantized()[0])[0]
    X = np.random.default_rng(0).normal(size=(6, 3, qm.model.input_dim)).astype(np.float32)
    want = eng.recognizer(3).run_frames(X).transpose(1, 0, 2)  # (T, B, P)
    for cls in (TorchSparse, ScipySparse):
        got = np.array([np.asarray(y) for y in cls(layer, 3, qm.cell).utterance(X)])
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=cls.name)
        base = cls(layer, 3, qm.cell)
        got = np.array([np.asarray(base.stream(X[t])) for t in range(6)])
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=cls.name)
