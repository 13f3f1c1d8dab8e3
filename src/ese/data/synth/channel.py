"""Recording channel: band limits, microphone colouring and codec-like distortion.

All filters run forwards and backwards (``sosfiltfilt``): zero phase, so no phone boundary moves.

- **band limits**: a 4th-order Butterworth high-pass at ``hp_hz`` (mains hum / small microphones
  lose the bass) and low-pass at ``lp_hz`` (telephone 3.4 kHz up to wideband 7.8 kHz);
- **colouring**: peaking equaliser sections (``eq``: centre Hz, gain dB, Q), as a microphone's
  or a room's frequency response;
- **codec**: ``mulaw`` (8-bit mu-law quantisation, as G.711), ``telephone`` (down to 8 kHz,
  8-bit mu-law, back up to 16 kHz), ``clip`` (soft saturation of an over-driven input), or
  ``none``.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

SAMPLE_RATE = 16000
CODECS = ("none", "mulaw", "telephone", "clip")
CLIP_DRIVE = 2.0  # tanh saturation: the peak is driven to tanh(2) = 0.96 of full swing


def _peaking(f0: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """One RBJ peaking-EQ biquad as an sos row."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sr
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def mulaw(x: np.ndarray, bits: int = 8, mu: float = 255.0) -> np.ndarray:
    """Quantise ``x`` (peak scaled to 1 first, then back) through ``bits``-bit mu-law."""
    peak = float(np.abs(x).max(initial=0.0))
    if peak == 0:
        return x
    y = x / peak
    comp = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
    levels = 2 ** (bits - 1)
    comp = np.round(comp * levels) / levels
    return peak * np.sign(comp) * np.expm1(np.abs(comp) * np.log1p(mu)) / mu


def apply(x: np.ndarray, *, hp_hz: float = 0.0, lp_hz: float = 0.0,
          eq: tuple[tuple[float, float, float], ...] = (), codec: str = "none",
          sr: int = SAMPLE_RATE) -> np.ndarray:
    """``x`` through the channel (float in, float out, same length)."""
    y = np.asarray(x, dtype=np.float64)
    sections = []
    if hp_hz > 0:
        sections.append(butter(4, hp_hz, btype="highpass", fs=sr, output="sos"))
    if 0 < lp_hz < sr / 2:
        sections.append(butter(4, lp_hz, btype="lowpass", fs=sr, output="sos"))
    for f0, gain, q in eq:
        sections.append(_peaking(f0, gain, q, sr))
    if sections and len(y) > 30:
        y = sosfiltfilt(np.concatenate(sections), y)
    if codec == "mulaw":
        y = mulaw(y)
    elif codec == "telephone":
        down = resample_poly(y, 1, 2)
        y = resample_poly(mulaw(down), 2, 1)[: len(y)]
        y = np.pad(y, (0, len(x) - len(y)))
    elif codec == "clip":
        peak = float(np.abs(y).max(initial=0.0))
        if peak > 0:
            y = np.tanh(CLIP_DRIVE * y / peak) * peak / np.tanh(CLIP_DRIVE)
    elif codec != "none":
        raise ValueError(f"unknown codec {codec!r}; expected one of {CODECS}")
    return y
