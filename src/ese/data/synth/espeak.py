"""espeak-ng through ctypes on ``libespeak-ng.so.1``: audio plus phoneme and word events.

The library is process-global (one voice, one callback), so each speaker is synthesised in its own
worker process (see ``corpus``). Observed semantics (espeak-ng 1.51), which the aligner relies on:

- ``espeakEVENT_PHONEME`` (type 7) carries the phoneme mnemonic in ``id.string``; its ``sample``
  field is the sample index (22050 Hz) where that phoneme **starts** (``audio_position`` is the
  same instant in ms). For a stop or affricate the event marks the release: the silent closure
  lies at the end of the preceding phoneme's interval.
- ``espeakEVENT_WORD`` (type 1) gives ``text_position`` (1-based character offset) of the word and
  a ``sample`` at the start of the word (before a leading closure).
- Output depends on the synthesis history of the process (not on libc ``rand``), so a speaker's
  utterances are always synthesised in the same order in a fresh process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np

from ese.errors import ToolMissingError

LIBRARY = "libespeak-ng.so.1"

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_PHONEME = 7
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
DEFAULT_RATE_WPM = 175


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


def find_library() -> str | None:
    """The loadable name of libespeak-ng, or None."""
    try:
        ctypes.CDLL(LIBRARY)
        return LIBRARY
    except OSError:
        return ctypes.util.find_library("espeak-ng")


@dataclass
class Rendered:
    """One synthesised utterance at the engine's native rate."""

    audio: np.ndarray  # (n,) float32 in [-1, 1]
    sample_rate: int
    phones: list[tuple[str, int]]  # (mnemonic, start sample)
    words: list[tuple[int, int]]  # (1-based text position, start sample)


class Espeak:
    """One initialised libespeak-ng in this process. Create at most one per process."""

    def __init__(self) -> None:
        name = find_library()
        if name is None:
            raise ToolMissingError("libespeak-ng is not installed")
        lib = ctypes.CDLL(name)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                                 INITIALIZE_PHONEME_EVENTS)
        if self.sample_rate <= 0:
            raise ToolMissingError(f"espeak_Initialize failed with {self.sample_rate}")
        self._chunks: list[np.ndarray] = []
        self._phones: list[tuple[str, int]] = []
        self._words: list[tuple[int, int]] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds only the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def version(self) -> str:
        return self._lib.espeak_Info(None).decode()

    def _on_audio(self, wav, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == EVENT_PHONEME:
                self._phones.append((event.id.string.decode("ascii", "replace"), event.sample))
            elif event.type == EVENT_WORD:
                self._words.append((event.text_position, event.sample))
            i += 1
        return 0

    def set_voice(self, name: str, *, rate: float = 1.0, pitch: float = 1.0,
                  pitch_range: float = 1.0) -> None:
        """Select ``name`` (e.g. ``en-us+m3``); rate / pitch / range are factors on the defaults."""
        if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise ToolMissingError(f"espeak-ng has no voice {name!r}")
        self._lib.espeak_SetParameter(PARAM_RATE, int(round(DEFAULT_RATE_WPM * rate)), 0)
        self._lib.espeak_SetParameter(PARAM_PITCH, int(np.clip(round(50 * pitch), 0, 100)), 0)
        self._lib.espeak_SetParameter(PARAM_RANGE, int(np.clip(round(50 * pitch_range), 0, 100)), 0)

    def synth(self, text: str) -> Rendered:
        self._chunks, self._phones, self._words = [], [], []
        data = text.encode("utf-8")
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8,
                                        None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} on {text!r}")
        self._lib.espeak_Synchronize()
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Rendered(pcm.astype(np.float32) / 32768.0, self.sample_rate, self._phones, self._words)
