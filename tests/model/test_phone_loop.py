"""The phone-loop Viterbi decoder: optimal, equal online and offline, greedy at penalty 0."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ese.errors import ConfigError
from ese.model.phone_loop import OnlineBestPath, best_path, check_penalty
from ese.model.scoring import decode_log_probs, frames_to_phones


def _score(lp: np.ndarray, path, penalty: float) -> float:
    return float(sum(lp[t, c] for t, c in enumerate(path)) - penalty * sum(a != b for a, b in zip(path, path[1:])))


@pytest.mark.parametrize("seed", range(40))
def test_best_path_is_the_best_of_all_paths(seed: int) -> None:
    rng = np.random.default_rng(seed)
    T, C = int(rng.integers(1, 7)), int(rng.integers(2, 4))
    lp, penalty = rng.normal(size=(T, C)) * 2, float(rng.choice([0.0, 0.7, 3.0]))
    best = max(_score(lp, p, penalty) for p in itertools.product(range(C), repeat=T))
    assert _score(lp, best_path(lp, penalty), penalty) == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize("seed", range(30))
def test_online_decisions_equal_the_offline_path_for_any_chunking(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    T, C = int(rng.integers(1, 300)), int(rng.integers(2, 49))
    lp = rng.normal(size=(T, C)) * rng.uniform(0.2, 4)
    penalty = float(rng.choice([0.0, 1.0, 6.0, 20.0]))
    online, out, t = OnlineBestPath(C, penalty), [], 0
    while t < T:
        n = int(rng.integers(1, 6))
        out.append(online.push(lp[t:t + n]))
        t += n
        assert online.pending <= t  # never emits a frame twice, never loses one
    out.append(online.finish())
    assert np.array_equal(np.concatenate(out), best_path(lp, penalty))
    assert online.forced == 0 and online.pending == 0


def test_online_decisions_come_before_the_end() -> None:
    """A clear change of class settles the frames before it while the stream goes on."""
    lp = np.full((40, 3), -5.0)
    lp[:20, 0] = lp[20:, 1] = 0.0
    online = OnlineBestPath(3, 6.0)
    early = online.push(lp)
    assert len(early) >= 20 and (early[:20] == 0).all()
    assert np.array_equal(np.concatenate([early, online.finish()]), best_path(lp, 6.0))


def test_max_lag_forces_a_decision_and_counts_it() -> None:
    lp = np.zeros((50, 2))  # two classes tied forever: the paths never merge
    online = OnlineBestPath(2, 1.0, max_lag=10)
    got = online.push(lp)
    assert online.forced > 0 and online.pending <= 11 and len(got) + online.pending == 50


def test_penalty_zero_is_the_frame_argmax_and_a_penalty_removes_flicker() -> None:
    rng = np.random.default_rng(7)
    lp = np.log(rng.dirichlet(np.ones(48), size=200))
    assert np.array_equal(best_path(lp, 0.0), lp.argmax(axis=1))
    assert decode_log_probs(lp, "ce", 0.0) == frames_to_phones(lp.argmax(axis=1))
    switches = [int((np.diff(best_path(lp, p)) != 0).sum()) for p in (0.0, 1.0, 4.0, 16.0)]
    assert switches == sorted(switches, reverse=True) and switches[-1] < switches[0]


def test_ctc_decoding_ignores_the_penalty() -> None:
    rng = np.random.default_rng(3)
    lp = np.log(rng.dirichlet(np.ones(49), size=60))
    assert decode_log_probs(lp, "ctc", 0.0) == decode_log_probs(lp, "ctc", 50.0)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_penalty_is_refused(bad: float) -> None:
    with pytest.raises(ConfigError, match="switch penalty"):
        check_penalty(bad)
    with pytest.raises(ConfigError):
        best_path(np.zeros((3, 2)), bad)


def test_stream_decoder_streams_are_independent_and_finish_resets_one() -> None:
    from ese.runtime.decode import StreamDecoder
    from ese.model.scoring import decode_log_probs
    rng = np.random.default_rng(11)
    lps = [np.log(rng.dirichlet(np.ones(48) * 0.3, size=80)) for _ in range(2)]
    dec = StreamDecoder(48, streams=2)
    got: list[list[str]] = [[], []]
    for t in range(80):
        for b, phones in enumerate(dec.push(np.stack([lps[0][t], lps[1][t]]))):
            got[b] += phones
    got = [got[b] + dec.finish(b) for b in range(2)]
    assert got == [decode_log_probs(lp) for lp in lps]
    again = [p for t in range(80) for p in dec.push(np.stack([lps[0][t], lps[1][t]]))[0]] + dec.finish(0)
    assert again == got[0]  # finish forgot stream 0's history
