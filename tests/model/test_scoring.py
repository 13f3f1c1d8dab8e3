"""PER scoring: hand-worked alignments and the 61/48 -> 39 folding rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ese.data.phones import INDEX_48
from ese.model.scoring import EditCounts, frame_counts, frames_to_phones, per_counts, ref_phones, score


@pytest.mark.parametrize("ref, hyp, expected", [
    ("a b c d", "a x c", EditCounts(sub=1, dele=1, ins=0, n_ref=4)),
    ("a b", "a x b", EditCounts(sub=0, dele=0, ins=1, n_ref=2)),
    ("a b c", "a b c", EditCounts(sub=0, dele=0, ins=0, n_ref=3)),
    ("a b c", "", EditCounts(sub=0, dele=3, ins=0, n_ref=3)),
    ("", "x y", EditCounts(sub=0, dele=0, ins=2, n_ref=0)),
    ("a b c", "c b a", EditCounts(sub=2, dele=0, ins=0, n_ref=3)),
    ("a a b", "b", EditCounts(sub=0, dele=2, ins=0, n_ref=3)),
    ("a b c d e", "x a b d e y", EditCounts(sub=0, dele=1, ins=2, n_ref=5)),
])
def test_per_counts_hand_worked(ref: str, hyp: str, expected: EditCounts) -> None:
    assert per_counts(ref.split(), hyp.split()) == expected


def test_per_counts_total_equals_edit_distance() -> None:
    import editdistance
    rng = np.random.default_rng(0)
    for _ in range(50):
        ref = list(rng.choice(list("abcd"), size=int(rng.integers(0, 12))))
        hyp = list(rng.choice(list("abcde"), size=int(rng.integers(0, 12))))
        assert per_counts(ref, hyp).errors == editdistance.eval(ref, hyp)


def test_frames_to_phones_folds_collapses_and_drops_silence() -> None:
    frames = ["sil", "sil", "aa", "aa", "ao", "b", "cl", "b", "vcl", "zh", "sh", "epi"]
    # ao folds into aa (one run); cl / vcl / epi are silence and vanish, but after collapsing,
    # so the two b's stay two; zh and sh are one 39-class
    assert frames_to_phones(np.array([INDEX_48[p] for p in frames])) == ["aa", "b", "b", "sh"]


def test_ref_phones_removes_q_before_collapsing() -> None:
    # ax / ax-h fold to one ah; bcl is silence; "b q b" becomes one b; ix / ih are one ih
    phn = ["h#", "ax", "ax-h", "bcl", "b", "q", "b", "ix", "ih", "h#"]
    assert ref_phones(phn) == ["ah", "b", "ih"]
    assert ref_phones(["b", "bcl", "b"]) == ["b", "b"]  # silence only separates after collapsing
    assert ref_phones(["h#", "q", "h#"]) == []
    assert ref_phones(["b", "q", "b"]) == ["b"]


def test_frame_counts_fold_to_39_and_ignore_unlabelled() -> None:
    pred = np.array([INDEX_48[p] for p in ["ao", "aa", "s", "cl", "b"]])
    labels = np.array([INDEX_48["aa"], INDEX_48["aa"], INDEX_48["z"], INDEX_48["vcl"], -1])
    assert frame_counts(pred, labels) == (3, 4)  # ao~aa, aa, cl~vcl (both sil); s != z


def test_score_aggregates_over_utterances() -> None:
    refs = [["a", "b", "c", "d"], ["e", "f"], ["g"]]
    hyps = [["a", "x", "c"], ["e", "f", "h"], ["g"]]
    res = score(refs, hyps, frames_correct=30, frames_total=40)
    assert (res["sub"], res["del"], res["ins"], res["n_ref"]) == (1, 1, 1, 7)
    assert res["per"] == pytest.approx(300 / 7)
    assert res["sub_pct"] == pytest.approx(100 / 7)
    assert res["frame_acc"] == pytest.approx(75.0)
    assert res["utterances"] == 3


def test_score_without_references_is_nan_not_zero() -> None:
    res = score([[]], [["a"]])
    assert math.isnan(res["per"]) and res["ins"] == 1 and math.isnan(res["frame_acc"])
