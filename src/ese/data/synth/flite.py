"""flite 2.2 (CMU's Festival-lite) through ctypes on ``libflite.so.1``: audio plus the exact
Segment relation it synthesised from.

Voices (Debian ``libflite1``): ``cmu_us_kal`` / ``cmu_us_kal16`` (diphone), ``cmu_us_awb``,
``cmu_us_rms`` and ``cmu_us_slt`` (clustergen statistical voices trained on recordings of real
speakers: a Scottish male, a US male and a US female). Their phone set is festival's ``radio`` set,
so ``phonemap.FESTIVAL_RADIO`` maps them. Rate: the voice feature ``duration_stretch`` (1 / rate);
pitch: ``f0_shift`` (clustergen) or ``int_f0_target_mean`` (diphone).

The library keeps global state (voice features), so like espeak-ng it is used from one worker
process per speaker (``corpus``).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from ese.errors import ToolMissingError

LIBRARY = "libflite.so.1"
SUPPORT = ("libflite_usenglish.so.1", "libflite_cmulex.so.1")
VOICES = ("cmu_us_awb", "cmu_us_rms", "cmu_us_slt", "cmu_us_kal16")
SEX = {"cmu_us_awb": "M", "cmu_us_rms": "M", "cmu_us_slt": "F", "cmu_us_kal16": "M", "cmu_us_kal": "M"}
DIPHONE_F0_MEAN = 105.0  # kal's intonation target mean (Hz); the pitch factor scales it


class _Wave(ctypes.Structure):
    _fields_ = [("type", ctypes.c_char_p), ("sample_rate", ctypes.c_int), ("num_samples", ctypes.c_int),
                ("num_channels", ctypes.c_int), ("samples", ctypes.POINTER(ctypes.c_short))]


@dataclass
class Rendered:
    """One synthesised utterance at the voice's native rate (the layout of ``festival.Rendered``)."""

    audio: np.ndarray  # (n,) float32 in [-1, 1]
    sample_rate: int
    phones: list[tuple[str, float]]  # (radio phone, end time in s)
    words: list[tuple[str, float, float]]  # (word, start s, end s)


def _load(name: str) -> ctypes.CDLL:
    return ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)


def available() -> bool:
    """True when libflite and its US English support libraries load."""
    try:
        for name in (LIBRARY, *SUPPORT):
            _load(name)
        return True
    except OSError:
        return False


def voice_installed(voice: str) -> bool:
    try:
        _load(f"lib{voice.replace('cmu_us_', 'flite_cmu_us_')}.so.1")
        return True
    except OSError:
        return False


class Flite:
    """libflite in this process with one selected voice."""

    def __init__(self, voice: str) -> None:
        if not available():
            raise ToolMissingError("libflite (flite) is not installed")
        lib = _load(LIBRARY)
        for name in SUPPORT:
            _load(name)
        for fn in ("flite_synth_text", "utt_wave", "utt_relation", "relation_head", "item_next",
                   "path_to_item"):
            getattr(lib, fn).restype = ctypes.c_void_p
        lib.flite_synth_text.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.utt_wave.argtypes = [ctypes.c_void_p]
        lib.utt_relation.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.relation_head.argtypes = [ctypes.c_void_p]
        lib.item_next.argtypes = [ctypes.c_void_p]
        lib.path_to_item.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.item_feat_string.restype = ctypes.c_char_p
        lib.item_feat_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.item_feat_float.restype = ctypes.c_float
        lib.item_feat_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.flite_feat_set_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float]
        lib.delete_utterance.argtypes = [ctypes.c_void_p]
        lib.flite_init()
        try:
            vlib = _load(f"lib{voice.replace('cmu_us_', 'flite_cmu_us_')}.so.1")
        except OSError:
            raise ToolMissingError(f"flite has no voice {voice!r}") from None
        register = getattr(vlib, f"register_{voice}")
        register.restype = ctypes.c_void_p
        register.argtypes = [ctypes.c_char_p]
        self._voice = register(None)
        # struct cst_voice { const char *name; cst_features *features; ... }
        self._features = ctypes.cast(self._voice, ctypes.POINTER(ctypes.c_void_p))[1]
        self._lib = lib
        self.name = voice
        self.diphone = voice.startswith("cmu_us_kal")

    def set_prosody(self, *, rate: float = 1.0, pitch: float = 1.0) -> None:
        self._lib.flite_feat_set_float(self._features, b"duration_stretch", 1.0 / rate)
        if self.diphone:
            self._lib.flite_feat_set_float(self._features, b"int_f0_target_mean", DIPHONE_F0_MEAN * pitch)
        else:
            self._lib.flite_feat_set_float(self._features, b"f0_shift", pitch)

    def synth(self, text: str) -> Rendered:
        lib = self._lib
        utt = lib.flite_synth_text(text.encode("utf-8"), self._voice)
        if not utt:
            raise RuntimeError(f"flite ({self.name}) failed on {text!r}")
        try:
            wave = ctypes.cast(lib.utt_wave(utt), ctypes.POINTER(_Wave)).contents
            audio = np.ctypeslib.as_array(wave.samples, (wave.num_samples,)).astype(np.float32) / 32768.0
            phones: list[tuple[str, float]] = []
            words: list[tuple[str, float, float]] = []
            word_of: list[int | None] = []
            item = lib.relation_head(lib.utt_relation(utt, b"Segment"))
            start = 0.0
            while item:
                name = lib.item_feat_string(item, b"name").decode("ascii", "replace")
                end = float(lib.item_feat_float(item, b"end"))
                word = lib.path_to_item(item, b"R:SylStructure.parent.parent")
                if word and name != "pau":
                    label = lib.item_feat_string(word, b"name").decode("ascii", "replace").lower()
                    if word_of and word_of[-1] == word:
                        words[-1] = (words[-1][0], words[-1][1], end)
                    else:
                        words.append((label, start, end))
                    word_of.append(word)
                else:
                    word_of.append(None)
                phones.append((name, end))
                start = max(start, end)
                item = lib.item_next(item)
            return Rendered(audio, int(wave.sample_rate), phones, words)
        finally:
            lib.delete_utterance(utt)


def version() -> str:
    return "flite 2.2 (libflite.so.1)" if available() else "missing"
