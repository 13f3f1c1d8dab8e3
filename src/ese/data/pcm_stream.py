"""Audio read in chunks from a file or a pipe: a WAV stream, or raw 16-bit little-endian PCM.

``ese transcribe --stream`` reads standard input or a file through :func:`pcm_chunks` and feeds
each chunk to the recognizer as it arrives, so nothing waits for the end of the input. A stream
that starts with ``RIFF`` is parsed as WAV (16-bit PCM, mono, the model's sample rate; a data
size of 0 or 0xFFFFFFFF, as streaming writers emit, means "until the end"), one that starts with
``NIST_1A`` as SPHERE (TIMIT's format: 16-bit PCM, either byte order); anything else that is not a
known non-audio kind is raw PCM at the model's sample rate.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from ese.errors import AudioError

_NOT_AUDIO = {b"ESEP": "an ese program image", b"PK\x03\x04": "a ZIP archive (a model file?)",
              b"\x7fELF": "an ELF executable", b"\x89PNG": "a PNG image", b"%PDF": "a PDF document",
              b"\x93NUM": "a NumPy array"}
_UNTIL_END = (0, 0xFFFFFFFF)


def pcm_chunks(fh: BinaryIO, rate: int, chunk_samples: int, name: str) -> Iterator[np.ndarray]:
    """int16 sample chunks of at most ``chunk_samples`` (the last may be shorter); AudioError
    names ``name`` for a wrong format, a truncated WAV or an odd byte count."""
    head = _read_exact(fh, 4)
    swap = False
    if head == b"RIFF":
        declared = _wav_header(fh, rate, name)
    elif head == b"NIST":
        declared, swap = _sphere_header(fh, rate, name)
    else:
        if head in _NOT_AUDIO:
            raise AudioError(f"{name}: is {_NOT_AUDIO[head]}, not audio")
        declared = None
    pending = b"" if head in (b"RIFF", b"NIST") else head
    for chunk in _chunks(fh, pending, declared, 2 * chunk_samples, name):
        samples = np.frombuffer(chunk, "<i2")
        yield (samples.byteswap() if swap else samples).astype(np.int16)


def _chunks(fh: BinaryIO, pending: bytes, declared: int | None, want: int, name: str) -> Iterator[bytes]:
    """Byte chunks of ``want`` bytes (the last shorter) up to ``declared`` bytes (None: the end)."""
    got = 0
    while True:
        block = fh.read(want - len(pending)) if len(pending) < want else b""
        data = pending + (block or b"")
        if not block and len(data) < want:  # end of input
            if declared is not None and declared not in _UNTIL_END and got + len(data) < declared:
                raise AudioError(f"{name}: truncated audio (its header says {declared // 2} samples, "
                                 f"the stream held {(got + len(data)) // 2})")
            if len(data) % 2:
                raise AudioError(f"{name}: ends in half a sample ({got + len(data)} bytes of 16-bit PCM)")
            if data:
                yield data
            return
        if len(data) < want:
            pending = data
            continue
        if declared is not None and declared not in _UNTIL_END and got + len(data) >= declared:
            data = data[:declared - got]  # chunks after the data chunk are not audio
            if data:
                yield data[:len(data) - len(data) % 2]
            return
        got += len(data)
        pending = b""
        yield data


def _wav_header(fh: BinaryIO, rate: int, name: str) -> int:
    """Read up to the data chunk; return its declared size in bytes."""
    rest = _read_exact(fh, 8)
    if len(rest) < 8 or rest[4:8] != b"WAVE":
        raise AudioError(f"{name}: a RIFF stream that is not WAVE audio")
    fmt = None
    while True:
        hdr = _read_exact(fh, 8)
        if len(hdr) < 8:
            raise AudioError(f"{name}: truncated WAV header (no data chunk)")
        cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        if cid == b"data":
            break
        body = _read_exact(fh, size + (size & 1))
        if len(body) < size:
            raise AudioError(f"{name}: truncated WAV header (chunk {cid!r})")
        if cid == b"fmt ":
            if size < 16:
                raise AudioError(f"{name}: malformed WAV fmt chunk")
            fmt = struct.unpack("<HHIIHH", body[:16])
    if fmt is None:
        raise AudioError(f"{name}: WAV without a fmt chunk before its data")
    tag, channels, srate, _, _, bits = fmt
    if tag not in (1, 0xFFFE) or bits != 16:
        raise AudioError(f"{name}: WAV holds {bits}-bit {'PCM' if tag in (1, 0xFFFE) else f'format {tag}'}; "
                         "streaming reads 16-bit PCM")
    _check_mono_rate(channels, srate, rate, name)
    return size


def _sphere_header(fh: BinaryIO, rate: int, name: str) -> tuple[int, bool]:
    """Read a SPHERE header; return (data bytes it declares, whether samples are big-endian)."""
    first = _read_exact(fh, 12)  # "_1A\n   1024\n" after "NIST"
    try:
        size = int(first[4:].split()[0])
    except (ValueError, IndexError):
        raise AudioError(f"{name}: malformed NIST SPHERE header") from None
    body = (first + _read_exact(fh, size - 16)).decode("ascii", "replace")
    if size < 16 or len(body) < size - 4:
        raise AudioError(f"{name}: truncated NIST SPHERE header")
    fields = {}
    for line in body.splitlines()[2:]:
        parts = line.split(None, 2)
        if len(parts) == 3:
            fields[parts[0]] = parts[2]
    try:
        count, srate = int(fields["sample_count"]), int(fields.get("sample_rate", rate))
        width, channels = int(fields.get("sample_n_bytes", 2)), int(fields.get("channel_count", 1))
    except (KeyError, ValueError):
        raise AudioError(f"{name}: NIST SPHERE header without a readable sample_count") from None
    if width != 2 or "pcm" not in fields.get("sample_coding", "pcm"):
        raise AudioError(f"{name}: SPHERE holds {width}-byte {fields.get('sample_coding')} samples; "
                         "streaming reads 16-bit PCM")
    _check_mono_rate(channels, srate, rate, name)
    return 2 * count, fields.get("sample_byte_format", "01") == "10"


def _check_mono_rate(channels: int, srate: int, rate: int, name: str) -> None:
    """AudioError unless a header declares one channel at ``rate`` Hz."""
    if channels != 1:
        raise AudioError(f"{name}: {channels} channels, expected mono")
    if srate != rate:
        raise AudioError(f"{name}: sample rate {srate} Hz, expected {rate} Hz")


def _read_exact(fh: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end of the input (pipes deliver in pieces)."""
    out = b""
    while len(out) < n:
        block = fh.read(n - len(out))
        if not block:
            break
        out += block
    return out
