"""Test helpers that tamper with an image and re-sign it, so the checks behind the checksums run."""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

from ese.compiler.image import HEADER_STRUCT, SECTION_DTYPE, TRAILER_SIZE


def table(data: bytes) -> np.ndarray:
    fields = HEADER_STRUCT.unpack_from(data, 0)
    n_sec, table_off = fields[4], fields[8]
    return np.frombuffer(data, dtype=SECTION_DTYPE, count=n_sec, offset=table_off).copy()


def resign(buf: bytearray) -> bytes:
    """Recompute every section CRC and the SHA-256 trailer of (tampered) image bytes."""
    fields = HEADER_STRUCT.unpack_from(buf, 0)
    try:
        tab = table(bytes(buf))
    except ValueError:  # the tampering broke the table's location: only the trailer can be re-signed
        body = bytes(buf[:-TRAILER_SIZE])
        return body + hashlib.sha256(body).digest()
    for rec in tab:
        off, n = int(rec["offset"]), int(rec["nbytes"])
        if off + n <= len(buf) - TRAILER_SIZE:
            rec["crc32"] = zlib.crc32(bytes(buf[off:off + n]))
    buf[fields[8]:fields[8] + tab.nbytes] = tab.tobytes()
    body = bytes(buf[:-TRAILER_SIZE])
    return body + hashlib.sha256(body).digest()


def section(data: bytes, name: str) -> tuple[int, np.ndarray]:
    """(offset, record) of the named section."""
    for rec in table(data):
        if rec["name"].decode() == name:
            return int(rec["offset"]), rec
    raise KeyError(name)
