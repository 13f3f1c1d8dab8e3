"""A tiny TIMIT-layout corpus made of tones and noise bands: no synthesizer needed, learnable.

Each phone gets its own spectral signature (two partials or a noise band), so a small model
can learn to tell them apart in seconds; the files follow TIMIT's layout exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
# phone -> (kind, params): voiced phones are two partials, fricatives are noise bands
SIGNATURES = {
    "aa": ("tone", (700.0, 1200.0)),
    "iy": ("tone", (300.0, 2300.0)),
    "uw": ("tone", (320.0, 900.0)),
    "m": ("tone", (250.0, 500.0)),
    "s": ("noise", (4500.0, 7500.0)),
    "sh": ("noise", (2000.0, 4000.0)),
    "q": ("tone", (150.0, 300.0)),
}
PHONES = [p for p in SIGNATURES if p != "q"]


def _render(kind: str, params: tuple[float, float], n: int, rng: np.random.Generator, pitch: float) -> np.ndarray:
    t = np.arange(n) / RATE
    if kind == "tone":
        f1, f2 = params
        x = np.sin(2 * np.pi * f1 * pitch * t) + 0.6 * np.sin(2 * np.pi * f2 * pitch * t)
    else:
        lo, hi = params
        spec = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / RATE)
        spec[(freqs < lo) | (freqs > hi)] = 0
        x = np.fft.irfft(spec, n) * 4
    return 0.3 * x / (np.max(np.abs(x)) + 1e-9)


def make_utterance(rng: np.random.Generator, pitch: float, n_phones: int = 8, with_q: bool = False):
    segs, chunks, pos = [], [], 0
    seq = ["h#"] + list(rng.choice(PHONES, size=n_phones)) + ["h#"]
    if with_q:
        seq.insert(2, "q")
    for phone in seq:
        n = int(rng.integers(800, 2400))
        if phone == "h#":
            x = 0.002 * rng.standard_normal(n)
        else:
            kind, params = SIGNATURES[phone]
            x = _render(kind, params, n, rng, pitch)
        chunks.append(x)
        segs.append((pos, pos + n, phone))
        pos += n
    audio = np.concatenate(chunks) + 0.001 * rng.standard_normal(pos)
    return audio.astype(np.float32), segs


def write_utterance(spk_dir: Path, name: str, audio: np.ndarray, segs, *, fmt: str = "NIST",
                    upper: bool = True) -> Path:
    spk_dir.mkdir(parents=True, exist_ok=True)
    ext = (lambda e: e.upper()) if upper else (lambda e: e.lower())
    wav = spk_dir / f"{name}{ext('.wav')}"
    sf.write(str(wav), audio, RATE, format=fmt, subtype="PCM_16")
    (spk_dir / f"{name}{ext('.phn')}").write_text("".join(f"{a} {b} {p}\n" for a, b, p in segs))
    (spk_dir / f"{name}{ext('.txt')}").write_text(f"0 {len(audio)} synthetic tones.\n")
    (spk_dir / f"{name}{ext('.wrd')}").write_text("")
    return wav


def make_tone_corpus(root: Path, *, speakers: int = 3, utts: int = 4, seed: int = 0,
                     with_splits: bool = True) -> Path:
    """Train / dev / test speakers under TRAIN and TEST, with a splits.json like the synthesizer's."""
    rng = np.random.default_rng(seed)
    split_spk: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for split in ("train", "dev", "test"):
        n_spk = speakers if split == "train" else 1
        for k in range(n_spk):
            spk = f"{'MF'[k % 2]}{split[:2].upper()}{k:01d}0"
            split_spk[split].append(spk)
            top = "TRAIN" if split == "train" else "TEST"
            pitch = float(rng.uniform(0.9, 1.1))
            for u in range(utts):
                audio, segs = make_utterance(rng, pitch, with_q=(u == 0))
                write_utterance(root / top / f"DR{k % 8 + 1}" / spk, f"SX{100 + u}", audio, segs)
    if with_splits:
        (root / "splits.json").write_text(json.dumps({"version": 1, **split_spk}))
    return root


# words whose CMUdict pronunciations use only the tone phones: a word-transcript corpus the
# dictionary covers, so converting it to LibriSpeech / manifest layout keeps every utterance
WORDS = {"me": ("m", "iy"), "see": ("s", "iy"), "she": ("sh", "iy"), "sue": ("s", "uw"),
         "shoe": ("sh", "uw"), "moo": ("m", "uw"), "ma": ("m", "aa"), "seem": ("s", "iy", "m"),
         "shah": ("sh", "aa"), "sushi": ("s", "uw", "sh", "iy"), "moose": ("m", "uw", "s"),
         "mimi": ("m", "iy", "m", "iy")}


def make_word_utterance(rng: np.random.Generator, pitch: float, words: list[str]):
    """Audio, .PHN segments and the text of ``words`` rendered with the tone signatures."""
    segs, chunks, pos = [], [], 0
    seq = ["h#"] + [p for w in words for p in WORDS[w]] + ["h#"]
    for phone in seq:
        n = int(rng.integers(800, 2000))
        x = 0.002 * rng.standard_normal(n) if phone == "h#" else _render(*SIGNATURES[phone], n, rng, pitch)
        chunks.append(x)
        segs.append((pos, pos + n, phone))
        pos += n
    audio = np.concatenate(chunks) + 0.001 * rng.standard_normal(pos)
    return audio.astype(np.float32), segs


def make_word_corpus(root: Path, *, speakers: int = 3, utts: int = 4, seed: int = 0,
                     oov: dict[str, str] | None = None) -> Path:
    """Like :func:`make_tone_corpus`, with sentences of dictionary words in each ``.TXT``.

    ``oov`` maps utterance names ("SPK/SX101") to a word appended to their text (not spoken)."""
    rng = np.random.default_rng(seed)
    vocab = sorted(WORDS)
    split_spk: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for split in ("train", "dev", "test"):
        for k in range(speakers if split == "train" else 1):
            spk = f"{'MF'[k % 2]}{split[:2].upper()}{k:01d}0"
            split_spk[split].append(spk)
            top = "TRAIN" if split == "train" else "TEST"
            pitch = float(rng.uniform(0.9, 1.1))
            for u in range(utts):
                words = [vocab[i] for i in rng.integers(0, len(vocab), size=int(rng.integers(2, 5)))]
                audio, segs = make_word_utterance(rng, pitch, words)
                name = f"SX{100 + u}"
                wav = write_utterance(root / top / f"DR{k % 8 + 1}" / spk, name, audio, segs)
                text = " ".join(words + ([oov[f"{spk}/{name}"]] if oov and f"{spk}/{name}" in oov else []))
                wav.with_suffix(".TXT").write_text(f"0 {len(audio)} {text.capitalize()}.\n")
    (root / "splits.json").write_text(json.dumps({"version": 1, **split_spk}))
    return root
