"""Float mode agrees with the PyTorch LSTMP model; streaming, utterance and batching agree."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_models import tiny_float_model

from ese.model.decode import posteriors
from ese.runtime import Engine


@pytest.fixture(scope="module", params=[True, False], ids=["peepholes", "no-peepholes"])
def model(request):
    return tiny_float_model(peepholes=request.param, H=36, seed=int(request.param))


def feats(T: int, seed: int, D: int = 7) -> np.ndarray:
    return (1.5 * np.random.default_rng(seed).normal(size=(T, D))).astype(np.float32)


def test_posteriors_match_pytorch(model):
    eng = Engine.from_model(model, output_delay=2)
    for seed, T in ((0, 30), (1, 5)):
        x = feats(T, seed)
        np.testing.assert_allclose(eng.posteriors(x), posteriors(model, x, 2), atol=2e-5, rtol=0)


def test_streaming_equals_utterance_and_batch_equals_single(model):
    eng = Engine.from_model(model)
    xs = [feats(T, s) for s, T in ((2, 40), (3, 17), (4, 1), (5, 33))]
    single = [eng.posteriors(x) for x in xs]
    for got, want in zip(eng.posteriors_batch(xs), single):  # utterance mode, 4 streams
        np.testing.assert_allclose(got, want, atol=1e-5)
    rec = eng.recognizer(len(xs))  # streaming, 4 streams, finished ones fed zeros
    out = [rec.push(np.stack([x[t] if t < len(x) else np.zeros(7, np.float32) for x in xs]))
           for t in range(40)]
    for b, x in enumerate(xs):
        np.testing.assert_allclose(np.array([o[b] for o in out[:len(x)]]), single[b], atol=1e-5)
    one = eng.recognizer(1)
    np.testing.assert_allclose(np.array([one.push(f)[0] for f in xs[0]]), single[0], atol=1e-5)


def test_reset_restarts_a_stream(model):
    eng = Engine.from_model(model)
    rec = eng.recognizer(2)
    x = feats(5, 9)
    first = [rec.push(np.stack([f, f])) for f in x]
    rec.reset(1)
    again = [rec.push(np.stack([f, f]))[1] for f in x]
    np.testing.assert_allclose(np.array(again), np.array([o[1] for o in first]), atol=1e-6)


def test_float_mode_of_a_qmodel_runs_its_dequantized_weights():
    from runtime_models import tiny_qmodel
    qm = tiny_qmodel(seed=1)
    eng = Engine.from_qmodel(qm, "float")
    fixed = Engine.from_qmodel(qm, "fixed")
    x = np.random.default_rng(0).normal(size=(6, 5)) * 0.5
    # same model, two arithmetics: posteriors close, not equal
    assert np.abs(np.exp(eng.posteriors(x)) - np.exp(fixed.posteriors(x))).max() < 0.1
