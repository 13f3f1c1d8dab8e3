"""PER evaluation and transcription with the CPU engine (the ``--engine ese-cpu`` of the CLI).

Mirrors :func:`ese.model.decode.evaluate` / ``transcribe``, with posteriors from
:meth:`ese.runtime.Engine.posteriors_batch` (the utterance API, output delay applied).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ese.data.dataset import FeatureSet
from ese.data.phones import output_kind
from ese.model.ctc import sequence_nll
from ese.model.phone_loop import SWITCH_PENALTY, OnlineBestPath
from ese.model.scoring import decode_log_probs, score_utterances
from ese.runtime.engine import Engine

ENGINES = ("torch", "ese-cpu")


def check_engine(name: str) -> str:
    """``name`` if it is a known engine, else EngineError listing them."""
    from ese.runtime.errors import EngineError
    if name not in ENGINES:
        raise EngineError(f"--engine must be one of {', '.join(ENGINES)}, not {name!r}")
    return name


def evaluate_engine(engine: Engine, fset: FeatureSet, *, batch_size: int = 16,
                    switch_penalty: float = SWITCH_PENALTY) -> dict[str, Any]:
    """PER, frame accuracy and mean cross-entropy of ``engine`` on ``fset`` (CTC models: greedy
    CTC decoding and the CTC loss, as :func:`ese.model.decode.evaluate`)."""
    utts = fset.utterances
    kind = output_kind(engine.num_classes)
    order = sorted(range(len(utts)), key=lambda k: len(utts[k].feats))

    def outputs() -> Iterator[tuple[int, np.ndarray, float]]:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            for k, logp in zip(idx, engine.posteriors_batch([np.asarray(utts[k].feats) for k in idx])):
                if kind == "ctc":
                    yield k, logp, sequence_nll(logp, utts[k].phones)
                    continue
                labels = np.asarray(utts[k].labels, dtype=np.int64)
                ok = labels >= 0
                yield k, logp, -float(logp[np.flatnonzero(ok), labels[ok]].sum())

    return score_utterances(utts, outputs(), kind=kind, switch_penalty=switch_penalty)


def transcribe_engine(engine: Engine, feats: np.ndarray, switch_penalty: float = SWITCH_PENALTY) -> list[str]:
    """39-class phone transcript of one utterance (phone-loop path; CTC greedy for a CTC model)."""
    return decode_log_probs(engine.posteriors(feats), output_kind(engine.num_classes), switch_penalty)


class StreamDecoder:
    """Decoding of :class:`ese.runtime.recognizer.Recognizer` output, step by step.

    ``push(logp)`` takes one step's (B, C) log-probabilities (what ``Recognizer.push`` returns)
    and returns, per stream, the 39-class phones that became final: frames whose phone-loop class
    every surviving path agrees on (:class:`ese.model.phone_loop.OnlineBestPath`), folded, repeats
    collapsed and silence dropped; for a CTC model (49 outputs) CTC greedy (repeats collapsed,
    blanks dropped, then the same folding), final at once. ``finish(b)`` returns stream b's
    remaining phones at its end. The concatenated output of a stream is exactly
    :func:`transcribe_engine`'s when the caller feeds the same posteriors (skips the first
    ``output_delay`` steps and pads the input as ``Engine.posteriors`` does).
    """

    def __init__(self, num_classes: int, streams: int = 1, switch_penalty: float = SWITCH_PENALTY) -> None:
        from ese.data.phones import BLANK_INDEX, MAP_48_TO_39, PHONES_39, SILENCE_39
        self.kind = output_kind(num_classes)
        self._blank, self._map, self._names = BLANK_INDEX, MAP_48_TO_39, PHONES_39
        self._sil = PHONES_39.index(SILENCE_39)
        self.num_classes, self.B = num_classes, streams
        self.switch_penalty = 0.0 if self.kind == "ctc" else switch_penalty
        self.reset()

    def reset(self, stream: int | None = None) -> None:
        """Forget the history of ``stream`` (all streams when None)."""
        if stream is None:
            self._raw, self._prev = [-1] * self.B, [-1] * self.B  # last class, last 39-class
            self._paths = [OnlineBestPath(self.num_classes, self.switch_penalty) for _ in range(self.B)]
        else:
            self._raw[stream] = self._prev[stream] = -1
            self._paths[stream] = OnlineBestPath(self.num_classes, self.switch_penalty)

    def push(self, logp: np.ndarray) -> list[list[str]]:
        rows = np.asarray(logp).reshape(self.B, -1)
        return [self._phones(b, self._paths[b].push(rows[b])) for b in range(self.B)]

    def finish(self, stream: int = 0) -> list[str]:
        """Stream ``stream``'s remaining phones; its history is then forgotten."""
        out = self._phones(stream, self._paths[stream].finish())
        self.reset(stream)
        return out

    def _phones(self, b: int, classes: np.ndarray) -> list[str]:
        emitted: list[str] = []
        for k in classes:
            k = int(k)
            if self.kind == "ctc":
                repeat, self._raw[b] = k == self._raw[b], k
                if repeat or k == self._blank:
                    continue
            p39 = int(self._map[k])
            if p39 != self._prev[b] and p39 != self._sil:
                emitted.append(self._names[p39])
            self._prev[b] = p39
        return emitted
