"""Each acoustic variation of the synthetic corpus does what docs/synth-corpus.md says, on short
signals (no synthesiser needed except where marked ``synth``)."""

from __future__ import annotations

import numpy as np
import pytest

from ese.config import SynthConfig
from ese.data.synth import channel, corpus, perturb, room

SR = 16000


def _tone_mix(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    return sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / k for k, f in enumerate((150, 450, 900, 1800), 1))


def _centroid(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float((spec * freqs).sum() / spec.sum())


def _clean(**changes) -> perturb.Variation:
    base = dict(pitch=1.0, rate=1.0, speed=1.0, snr_db=200.0, noise="white", gain_db=3.0)
    return perturb.Variation(**{**base, **changes})


@pytest.mark.parametrize("rt60", [0.3, 0.7])
def test_rir_lengthens_energy_decay(rt60):
    rng = np.random.default_rng(1)
    h = room.rir(rt60, 5.0, rng)
    assert h[0] == 1.0 and len(h) > SR * rt60  # direct path first: boundaries do not move
    assert 0.6 * rt60 < room.decay_time(h) < 1.4 * rt60
    burst = np.concatenate([rng.standard_normal(800), np.zeros(8000)])
    wet = room.reverberate(burst, h)
    assert len(wet) == len(burst)
    # energy 50-250 ms after the burst ended: none dry, clearly some reverberated
    assert np.sum(burst[1600:4800] ** 2) == 0
    assert np.sum(wet[1600:4800] ** 2) > 1e-3 * np.sum(wet[:800] ** 2)
    longer = room.reverberate(burst, room.rir(2 * rt60, 5.0, np.random.default_rng(1)))
    assert np.sum(longer[4800:] ** 2) > np.sum(wet[4800:] ** 2)


def test_rir_direct_to_reverberant_ratio():
    for drr in (0.0, 10.0):
        h = room.rir(0.5, drr, np.random.default_rng(3))
        assert 10 * np.log10(h[0] ** 2 / np.sum(h[1:] ** 2)) == pytest.approx(drr, abs=1e-6)


@pytest.mark.parametrize("kind", ["white", "pink", "babble", "talkers"])
@pytest.mark.parametrize("snr", [20.0, 5.0])
def test_snr_measured_equals_requested(kind, snr):
    rng = np.random.default_rng(2)
    x = np.concatenate([np.zeros(1000), _tone_mix(8000, rng), np.zeros(1000)])
    bank = [_tone_mix(3000, rng) * rng.uniform(0.1, 2) for _ in range(5)]
    perturb.set_talker_bank(bank)
    try:
        noise = perturb.make_noise(kind, x, np.random.default_rng(4), talkers=3)
    finally:
        perturb.set_talker_bank([])
    noisy = perturb.mix_at_snr(x, noise, snr, slice(1000, 9000))
    added = noisy - x
    measured = 10 * np.log10(np.mean(x[1000:9000] ** 2) / np.mean(added**2))
    assert measured == pytest.approx(snr, abs=1e-6)


def test_talker_babble_is_other_speakers_and_needs_a_bank():
    with pytest.raises(ValueError, match="talker bank"):
        perturb.talker_babble(100, 3, np.random.default_rng(0), bank=[])
    out = perturb.talker_babble(400, 2, np.random.default_rng(0), bank=[np.full(50, 3.0)])
    assert np.allclose(out, 2.0)  # two talkers, each scaled to unit power
    bank = [np.sin(np.arange(300) * f) for f in (0.1, 0.37, 0.9)]
    a = perturb.talker_babble(1000, 4, np.random.default_rng(1), bank=bank)
    b = perturb.talker_babble(1000, 4, np.random.default_rng(1), bank=bank)
    assert np.array_equal(a, b) and not np.allclose(a, a[0])


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_vtlp_shifts_spectral_centroid(speed):
    rng = np.random.default_rng(5)
    audio = _tone_mix(SR, rng)
    segs = [("aa", 0, SR // 2), ("iy", SR // 2, SR)]
    base, _, _ = perturb.finish(audio, SR, segs, [], _clean(), np.random.default_rng(0))
    moved, _, _ = perturb.finish(audio, SR, segs, [], _clean(speed=speed), np.random.default_rng(0))
    assert _centroid(moved.astype(float)) / _centroid(base.astype(float)) == pytest.approx(speed, rel=0.02)
    assert len(moved) - len(base) == pytest.approx(SR / speed - SR, abs=2)


def test_alignments_stay_inside_the_audio_under_every_variation():
    rng = np.random.default_rng(6)
    native = 22050
    audio = _tone_mix(native, rng) * 0.3
    segs = [("pau", 0, 3000), ("s", 3000, 9000), ("aa", 9000, 17000), ("pau", 17000, native)]
    words = [("saw", 3000, 17000)]
    perturb.set_talker_bank([_tone_mix(4000, rng)])
    try:
        for var in (_clean(speed=1.08), _clean(speed=0.91, rt60=0.6, drr_db=3.0, room_seed=7),
                    _clean(noise="talkers", talkers=4, snr_choices=(5.0, 10.0), hp_hz=200.0,
                           lp_hz=3400.0, eq=((1000.0, 6.0, 1.0),), codec="telephone")):
            pcm, phn, wrd = perturb.finish(audio, native, segs, words, var, np.random.default_rng(1))
            assert phn[0][1] == 0 and phn[-1][2] == len(pcm)
            assert all(a[2] == b[1] for a, b in zip(phn, phn[1:]))
            inner = [(p, s, e) for p, s, e in phn if p in ("s", "aa")]
            ratio = 16000 / (native * var.speed)
            assert inner[0][2] - inner[0][1] == pytest.approx(6000 * ratio, abs=2)  # scaled by the ratio
            assert wrd == [("saw", inner[0][1], inner[1][2])]
    finally:
        perturb.set_talker_bank([])


def test_channel_band_limits_without_moving_anything():
    impulse = np.zeros(4000)
    impulse[2000] = 1.0
    out = channel.apply(impulse, hp_hz=300.0, lp_hz=3400.0)
    assert int(np.argmax(np.abs(out))) == 2000  # zero phase
    noise = np.random.default_rng(0).standard_normal(SR)
    spec = np.abs(np.fft.rfft(channel.apply(noise, lp_hz=3400.0))) ** 2
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    assert 10 * np.log10(spec[freqs > 5000].mean() / spec[(freqs > 500) & (freqs < 3000)].mean()) < -25
    boosted = channel.apply(noise, eq=((1000.0, 9.0, 2.0),))
    band = (freqs > 900) & (freqs < 1100)
    gain = 10 * np.log10((np.abs(np.fft.rfft(boosted)) ** 2)[band].mean() / (np.abs(np.fft.rfft(noise)) ** 2)[band].mean())
    assert gain == pytest.approx(18.0, abs=3.0)  # 9 dB per pass, forwards and backwards


def test_codecs_distort_a_little():
    x = _tone_mix(SR // 4, np.random.default_rng(8))
    for codec in ("mulaw", "telephone", "clip"):
        y = channel.apply(x, codec=codec)
        assert len(y) == len(x)
        rel = np.sum((y - x) ** 2) / np.sum(x**2)
        assert rel > 1e-6 and np.corrcoef(x, y)[0, 1] > 0.95, codec  # changed, still the same signal
    assert np.array_equal(channel.apply(x), x)
    with pytest.raises(ValueError, match="codec"):
        channel.apply(x, codec="mp3")


def test_plan_variations_by_split():
    cfg = SynthConfig(hours=1.0)
    speakers = corpus.plan(cfg)
    by = {s: [spk for spk in speakers if spk.split == s] for s in ("train", "dev", "test", "proxy")}
    assert {spk.base.engine for spk in by["proxy"]} == {"flite"}
    assert all(spk.variation.rt60 > 0 and spk.variation.lp_hz > 0 for spk in by["proxy"])
    clean = perturb.Variation(1, 1, 1, 1, "white", 1)
    for spk in by["test"]:  # the clean recipe: no room, no channel, one SNR per speaker
        v = spk.variation
        assert (v.rt60, v.hp_hz, v.lp_hz, v.eq, v.codec, v.snr_choices) == \
            (clean.rt60, clean.hp_hz, clean.lp_hz, clean.eq, clean.codec, clean.snr_choices)
    roomed = np.mean([spk.variation.rt60 > 0 for spk in by["train"]])
    assert abs(roomed - cfg.room_prob) < 0.15
    none = corpus.plan(SynthConfig(hours=1.0, proxy_engine="", flite_voices=()))
    assert not [spk for spk in none if spk.split == "proxy"]
    # the test split's speakers and their clean variations do not depend on the new variations
    assert [(s.id, s.variation) for s in none if s.split == "test"] == [(s.id, s.variation) for s in by["test"]]


def test_bad_variation_settings_are_clear_errors():
    for change in ({"room_prob": 1.5}, {"codecs": ("mp3",)}, {"proxy_engine": "mbrola"},
                   {"lp_range": (3000.0, 9000.0)}, {"noise_types": ("talkers",)}):
        with pytest.raises(corpus.ConfigError, match="synth\\."):
            corpus.plan(SynthConfig(hours=0.1, **change))


@pytest.mark.synth
def test_flite_voice_with_its_alignment():
    from ese.data.synth import flite, phonemap

    if not flite.available():
        pytest.skip("libflite not installed")
    voice = flite.Flite("cmu_us_rms")
    voice.set_prosody(rate=1.0)
    r = voice.synth("The old farmer carried a basket")
    assert r.sample_rate == 16000 and len(r.audio) > 8000
    assert [w for w, _, _ in r.words] == ["the", "old", "farmer", "carried", "a", "basket"]
    assert all(phonemap.map_phone(phonemap.FESTIVAL_RADIO, p) for p, _ in r.phones)
    ends = [e for _, e in r.phones]
    assert ends == sorted(ends) and ends[-1] <= len(r.audio) / r.sample_rate + 0.01
    voice.set_prosody(rate=0.8)
    slower = voice.synth("The old farmer carried a basket")
    assert len(slower.audio) > 1.15 * len(r.audio)
