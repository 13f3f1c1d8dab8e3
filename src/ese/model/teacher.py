"""A teacher's logits over whole utterances, once per distillation run (frame-wise and CTC alike)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def whole_utterance_logits(teacher: torch.nn.Module, inputs: Sequence[np.ndarray],
                           batch_size: int = 16) -> list[np.ndarray]:
    """The teacher's logits (T, C) for every (already delay-padded) input (T, D), in input order.

    Utterances of similar length share a batch; shorter ones are zero-padded at the end, which
    cannot change their outputs because the model is causal.
    """
    out: list[np.ndarray] = [np.empty(0)] * len(inputs)
    order = sorted(range(len(inputs)), key=lambda k: len(inputs[k]))
    was_training = teacher.training
    teacher.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                longest = max(len(inputs[k]) for k in idx)
                x = np.zeros((len(idx), longest, inputs[idx[0]].shape[1]), dtype=np.float32)
                for row, k in enumerate(idx):
                    x[row, :len(inputs[k])] = inputs[k]
                logits, _ = teacher(torch.from_numpy(x))
                for row, k in enumerate(idx):
                    out[k] = logits[row, :len(inputs[k])].float().numpy().copy()
    finally:
        teacher.train(was_training)
    return out
