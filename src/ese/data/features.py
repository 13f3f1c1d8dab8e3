"""Acoustic features: Kaldi-compatible log-mel filterbanks, deltas, CMVN, and frame labels.

The fbank itself is kaldi-native-fbank (the same numbers as Kaldi's ``compute-fbank-feats``);
deltas follow Kaldi's ``add-deltas`` (regression window, edge frames replicated), so a user can
reproduce our features with Kaldi. 50 mel bins + log energy = 51 statics, x3 with deltas = 153.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import kaldi_native_fbank as knf
import numpy as np

from ese.config import FeatureConfig
from ese.data.phones import INDEX_48, fold_61_to_48
from ese.data.timit import PhoneSegment
from ese.errors import FeatureError

_INT16_SCALE = 32768.0  # Kaldi reads 16-bit PCM as integers; keep its energy scale


def fbank_options(cfg: FeatureConfig) -> knf.FbankOptions:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(cfg.sample_rate)
    opts.frame_opts.frame_length_ms = cfg.frame_length_ms
    opts.frame_opts.frame_shift_ms = cfg.frame_shift_ms
    opts.frame_opts.dither = cfg.dither
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = cfg.num_mel_bins
    opts.mel_opts.low_freq = cfg.low_freq
    opts.mel_opts.high_freq = cfg.high_freq
    opts.use_energy = cfg.use_energy
    return opts


def num_frames(num_samples: int, cfg: FeatureConfig) -> int:
    """Kaldi's frame count with snip_edges: only whole windows."""
    win = int(round(cfg.sample_rate * cfg.frame_length_ms / 1000))
    shift = cfg.frame_shift_samples
    return 0 if num_samples < win else 1 + (num_samples - win) // shift


def fbank(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Static log-mel (+ log energy first, Kaldi's order) features, (T, bins + energy) float32."""
    computer = knf.OnlineFbank(fbank_options(cfg))
    computer.accept_waveform(float(cfg.sample_rate), np.asarray(samples, np.float32) * _INT16_SCALE)
    computer.input_finished()
    n = computer.num_frames_ready
    if n == 0:
        return np.zeros((0, cfg.num_mel_bins + int(cfg.use_energy)), np.float32)
    return np.stack([computer.get_frame(i) for i in range(n)]).astype(np.float32)


def static_features(samples: np.ndarray, cfg: FeatureConfig, what: str) -> np.ndarray:
    """:func:`fbank` of one file's samples, refusing audio shorter than one analysis window and
    non-finite results: the corpus reader and ``ese transcribe`` (both engines) share it."""
    static = fbank(samples, cfg)
    if static.shape[0] == 0:
        win = int(round(cfg.sample_rate * cfg.frame_length_ms / 1000))
        raise FeatureError(f"{what}: audio shorter than one analysis window ({len(samples)} samples; "
                           f"at least {win} needed, {cfg.frame_length_ms:g} ms at {cfg.sample_rate} Hz)")
    check_finite(static, what)
    return static


def delta_kernels(order: int, window: int) -> list[np.ndarray]:
    """Kaldi's delta scales: order 0 is [1]; each next order convolves with the regression window."""
    base = np.arange(-window, window + 1, dtype=np.float64)
    base /= 2.0 * np.sum(np.arange(1, window + 1) ** 2)
    kernels = [np.ones(1)]
    for _ in range(order):
        kernels.append(np.convolve(kernels[-1], base))
    return kernels


def add_deltas(feats: np.ndarray, order: int, window: int) -> np.ndarray:
    """Append deltas up to ``order``: (T, F) -> (T, F * (order + 1)), edges clamped like Kaldi."""
    t = feats.shape[0]
    blocks = [feats]
    for kernel in delta_kernels(order, window)[1:]:
        half = len(kernel) // 2
        idx = np.clip(np.arange(t)[:, None] + np.arange(-half, half + 1)[None, :], 0, t - 1)  # (T, K)
        blocks.append(np.einsum("tkf,k->tf", feats[idx], kernel))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def frame_labels(segments: Sequence[PhoneSegment], n_frames: int, cfg: FeatureConfig) -> np.ndarray:
    """48-class index of the phone under each frame's centre sample; -1 where none (q, gaps)."""
    win = int(round(cfg.sample_rate * cfg.frame_length_ms / 1000))
    centres = np.arange(n_frames) * cfg.frame_shift_samples + win // 2
    labels = np.full(n_frames, -1, dtype=np.int64)
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    classes = np.array([INDEX_48.get(fold_61_to_48(s.phone) or "", -1) for s in segments])
    seg = np.searchsorted(starts, centres, side="right") - 1
    inside = (seg >= 0) & (centres < ends[np.clip(seg, 0, None)])
    labels[inside] = classes[seg[inside]]
    return labels


def apply_cmvn(feats: list[np.ndarray], groups: Sequence[str], mode: str) -> list[np.ndarray]:
    """Mean and variance normalisation per speaker, per utterance, or none."""
    if mode == "none":
        return feats
    if mode == "utterance":
        keys = list(range(len(feats)))
    elif mode == "speaker":
        keys = list(groups)
    else:
        raise FeatureError(f"unknown CMVN mode {mode!r}; choose speaker, utterance or none")
    members: dict = defaultdict(list)
    for i, key in enumerate(keys):
        members[key].append(i)
    out: list[np.ndarray] = [np.empty(0)] * len(feats)
    for idx in members.values():
        stacked = np.concatenate([feats[i] for i in idx]).astype(np.float64)
        mean = stacked.mean(axis=0)
        std = np.sqrt(np.maximum(stacked.var(axis=0), 1e-10))
        for i in idx:
            out[i] = ((feats[i] - mean) / std).astype(np.float32)
    return out


def check_finite(feats: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(feats)):
        raise FeatureError(f"{what}: features contain NaN or inf (silent or corrupt audio?)")
