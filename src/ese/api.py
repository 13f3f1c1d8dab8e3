"""The Python API: ``ese.load(path)`` -> a :class:`Recognizer` for any model file ese writes.

>>> import ese
>>> rec = ese.load("models/paper/paper-b32-d11-w12a16.qnpz")    # fixed point, on the CPU engine
>>> rec.transcribe("utterance.wav")                              # ['dh', 'ah', ...]
>>> stream = rec.stream()
>>> for chunk in chunks:                                         # 16 kHz samples, any sizes
...     print(stream.feed(chunk))                                # phones that became final
>>> stream.finish()                                              # the rest
>>> rec.logits(features)                                         # (T, D) -> (T, C), delay applied

``transcribe`` is a stream fed the whole file at once, so the two give the same phones: the
front end makes bit-identical features from any chunking (:mod:`ese.data.frontend`), and the
fixed-point engine is exact. A phone is final once the frame that starts it has been scored and
the phone-loop decoder (:mod:`ese.model.phone_loop`) has settled it: ``half`` frames of feature
look-ahead (deltas), the model's ``output_delay``, the few frames until every surviving Viterbi
path agrees, and, with the ``running`` normalisation, a one-time warm-up at the start of a stream.
``switch_penalty`` (nats per change of frame class, default
:data:`ese.model.phone_loop.SWITCH_PENALTY`; 0 = frame-wise argmax) trades insertions for deletions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ese.artefact import Artefact, ArtefactError, open_artefact
from ese.compress.fixedpoint import log_softmax
from ese.data.frontend import FrontEnd
from ese.data.phones import BLANK, SILENCE_39, fold_48_to_39
from ese.errors import EseError, FeatureError
from ese.model.phone_loop import SWITCH_PENALTY, OnlineBestPath, check_penalty


def load(path: str | Path, engine: str | None = None, threads: int = 0,
         switch_penalty: float = SWITCH_PENALTY) -> Recognizer:
    """A recognizer for the model file ``path`` (checkpoint, ``.qnpz`` or ``.ese``, told apart by
    content). ``engine``: ``torch`` (checkpoints only) or ``ese-cpu``; default: torch for a
    checkpoint, ese-cpu (bit-exact fixed point) otherwise. ``threads``: CPU-engine threads (0:
    chosen from the machine's load). ``switch_penalty``: the decoder's (nats; 0 = frame-wise
    argmax; CTC models decode greedy)."""
    art = open_artefact(path)
    return Recognizer(art, engine, threads, switch_penalty)


class Recognizer:
    """Audio -> phones with one model file. See the module docstring."""

    def __init__(self, artefact: Artefact, engine: str | None = None, threads: int = 0,
                 switch_penalty: float = SWITCH_PENALTY) -> None:
        self.artefact = artefact
        self.engine = artefact.check_engine(engine)
        artefact.require()
        self.features = artefact.features
        self.normalisation = artefact.normalisation
        self.output_delay = artefact.output_delay
        self._fold = _fold_map(artefact)
        self._ctc = BLANK in artefact.phones  # CTC greedy: repeats collapsed, blanks dropped first
        self.switch_penalty = 0.0 if self._ctc else check_penalty(switch_penalty)
        self._runner = _TorchRunner(artefact.model) if self.engine == "torch" else _EngineRunner(artefact, threads)
        self.input_dim = self._runner.input_dim
        if self.features.dim != self.input_dim:
            raise ArtefactError(f"{artefact.path}: its feature configuration makes {self.features.dim} "
                                f"features per frame, the model takes {self.input_dim}")

    @property
    def sample_rate(self) -> int:
        return self.features.sample_rate

    def stream(self, name: str = "the stream") -> Stream:
        """A new stream (its own state); ``name`` appears in error messages."""
        return Stream(self, name)

    def transcribe(self, audio: str | Path | np.ndarray) -> list[str]:
        """39-class phones of a WAV / SPHERE file (16 kHz mono) or of samples (float or int16)."""
        if isinstance(audio, (str, Path)):
            from ese.data.timit import read_audio
            samples, name = read_audio(audio, self.sample_rate), str(audio)
        else:
            samples, name = np.asarray(audio), "the audio"
        stream = self.stream(name)
        stream.feed(samples)
        stream.finish()
        return stream.phones

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Per-frame logits (T, C) of one utterance's normalised features (T, D), row t for input
        frame t (the output delay applied as in training: the last frame repeated). float32 for
        float engines; float64 for fixed point (the exact integer logits times 2**-frac)."""
        feats = np.asarray(features, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != self.input_dim:
            raise FeatureError(f"features have shape {tuple(feats.shape)}; the model takes "
                               f"(frames, {self.input_dim})")
        if not np.isfinite(feats).all():
            raise FeatureError("features contain NaN or inf")
        if len(feats) == 0:
            return np.zeros((0, len(self._fold)), np.float32)
        d = self.output_delay
        padded = np.concatenate([feats, np.repeat(feats[-1:], d, axis=0)]) if d else feats
        out, _ = self._runner.step(padded, self._runner.start())
        return out[d:]


class Stream:
    """Feed audio chunks, get phones as soon as they are final (see the module docstring)."""

    def __init__(self, rec: Recognizer, name: str) -> None:
        self.rec, self.name = rec, name
        self.frontend = FrontEnd(rec.features, rec.normalisation)
        self._state = rec._runner.start()
        self._steps = 0  # model steps run (output t + delay is input frame t's)
        self._last: np.ndarray | None = None  # last feature frame (repeated for the delay)
        self._prev: str | None = None  # last frame's 39-class phone
        self._raw = -1  # last frame's output class (CTC)
        self._path = OnlineBestPath(len(rec._fold), rec.switch_penalty)
        self.phones: list[str] = []
        self.seconds = 0.0  # compute time spent in feed/finish
        self.finished = False

    @property
    def audio_seconds(self) -> float:
        return self.frontend.samples / self.rec.sample_rate

    def feed(self, samples: np.ndarray) -> list[str]:
        """Phones that became final with these samples (float in [-1, 1) or int16)."""
        if self.finished:
            raise EseError(f"{self.name}: the stream is finished; start a new one with Recognizer.stream()")
        t0 = time.perf_counter()
        try:
            return self._run(self.frontend.accept(np.asarray(samples)))
        finally:
            self.seconds += time.perf_counter() - t0

    def finish(self) -> list[str]:
        """The remaining phones; the stream takes no more audio."""
        if self.finished:
            return []
        t0 = time.perf_counter()
        self.finished = True
        try:
            out = self._run(self.frontend.finish())
            if self._last is None:
                cfg = self.rec.features
                win = int(round(cfg.sample_rate * cfg.frame_length_ms / 1000))
                raise FeatureError(f"{self.name}: audio shorter than one analysis window ({self.frontend.samples} "
                                   f"samples; at least {win} needed, {cfg.frame_length_ms:g} ms at "
                                   f"{cfg.sample_rate} Hz)")
            d = self.rec.output_delay
            if d:
                out += self._run(np.repeat(self._last, d, axis=0), padding=True)
            return out + self._emit(self._path.finish())
        finally:
            self.seconds += time.perf_counter() - t0

    def _run(self, feats: np.ndarray, padding: bool = False) -> list[str]:
        if len(feats) == 0:
            return []
        if not padding:
            self._last = feats[-1:]
        logits, self._state = self.rec._runner.step(feats, self._state)
        skip = max(0, self.rec.output_delay - self._steps)  # outputs before the delay belong to no frame
        self._steps += len(feats)
        # the log-probabilities every engine's scoring decodes (the same exact ones for fixed point)
        return self._emit(self._path.push(log_softmax(np.asarray(logits[skip:]))))

    def _emit(self, classes: np.ndarray) -> list[str]:
        """Fold final frame classes to phones: repeats collapsed, silence dropped (CTC: blanks)."""
        out = []
        for k in classes:
            k = int(k)
            if self.rec._ctc:
                repeat, self._raw = k == self._raw, k
                if repeat or self.rec._fold[k] is None:
                    continue
            phone = self.rec._fold[k]
            if phone != self._prev and phone != SILENCE_39:
                out.append(phone)
            self._prev = phone
        self.phones.extend(out)
        return out


# ---- engines ------------------------------------------------------------------------------
class _TorchRunner:
    """The float model under PyTorch; the state is the LSTM layers' (y, c)."""

    def __init__(self, model: Any) -> None:
        self.model = model.eval()
        self.input_dim = model.cfg.input_dim

    def start(self) -> Any:
        return None

    def step(self, feats: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        import torch
        with torch.no_grad():
            logits, state = self.model(torch.from_numpy(np.ascontiguousarray(feats, np.float32))[None], state)
        return logits[0].float().numpy(), state


class _EngineRunner:
    """The CPU engine: fixed point (exact) for .qnpz / .ese, float for a checkpoint."""

    def __init__(self, art: Artefact, threads: int) -> None:
        from ese.runtime.engine import Engine
        if art.fixed_point:
            self.engine = Engine.from_qmodel(art.qmodel, "fixed", threads)
        else:
            self.engine = Engine.from_model(art.model, art.output_delay, threads)
        self.input_dim = self.engine.input_dim
        # compile the numba kernels now, so that no stream's timing includes the compilation
        self.engine.recognizer(1).run_frames(np.zeros((1, 1, self.input_dim), self.engine.recognizer(1).in_dtype))

    def start(self) -> Any:
        return self.engine.recognizer(1)

    def step(self, feats: np.ndarray, rec: Any) -> tuple[np.ndarray, Any]:
        from ese.compress.fixedpoint import dequantize
        x = self.engine.quantize_input(feats)[:, None, :]  # (T, 1, D)
        y = rec.run_frames(x)[0]  # (T, P)
        if self.engine.mode == "fixed":
            frac = self.engine.qmodel.output_formats["logits"].frac
            return dequantize(self.engine.logits_fixed(y), frac), rec
        P = self.engine.w_out.shape[1]
        return (y[:, :P] @ self.engine.w_out.T + self.engine.b_out).astype(np.float32), rec


def _fold_map(art: Artefact) -> list[str | None]:
    """The 39-class scoring phone of every output class, from the file's own phone set (None for
    a CTC model's blank)."""
    try:
        return [None if p == BLANK else fold_48_to_39(p) for p in art.phones]
    except EseError:
        raise ArtefactError(f"{art.path}: its phone set {art.phones[:5]}... is not the TIMIT 48-phone set "
                            "this ese decodes") from None
