"""TIMIT phone sets and the standard 61 -> 48 -> 39 folding (Lee & Hon, 1989).

Training uses the 48-phone set; scoring folds hypotheses and references to 39 classes.
The glottal stop ``q`` has no 48/39 class and is removed; ``h#``, ``pau`` and ``epi`` are silence.
"""

from __future__ import annotations

import numpy as np

from ese.errors import CorpusError

# phone -> (48-class, 39-class); None means "removed" (only q)
_FOLD: dict[str, tuple[str, str] | None] = {
    "aa": ("aa", "aa"), "ae": ("ae", "ae"), "ah": ("ah", "ah"), "ao": ("ao", "aa"),
    "aw": ("aw", "aw"), "ax": ("ax", "ah"), "ax-h": ("ax", "ah"), "axr": ("er", "er"),
    "ay": ("ay", "ay"), "b": ("b", "b"), "bcl": ("vcl", "sil"), "ch": ("ch", "ch"),
    "d": ("d", "d"), "dcl": ("vcl", "sil"), "dh": ("dh", "dh"), "dx": ("dx", "dx"),
    "eh": ("eh", "eh"), "el": ("el", "l"), "em": ("m", "m"), "en": ("en", "n"),
    "eng": ("ng", "ng"), "epi": ("epi", "sil"), "er": ("er", "er"), "ey": ("ey", "ey"),
    "f": ("f", "f"), "g": ("g", "g"), "gcl": ("vcl", "sil"), "h#": ("sil", "sil"),
    "hh": ("hh", "hh"), "hv": ("hh", "hh"), "ih": ("ih", "ih"), "ix": ("ix", "ih"),
    "iy": ("iy", "iy"), "jh": ("jh", "jh"), "k": ("k", "k"), "kcl": ("cl", "sil"),
    "l": ("l", "l"), "m": ("m", "m"), "n": ("n", "n"), "ng": ("ng", "ng"),
    "nx": ("n", "n"), "ow": ("ow", "ow"), "oy": ("oy", "oy"), "p": ("p", "p"),
    "pau": ("sil", "sil"), "pcl": ("cl", "sil"), "q": None, "r": ("r", "r"),
    "s": ("s", "s"), "sh": ("sh", "sh"), "t": ("t", "t"), "tcl": ("cl", "sil"),
    "th": ("th", "th"), "uh": ("uh", "uh"), "uw": ("uw", "uw"), "ux": ("uw", "uw"),
    "v": ("v", "v"), "w": ("w", "w"), "y": ("y", "y"), "z": ("z", "z"), "zh": ("zh", "sh"),
}

PHONES_61: tuple[str, ...] = tuple(sorted(_FOLD))
PHONES_48: tuple[str, ...] = tuple(sorted({v[0] for v in _FOLD.values() if v}))
PHONES_39: tuple[str, ...] = tuple(sorted({v[1] for v in _FOLD.values() if v}))
SILENCE_39 = "sil"

assert len(PHONES_61) == 61 and len(PHONES_48) == 48 and len(PHONES_39) == 39

INDEX_48 = {p: i for i, p in enumerate(PHONES_48)}
INDEX_39 = {p: i for i, p in enumerate(PHONES_39)}


def fold_61_to_48(phone: str) -> str | None:
    """The 48-class of a TIMIT phone, or None for ``q`` (removed)."""
    try:
        folded = _FOLD[phone]
    except KeyError:
        raise CorpusError(f"unknown phone {phone!r}: not one of the 61 TIMIT phones") from None
    return folded[0] if folded else None


def fold_61_to_39(phone: str) -> str | None:
    """The 39-class (scoring set) of a TIMIT phone, or None for ``q``."""
    folded = fold_61_to_48(phone)
    return None if folded is None else _FOLD_48_TO_39[folded]


_FOLD_48_TO_39 = {v[0]: v[1] for v in _FOLD.values() if v}


def fold_48_to_39(phone: str) -> str:
    """The scoring class of a training class."""
    try:
        return _FOLD_48_TO_39[phone]
    except KeyError:
        raise CorpusError(f"unknown 48-set phone {phone!r}") from None


# index map used to fold network outputs (48 classes) to scoring classes (39) in bulk
MAP_48_TO_39 = np.array([INDEX_39[_FOLD_48_TO_39[p]] for p in PHONES_48], dtype=np.int64)


# ---- a model's output classes ------------------------------------------------------------------
# A cross-entropy model has one output per 48-set phone (PHONES_48 order). A CTC model has one
# more, the blank, last (index 48): config train.loss=ctc adds it (ese.config.with_loss_outputs),
# so the class count alone tells every later stage (checkpoint, .qnpz, .ese image, CPU engine)
# which decoder a model needs.
BLANK = "<blank>"
BLANK_INDEX = len(PHONES_48)


def output_kind(num_classes: int) -> str:
    """``"ctc"`` for a model with the 48 phones and a blank, else ``"ce"`` (frame classifier)."""
    return "ctc" if num_classes == len(PHONES_48) + 1 else "ce"


def output_classes(num_classes: int) -> list[str]:
    """The names of a model's outputs in order: PHONES_48, plus the blank for a CTC model."""
    return list(PHONES_48) + ([BLANK] if output_kind(num_classes) == "ctc" else [])
