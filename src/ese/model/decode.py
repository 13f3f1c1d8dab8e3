"""Decoding: frame posteriors aligned to the input, phone transcripts (phone-loop Viterbi), PER evaluation.

The model is trained with an output delay d: its output at frame t + d predicts the label of
frame t. Decoding therefore appends d frames (copies of the last frame) to the input and drops the
first d outputs, so row t of the result belongs to input frame t.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ese.data.dataset import FeatureSet
from ese.data.phones import output_kind
from ese.errors import FeatureError
from ese.model.ctc import sequence_nll
from ese.model.delay import pad_for_delay  # noqa: F401  (re-exported: older imports use it from here)
from ese.model.lstmp import AcousticModel
from ese.model.phone_loop import SWITCH_PENALTY
from ese.model.scoring import decode_log_probs, score_utterances




@contextlib.contextmanager
def _eval_mode(model: AcousticModel) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _check_feats(model: AcousticModel, feats: np.ndarray, what: str) -> None:
    if feats.ndim != 2 or feats.shape[1] != model.cfg.input_dim:
        raise FeatureError(f"{what} has feature shape {tuple(feats.shape)}, but the model expects "
                           f"(frames, {model.cfg.input_dim}); were the features computed with "
                           "the configuration the model was trained on?")
    if not np.isfinite(feats).all():
        raise FeatureError(f"{what} contains NaN or inf feature values")


def batched_log_probs(model: AcousticModel, feats: Sequence[np.ndarray], output_delay: int,
                      batch_size: int = 16) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (index into ``feats``, log-probs (T, C) aligned to input frames), in length order.

    Utterances of similar length share a batch; the shorter ones are zero-padded at the end,
    which cannot change their outputs because the model is causal.
    """
    device = next(model.parameters()).device
    order = sorted(range(len(feats)), key=lambda k: len(feats[k]))
    with _eval_mode(model):
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            padded = [pad_for_delay(feats[k], output_delay) for k in idx]
            longest = max(len(p) for p in padded)
            x = np.zeros((len(idx), longest, model.cfg.input_dim), dtype=np.float32)
            for row, p in enumerate(padded):
                x[row, :len(p)] = p
            logits, _ = model(torch.from_numpy(x).to(device))  # (B, T + d, C)
            logp = F.log_softmax(logits.float(), dim=-1).cpu()
            for row, k in enumerate(idx):
                n = len(feats[k])
                yield k, logp[row, output_delay:output_delay + n]  # (T, C)


def posteriors(model: AcousticModel, feats: np.ndarray, output_delay: int) -> np.ndarray:
    """Log-probabilities (T, C) of one utterance's features (T, D), row t for input frame t."""
    feats = np.asarray(feats, dtype=np.float32)
    _check_feats(model, feats, "the input")
    ((_, logp),) = batched_log_probs(model, [feats], output_delay, batch_size=1)
    return logp.numpy()


def transcribe(model: AcousticModel, feats: np.ndarray, output_delay: int,
               switch_penalty: float = SWITCH_PENALTY) -> list[str]:
    """39-class phone transcript of one utterance: the phone-loop path under ``switch_penalty``
    (0 = greedy; CTC greedy for a CTC model)."""
    return decode_log_probs(posteriors(model, feats, output_delay), output_kind(model.cfg.num_classes),
                            switch_penalty)


def evaluate(model: AcousticModel, fset: FeatureSet, output_delay: int, *, batch_size: int = 16,
             return_hyps: bool = False, switch_penalty: float = SWITCH_PENALTY) -> dict[str, Any]:
    """PER and frame accuracy of ``model`` on ``fset`` (see :func:`ese.model.scoring.score`).

    Also returns ``loss``: mean cross-entropy (nats) over labelled frames; for a CTC model the
    CTC loss per output frame, with CTC greedy decoding (``score_utterances``). With ``return_hyps``,
    ``utterances`` lists per utterance its id, reference, hypothesis and edit counts.
    """
    for u in fset.utterances:
        _check_feats(model, u.feats, f"utterance {u.utt_id!r}")

    kind = output_kind(model.cfg.num_classes)

    def outputs() -> Iterator[tuple[int, np.ndarray, float]]:
        for k, logp in batched_log_probs(model, [u.feats for u in fset.utterances], output_delay, batch_size):
            if kind == "ctc":
                yield k, logp.numpy(), sequence_nll(logp, fset.utterances[k].phones)
                continue
            labels = torch.from_numpy(np.asarray(fset.utterances[k].labels, dtype=np.int64))
            nll = float(F.nll_loss(logp, labels, ignore_index=-1, reduction="sum")) if (labels >= 0).any() else 0.0
            yield k, logp.numpy(), nll

    return score_utterances(fset.utterances, outputs(), return_hyps=return_hyps, kind=kind,
                            switch_penalty=switch_penalty)
