"""Turn a synthesiser's native alignment into TIMIT-61 segments in samples (native rate).

Both engines yield (native phone, start, end) segments. Mapping them (``phonemap``) and giving
every stop and affricate a closure is done here; resampling and padding happen in ``perturb``.

Closures: festival's stop segment holds closure then burst, so it is split at the burst onset
(largest rise of short-time log energy inside the segment). espeak marks the stop at its release
and leaves the silent closure at the end of the preceding phone, so the trailing silent run of
that phone becomes the closure.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ese.data.synth.phonemap import SPLIT_SHARE, map_phone

CLOSURES = {"b": "bcl", "d": "dcl", "g": "gcl", "p": "pcl", "t": "tcl", "k": "kcl",
            "jh": "dcl", "ch": "tcl"}
SILENCES = frozenset({"h#", "pau", "epi"})
VOWELS = frozenset({"aa", "ae", "ah", "ao", "aw", "ax", "ax-h", "axr", "ay", "eh", "er", "ey", "ih",
                    "ix", "iy", "ow", "oy", "uh", "uw", "ux"})
LIQUIDS = frozenset({"l", "el", "r"})
MIN_PART_S = 0.005  # no split leaves a piece shorter than this
MAX_CLOSURE_S = 0.12
SILENT_DB = -45.0  # frame energy below peak that counts as silent (espeak closures are digital zero)

Segment = tuple[str, int, int]  # (TIMIT phone, start, end) in samples


def _frame_db(audio: np.ndarray, hop: int) -> np.ndarray:
    """Log energy of frames of ``2 * hop`` samples every ``hop`` samples, in dB re the peak frame."""
    n = len(audio) // hop
    frames = audio[: n * hop].reshape(n, hop).astype(np.float64)  # (n, hop)
    power = (frames**2).mean(axis=1)
    power = np.convolve(power, [0.5, 0.5], mode="same")  # 2-hop windows
    ref = max(power.max(initial=0.0), 1e-12)
    return 10.0 * np.log10(np.maximum(power, 1e-12) / ref)


def map_segments(native: list[tuple[str, int, int]], table: dict[str, tuple[str, ...]],
                 unmapped: Counter) -> list[Segment]:
    """Map native segments through ``table``; unknown ones merge into the previous segment."""
    out: list[list] = []
    for name, start, end in native:
        if end <= start:
            continue
        timit = map_phone(table, name)
        if not timit:
            if timit is None:
                unmapped[name] += 1
            if out:
                out[-1][2] = end
            else:
                out.append(["pau", start, end])
            continue
        if len(timit) == 1:
            pieces = [[timit[0], start, end]]
        else:
            cut = start + int(round((end - start) * SPLIT_SHARE))
            pieces = [[timit[0], start, cut], [timit[1], cut, end]]
        for piece in pieces:
            if out and piece[0] == out[-1][0]:  # "ao r" + "r" (espeak O@ r) is one r
                out[-1][2] = piece[2]
            else:
                out.append(piece)
    return [(p, s, e) for p, s, e in out if e > s]


def split_festival_closures(segments: list[Segment], audio: np.ndarray, sr: int) -> list[Segment]:
    """Split each stop / affricate segment into closure + release at its burst onset."""
    hop = max(1, sr // 1000)
    db = _frame_db(audio, hop)
    min_part = int(MIN_PART_S * sr)
    out: list[Segment] = []
    for phone, start, end in segments:
        if phone not in CLOSURES or end - start < 3 * min_part:
            out.append((phone, start, end))
            continue
        lo, hi = (start + min_part) // hop, (end - min_part) // hop
        rise = np.diff(db[lo - 1: hi + 1]) if lo >= 1 and hi + 1 <= len(db) else np.zeros(0)
        if len(rise) == 0:
            out.append((phone, start, end))
            continue
        burst = (lo + int(np.argmax(rise))) * hop
        burst = min(max(burst, start + min_part), end - min_part)
        out.append((CLOSURES[phone], start, burst))
        out.append((phone, burst, end))
    return out


def split_espeak_closures(segments: list[Segment], audio: np.ndarray, sr: int) -> list[Segment]:
    """Carve each stop's closure out of the silent tail of the phone before it."""
    hop = max(1, sr // 1000)
    db = _frame_db(audio, hop)
    min_part = int(MIN_PART_S * sr)
    max_closure = int(MAX_CLOSURE_S * sr)
    out: list[list] = [list(s) for s in segments[:1]]
    for phone, start, end in segments[1:]:
        prev = out[-1]
        if phone in CLOSURES:
            frame = start // hop
            first = frame
            while first > 0 and start - (first - 1) * hop <= max_closure and db[first - 1] < SILENT_DB:
                first -= 1
            closure_start = max(first * hop, prev[1])
            if start - closure_start >= min_part:
                if prev[0] in SILENCES:
                    if closure_start - prev[1] < min_part:  # a pause wholly taken by the closure
                        out.pop()
                        closure_start = prev[1]
                    else:
                        prev[2] = closure_start
                elif closure_start - prev[1] >= 2 * min_part:
                    prev[2] = closure_start
                elif len(out) >= 2 and out[-2][0] not in SILENCES:
                    # espeak put the previous phone's sound inside the one before it (post-vocalic
                    # /l/ before a stop): share their span SPLIT_SHARE : rest
                    before = out[-2]
                    cut = before[1] + int(round((closure_start - before[1]) * SPLIT_SHARE))
                    if cut - before[1] >= min_part and closure_start - cut >= min_part:
                        before[2], prev[1], prev[2] = cut, cut, closure_start
                    else:
                        closure_start = start
                else:
                    closure_start = start
                if closure_start < start:
                    out.append([CLOSURES[phone], closure_start, start])
        out.append([phone, start, end])
    # espeak renders a post-vocalic liquid inside the vowel and marks it only briefly at the end:
    # give such a liquid the last (1 - SPLIT_SHARE) of the vowel + liquid span
    for i in range(1, len(out)):
        prev, cur = out[i - 1], out[i]
        if cur[0] in LIQUIDS and prev[0] in VOWELS and cur[2] - cur[1] < 4 * min_part:
            cut = prev[1] + int(round((cur[2] - prev[1]) * SPLIT_SHARE))
            if cut > cur[1]:
                cut = cur[1]
            prev[2] = cur[1] = cut
    return [(p, s, e) for p, s, e in out if e > s]


def native_espeak_segments(phones: list[tuple[str, int]], n_samples: int) -> list[tuple[str, int, int]]:
    """espeak phoneme events (name, start) -> (name, start, end): each ends where the next starts."""
    out = []
    for i, (name, start) in enumerate(phones):
        end = phones[i + 1][1] if i + 1 < len(phones) else n_samples
        out.append((name, min(start, n_samples), min(end, n_samples)))
    return out


def native_festival_segments(phones: list[tuple[str, float]], sr: int,
                             n_samples: int) -> list[tuple[str, int, int]]:
    """festival Segment items (name, end seconds) -> (name, start, end) samples."""
    out, start = [], 0
    for name, end_s in phones:
        end = min(int(round(end_s * sr)), n_samples)
        out.append((name, start, end))
        start = max(start, end)
    return out
