"""Reader for corpora in TIMIT layout: ``TRAIN|TEST/DR*/<SPEAKER>/<UTT>.WAV|.PHN|.WRD|.TXT``.

Works for the real (licensed) TIMIT and for the synthetic corpus of ``ese data synth``; names may
be upper or lower case. Audio is NIST SPHERE or RIFF, read through libsndfile (soundfile).

Splits: a corpus with a ``splits.json`` (the synthetic one) names its dev and test speakers;
otherwise the corpus is taken to be real TIMIT and gets the standard split: train = every TRAIN
speaker, dev = the 50-speaker dev list, test = the 24-speaker core test set (SA sentences excluded).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ese.data.phones import PHONES_61
from ese.data.timit_lists import CORE_TEST_SPEAKERS, DEV_SPEAKERS
from ese.errors import AudioError, CorpusError

SPLITS = ("train", "dev", "test")
OPTIONAL_SPLITS = ("proxy",)  # a synthetic corpus's held-out-synthesiser split, when splits.json has it
_PHONE_SET = frozenset(PHONES_61)


@dataclass(frozen=True)
class UttRecord:
    """Where one utterance's files are (any corpus layout: ese.data.corpora)."""

    utt_id: str  # unique over the corpus (TIMIT: <SPEAKER>_<UTT>)
    speaker: str
    wav: Path
    phn: Path  # the .PHN alignment; for word-transcript corpora the file the transcript came from
    transcript: str | None = None  # word transcript (LibriSpeech, manifest): no phone alignment


@dataclass(frozen=True)
class PhoneSegment:
    start: int  # first sample
    end: int  # one past the last sample
    phone: str


def _child(directory: Path, name: str) -> Path | None:
    """The entry of ``directory`` called ``name`` in any letter case."""
    for entry in directory.iterdir():
        if entry.name.lower() == name.lower():
            return entry
    return None


def _sibling(wav: Path, ext: str) -> Path | None:
    for cand in (wav.with_suffix(ext.upper()), wav.with_suffix(ext.lower())):
        if cand.exists():
            return cand
    return None


def list_utterances(root: str | Path, split_dir: str) -> list[UttRecord]:
    """Every utterance under ``root/<split_dir>`` (``TRAIN`` or ``TEST``) that has audio and a .PHN."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"corpus {str(root)!r} is not a directory")
    top = _child(root, split_dir)
    if top is None or not top.is_dir():
        raise CorpusError(f"corpus {str(root)!r} has no {split_dir} directory (TIMIT layout expected)")
    records = []
    for dr in sorted(p for p in top.iterdir() if p.is_dir() and p.name.lower().startswith("dr")):
        for spk in sorted(p for p in dr.iterdir() if p.is_dir()):
            for wav in sorted(spk.iterdir()):
                if wav.suffix.lower() != ".wav" or wav.name.startswith("."):
                    continue
                if not wav.is_file():  # a dangling link, or a directory named *.wav
                    what = "a dangling link" if wav.is_symlink() and not wav.exists() else "not a file"
                    raise CorpusError(f"{wav}: {what}; remove it or point it at the audio")
                phn = _sibling(wav, ".phn")
                if phn is None:
                    raise CorpusError(f"{wav}: no .PHN file next to the audio")
                speaker = spk.name.upper()
                records.append(UttRecord(f"{speaker}_{wav.stem.upper()}", speaker, wav, phn))
    return records


def load_split_speakers(root: str | Path) -> dict[str, set[str]] | None:
    """The synthetic corpus's ``splits.json`` as {split: speakers}, or None for real TIMIT."""
    root = Path(root)
    path = root / "splits.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        out = {split: {s.upper() for s in data[split]} for split in SPLITS}
        out.update({split: {s.upper() for s in data[split]} for split in OPTIONAL_SPLITS if split in data})
        return out
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorpusError(f"{path}: not a valid splits file ({exc})") from None


