"""PER evaluation and transcription with the CPU engine (the ``--engine ese-cpu`` of the CLI).

Mirrors :func:`ese.model.decode.evaluate` / ``transcribe``, with posteriors from
:meth:`ese.runtime.Engine.posteriors_batch` (the utterance API, output delay applied).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ese.data.dataset import FeatureSet
from ese.model.scoring import frames_to_phones, score_utterances
from ese.runtime.engine import Engine

ENGINES = ("torch", "ese-cpu")


def check_engine(name: str) -> str:
    """``name`` if it is a known engine, else EngineError listing them."""
    from ese.runtime.errors import EngineError
    if name not in ENGINES:
        raise EngineError(f"--engine must be one of {', '.join(ENGINES)}, not {name!r}")
    return name


def evaluate_engine(engine: Engine, fset: FeatureSet, *, batch_size: int = 16) -> dict[str, Any]:
    """PER, frame accuracy and mean cross-entropy of ``engine`` on ``fset``."""
    utts = fset.utterances
    order = sorted(range(len(utts)), key=lambda k: len(utts[k].feats))

    def outputs() -> Iterator[tuple[int, np.ndarray, float]]:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            for k, logp in zip(idx, engine.posteriors_batch([np.asarray(utts[k].feats) for k in idx])):
                labels = np.asarray(utts[k].labels, dtype=np.int64)
                ok = labels >= 0
                yield k, logp.argmax(axis=1), -float(logp[np.flatnonzero(ok), labels[ok]].sum())

    return score_utterances(utts, outputs())


def transcribe_engine(engine: Engine, feats: np.ndarray) -> list[str]:
    """Greedy 39-class phone transcript of one utterance."""
    return frames_to_phones(engine.posteriors(feats).argmax(axis=1))


def engine_runner(engine: str, qmodel: Path | None, model, output_delay: int
                  ) -> tuple[Callable[[FeatureSet], dict[str, Any]], Callable[[np.ndarray], list[str]]] | None:
    """The CLI's ``--engine``/``--qmodel``: None for torch; for ese-cpu (evaluate(fset),
    transcribe(feats)) on the packed float model, or on ``qmodel`` in fixed point."""
    from ese.runtime.errors import EngineError
    if check_engine(engine) == "torch":
        if qmodel is not None:
            raise EngineError("--qmodel runs on the ese-cpu engine only; add --engine ese-cpu")
        return None
    if qmodel is not None:
        from ese.compress.qmodel import load_qmodel
        eng = Engine.from_qmodel(load_qmodel(qmodel), "fixed")
    else:
        eng = Engine.from_model(model, output_delay)
    return (lambda fset: evaluate_engine(eng, fset)), (lambda feats: transcribe_engine(eng, feats))
