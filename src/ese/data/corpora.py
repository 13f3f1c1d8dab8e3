"""Which reader a corpus needs, chosen by its layout, and the one ``split_records`` for all of them.

=============  ===================================================  ===========================
layout         recognised by                                        transcripts
=============  ===================================================  ===========================
timit          ``TRAIN/`` or ``TEST/`` (any case)                   ``.PHN`` phone alignments
librispeech    ``train*/``, ``dev*/``, ``test*/`` with              words (``*.trans.txt``)
               ``SPEAKER/CHAPTER/*.trans.txt``
manifest       ``train.tsv``, ``dev.tsv``, ``test.tsv``             words (one line each)
=============  ===================================================  ===========================

Word-transcript corpora have no frame labels: they train with ``train.loss=ctc`` only
(docs/ctc.md), and their reference phones come from the pronunciation dictionary
(:mod:`ese.data.lexicon`).
"""

from __future__ import annotations

from pathlib import Path

from ese.data import librispeech, manifest, timit
from ese.data.timit import UttRecord
from ese.errors import CorpusError

LAYOUTS = ("timit", "librispeech", "manifest")


def corpus_layout(root: str | Path) -> str:
    """``timit``, ``librispeech`` or ``manifest``; CorpusError for anything else."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"corpus {str(root)!r} is not a directory"
                          + ("" if root.exists() else " (it does not exist)"))
    names = {p.name.lower() for p in root.iterdir() if p.is_dir()}
    if names & {"train", "test"} and any(
            any(c.is_dir() and c.name.lower().startswith("dr") for c in (root / n).iterdir())
            for n in (p.name for p in root.iterdir() if p.is_dir() and p.name.lower() in ("train", "test"))):
        return "timit"
    if manifest.is_manifest(root):
        return "manifest"
    if librispeech.is_librispeech(root):
        return "librispeech"
    if names & {"train", "test"}:
        return "timit"  # the TIMIT reader names what is missing
    raise CorpusError(f"corpus {str(root)!r} has no known layout: expected TIMIT (TRAIN/, TEST/), "
                      "LibriSpeech (train*/, dev*/, test*/ with SPEAKER/CHAPTER/*.trans.txt) or a "
                      "manifest (train.tsv, dev.tsv, test.tsv)")


def split_records(root: str | Path, split: str) -> list[UttRecord]:
    """The utterances of ``split`` (train, dev or test) of a corpus in any known layout."""
    layout = corpus_layout(root)
    reader = {"timit": timit, "librispeech": librispeech, "manifest": manifest}[layout]
    return reader.split_records(root, split)
