"""Write a TIMIT-layout corpus (the synthetic one) in the word-transcript layouts, words only.

``ese data convert SRC OUT --layout librispeech|manifest`` calls :func:`write_layout`. The phone
alignments (``.PHN``) are left behind on purpose: the result is what a user with LibriSpeech or
their own recordings has, audio and word transcripts, so CTC training and the dictionary path
can be tested and measured on it. Words come from each utterance's ``.TXT`` (TIMIT's
``start end text`` line), upper-cased with punctuation removed, as LibriSpeech writes them.

librispeech: ``OUT/<split>/<SPEAKER>/0/<SPEAKER>-0.trans.txt`` and ``<SPEAKER>-0-<NNNN>.flac``
(chapter 0; utterances numbered in the source's order). manifest: ``OUT/<split>.tsv`` with
``audio/<SPEAKER>/<UTT>.wav<TAB>WORDS`` lines (the speaker is the audio's directory).
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import soundfile as sf

from ese.atomic import write_bytes, write_text
from ese.data.timit import SPLITS, UttRecord, read_audio, split_records
from ese.errors import CorpusError

EXPORT_LAYOUTS = ("librispeech", "manifest")
_WORD = re.compile(r"[^A-Z']+")


def words_of(rec: UttRecord) -> str:
    """The upper-case word transcript of a TIMIT-layout utterance, from its ``.TXT``."""
    txt = next((p for p in (rec.wav.with_suffix(".TXT"), rec.wav.with_suffix(".txt")) if p.exists()), None)
    if txt is None:
        raise CorpusError(f"{rec.wav}: no .TXT word transcript beside it")
    fields = txt.read_text(encoding="utf-8", errors="replace").split(maxsplit=2)
    if len(fields) < 3:
        raise CorpusError(f"{txt}: expected 'start end text'")
    words = [w.strip("'") for w in _WORD.sub(" ", fields[2].upper()).split()]
    words = [w for w in words if w]
    if not words:
        raise CorpusError(f"{txt}: no words")
    return " ".join(words)


def _audio_bytes(rec: UttRecord, fmt: str, rate: int) -> bytes:
    samples = read_audio(rec.wav, rate)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def write_layout(src: str | Path, out: str | Path, layout: str, *, sample_rate: int = 16000) -> dict[str, Any]:
    """Write every split of the TIMIT-layout corpus ``src`` into ``out`` in ``layout``.

    Returns {split: {"utterances": n, "speakers": n}}. Files are written atomically; running it
    again rewrites them."""
    if layout not in EXPORT_LAYOUTS:
        raise CorpusError(f"--layout must be one of {', '.join(EXPORT_LAYOUTS)}, not {layout!r}")
    out = Path(out)
    if out.resolve() == Path(src).resolve():
        raise CorpusError("the converted corpus needs its own directory, not the source's")
    summary: dict[str, Any] = {}
    for split in SPLITS:
        records = split_records(src, split)
        by_spk: dict[str, list[UttRecord]] = defaultdict(list)
        for r in records:
            by_spk[r.speaker].append(r)
        lines: list[str] = []
        for spk, recs in sorted(by_spk.items()):
            if layout == "librispeech":
                chapter = out / split / spk / "0"
                trans = []
                for n, r in enumerate(recs):
                    utt = f"{spk}-0-{n:04d}"
                    write_bytes(chapter / f"{utt}.flac", _audio_bytes(r, "FLAC", sample_rate))
                    trans.append(f"{utt} {words_of(r)}\n")
                write_text(chapter / f"{spk}-0.trans.txt", "".join(trans))
            else:
                for r in recs:
                    rel = f"audio/{spk}/{r.wav.stem}.wav"
                    write_bytes(out / rel, _audio_bytes(r, "WAV", sample_rate))
                    lines.append(f"{rel}\t{words_of(r)}\n")
        if layout == "manifest":
            write_text(out / f"{split}.tsv", "# audio<TAB>transcript (ese data convert)\n" + "".join(lines))
        summary[split] = {"utterances": len(records), "speakers": len(by_spk)}
    return summary
