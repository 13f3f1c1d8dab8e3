"""Simulated room impulse responses: direct path, image-source early reflections, diffuse tail.

``rir(rt60, drr_db, rng)`` builds a 16 kHz impulse response for a random shoebox room:

- **early reflections**: the first-order and second-order image sources of a shoebox room
  (3-8 m x 3-7 m x 2.4-3.5 m, source and microphone at random positions at least 0.5 m from the
  walls), each delayed by its extra path length over the direct path and attenuated by 1/distance
  and by the wall reflection coefficient ``sqrt(1 - alpha)`` per bounce, with Sabine's
  ``alpha = 0.161 V / (S rt60)``;
- **late reverberation**: Gaussian noise under an exponential envelope that falls 60 dB in
  ``rt60`` seconds, starting at the first reflection, low-passed a little more as it decays;
- the direct path is sample 0 with gain 1 (so convolution does not move the phone boundaries), and
  the reflections + tail are scaled to the requested direct-to-reverberant energy ratio.

``reverberate`` convolves and keeps the input's length (the tail beyond falls into the trailing
silence padding of the utterance, which ``perturb`` adds before reverberating).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.signal import fftconvolve, lfilter

SAMPLE_RATE = 16000
SPEED_OF_SOUND = 343.0


def _room(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dims = np.array([rng.uniform(3, 8), rng.uniform(3, 7), rng.uniform(2.4, 3.5)])
    src = np.array([rng.uniform(0.5, d - 0.5) for d in dims])
    mic = np.array([rng.uniform(0.5, d - 0.5) for d in dims])
    return dims, src, mic


def _images(dims: np.ndarray, src: np.ndarray, mic: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(distance, bounces) of every image source up to ``order`` reflections, direct path first."""
    dists, bounces = [], []
    rng1 = range(-order, order + 1)
    for nx, ny, nz in itertools.product(rng1, rng1, rng1):
        for px, py, pz in itertools.product((0, 1), repeat=3):
            count = abs(2 * nx - px) + abs(2 * ny - py) + abs(2 * nz - pz)
            if count > order:
                continue
            pos = np.array([(1 - 2 * px) * src[0] + 2 * nx * dims[0],
                            (1 - 2 * py) * src[1] + 2 * ny * dims[1],
                            (1 - 2 * pz) * src[2] + 2 * nz * dims[2]])
            dists.append(float(np.linalg.norm(pos - mic)))
            bounces.append(count)
    d, b = np.array(dists), np.array(bounces)
    order_idx = np.lexsort((d, b))
    return d[order_idx], b[order_idx]


def rir(rt60: float, drr_db: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A room impulse response with the direct path at sample 0 (gain 1)."""
    if rt60 <= 0:
        return np.ones(1)
    dims, src, mic = _room(rng)
    volume = float(np.prod(dims))
    surface = 2 * float(dims[0] * dims[1] + dims[0] * dims[2] + dims[1] * dims[2])
    alpha = min(0.95, 0.161 * volume / (surface * rt60))
    beta = np.sqrt(1 - alpha)
    dist, bounce = _images(dims, src, mic, order=2)
    direct = dist[0]
    length = int(sr * min(1.5 * rt60, 1.2)) + 1
    h = np.zeros(length)
    for d, b in zip(dist[1:], bounce[1:]):
        delay = int(round((d - direct) / SPEED_OF_SOUND * sr))
        if 0 < delay < length:
            h[delay] += (direct / d) * beta**b * (1 if rng.random() < 0.5 else -1)
    first = max(1, int(np.flatnonzero(h)[0]) if h.any() else 1)
    t = np.arange(length - first) / sr
    tail = rng.standard_normal(length - first) * np.exp(-6.9078 * t / rt60)  # -60 dB at rt60
    tail = lfilter([0.6, 0.4], [1.0], tail)  # a gentle high-frequency loss
    h[first:] += tail * np.abs(h[first]) * 0.5
    reverb_energy = float(np.sum(h[1:] ** 2))
    if reverb_energy > 0:
        h[1:] *= np.sqrt(10 ** (-drr_db / 10) / reverb_energy)  # direct energy is 1
    h[0] = 1.0
    return h


def reverberate(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``h``, cut to ``len(x)``."""
    if len(h) <= 1:
        return x * (h[0] if len(h) else 1.0)
    return fftconvolve(x, h)[: len(x)]


def decay_time(h: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """T20-style estimate (s): Schroeder backward integral from -5 to -25 dB, extrapolated to -60."""
    energy = np.cumsum(h[::-1] ** 2)[::-1]
    edc = 10 * np.log10(np.maximum(energy / energy[0], 1e-12))
    start, stop = np.argmax(edc <= -5), np.argmax(edc <= -25)
    if stop <= start:
        return 0.0
    return 3.0 * (stop - start) / sr
