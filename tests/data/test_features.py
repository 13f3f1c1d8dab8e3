import numpy as np
import pytest

from ese.config import FeatureConfig
from ese.data import features as F
from ese.data.phones import INDEX_48
from ese.data.store import cache_key, load_split
from ese.data.timit import PhoneSegment, split_records
from ese.errors import FeatureError


def kaldi_fbank_reference(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Kaldi's compute-fbank-feats written out in numpy (povey window, pre-emphasis, raw energy)."""
    x = x.astype(np.float64) * 32768.0
    win, shift, nfft = 400, 160, 512
    n = 1 + (len(x) - win) // shift
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    lo, hi = mel(cfg.low_freq), mel(cfg.sample_rate / 2)
    delta = (hi - lo) / (cfg.num_mel_bins + 1)
    fft_mel = mel(np.arange(nfft // 2) * cfg.sample_rate / nfft)
    banks = np.zeros((cfg.num_mel_bins, nfft // 2))
    for b in range(cfg.num_mel_bins):
        left, centre, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
        up = (fft_mel - left) / (centre - left)
        down = (right - fft_mel) / (right - centre)
        banks[b] = np.where((fft_mel > left) & (fft_mel < right), np.minimum(up, down), 0.0)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / (win - 1))) ** 0.85
    eps = np.finfo(np.float32).eps
    out = []
    for t in range(n):
        frame = x[t * shift:t * shift + win].copy()
        frame -= frame.mean()
        energy = np.log(max(np.sum(frame ** 2), eps))
        frame[1:] -= 0.97 * frame[:-1].copy()
        frame[0] -= 0.97 * frame[0]
        power = np.abs(np.fft.rfft(frame * window, nfft)[: nfft // 2]) ** 2
        out.append(np.concatenate([[energy], np.log(np.maximum(banks @ power, eps))]))
    return np.array(out)


def test_fbank_matches_a_written_out_kaldi_computation():
    cfg = FeatureConfig()
    t = np.arange(8000) / 16000
    rng = np.random.default_rng(1)
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    ours = F.fbank(x, cfg)
    ref = kaldi_fbank_reference(x, cfg)
    assert ours.shape == ref.shape == (F.num_frames(len(x), cfg), 51)
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=1e-4)


def test_default_recipe_is_153_dimensional():
    cfg = FeatureConfig()
    static = F.fbank(np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1, cfg)
    assert F.add_deltas(static, cfg.delta_order, cfg.delta_window).shape[1] == cfg.dim == 153


def test_deltas_follow_the_regression_formula_with_clamped_edges():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((12, 3)).astype(np.float32)
    out = F.add_deltas(feats, order=2, window=2)
    padded = np.concatenate([feats[:1].repeat(2, 0), feats, feats[-1:].repeat(2, 0)])
    d1 = sum(n * (padded[2 + n:14 + n] - padded[2 - n:14 - n]) for n in (1, 2)) / 10.0
    np.testing.assert_allclose(out[:, 3:6], d1, atol=1e-5)
    # in the interior, delta-delta equals the delta applied twice
    d1_full = np.stack([sum(n * (feats[min(max(t + n, 0), 11)] - feats[min(max(t - n, 0), 11)]) for n in (1, 2)) / 10
                        for t in range(12)])
    d2 = np.stack([sum(n * (d1_full[t + n] - d1_full[t - n]) for n in (1, 2)) / 10 for t in range(4, 8)])
    np.testing.assert_allclose(out[4:8, 6:9], d2, atol=1e-5)


def test_speaker_cmvn_gives_zero_mean_unit_variance_per_speaker():
    rng = np.random.default_rng(0)
    feats = [rng.normal(5, 3, (50, 4)), rng.normal(5, 3, (30, 4)), rng.normal(-2, 1, (40, 4))]
    out = F.apply_cmvn(feats, ["A", "A", "B"], "speaker")
    a = np.concatenate(out[:2])
    np.testing.assert_allclose(a.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(a.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(out[2].mean(0), 0, atol=1e-5)
    assert abs(out[0].mean()) > 1e-3  # normalised over the speaker, not the utterance


def test_unknown_cmvn_mode_is_rejected():
    with pytest.raises(FeatureError, match="unknown CMVN mode 'global'"):
        F.apply_cmvn([np.zeros((2, 2))], ["a"], "global")


def test_frame_labels_take_the_phone_under_the_frame_centre():
    cfg = FeatureConfig()
    segs = [PhoneSegment(0, 1000, "h#"), PhoneSegment(1000, 1200, "q"), PhoneSegment(1200, 4000, "ao")]
    labels = F.frame_labels(segs, 20, cfg)
    centres = np.arange(20) * 160 + 200
    assert list(labels[centres < 1000]) == [INDEX_48["sil"]] * int(np.sum(centres < 1000))
    assert all(labels[(centres >= 1000) & (centres < 1200)] == -1)  # q is removed
    assert all(labels[(centres >= 1200) & (centres < 4000)] == INDEX_48["ao"])
    assert all(labels[centres >= 4000] == -1)


def test_load_split_gives_features_and_labels(tone_corpus, tmp_path):
    cfg = FeatureConfig()
    fset = load_split(tone_corpus, "train", cfg, cache_dir=tmp_path, progress=False)
    assert len(fset) == 24 and fset.feature_dim == 153
    for u in fset.utterances:
        assert u.labels.shape == (u.num_frames,) and u.feats.dtype == np.float32
        assert u.phones[0] == "h#" and u.phones[-1] == "h#"


def test_feature_cache_is_reused_and_keyed_by_config(tone_corpus, tmp_path):
    cfg = FeatureConfig()
    first = load_split(tone_corpus, "dev", cfg, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("dev-*.npz"))) == 1
    again = load_split(tone_corpus, "dev", cfg, cache_dir=tmp_path, progress=False)
    for a, b in zip(first.utterances, again.utterances):
        assert a.utt_id == b.utt_id and a.phones == b.phones
        np.testing.assert_array_equal(a.feats, b.feats)
        np.testing.assert_array_equal(a.labels, b.labels)
    other = FeatureConfig(num_mel_bins=40)
    assert cache_key(other, split_records(tone_corpus, "dev")) != cache_key(cfg, split_records(tone_corpus, "dev"))
    small = load_split(tone_corpus, "dev", other, cache_dir=tmp_path, progress=False)
    assert small.feature_dim == 123 and len(list(tmp_path.glob("dev-*.npz"))) == 2


def test_non_finite_features_are_an_error():
    with pytest.raises(FeatureError, match="NaN or inf"):
        F.check_finite(np.array([[0.0, np.nan]]), "utt1")
