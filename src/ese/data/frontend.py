"""The deployed front end: audio -> the model's input features, whole or chunk by chunk, same numbers.

Training normalises features per speaker (``features.cmvn``), which needs a speaker's whole
audio. A deployed recognizer hears one stream it cannot look ahead in, so it normalises with
statistics carried in the model file (:class:`Normalisation`), measured over the training split
(deltas applied, before CMVN):

``global``
    ``(x_t - mean) / std`` with the training-set mean and standard deviation.
``running``
    CMVN over the stream so far: frame ``t`` is normalised with the mean and variance of frames
    ``0..max(t, warmup_frames - 1)``, started from the training-set statistics weighted as
    ``prior_frames`` frames. The first ``warmup_frames`` frames wait until the warm-up has been
    heard (a one-time latency), later frames are normalised as they arrive; the statistics adapt
    to the speaker and channel, as speaker CMVN did in training. Measured on the paper model
    (models/paper/README.md): far closer to training than ``global``.

:class:`FrontEnd` computes the fbank incrementally (``kaldi-native-fbank``'s online computer), the
deltas per frame once the frames they need exist (Kaldi's ``add-deltas`` with edge frames
replicated), and the normalisation per frame. Every frame's numbers are produced by element-wise
operations on that frame's inputs only, so feeding the audio in one piece or in any chunks
gives bit-identical features: streaming and whole-file transcription agree exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import kaldi_native_fbank as knf
import numpy as np

from ese.config import FeatureConfig
from ese.data.features import delta_kernels, fbank_options
from ese.errors import FeatureError

KINDS = ("global", "running", "none")
DEFAULT_PRIOR_FRAMES = 10  # the prior's weight in frames; chosen by the measurement in models/paper/README.md
DEFAULT_WARMUP_FRAMES = 200  # 2 s of audio heard before the first frame is normalised (same source)
_INT16_SCALE = 32768.0  # as ese.data.features: Kaldi's energy scale for 16-bit PCM


@dataclass(frozen=True)
class Normalisation:
    """What the front end does after deltas: ``kind`` (global, running, none), the training-set
    ``mean`` and ``std`` per feature (float64), the ``frames`` they were measured on, the prior
    weight and warm-up of ``running``, and the CMVN the model was trained with (``trained_with``)."""

    kind: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    frames: int = 0
    prior_frames: int = DEFAULT_PRIOR_FRAMES
    warmup_frames: int = DEFAULT_WARMUP_FRAMES
    trained_with: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FeatureError(f"normalisation kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind != "none":
            if len(self.mean) == 0 or len(self.mean) != len(self.std):
                raise FeatureError(f"{self.kind} normalisation needs a mean and a std of one length, "
                                   f"not {len(self.mean)} and {len(self.std)}")
            if not all(np.isfinite(self.mean)) or not all(s > 0 and np.isfinite(s) for s in self.std):
                raise FeatureError("normalisation statistics must be finite with std > 0")
        if self.prior_frames < 1 or self.warmup_frames < 1:
            raise FeatureError(f"prior_frames and warmup_frames must be >= 1, not "
                               f"{self.prior_frames!r} and {self.warmup_frames!r}")

    @property
    def dim(self) -> int:
        return len(self.mean)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (floats round-trip exactly through Python's JSON)."""
        return {**dataclasses.asdict(self), "mean": [float(v) for v in self.mean],
                "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Normalisation:
        if not isinstance(raw, Mapping):
            raise FeatureError(f"normalisation must be a mapping, not {type(raw).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise FeatureError(f"normalisation has unknown keys {sorted(unknown)}")
        try:
            return cls(kind=str(raw["kind"]), mean=tuple(float(v) for v in raw.get("mean", ())),
                       std=tuple(float(v) for v in raw.get("std", ())), frames=int(raw.get("frames", 0)),
                       prior_frames=int(raw.get("prior_frames", DEFAULT_PRIOR_FRAMES)),
                       warmup_frames=int(raw.get("warmup_frames", DEFAULT_WARMUP_FRAMES)),
                       trained_with=str(raw.get("trained_with", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise FeatureError(f"normalisation is malformed ({type(exc).__name__}: {exc})") from None


def measure_normalisation(feats: list[np.ndarray], cfg: FeatureConfig, kind: str = "running") -> Normalisation:
    """Statistics of ``feats`` (utterances of (T, D) features with deltas, before CMVN)."""
    if cfg.cmvn == "none":
        return Normalisation("none", trained_with="none")
    frames = sum(len(f) for f in feats)
    if frames == 0:
        raise FeatureError("normalisation statistics need at least one frame")
    total = np.zeros(cfg.dim)
    square = np.zeros(cfg.dim)
    for f in feats:
        x = np.asarray(f, dtype=np.float64)
        total += x.sum(axis=0)
        square += (x * x).sum(axis=0)
    mean = total / frames
    std = np.sqrt(np.maximum(square / frames - mean * mean, 1e-10))
    return Normalisation(kind, tuple(mean.tolist()), tuple(std.tolist()), frames, trained_with=cfg.cmvn)


class FrontEnd:
    """Audio in chunks -> normalised feature frames as soon as they are final.

    ``accept(samples)`` takes mono samples (float in [-1, 1), or int16) and returns the frames
    (n, D) float32 that became final; ``finish()`` returns the rest (the last frames, whose deltas
    replicate the final static frame). A frame is final once the fbank frames ``half`` beyond it
    exist (``half`` = delta_order x delta_window, 4 frames by default).
    """

    def __init__(self, cfg: FeatureConfig, norm: Normalisation) -> None:
        if norm.kind != "none" and norm.dim != cfg.dim:
            raise FeatureError(f"normalisation statistics have {norm.dim} features, the feature "
                               f"configuration makes {cfg.dim}")
        self.cfg, self.norm = cfg, norm
        self._fbank = knf.OnlineFbank(fbank_options(cfg))
        self._kernels = [np.asarray(k, dtype=np.float64) for k in delta_kernels(cfg.delta_order, cfg.delta_window)]
        self.half = len(self._kernels[-1]) // 2
        self._statics = np.zeros((0, cfg.num_mel_bins + int(cfg.use_energy)), np.float32)
        self._base = 0  # frame index of self._statics[0]
        self.emitted = 0  # frames returned so far
        self.samples = 0
        self._finished = False
        self._mean = np.asarray(norm.mean, np.float64)
        self._var = np.asarray(norm.std, np.float64) ** 2
        self._sum = self._mean * norm.prior_frames  # running: prior as prior_frames frames
        self._square = (self._var + self._mean ** 2) * norm.prior_frames
        self._count = float(norm.prior_frames)
        self._seen = 0
        self._held: list[np.ndarray] = []  # running: frames waiting for the warm-up to fill

    def accept(self, samples: np.ndarray) -> np.ndarray:
        if self._finished:
            raise FeatureError("the stream is finished; start a new one")
        x = np.asarray(samples)
        if x.ndim != 1:
            raise FeatureError(f"audio chunks must be 1-D (mono samples), not shape {x.shape}")
        if x.dtype == np.int16:
            x = x.astype(np.float32) / np.float32(_INT16_SCALE)
        elif x.dtype.kind != "f":
            raise FeatureError(f"audio samples must be float in [-1, 1) or int16, not {x.dtype}")
        if not np.isfinite(x).all():
            raise FeatureError("audio contains NaN or inf samples")
        self.samples += len(x)
        if len(x):
            self._fbank.accept_waveform(float(self.cfg.sample_rate), x.astype(np.float32) * _INT16_SCALE)
        self._pull()
        ready = self._base + len(self._statics) - self.half  # frames whose deltas need no future edge
        return self._emit(ready, total=None)

    def finish(self) -> np.ndarray:
        """The remaining frames (none if the audio held no whole analysis window)."""
        if self._finished:
            return self._empty()
        self._fbank.input_finished()
        self._pull()
        self._finished = True
        total = self._base + len(self._statics)
        return self._emit(total, total=total)

    # ---- internals ------------------------------------------------------------------------
    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.cfg.dim), np.float32)

    def _pull(self) -> None:
        ready = self._fbank.num_frames_ready
        have = self._base + len(self._statics)
        if ready > have:
            new = np.stack([self._fbank.get_frame(i) for i in range(have, ready)]).astype(np.float32)
            if not np.isfinite(new).all():
                raise FeatureError("features contain NaN or inf (silent or corrupt audio?)")
            self._statics = np.concatenate([self._statics, new])
        # fbank frames before the oldest one any future frame's deltas can reach are not needed
        keep_from = max(self.emitted - self.half, 0)
        drop = keep_from - self._base
        if drop > 0:
            self._statics = self._statics[drop:]
            self._base = keep_from
            if hasattr(self._fbank, "pop"):
                self._fbank.pop(drop)

    def _emit(self, upto: int, total: int | None) -> np.ndarray:
        """Frames ``emitted..upto`` with deltas (edges replicated at 0 and, when ``total`` is
        known, at ``total - 1``) and normalised."""
        if upto <= self.emitted:
            return self._normalise(self._empty().astype(np.float64), final=total is not None)
        t = np.arange(self.emitted, upto)
        last = (total if total is not None else self._base + len(self._statics)) - 1
        blocks = []
        for kernel in self._kernels:
            half = len(kernel) // 2
            acc = np.zeros((len(t), self._statics.shape[1]), np.float64)
            for j in range(len(kernel)):  # fixed order: the same sums whatever the chunking
                idx = np.clip(t + j - half, 0, last) - self._base
                acc += kernel[j] * self._statics[idx].astype(np.float64)
            blocks.append(acc)
        feats = np.concatenate(blocks, axis=1)  # (n, D) float64
        self.emitted = upto
        return self._normalise(feats, final=total is not None)

    def _normalise(self, feats: np.ndarray, final: bool = False) -> np.ndarray:
        kind = self.norm.kind
        if kind == "none":
            return feats.astype(np.float32)
        if kind == "global":
            return ((feats - self._mean) / np.sqrt(self._var)).astype(np.float32)
        out: list[np.ndarray] = []
        warm = self.norm.warmup_frames
        for x in feats:  # running: frame by frame, in order, whatever the chunking
            self._sum += x
            self._square += x * x
            self._count += 1.0
            self._seen += 1
            self._held.append(x)
            if self._seen >= warm:
                out.extend(self._release())
        if final and self._held:
            out.extend(self._release())
        return np.array(out, np.float32).reshape(-1, self.cfg.dim)

    def _release(self) -> list[np.ndarray]:
        """The held frames normalised with the statistics of every frame seen so far."""
        mean = self._sum / self._count
        std = np.sqrt(np.maximum(self._square / self._count - mean * mean, 1e-10))
        held, self._held = self._held, []
        return [(x - mean) / std for x in held]
