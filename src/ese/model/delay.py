"""The output delay's input padding, shared by training (cross-entropy and CTC) and decoding."""

from __future__ import annotations

import numpy as np


def pad_for_delay(feats: np.ndarray, delay: int) -> np.ndarray:
    """(T, D) -> (T + delay, D): repeat the last frame so outputs exist for the last labels."""
    if delay < 0:
        raise ValueError(f"output delay must be >= 0, not {delay!r}")
    if delay == 0 or len(feats) == 0:
        return feats
    return np.concatenate([feats, np.repeat(feats[-1:], delay, axis=0)], axis=0)
