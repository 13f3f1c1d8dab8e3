"""Phone error rate (PER) on the 39-class TIMIT scoring set.

Hypotheses come from frame-wise 48-class log-probabilities: the phone-loop Viterbi path under a
switch penalty (:mod:`ese.model.phone_loop`; penalty 0 is the frame-wise argmax), folded to 39,
repeats collapsed, silence dropped; or for a CTC model (49 outputs, blank last) by CTC greedy decoding (collapse repeats,
drop blanks, then the same folding); references from the 61-set ``.PHN`` sequence (fold to 39, drop ``q``, collapse repeats,
drop silence). The alignment is a Levenshtein DP with a backtrace, so substitutions, deletions
and insertions are counted separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ese.data.phones import BLANK_INDEX, MAP_48_TO_39, PHONES_39, SILENCE_39, fold_61_to_39
from ese.model.phone_loop import SWITCH_PENALTY, best_path


@dataclass(frozen=True)
class EditCounts:
    """Edit operations of one alignment (or a sum of them)."""

    sub: int = 0
    dele: int = 0
    ins: int = 0
    n_ref: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins

    def __add__(self, other: "EditCounts") -> "EditCounts":
        return EditCounts(self.sub + other.sub, self.dele + other.dele,
                          self.ins + other.ins, self.n_ref + other.n_ref)


def per_counts(ref: Sequence[str], hyp: Sequence[str]) -> EditCounts:
    """Minimum-edit alignment of ``hyp`` against ``ref``, split into sub / del / ins.

    Among alignments of equal cost the backtrace prefers a match or substitution, then a
    deletion, then an insertion, so the split is deterministic.
    """
    n, m = len(ref), len(hyp)
    # cost[i][j]: edits turning ref[:i] into hyp[:j]; plain lists beat numpy scalar indexing here
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    cost[0] = list(range(m + 1))  # insert every hypothesis phone
    for i in range(1, n + 1):
        r, prev, row = ref[i - 1], cost[i - 1], cost[i]
        row[0] = i  # delete every reference phone
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (r != hyp[j - 1]), prev[j] + 1, row[j - 1] + 1)
    sub = dele = ins = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            sub += int(ref[i - 1] != hyp[j - 1])
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            dele += 1
            i -= 1
        else:
            ins += 1
            j -= 1
    assert sub + dele + ins == cost[n][m]
    return EditCounts(sub=sub, dele=dele, ins=ins, n_ref=n)


def _collapse_drop_silence(seq: Iterable[str]) -> list[str]:
    out: list[str] = []
    prev = None
    for p in seq:
        if p != prev and p != SILENCE_39:
            out.append(p)
        prev = p
    return out


def frames_to_phones(pred48: np.ndarray) -> list[str]:
    """Frame-wise 48-class indices (T,) -> 39-class phone sequence without repeats or silence."""
    folded = MAP_48_TO_39[np.asarray(pred48, dtype=np.int64)]
    return _collapse_drop_silence(PHONES_39[k] for k in folded)


def ctc_to_phones(pred49: np.ndarray) -> list[str]:
    """CTC greedy decoding of frame-wise argmaxes over 48 phones + blank (index 48): collapse
    repeats, drop blanks, then fold to 39 classes (collapsing again, silence dropped)."""
    pred = np.asarray(pred49, dtype=np.int64)
    if pred.size == 0:
        return []
    keep = np.ones(pred.size, dtype=bool)
    keep[1:] = pred[1:] != pred[:-1]
    pred = pred[keep]
    return frames_to_phones(pred[pred != BLANK_INDEX])


def decode_log_probs(logp: np.ndarray, kind: str = "ce", switch_penalty: float = SWITCH_PENALTY) -> list[str]:
    """The 39-class phone string of (T, C) log-probabilities: ``ce`` the phone-loop Viterbi path
    under ``switch_penalty`` (0 = greedy), ``ctc`` CTC greedy (no penalty: CTC's blank already
    separates its spiky outputs)."""
    if kind == "ctc":
        return ctc_to_phones(np.asarray(logp).argmax(axis=1))
    return frames_to_phones(best_path(logp, switch_penalty))


def ref_phones(phones61: Sequence[str]) -> list[str]:
    """A ``.PHN`` 61-set sequence -> 39-class reference: q removed, repeats collapsed, no silence."""
    folded = (fold_61_to_39(p) for p in phones61)
    return _collapse_drop_silence(p for p in folded if p is not None)


def frame_counts(pred48: np.ndarray, labels48: np.ndarray) -> tuple[int, int]:
    """(correct, labelled) frames after folding both sides to 39 classes; label -1 is ignored."""
    labels48 = np.asarray(labels48, dtype=np.int64)
    keep = labels48 >= 0
    pred = MAP_48_TO_39[np.asarray(pred48, dtype=np.int64)[keep]]
    ref = MAP_48_TO_39[labels48[keep]]
    return int((pred == ref).sum()), int(keep.sum())


def _percent(num: float, den: float) -> float:
    return 100.0 * num / den if den else float("nan")


def score(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], *,
          frames_correct: int = 0, frames_total: int = 0) -> dict[str, float | int]:
    """Aggregate PER over utterances (39-class phone sequences, already folded).

    Returns percentages ``per``, ``sub_pct``, ``del_pct``, ``ins_pct`` (of the reference phone
    count; NaN when there are no reference phones), the raw counts ``sub``, ``del``, ``ins``,
    ``n_ref``, ``utterances``, and ``frame_acc`` (percent of labelled frames, NaN without frames).
    """
    if len(refs) != len(hyps):
        raise ValueError(f"score needs one hypothesis per reference: {len(refs)} refs, "
                         f"{len(hyps)} hyps")
    total = EditCounts()
    for ref, hyp in zip(refs, hyps):
        total = total + per_counts(ref, hyp)
    return {
        "per": _percent(total.errors, total.n_ref),
        "sub": total.sub, "del": total.dele, "ins": total.ins, "n_ref": total.n_ref,
        "sub_pct": _percent(total.sub, total.n_ref),
        "del_pct": _percent(total.dele, total.n_ref),
        "ins_pct": _percent(total.ins, total.n_ref),
        "utterances": len(refs),
        "frame_acc": _percent(frames_correct, frames_total),
        "frames": frames_total,
    }


def score_utterances(utterances: Sequence, outputs: Iterable[tuple[int, np.ndarray, float]], *,
                     return_hyps: bool = False, kind: str = "ce", switch_penalty: float = SWITCH_PENALTY) -> dict:
    """PER, frame accuracy and mean loss of frame log-probabilities, however they were computed.

    ``utterances`` have ``labels`` (48-class, -1 unlabelled), ``phones`` (61-set) and ``utt_id``;
    ``outputs`` yields ``(k, logp (T, C), nll_k)`` once per utterance k, in any order, with
    ``nll_k`` the summed negative log-likelihood of its labelled frames. Frame accuracy is the
    frame-wise argmax's; the transcript is :func:`decode_log_probs`'s. One scorer for every
    engine (PyTorch, the integer reference model, the CPU engine), so their figures compare.
    ``loss`` is the summed nll over labelled frames; with ``return_hyps``, ``utterances`` lists
    per utterance its id, reference, hypothesis and edit counts.

    ``kind`` "ctc" (a CTC model's 49-class argmaxes and CTC nll per utterance): greedy CTC
    decoding, ``loss`` per output frame, ``frames`` every output frame, ``frame_acc`` NaN (a CTC
    model has no frame alignment to be accurate against).
    """
    hyps: list[list[str]] = [[] for _ in utterances]
    nll = 0.0
    correct = total = 0
    for k, logp, nll_k in outputs:
        pred = np.asarray(logp).argmax(axis=1)
        c, n = (0, len(pred)) if kind == "ctc" else frame_counts(pred, utterances[k].labels)
        correct, total, nll = correct + c, total + n, nll + nll_k
        hyps[k] = decode_log_probs(logp, kind, switch_penalty)
    refs = [ref_phones(u.phones) for u in utterances]
    result: dict = score(refs, hyps, frames_correct=correct, frames_total=total)
    if kind == "ctc":
        result["frame_acc"] = float("nan")
    result["loss"] = nll / total if total else float("nan")
    if return_hyps:
        result["utterances"] = []
        for u, ref, hyp in zip(utterances, refs, hyps):
            counts = per_counts(ref, hyp)
            result["utterances"].append({"utt_id": u.utt_id, "ref": ref, "hyp": hyp, "sub": counts.sub,
                                         "del": counts.dele, "ins": counts.ins, "n_ref": counts.n_ref})
    return result
