"""Reader for corpora in LibriSpeech layout: word transcripts, no phone alignments.

Layout (names as LibriSpeech ships them)::

    ROOT/<split dir>/<SPEAKER>/<CHAPTER>/<SPEAKER>-<CHAPTER>.trans.txt
    ROOT/<split dir>/<SPEAKER>/<CHAPTER>/<SPEAKER>-<CHAPTER>-<UTT>.flac

``<split dir>`` names start with ``train``, ``dev`` or ``test`` (``train-clean-100``,
``dev-clean``, ``test-other`` ...); a split is every directory with its prefix. Each line of a
``.trans.txt`` is ``<UTTERANCE-ID> WORDS OF THE TRANSCRIPT``; every line needs its audio file
(``.flac``, or ``.wav``) and every audio file its line. Audio is read through libsndfile.
"""

from __future__ import annotations

from pathlib import Path

from ese.data.timit import SPLITS, UttRecord
from ese.errors import CorpusError

AUDIO_EXTS = (".flac", ".wav")


def split_dirs(root: str | Path) -> dict[str, list[Path]]:
    """{split: its directories under ``root``} by name prefix (train*, dev*, test*)."""
    root = Path(root)
    out: dict[str, list[Path]] = {s: [] for s in SPLITS}
    if not root.is_dir():
        return out
    for entry in sorted(root.iterdir()):
        for split in SPLITS:
            if entry.is_dir() and entry.name.lower().startswith(split):
                out[split].append(entry)
    return out


def is_librispeech(root: str | Path) -> bool:
    """True when ``root`` has a train*/dev*/test* directory holding ``*/*/*.trans.txt`` files."""
    return any(next(d.glob("*/*/*.trans.txt"), None) is not None
               for dirs in split_dirs(root).values() for d in dirs)


def read_transcripts(path: Path) -> dict[str, str]:
    """{utterance id: transcript} of one ``.trans.txt``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read ({exc})") from None
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        utt, _, words = line.strip().partition(" ")
        if not words.strip():
            raise CorpusError(f"{path}:{lineno}: expected '<utterance-id> WORDS ...', got {line!r}")
        if utt in out:
            raise CorpusError(f"{path}:{lineno}: utterance {utt!r} is listed twice")
        out[utt] = words.strip()
    return out


def _chapter_records(chapter: Path, speaker: str) -> list[UttRecord]:
    trans = sorted(chapter.glob("*.trans.txt"))
    audio = {p.stem: p for p in sorted(chapter.iterdir())
             if p.suffix.lower() in AUDIO_EXTS and not p.name.startswith(".")}
    if not trans:
        if audio:
            raise CorpusError(f"{chapter}: audio files but no .trans.txt transcript")
        return []
    records = []
    listed: set[str] = set()
    for tpath in trans:
        for utt, words in read_transcripts(tpath).items():
            wav = audio.get(utt)
            if wav is None:
                raise CorpusError(f"{tpath}: utterance {utt!r} has no audio file ({utt}.flac) beside it")
            if not wav.is_file():
                raise CorpusError(f"{wav}: not a file (a dangling link?)")
            listed.add(utt)
            records.append(UttRecord(utt, speaker, wav, tpath, words))
    unlisted = sorted(set(audio) - listed)
    if unlisted:
        raise CorpusError(f"{chapter}: audio without a transcript line: {', '.join(unlisted[:5])}"
                          + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else ""))
    return records


def split_records(root: str | Path, split: str) -> list[UttRecord]:
    """The utterances of ``split`` (every ``<split>*`` directory), sorted by utterance id."""
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    dirs = split_dirs(root)[split]
    if not dirs:
        raise CorpusError(f"corpus {str(root)!r} (LibriSpeech layout) has no {split}* directory")
    records: list[UttRecord] = []
    for top in dirs:
        for spk in sorted(p for p in top.iterdir() if p.is_dir()):
            for chapter in sorted(p for p in spk.iterdir() if p.is_dir()):
                records.extend(_chapter_records(chapter, spk.name))
    if not records:
        raise CorpusError(f"corpus {str(root)!r}: the {split} split is empty")
    return sorted(records, key=lambda r: r.utt_id)
