"""ese.load: one recognizer for every model file; stream == whole file; fixed point is exact."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import ese
from ese.artefact import ArtefactError
from ese.compress.qmodel import load_qmodel
from ese.compress.reference import ReferenceModel
from ese.data.timit import read_audio
from ese.errors import EseError, FeatureError


def _feed(stream, samples: np.ndarray, sizes: list[int]) -> list[list[str]]:
    got, pos, k = [], 0, 0
    while pos < len(samples):
        n = sizes[k % len(sizes)]
        got.append(stream.feed(samples[pos:pos + n]))
        pos, k = pos + n, k + 1
    got.append(stream.finish())
    return got


@pytest.mark.parametrize("key, engine", [("pt", "torch"), ("pt", "ese-cpu"), ("qnpz", None), ("ese", None)])
def test_stream_gives_the_whole_file_phones(tiny_models, test_wav, key, engine):
    rec = ese.load(tiny_models[key], engine=engine, threads=1)
    whole = rec.transcribe(test_wav)
    assert whole, "the trained tiny model should hear some phones"
    samples, _ = sf.read(test_wav, dtype="int16")
    pieces = _feed(rec.stream(), samples, [160, 1000, 37, 4000])
    assert sum(pieces, []) == whole
    assert len([p for p in pieces if p]) > 1, "phones should arrive before the end of the stream"


def test_qnpz_and_ese_are_bit_identical_and_equal_the_integer_reference(tiny_models, test_wav):
    a, b = ese.load(tiny_models["qnpz"], threads=1), ese.load(tiny_models["ese"], threads=1)
    feats = np.random.default_rng(0).normal(size=(40, a.input_dim)).astype(np.float32)
    la, lb = a.logits(feats), b.logits(feats)
    assert np.array_equal(la, lb)
    qm = load_qmodel(tiny_models["qnpz"])
    ref = ReferenceModel(qm)
    d = qm.output_delay
    padded = np.concatenate([feats, np.repeat(feats[-1:], d, axis=0)])
    exact = ref.run(ref.quantize_input(padded)).logits[d:]  # int64 at the logits' binary point
    frac = qm.output_formats["logits"].frac
    assert np.array_equal(la * 2.0 ** frac, exact.astype(np.float64))


def test_torch_and_cpu_engine_agree_on_a_checkpoint(tiny_models):
    feats = np.random.default_rng(1).normal(size=(30, 153)).astype(np.float32)
    lt = ese.load(tiny_models["pt"]).logits(feats)
    lc = ese.load(tiny_models["pt"], engine="ese-cpu", threads=1).logits(feats)
    np.testing.assert_allclose(lt, lc, rtol=1e-4, atol=1e-4)
    assert lt.shape == (30, 48)


def test_samples_and_paths_give_the_same_phones(tiny_models, test_wav):
    rec = ese.load(tiny_models["qnpz"], threads=1)
    assert rec.transcribe(read_audio(test_wav, 16000)) == rec.transcribe(test_wav) == rec.transcribe(str(test_wav))


def test_phones_become_final_with_the_output_delay_and_delta_context(tiny_models, test_wav):
    """Fed frame by frame, a phone appears once its first frame's output exists: frame t is scored
    after fbank frame t + half (deltas) and the model's output_delay more, plus the warm-up."""
    rec = ese.load(tiny_models["qnpz"], threads=1)
    samples, _ = sf.read(test_wav, dtype="int16")
    s = rec.stream()
    shift = 160
    first = next(k for k in range(len(samples) // shift)
                 if s.feed(samples[k * shift:(k + 1) * shift]))
    warm = rec.normalisation.warmup_frames
    # audio of fbank frame f ends at sample 400 + 160 f; output of frame t needs fbank t+half, then d steps
    assert first * shift + shift >= 400 + shift * (warm - 1 + s.frontend.half)
    assert s.frontend.emitted >= warm


def test_bad_input_to_the_api(tiny_models, tmp_path):
    rec = ese.load(tiny_models["qnpz"], threads=1)
    with pytest.raises(FeatureError, match=r"the audio: audio shorter than one analysis window \(100 samples"):
        rec.transcribe(np.zeros(100, np.float32))
    with pytest.raises(FeatureError, match=r"features have shape \(5, 3\); the model takes \(frames, 153\)"):
        rec.logits(np.zeros((5, 3)))
    s = rec.stream()
    s.feed(np.zeros(800, np.int16))
    s.finish()
    with pytest.raises(EseError, match="the stream is finished"):
        s.feed(np.zeros(10, np.int16))
    with pytest.raises(ArtefactError, match="the torch engine cannot run it"):
        ese.load(tiny_models["ese"], engine="torch")
