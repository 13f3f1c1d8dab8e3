"""Decoding: delay alignment, padding invariance of batching, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ese.config import ModelConfig
from ese.data.dataset import FeatureSet, Utterance
from ese.errors import FeatureError
from ese.model.decode import batched_log_probs, evaluate, pad_for_delay, posteriors, transcribe
from ese.model.lstmp import AcousticModel
from ese.model.scoring import frames_to_phones


@pytest.fixture
def model() -> AcousticModel:
    torch.manual_seed(5)
    return AcousticModel(ModelConfig(input_dim=5, hidden=8, proj=4, layers=2, num_classes=48))


def test_pad_for_delay_repeats_the_last_frame() -> None:
    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    padded = pad_for_delay(feats, 2)
    assert padded.shape == (5, 2)
    np.testing.assert_array_equal(padded[3:], [[4, 5], [4, 5]])
    assert pad_for_delay(feats, 0) is feats


def test_posteriors_undo_the_output_delay(model: AcousticModel) -> None:
    feats = np.random.default_rng(0).normal(size=(11, 5)).astype(np.float32)
    delay = 3
    logits, _ = model(torch.from_numpy(pad_for_delay(feats, delay))[None])
    expected = torch.log_softmax(logits[0], dim=-1)[delay:].detach().numpy()  # row t: frame t
    got = posteriors(model, feats, delay)
    assert got.shape == (11, 48)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert transcribe(model, feats, delay) == frames_to_phones(expected.argmax(axis=1))


def test_batching_does_not_change_posteriors(model: AcousticModel) -> None:
    rng = np.random.default_rng(1)
    feats = [rng.normal(size=(n, 5)).astype(np.float32) for n in (7, 1, 20, 13)]
    batched = dict(batched_log_probs(model, feats, output_delay=2, batch_size=3))
    for k, f in enumerate(feats):
        np.testing.assert_allclose(batched[k].numpy(), posteriors(model, f, 2), atol=1e-6)


def test_evaluate_reports_per_and_hypotheses(model: AcousticModel) -> None:
    rng = np.random.default_rng(2)
    utts = [Utterance(f"u{k}", "s", rng.normal(size=(9, 5)).astype(np.float32),
                      rng.integers(-1, 48, size=9), ("h#", "aa", "b", "h#")) for k in range(3)]
    res = evaluate(model, FeatureSet("dev", utts), output_delay=1, batch_size=2, return_hyps=True)
    assert res["n_ref"] == 6 and res["utterances"][0]["ref"] == ["aa", "b"]
    for u, row in zip(utts, res["utterances"]):
        assert row["hyp"] == transcribe(model, u.feats, 1)
    assert res["sub"] + res["del"] + res["ins"] == pytest.approx(res["per"] * 6 / 100)
    assert np.isfinite(res["loss"]) and 0 <= res["frame_acc"] <= 100


def test_wrong_feature_dim_is_a_feature_error(model: AcousticModel) -> None:
    with pytest.raises(FeatureError, match=r"feature shape \(4, 3\), but the model expects \(frames, 5\)"):
        posteriors(model, np.zeros((4, 3), np.float32), 0)
    bad = np.zeros((4, 5), np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(FeatureError, match="NaN or inf"):
        posteriors(model, bad, 0)
