"""Speaker variation applied after synthesis: speed / vocal-tract resampling, padding, room,
noise, channel, gain.

``finish`` takes native-rate audio with its TIMIT segments and words and returns 16 kHz int16
audio whose .PHN / .WRD sample times were rescaled by exactly the resampling ratio. Room
(``room.rir``, direct path at sample 0) and channel (zero-phase filters, ``channel``) move no
boundary; reverberation tails run into the trailing h# padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy.signal import lfilter, resample_poly

from ese.data.synth import channel, room
from ese.data.synth.align import SILENCES, Segment

SAMPLE_RATE = 16000
NOISE_TYPES = ("white", "pink", "babble", "talkers")
LEAD_S = (0.06, 0.2)  # leading / trailing silence added around the speech (becomes h#)
MAX_DENOMINATOR = 400


@dataclass(frozen=True)
class Variation:
    """How one speaker departs from its base voice."""

    pitch: float  # factor on the voice's F0 (engine parameter)
    rate: float  # factor on the speaking rate (engine parameter)
    speed: float  # resampling factor: > 1 is faster and higher (speed / vocal-tract perturbation)
    snr_db: float
    noise: str  # one of NOISE_TYPES
    gain_db: float  # peak level below full scale
    # the recording session (all defaults = none: the clean test split and older corpora)
    rt60: float = 0.0  # room reverberation time (s); 0 = no room
    drr_db: float = 0.0  # direct-to-reverberant energy ratio of the room impulse response
    room_seed: int = 0  # the room's geometry and diffuse tail (one room per speaker)
    hp_hz: float = 0.0  # channel high-pass corner; 0 = none
    lp_hz: float = 0.0  # channel low-pass corner; 0 = none
    eq: tuple[tuple[float, float, float], ...] = ()  # microphone colouring: (Hz, dB, Q) peaks
    codec: str = "none"  # one of channel.CODECS
    snr_choices: tuple[float, ...] = ()  # non-empty: each utterance draws its SNR from these
    talkers: int = 0  # voices in "talkers" babble


def resample_ratio(native_sr: int, speed: float) -> Fraction:
    """Output samples per native sample: 16 kHz over the speed-scaled native rate."""
    return Fraction(SAMPLE_RATE / (native_sr * speed)).limit_denominator(MAX_DENOMINATOR)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    # Kellet's economical 1/f filter on white noise
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    return lfilter(b, a, rng.standard_normal(n + 2000))[2000:]


def _babble(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # several time-reversed, circularly shifted copies of the utterance itself: speech-shaped,
    # unintelligible, and independent of any other utterance (so resume stays deterministic)
    rev = speech[::-1]
    out = np.zeros_like(speech)
    for _ in range(4):
        out += np.roll(rev, int(rng.integers(len(speech))))
    return out


_TALKER_BANK: list[np.ndarray] = []


def set_talker_bank(bank: list[np.ndarray]) -> None:
    """Utterances of other synthetic speakers (16 kHz float) that "talkers" babble is made of."""
    _TALKER_BANK[:] = [np.asarray(b, dtype=np.float64) for b in bank if len(b)]


def talker_babble(n: int, talkers: int, rng: np.random.Generator,
                  bank: list[np.ndarray] | None = None) -> np.ndarray:
    """``talkers`` independent streams of other speakers' utterances end to end, each at unit
    power from a random offset, summed."""
    bank = _TALKER_BANK if bank is None else bank
    if not bank:
        raise ValueError("talkers babble needs a talker bank (set_talker_bank)")
    out = np.zeros(n)
    for _ in range(max(1, talkers)):
        pieces, have = [], 0
        while have < 2 * n:
            piece = bank[int(rng.integers(len(bank)))]
            pieces.append(piece)
            have += len(piece)
        stream = np.concatenate(pieces)
        start = int(rng.integers(len(stream) - n + 1))
        part = stream[start: start + n]
        power = float(np.mean(part**2))
        out += part / np.sqrt(power) if power > 0 else part
    return out


def make_noise(kind: str, speech: np.ndarray, rng: np.random.Generator, talkers: int = 4) -> np.ndarray:
    n = len(speech)
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        return _pink(n, rng)
    if kind == "babble":
        return _babble(speech, rng)
    if kind == "talkers":
        return talker_babble(n, talkers, rng)
    raise ValueError(f"unknown noise type {kind!r}; expected one of {NOISE_TYPES}")


def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float, speech: slice) -> np.ndarray:
    """``x`` plus ``noise`` scaled so that power(x[speech]) / power(noise) is ``snr_db``."""
    speech_power = float(np.mean(x[speech] ** 2)) if len(x[speech]) else 0.0
    noise_power = float(np.mean(noise**2))
    if speech_power > 0 and noise_power > 0:
        return x + noise * np.sqrt(speech_power / noise_power / 10 ** (snr_db / 10))
    return x


def finish(audio: np.ndarray, sr: int, segments: list[Segment], words: list[tuple[str, int, int]],
           var: Variation, rng: np.random.Generator
           ) -> tuple[np.ndarray, list[Segment], list[tuple[str, int, int]]]:
    """Resample, pad with h#, add noise and quantise; returns (int16 audio, segments, words)."""
    ratio = resample_ratio(sr, var.speed)
    x = resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator)
    n = len(x)

    def scale(t: int) -> int:
        return min(n, int(round(t * ratio)))

    segs = [(p, scale(s), scale(e)) for p, s, e in segments]
    segs = [s for s in segs if s[2] > s[1]]
    # the audio may run past festival's last segment end: the last segment absorbs it
    segs[-1] = (segs[-1][0], segs[-1][1], n)
    segs[0] = (segs[0][0], 0, segs[0][2])

    lead = int(rng.uniform(*LEAD_S) * SAMPLE_RATE)
    tail = int(rng.uniform(*LEAD_S) * SAMPLE_RATE)
    x = np.concatenate([np.zeros(lead), x, np.zeros(tail)])
    segs = [(p, s + lead, e + lead) for p, s, e in segs]
    segs = [("h#", 0, lead), *segs, ("h#", lead + n, lead + n + tail)]
    segs = _merge_silences(segs)

    total = len(x)
    wrd = []
    bounds = np.array([s for _, s, _ in segs] + [total])
    for word, s, e in words:
        s2, e2 = _snap(bounds, scale(s) + lead), _snap(bounds, scale(e) + lead)
        s2, e2 = _trim_silence(segs, s2, e2)
        if e2 > s2:
            wrd.append((word, s2, e2))

    if var.rt60 > 0:
        x = room.reverberate(x, room.rir(var.rt60, var.drr_db, np.random.default_rng(var.room_seed)))
    snr = var.snr_db
    if var.snr_choices:
        snr = float(var.snr_choices[int(rng.integers(len(var.snr_choices)))])
    x = mix_at_snr(x, make_noise(var.noise, x, rng, var.talkers), snr, slice(lead, lead + n))
    if var.hp_hz > 0 or var.lp_hz > 0 or var.eq or var.codec != "none":
        x = channel.apply(x, hp_hz=var.hp_hz, lp_hz=var.lp_hz, eq=var.eq, codec=var.codec)
    peak = float(np.abs(x).max(initial=0.0))
    if peak > 0:
        x = x * (10 ** (-var.gain_db / 20) / peak)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    return pcm, segs, wrd


def _merge_silences(segs: list[Segment]) -> list[Segment]:
    """Adjacent silences become one; the first and last silence of the utterance are h#."""
    out: list[list] = []
    for p, s, e in segs:
        if out and p in SILENCES and out[-1][0] in SILENCES:
            out[-1][2] = e
            if p == "h#":
                out[-1][0] = "h#"
        else:
            out.append([p, s, e])
    out[0][0] = "h#"
    out[-1][0] = "h#"
    return [(p, s, e) for p, s, e in out]


def _trim_silence(segs: list[Segment], start: int, end: int) -> tuple[int, int]:
    """Shrink a word span so that it neither starts nor ends with a silence segment."""
    inside = [seg for seg in segs if seg[1] >= start and seg[2] <= end]
    while inside and inside[0][0] in SILENCES:
        start = inside.pop(0)[2]
    while inside and inside[-1][0] in SILENCES:
        end = inside.pop()[1]
    return start, end


def _snap(bounds: np.ndarray, t: int) -> int:
    """The phone boundary nearest to ``t``."""
    return int(bounds[np.argmin(np.abs(bounds - t))])
