"""The program image: an exact round trip, atomic writes, and a clear ImageError for every kind
of damage (wrong magic or version, truncation, checksum, section sizes, pointers, indices)."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from image_tools import resign, section, table

from ese.compiler.image import (
    HEADER_STRUCT,
    ImageError,
    image_bytes,
    load_program,
    parse_image,
    save_program,
)
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig


@pytest.fixture(scope="module")
def program(small_qmodel):
    return compile_qmodel(small_qmodel, HardwareConfig(pes=3, index_bits=2))


def test_roundtrip_restores_every_array_and_setting(program, small_qmodel, tmp_path):
    path = tmp_path / "m.ese"
    size = save_program(path, program)
    assert path.stat().st_size == size and not list(tmp_path.glob("*.tmp*"))
    back = load_program(path)
    assert back.hardware == program.hardware and back.quant == program.quant and back.model == program.model
    assert back.schedule == program.schedule
    for name, m in program.matrices().items():
        b = back.matrices()[name]
        np.testing.assert_array_equal(b.words, m.words)
        np.testing.assert_array_equal(b.ptr, m.ptr)
    qm = back.to_qmodel()
    for a, b in zip(qm.layers, small_qmodel.layers):
        for name in ("w_x", "w_r", "w_ym", "bias", "peephole"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert a.formats == b.formats
    np.testing.assert_array_equal(qm.w_out, small_qmodel.w_out)
    np.testing.assert_array_equal(qm.luts["tanh"], small_qmodel.luts["tanh"])
    assert image_bytes(back) == image_bytes(program)  # deterministic


def test_missing_file_and_wrong_magic(tmp_path, program):
    with pytest.raises(ImageError, match="does not exist"):
        load_program(tmp_path / "nope.ese")
    data = bytearray(image_bytes(program))
    data[:8] = b"NOTESE\0\0"
    with pytest.raises(ImageError, match="not an ese program image"):
        parse_image(bytes(data))


def test_unknown_version_says_to_recompile(program):
    data = bytearray(image_bytes(program))
    struct.pack_into("<H", data, 8, 99)
    with pytest.raises(ImageError, match="version 99.*recompile"):
        parse_image(resign(data))


@pytest.mark.parametrize("cut", [0, 10, 64, 500, -33, -1])
def test_truncated(program, cut):
    data = image_bytes(program)
    with pytest.raises(ImageError, match="truncated"):
        parse_image(data[:cut])


def test_any_flipped_bit_fails_the_checksum(program):
    data = bytearray(image_bytes(program))
    data[len(data) // 2] ^= 0x10
    with pytest.raises(ImageError, match="SHA-256"):
        parse_image(bytes(data))


def test_section_size_disagreeing_with_its_shape(program):
    data = bytearray(image_bytes(program))
    tab = table(bytes(data))
    tab[0]["nbytes"] += 2
    off = HEADER_STRUCT.unpack_from(data, 0)[8]
    data[off:off + tab.nbytes] = tab.tobytes()
    with pytest.raises(ImageError, match="its shape"):
        parse_image(resign(data))


def test_section_shape_disagreeing_with_the_configuration(program):
    data = bytearray(image_bytes(program))
    meta_len = HEADER_STRUCT.unpack_from(data, 0)[3]
    meta = bytes(data[64:64 + meta_len]).replace(b'"pes": 3', b'"pes": 4')
    assert len(meta) == meta_len
    data[64:64 + meta_len] = meta
    with pytest.raises(ImageError, match="shape .* the configuration needs"):
        parse_image(resign(data))


def test_pointer_out_of_range(program):
    data = bytearray(image_bytes(program))
    off, rec = section(bytes(data), "layer0.w_r.ptr")
    dt = np.dtype(rec["dtype"].decode())
    ptr = np.frombuffer(bytes(data[off:off + int(rec["nbytes"])]), dtype=dt).copy()
    ptr[1] = ptr[-1] + 5  # column 0 of PE 0 claims more entries than the PE has
    data[off:off + ptr.nbytes] = ptr.tobytes()
    with pytest.raises(ImageError, match="column pointers out of range"):
        parse_image(resign(data))


def test_index_past_the_matrix(program):
    data = bytearray(image_bytes(program))
    off, rec = section(bytes(data), "layer0.w_ym.words")
    words = np.frombuffer(bytes(data[off:off + int(rec["nbytes"])]), dtype=rec["dtype"].decode()).copy()
    words[-1] |= np.array(0b11 << 12, dtype=words.dtype)  # the largest jump: past the last row
    words[-2] |= np.array(0b11 << 12, dtype=words.dtype)
    data[off:off + words.nbytes] = words.tobytes()
    with pytest.raises(ImageError, match="past the"):
        parse_image(resign(data))


def test_write_is_atomic_on_failure(program, tmp_path, monkeypatch):
    path = tmp_path / "m.ese"
    save_program(path, program)
    before = path.read_bytes()
    from ese.compiler import image

    def boom(_program):
        raise RuntimeError("disk full")
    monkeypatch.setattr(image, "image_bytes", boom)
    with pytest.raises(RuntimeError):
        image.save_program(path, dataclasses.replace(program))
    assert path.read_bytes() == before
