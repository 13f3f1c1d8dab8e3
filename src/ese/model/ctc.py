"""CTC training over the 48-phone set: targets, whole-utterance batches, the loss (with distillation).

Output layer: 49 classes, the 48 training phones in ``PHONES_48`` order and the blank last
(``ese.data.phones.BLANK_INDEX``); ``train.loss=ctc`` sets ``model.num_classes`` to 49, and the
class count tells every later stage that the model decodes with CTC (``output_kind``).

Targets: an utterance's reference phones (the ``.PHN`` sequence, or the dictionary's for word
transcripts) folded to the 48-set, without ``q`` and without the classes that score as silence
(``sil``, ``epi``, the closures ``cl`` / ``vcl``: the blank absorbs them), repeats collapsed.

Output delay: as in cross-entropy training, the input is padded with ``d`` copies of the last
frame and the first ``d`` outputs are dropped, so the CTC output sequence is the one every
decoder (PyTorch, the integer reference, the CPU engine) produces: row t belongs to input
frame t and has seen ``d`` frames ahead. Utterances are not cut into chunks (CTC needs the
whole label sequence); they are batched by similar length.

Distillation (pruning with ``prune.distill``): the frame-wise KL between the teacher's and the
student's softened posteriors, blank included, over every output frame (there are no labelled
frames to restrict it to). The student starts from the teacher (or shares its training), so
their spike timing agrees and frame-wise KD is meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ese.data.dataset import FeatureSet
from ese.data.phones import BLANK_INDEX, INDEX_48, SILENCE_39, fold_48_to_39, fold_61_to_48
from ese.errors import FeatureError
from ese.model.delay import check_utterance_features, pad_for_delay
from ese.model.teacher import whole_utterance_logits


def ctc_targets(phones61: Sequence[str]) -> np.ndarray:
    """48-class target indices of a reference phone sequence (see the module docstring)."""
    out: list[int] = []
    for p in phones61:
        p48 = fold_61_to_48(p)
        if p48 is None or fold_48_to_39(p48) == SILENCE_39:
            continue
        k = INDEX_48[p48]
        if not out or out[-1] != k:
            out.append(k)
    return np.asarray(out, dtype=np.int64)


def sequence_nll(logp: torch.Tensor | np.ndarray, phones61: Sequence[str]) -> float:
    """CTC negative log-likelihood (nats) of one utterance's log-probs (T, 49) and its phones."""
    lp = torch.as_tensor(np.asarray(logp, dtype=np.float32) if isinstance(logp, np.ndarray) else logp).float()
    tgt = torch.from_numpy(ctc_targets(phones61))
    nll = F.ctc_loss(lp[:, None, :], tgt[None], torch.tensor([lp.shape[0]]), torch.tensor([len(tgt)]),
                     blank=BLANK_INDEX, reduction="sum", zero_infinity=True)
    return float(nll)


@dataclass
class CTCTargets:
    """A batch's targets: concatenated indices, their lengths and the output frames per row."""

    targets: torch.Tensor  # (sum of target lengths,)
    target_lengths: torch.Tensor  # (B,)
    input_lengths: torch.Tensor  # (B,) output frames after the first d are dropped


