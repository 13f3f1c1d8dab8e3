"""Reader for plain manifests: one utterance per line, audio path and word transcript.

A manifest corpus is a directory holding ``train.tsv``, ``dev.tsv`` and ``test.tsv`` (any of
them; a split asked for must exist). Each line is tab-separated::

    <audio path><TAB><transcript>
    <audio path><TAB><speaker><TAB><transcript>

Audio paths are relative to the manifest's directory (or absolute); audio is anything
libsndfile reads (WAV, FLAC, NIST SPHERE), 16 kHz mono. The speaker (used for speaker CMVN)
defaults to the name of the audio file's directory. Blank lines and lines starting with ``#``
are skipped. The utterance id is the audio path without its extension.
"""

from __future__ import annotations

from pathlib import Path

from ese.data.timit import SPLITS, UttRecord
from ese.errors import CorpusError

SUFFIX = ".tsv"


def manifest_path(root: str | Path, split: str) -> Path:
    return Path(root) / f"{split}{SUFFIX}"


def is_manifest(root: str | Path) -> bool:
    """True when ``root`` is a directory with a ``train.tsv``, ``dev.tsv`` or ``test.tsv``."""
    return Path(root).is_dir() and any(manifest_path(root, s).is_file() for s in SPLITS)


def read_manifest(path: Path) -> list[UttRecord]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read ({exc})") from None
    records: list[UttRecord] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) not in (2, 3) or not fields[0].strip() or not fields[-1].strip():
            raise CorpusError(f"{path}:{lineno}: expected '<audio><TAB>[<speaker><TAB>]<transcript>', got {line!r}")
        rel = fields[0].strip()
        wav = Path(rel) if Path(rel).is_absolute() else path.parent / rel
        if not wav.is_file():
            raise CorpusError(f"{path}:{lineno}: audio file {str(wav)!r} does not exist")
        speaker = fields[1].strip() if len(fields) == 3 else wav.parent.name
        if not speaker:
            raise CorpusError(f"{path}:{lineno}: empty speaker field")
        utt_id = str(Path(rel).with_suffix("")).replace("\\", "/")
        if utt_id in seen:
            raise CorpusError(f"{path}:{lineno}: {rel!r} is listed twice")
        seen.add(utt_id)
        records.append(UttRecord(utt_id, speaker, wav, path, fields[-1].strip()))
    return records


def split_records(root: str | Path, split: str) -> list[UttRecord]:
    """The utterances of ``<root>/<split>.tsv`` in file order."""
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    path = manifest_path(root, split)
    if not path.is_file():
        raise CorpusError(f"corpus {str(root)!r} (manifest layout) has no {path.name}")
    records = read_manifest(path)
    if not records:
        raise CorpusError(f"{path}: the {split} split is empty")
    return records