def split_records(root: str | Path, split: str) -> list[UttRecord]:
    """The utterances of ``split`` (train, dev or test)."""
    if split not in SPLITS + OPTIONAL_SPLITS:
        raise CorpusError(f"unknown split {split!r}; choose one of {', '.join(SPLITS + OPTIONAL_SPLITS)}")
    lists = load_split_speakers(root)
    if split in OPTIONAL_SPLITS and (lists is None or split not in lists):
        raise CorpusError(f"corpus {str(root)!r} has no {split} split (only a synthetic corpus made "
                          f"with synth.proxy_engine set has one)")
    source = "TRAIN" if split == "train" else "TEST"
    records = list_utterances(root, source)
    if lists is not None:
        _check_listed(root, source, records, lists)
        wanted = lists[split]
        records = [r for r in records if r.speaker in wanted]
    else:  # real TIMIT: standard lists, SA (dialect) sentences excluded as in every recipe
        records = [r for r in records if not r.wav.stem.upper().startswith("SA")]
        if split != "train":
            wanted = DEV_SPEAKERS if split == "dev" else CORE_TEST_SPEAKERS
            records = [r for r in records if r.speaker in wanted]
    if not records:
        raise CorpusError(f"corpus {str(root)!r}: the {split} split is empty")
    return records


def _check_listed(root: str | Path, source: str, records: list[UttRecord], lists: dict[str, set[str]]) -> None:
    """CorpusError for speakers under ``source`` that splits.json puts in none of their splits
    (they would be dropped from every split without a word)."""
    allowed = lists["train"] if source == "TRAIN" else lists["dev"] | lists["test"] | lists.get("proxy", set())
    orphans = sorted({r.speaker for r in records} - allowed)
    if orphans:
        where = "train" if source == "TRAIN" else "dev, test or proxy"
        shown = ", ".join(orphans[:5]) + (f" and {len(orphans) - 5} more" if len(orphans) > 5 else "")
        raise CorpusError(f"{Path(root) / 'splits.json'}: speaker(s) {shown} under {source} are in no "
                          f"split; list them under {where} or remove their folders")


def read_audio(path: str | Path, expected_rate: int) -> np.ndarray:
    """Mono float32 samples in [-1, 1); wrong rate, channels or a broken file is an AudioError."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file" + (" (a dangling link)" if path.is_symlink() else ""))
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        with sf.SoundFile(str(path)) as fh:
            rate, channels = fh.samplerate, fh.channels
            frames = fh.frames
            data = fh.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path}: cannot read audio ({exc})") from None
    if rate != expected_rate:
        raise AudioError(f"{path}: sample rate {rate} Hz, expected {expected_rate} Hz")
    if channels != 1:
        raise AudioError(f"{path}: {channels} channels, expected mono")
    declared = _declared_frames(path, channels)
    if frames == 0 or data.shape[0] != frames or (declared is not None and declared != frames):
        raise AudioError(f"{path}: truncated audio (header says {declared if declared is not None else frames} "
                         f"samples, file holds {data.shape[0]})")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: audio contains NaN or inf samples")
    return data[:, 0]


def _declared_frames(path: Path, channels: int) -> int | None:
    """Sample count the file's header promises (libsndfile trusts the file size instead)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"NIST_1A"):
        match = re.search(rb"sample_count -i (\d+)", head)
        return int(match.group(1)) if match else None
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        pos, bits = 12, 16
        while pos + 8 <= len(head):
            cid, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
            if cid == b"fmt ":
                bits = struct.unpack("<H", head[pos + 22:pos + 24])[0]
            if cid == b"data":
                return size // (channels * max(bits // 8, 1))
            pos += 8 + size + (size & 1)
    return None


def read_phn(path: str | Path, num_samples: int | None = None) -> list[PhoneSegment]:
    """Parse and validate a ``.PHN`` file: ``start end phone`` per line, in samples."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read ({exc})") from None
    segments: list[PhoneSegment] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3:
            raise CorpusError(f"{path}:{lineno}: expected 'start end phone', got {line!r}")
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            raise CorpusError(f"{path}:{lineno}: sample positions must be integers, got {line!r}") from None
        phone = fields[2].lower()
        if phone not in _PHONE_SET:
            raise CorpusError(f"{path}:{lineno}: phone {fields[2]!r} is not one of the 61 TIMIT phones")
        if start < 0 or end <= start:
            raise CorpusError(f"{path}:{lineno}: segment [{start}, {end}) is empty or negative")
        if segments and start < segments[-1].end:
            raise CorpusError(f"{path}:{lineno}: segment starting at {start} overlaps the previous one "
                              f"(ends at {segments[-1].end})")
        if num_samples is not None and end > num_samples:
            raise CorpusError(f"{path}:{lineno}: segment ends at sample {end}, past the audio "
                              f"({num_samples} samples)")
        segments.append(PhoneSegment(start, end, phone))
    if not segments:
        raise CorpusError(f"{path}: no phone segments")
    return segments
