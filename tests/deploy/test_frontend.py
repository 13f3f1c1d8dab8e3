"""The deployed front end: chunking never changes a number; deltas as Kaldi's; the normalisations."""

from __future__ import annotations

import numpy as np
import pytest

from ese.config import FeatureConfig
from ese.data import features as F
from ese.data.frontend import FrontEnd, Normalisation, measure_normalisation
from ese.errors import FeatureError

CFG = FeatureConfig()


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 300 * t * (1 + t)) + 0.05 * rng.normal(size=t.size)).astype(np.float32)


def _stats(kind: str) -> Normalisation:
    feats = F.add_deltas(F.fbank(_audio(2.0, seed=9), CFG), CFG.delta_order, CFG.delta_window)
    return measure_normalisation([feats], CFG, kind)


def _run(norm: Normalisation, audio: np.ndarray, sizes: list[int]) -> np.ndarray:
    fe, out, pos, k = FrontEnd(CFG, norm), [], 0, 0
    while pos < len(audio):
        n = sizes[k % len(sizes)]
        out.append(fe.accept(audio[pos:pos + n]))
        pos, k = pos + n, k + 1
    out.append(fe.finish())
    return np.concatenate(out)


@pytest.mark.parametrize("kind", ["global", "running", "none"])
@pytest.mark.parametrize("sizes", [[1], [160, 7, 1601], [3333]])
def test_any_chunking_gives_bit_identical_features(kind, sizes):
    audio = _audio(2.7)
    norm = _stats(kind) if kind != "none" else Normalisation("none")
    whole = _run(norm, audio, [len(audio)])
    chunked = _run(norm, audio, sizes)
    assert whole.shape == (F.num_frames(len(audio), CFG), CFG.dim)
    assert np.array_equal(whole, chunked), f"first differing frame {np.argwhere(whole != chunked)[0]}"


def test_deltas_equal_the_training_pipeline():
    audio = _audio(1.3)
    ours = _run(Normalisation("none"), audio, [500])
    theirs = F.add_deltas(F.fbank(audio, CFG), CFG.delta_order, CFG.delta_window)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


def test_running_normalisation_follows_its_definition():
    """Frame t uses the statistics of frames 0..max(t, warmup-1) plus the prior; a naive check."""
    audio = _audio(3.1)
    norm = _stats("running")
    got = _run(norm, audio, [800])
    raw = _run(Normalisation("none"), audio, [len(audio)]).astype(np.float64)
    n0, w = norm.prior_frames, norm.warmup_frames
    mu, var = np.array(norm.mean), np.array(norm.std) ** 2
    for t in (0, 5, w - 1, w, len(raw) - 1):
        upto = max(t, w - 1) + 1
        s = n0 * mu + raw[:upto].sum(0)
        q = n0 * (var + mu ** 2) + (raw[:upto] ** 2).sum(0)
        m = s / (n0 + upto)
        expect = (raw[t] - m) / np.sqrt(q / (n0 + upto) - m * m)
        np.testing.assert_allclose(got[t], expect, rtol=1e-4, atol=1e-4, err_msg=f"frame {t}")


def test_features_wait_for_their_delta_context():
    fe = FrontEnd(CFG, Normalisation("none"))
    first = fe.accept(_audio(0.1))  # 8 fbank frames: 4 of them have their +4 context
    assert len(first) == 8 - fe.half
    assert len(fe.finish()) == fe.half


def test_normalisation_round_trips_and_rejects_garbage():
    norm = _stats("running")
    assert Normalisation.from_dict(norm.to_dict()) == norm
    with pytest.raises(FeatureError, match="normalisation kind must be one of global, running, none, not 'cmvn'"):
        Normalisation("cmvn")
    with pytest.raises(FeatureError, match="unknown keys"):
        Normalisation.from_dict({**norm.to_dict(), "extra": 1})
    with pytest.raises(FeatureError, match="std > 0"):
        Normalisation("global", (0.0,), (0.0,))
    with pytest.raises(FeatureError, match="statistics have 3 features, the feature configuration makes 153"):
        FrontEnd(CFG, Normalisation("global", (0.0,) * 3, (1.0,) * 3))


def test_bad_chunks_are_refused():
    fe = FrontEnd(CFG, Normalisation("none"))
    with pytest.raises(FeatureError, match="float in \\[-1, 1\\) or int16, not int32"):
        fe.accept(np.zeros(10, np.int32))
    with pytest.raises(FeatureError, match="NaN or inf"):
        fe.accept(np.array([np.nan], np.float32))
    fe.finish()
    with pytest.raises(FeatureError, match="the stream is finished"):
        fe.accept(np.zeros(10, np.float32))


def test_int16_chunks_equal_float_chunks():
    audio = _audio(0.8)
    pcm = np.round(audio * 32767).astype(np.int16)
    a = _run(Normalisation("none"), pcm, [1000])
    b = _run(Normalisation("none"), pcm.astype(np.float32) / 32768, [1000])
    assert np.array_equal(a, b)
