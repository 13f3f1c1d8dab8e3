"""Phone-loop Viterbi decoding: the best frame-class path when changing class costs a penalty.

A frame classifier's argmax flickers between classes in noise, and every flicker is an inserted
phone. A phone loop (any class may follow any other) with a *switch penalty* ``P`` (nats, added
to the path's negative log-probability at every change of class) finds the path maximising

    sum_t log p(c_t | x) - P * #{t : c_t != c_{t-1}}

exactly, by Viterbi. ``P = 0`` is the frame-wise argmax (greedy decoding); a larger ``P`` trades
insertions for deletions. :data:`SWITCH_PENALTY` was chosen on the dev split (see
``docs/decoding.md``). The same path comes out offline (:func:`best_path`) and online
(:class:`OnlineBestPath`, which emits a frame's class as soon as every surviving path agrees on
it), so streaming transcripts equal whole-utterance ones.
"""

from __future__ import annotations

import numpy as np

from ese.errors import ConfigError

SWITCH_PENALTY = 6.0  # nats per change of frame class; chosen on dev (docs/decoding.md)
MAX_LAG = 1000  # frames (10 s at 10 ms) an online decision may wait before it is forced


def check_penalty(penalty: float) -> float:
    """``penalty`` as a float if it is finite and >= 0, else ConfigError."""
    value = float(penalty)
    if not np.isfinite(value) or value < 0:
        raise ConfigError(f"the switch penalty must be a finite number >= 0 (nats), not {penalty!r}")
    return value


def _step(delta: np.ndarray, row: np.ndarray, penalty: float, states: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """One Viterbi step: (new scores, back-pointers to the previous frame's class)."""
    best = int(delta.argmax())
    switched = delta[best] - penalty
    stay = delta >= switched  # ties keep the class: fewer changes for the same score
    return np.where(stay, delta, switched) + row, np.where(stay, states, best)


def best_path(scores: np.ndarray, penalty: float = SWITCH_PENALTY) -> np.ndarray:
    """The best class per frame of ``scores`` (T, C) log-probabilities under the switch penalty.

    ``penalty == 0`` is exactly ``scores.argmax(axis=1)`` (ties to the first class).
    """
    scores = np.asarray(scores, dtype=np.float64)
    penalty = check_penalty(penalty)
    T, C = scores.shape
    if penalty == 0 or T == 0:
        return scores.argmax(axis=1) if T else np.zeros(0, dtype=np.int64)
    states = np.arange(C)
    back = np.empty((T, C), dtype=np.int64)
    delta = scores[0].copy()
    for t in range(1, T):
        delta, back[t] = _step(delta, scores[t], penalty, states)
    path = np.empty(T, dtype=np.int64)
    c = int(delta.argmax())
    for t in range(T - 1, -1, -1):
        path[t] = c
        c = back[t, c]
    return path


class OnlineBestPath:
    """:func:`best_path` frame by frame: ``push`` rows, get the classes that became final.

    A frame is final once every class the path could end in at the newest frame traces back
    through the same class there; what follows cannot change it. The concatenated output of
    ``push`` calls and ``finish`` equals ``best_path`` of all rows, unless some decision waited
    more than ``max_lag`` frames (then the older half of the waiting frames is emitted along the
    currently best path and counted in ``forced``; see docs/decoding.md).
    """

    def __init__(self, num_classes: int, penalty: float = SWITCH_PENALTY, max_lag: int = MAX_LAG) -> None:
        self.penalty = check_penalty(penalty)
        self.max_lag = max_lag
        self._states = np.arange(num_classes)
        self._delta: np.ndarray | None = None
        self._back: list[np.ndarray] = []  # back-pointers of the pending frames after the first
        self._checked = 0  # pending frames at the last convergence check
        self.forced = 0  # decisions forced by max_lag

    @property
    def pending(self) -> int:
        """Frames pushed but not yet emitted."""
        return 0 if self._delta is None else len(self._back) + 1

    def push(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(self._states))
        if self.penalty == 0:
            return rows.argmax(axis=1)
        out: list[np.ndarray] = []
        for row in rows:
            if self._delta is None:
                self._delta = row.copy()
            else:
                self._delta, back = _step(self._delta, row, self.penalty, self._states)
                self._back.append(back)
                # a check walks the whole pending window: check when it has grown by an eighth, so
                # that a long wait costs O(1) per frame (a phone is final at most 1/8 later)
                if len(self._back) - self._checked >= max(1, len(self._back) // 8):
                    out.append(self._settled())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def finish(self) -> np.ndarray:
        """The classes of the pending frames along the best path; the decoder starts afresh."""
        if self._delta is None:
            return np.zeros(0, dtype=np.int64)
        path = self._trace(int(self._delta.argmax()), len(self._back))
        self._delta, self._back, self._checked = None, [], 0
        return path

    def _trace(self, c: int, upto: int) -> np.ndarray:
        """Classes of pending frames 0..upto on the path through class ``c`` at pending frame ``upto``."""
        path = np.empty(upto + 1, dtype=np.int64)
        for j in range(upto, -1, -1):
            path[j] = c
            if j:
                c = self._back[j - 1][c]
        return path

    def _settled(self) -> np.ndarray:
        """Emit the pending frames every surviving path agrees on (pending frame j has back-pointer
        row j - 1, into frame j - 1)."""
        self._checked = len(self._back)
        cur = self._states
        for j in range(len(self._back), 0, -1):
            cur = self._back[j - 1][cur]  # classes at pending frame j - 1
            if (cur == cur[0]).all():
                return self._emit(int(cur[0]), j - 1)
        if len(self._back) + 1 > self.max_lag:  # emit the older half along the best path so far
            self.forced += 1
            upto = len(self._back) // 2
            c = int(self._delta.argmax())
            for j in range(len(self._back), upto, -1):
                c = self._back[j - 1][c]
            return self._emit(c, upto)
        return np.zeros(0, dtype=np.int64)

    def _emit(self, c: int, upto: int) -> np.ndarray:
        """Emit pending frames 0..upto; the next pending frame's row (into an emitted frame) goes too."""
        path = self._trace(c, upto)
        self._back = self._back[upto + 1:]
        self._checked = len(self._back)
        return path
