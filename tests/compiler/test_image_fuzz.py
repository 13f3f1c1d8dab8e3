"""Fuzzing the loader: random truncations, bit flips and random bytes (re-signed or not) give an
ImageError or a valid program, never another exception and never a hang."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from image_tools import resign

from ese.compiler.image import ImageError, image_bytes, parse_image
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig


class _Image:
    """The image under test, built once; kept out of hypothesis' arguments (its repr is huge)."""

    blob: bytes = b""


@pytest.fixture(scope="module", autouse=True)
def _image(small_qmodel):
    _Image.blob = image_bytes(compile_qmodel(small_qmodel, HardwareConfig(pes=2, index_bits=3)))


def _load(blob: bytes) -> None:
    try:
        parse_image(blob)
    except ImageError:
        pass


fuzz = settings(max_examples=200, deadline=2000)


@fuzz
@given(st.data())
def test_truncations(draw):
    data = _Image.blob
    cut = draw.draw(st.integers(0, len(data) - 1))
    with pytest.raises(ImageError):
        parse_image(data[:cut])


@fuzz
@given(st.data())
@pytest.mark.slow  # hundreds of images
def test_bit_flips_behind_a_valid_checksum(draw):
    """Re-signed after the flips, so the structural checks behind the checksums are what runs."""
    buf = bytearray(_Image.blob)
    for _ in range(draw.draw(st.integers(1, 4))):
        pos = draw.draw(st.integers(0, len(buf) - 33))
        buf[pos] ^= 1 << draw.draw(st.integers(0, 7))
    _load(resign(buf) if draw.draw(st.booleans()) else bytes(buf))


@fuzz
@given(st.binary(min_size=0, max_size=4096))
def test_random_bytes(blob):
    with pytest.raises(ImageError):
        parse_image(blob)


@fuzz
@given(st.binary(min_size=1, max_size=2048))
def test_random_bytes_behind_a_valid_header(blob):
    data = _Image.blob
    _load(resign(bytearray(data[:64] + blob + data[64 + len(blob):])))
