"""Training input shared by cross-entropy and CTC batches (and decoding): the feature check and
the output delay's padding."""

from __future__ import annotations

import numpy as np

from ese.errors import FeatureError


def check_utterance_features(u, input_dim: int) -> None:
    """FeatureError unless utterance ``u``'s features are (frames, ``input_dim``) and finite."""
    if u.feats.ndim != 2 or u.feats.shape[1] != input_dim:
        raise FeatureError(f"utterance {u.utt_id!r} has feature shape {u.feats.shape}; "
                           f"the model expects (frames, {input_dim})")
    if not np.isfinite(u.feats).all():
        raise FeatureError(f"utterance {u.utt_id!r} contains NaN or inf features")


def pad_for_delay(feats: np.ndarray, delay: int) -> np.ndarray:
    """(T, D) -> (T + delay, D): repeat the last frame so outputs exist for the last labels."""
    if delay < 0:
        raise ValueError(f"output delay must be >= 0, not {delay!r}")
    if delay == 0 or len(feats) == 0:
        return feats
    return np.concatenate([feats, np.repeat(feats[-1:], delay, axis=0)], axis=0)
