"""Synthesiser phone sets -> the 61 TIMIT phones (tables documented in docs/synth-corpus.md).

A table entry maps one native phone to a tuple of TIMIT phones; a tuple of two splits the native
segment in time (``SPLIT_SHARE`` to the first phone). Stops and affricates are given a closure
(``bcl``, ``tcl``, ...) by the aligner, not by these tables (see ``align.CLOSURES``).

Fallback for a phone missing from a table (``map_phone``): strip espeak's modifier characters
(``#``, digits, ``;``, ``-``) and retry; if still unknown the segment is merged into the previous
one and counted as ``unmapped`` in the corpus summary. ``IGNORED`` phones (espeak's ``;``
palatalisation marker) are merged into the previous segment silently.
"""

from __future__ import annotations

from ese.data.phones import PHONES_61

SPLIT_SHARE = 0.6

# festival's "radio" phone set (kal_diphone, ked_diphone, cmu_us_slt_arctic_hts all select it)
# already uses TIMIT names; only breath and the silence markers need a decision.
FESTIVAL_RADIO: dict[str, tuple[str, ...]] = {
    **{p: (p,) for p in (
        "aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "b", "ch", "d", "dh", "dx", "eh", "el",
        "em", "en", "er", "ey", "f", "g", "hh", "hv", "ih", "iy", "jh", "k", "l", "m", "n", "nx",
        "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th", "uh", "uw", "v", "w", "y", "z", "zh")},
    "pau": ("pau",),
    "h#": ("h#",),
    "brth": ("pau",),
}

# espeak-ng English mnemonics (phsource/ph_english*), shared by en-us and en (British);
# ESPEAK_EN overrides the rhotic diphthongs for the non-rhotic British accent.
ESPEAK_EN_US: dict[str, tuple[str, ...]] = {
    # consonants
    "p": ("p",), "b": ("b",), "t": ("t",), "t2": ("t",), "d": ("d",), "k": ("k",), "g": ("g",),
    "t#": ("dx",), "d#": ("dx",), "?": ("q",),
    "f": ("f",), "v": ("v",), "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",),
    "S": ("sh",), "Z": ("zh",), "h": ("hh",), "x": ("hh",), "tS": ("ch",), "dZ": ("jh",),
    "m": ("m",), "n": ("n",), "N": ("ng",), "l": ("l",), "r": ("r",), "r-": ("r",),
    "w": ("w",), "W": ("w",), "j": ("y",),
    "m-": ("em",), "n-": ("en",), "l-": ("el",), "@L": ("el",),
    # vowels
    "@": ("ax",), "@-": ("ax",), "@2": ("ax",), "@5": ("ax",), "a#": ("ax",),
    "3": ("axr",), "3:": ("er",),
    "a": ("ae",), "aa": ("ae",), "A:": ("aa",), "A#": ("aa",), "0": ("aa",),
    "V": ("ah",), "E": ("eh",), "E2": ("eh",), "eI": ("ey",),
    "I": ("ih",), "I2": ("ix",), "I#": ("ix",), "i": ("iy",), "i:": ("iy",),
    "O:": ("ao",), "O2": ("ao",), "O": ("ao",), "OI": ("oy",), "oU": ("ow",), "@U": ("ow",),
    "U": ("uh",), "u:": ("uw",), "u": ("uw",),
    "aI": ("ay",), "aU": ("aw",),
    # r-coloured / centring diphthongs: vowel + r (or schwa) in time order
    "A@": ("aa", "r"), "O@": ("ao", "r"), "o@": ("ao", "r"), "e@": ("eh", "r"),
    "i@": ("ih", "r"), "i@3": ("ih", "axr"), "U@": ("uh", "r"),
    "aI@": ("ay", "ax"), "aI3": ("ay", "axr"), "aU@": ("aw", "ax"),
    # pauses
    "_": ("pau",), "_:": ("pau",), "_!": ("pau",), "_^_": ("pau",), "||": ("pau",), "|": ("pau",),
}

ESPEAK_EN: dict[str, tuple[str, ...]] = {
    **ESPEAK_EN_US,
    "aa": ("aa",), "0": ("ao",),
    "A@": ("aa",), "O@": ("ao",), "o@": ("ao",), "e@": ("eh", "ax"), "i@": ("ih", "ax"),
    "U@": ("uh", "ax"),
}

ESPEAK_TABLES = {"en-us": ESPEAK_EN_US, "en": ESPEAK_EN}

IGNORED = frozenset({";"})  # palatalisation marker on the previous consonant, not a phone
_MODIFIERS = "#;-0123456789"

_SET_61 = frozenset(PHONES_61)
for _table in (FESTIVAL_RADIO, *ESPEAK_TABLES.values()):
    for _native, _timit in _table.items():
        assert set(_timit) <= _SET_61, (_native, _timit)


def map_phone(table: dict[str, tuple[str, ...]], native: str) -> tuple[str, ...] | None:
    """TIMIT phones for ``native`` via ``table``; () for ignored markers; None when unmapped."""
    if native in IGNORED:
        return ()
    if native in table:
        return table[native]
    stripped = native.rstrip(_MODIFIERS) or native
    if stripped in table:
        return table[stripped]
    return None