class CTCBatches:
    """Whole delay-padded utterances and their CTC targets; the trainer's batch source for CTC
    (the counterpart of ``train._Chunks``: ``spans``, ``labelled``, ``order``, ``batch``,
    ``loss``, ``teacher_logits``, ``teacher_batch``)."""

    def __init__(self, fset: FeatureSet, delay: int, input_dim: int) -> None:
        self.delay = delay
        self.x: list[np.ndarray] = []
        self.t: list[np.ndarray] = []
        self.too_short: list[str] = []
        for u in fset.utterances:
            check_utterance_features(u, input_dim)
            tgt = ctc_targets(u.phones)
            if len(tgt) == 0 or u.num_frames < len(tgt):
                self.too_short.append(u.utt_id)  # no path: fewer frames than phones (or no phone)
                continue
            self.x.append(pad_for_delay(np.asarray(u.feats, dtype=np.float32), delay))
            self.t.append(tgt)
        if not self.x:
            raise FeatureError("no training utterance has a CTC target (phones, and at least one frame each)")
        self.spans = list(range(len(self.x)))  # one span per utterance
        # output frames per utterance: the loss's divisor (a data-parallel batch sums its shards')
        self.labelled = np.asarray([len(x) - delay for x in self.x], dtype=np.int64)

    def order(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """A shuffled order in which each run of ``batch_size`` has similar lengths: utterances
        are shuffled, sorted by length within windows of 8 batches, and the batches shuffled."""
        perm = rng.permutation(len(self.x))
        window = 8 * batch_size
        parts = [sorted(perm[i:i + window], key=lambda k: len(self.x[k])) for i in range(0, len(perm), window)]
        flat = np.asarray([k for part in parts for k in part], dtype=np.int64)
        batches = [flat[i:i + batch_size] for i in range(0, len(flat), batch_size)]
        return np.concatenate([batches[i] for i in rng.permutation(len(batches))])

    def batch(self, ids: np.ndarray) -> tuple[torch.Tensor, CTCTargets]:
        """Utterances ``ids`` as (B, T, D) zero-padded inputs and their targets."""
        ids = list(ids)
        longest = max(len(self.x[k]) for k in ids)
        x = np.zeros((len(ids), longest, self.x[0].shape[1]), dtype=np.float32)
        for row, k in enumerate(ids):
            x[row, :len(self.x[k])] = self.x[k]
        y = CTCTargets(torch.from_numpy(np.concatenate([self.t[k] for k in ids])),
                       torch.tensor([len(self.t[k]) for k in ids], dtype=torch.long),
                       torch.tensor([len(self.x[k]) - self.delay for k in ids], dtype=torch.long))
        return torch.from_numpy(x), y

    def loss(self, logits: torch.Tensor, y: CTCTargets, teacher: torch.Tensor | None,
             distill: Any, norm: int | None = None) -> tuple[torch.Tensor, int]:
        """(CTC loss per output frame, output frames); with ``distill``, mixed with frame-wise KD.
        ``norm`` replaces the divisor (the global batch's output frames under data parallelism)."""
        return ctc_loss(logits, y, self.delay, teacher, distill, norm=norm)

    def teacher_logits(self, teacher: torch.nn.Module, batch_size: int = 16) -> list[np.ndarray]:
        """The teacher's logits for every (delay-padded) utterance: (T + d, C) each."""
        return whole_utterance_logits(teacher, self.x, batch_size)

    def teacher_batch(self, ids: np.ndarray, cached: list[np.ndarray]) -> torch.Tensor:
        """The cached teacher logits of utterances ``ids`` as (B, T, C), zero-padded."""
        ids = list(ids)
        longest = max(len(cached[k]) for k in ids)
        t = np.zeros((len(ids), longest, cached[ids[0]].shape[1]), dtype=np.float32)
        for row, k in enumerate(ids):
            t[row, :len(cached[k])] = cached[k]
        return torch.from_numpy(t)


def ctc_loss(logits: torch.Tensor, y: CTCTargets, delay: int, teacher: torch.Tensor | None = None,
             distill: Any = None, norm: int | None = None) -> tuple[torch.Tensor, int]:
    """CTC loss (nats per output frame) of (B, T + d, C) logits, the first ``delay`` outputs dropped.

    With ``distill`` (weight w, temperature T) and the ``teacher``'s logits:
    ``(1 - w) * CTC + w * T^2 * KL(teacher_T || student_T)`` per output frame."""
    out = logits[:, delay:].float()
    logp = F.log_softmax(out, dim=-1)
    n = int(y.input_lengths.sum())
    div = max(n if norm is None else norm, 1)
    ctc = F.ctc_loss(logp.transpose(0, 1), y.targets, y.input_lengths, y.target_lengths,
                     blank=BLANK_INDEX, reduction="sum", zero_infinity=True) / div
    if distill is None or teacher is None or distill.weight == 0:
        return ctc, n
    keep = torch.arange(out.shape[1])[None, :] < y.input_lengths[:, None]  # (B, T) real frames
    temp = distill.temperature
    student = F.log_softmax(out[keep] / temp, dim=-1)
    target = F.log_softmax(teacher[:, delay:delay + out.shape[1]].float()[keep] / temp, dim=-1)
    kl = F.kl_div(student, target, log_target=True, reduction="sum") / div
    return (1 - distill.weight) * ctc + distill.weight * temp * temp * kl, n
