"""Fuzzing the checkpoint loader: truncations, bit flips and foreign files give a CheckpointError
or, for a flip that changes no content (zip slack), the very same checkpoint; never another
exception, never silently different weights. Plus the SHA-256 over every tensor (issue 12, item 6)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ese.config import ModelConfig
from ese.errors import CheckpointError
from ese.model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from ese.model.lstmp import AcousticModel

CFG = ModelConfig(input_dim=3, hidden=4, proj=2, layers=1, num_classes=48)


class _Ckpt:
    """The checkpoint under test, built once; kept out of hypothesis' arguments."""

    blob: bytes = b""
    state: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = AcousticModel(CFG)
    path = tmp_path_factory.mktemp("ck") / "m.pt"
    opt = {"exp_avg": torch.full((4,), 0.25), "step": torch.tensor(3.0)}
    save_checkpoint(path, model, epoch=2, history=[{"epoch": 1, "dev_loss": 1.25}],
                    train_state={"optimizer": opt, "rng": torch.arange(8, dtype=torch.uint8)})
    _Ckpt.blob = path.read_bytes()
    _Ckpt.state = read_checkpoint(path)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _load(tmp_path: Path, blob: bytes, name: str = "f.pt") -> dict | None:
    path = tmp_path / name
    path.write_bytes(blob)
    try:
        state = read_checkpoint(path)
    except CheckpointError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return None
    load_checkpoint(path)  # what survives reading also builds the model
    return state


fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz
@given(st.data())
def test_truncations(tmp_path, draw):
    cut = draw.draw(st.integers(0, len(_Ckpt.blob) - 1))
    assert _load(tmp_path, _Ckpt.blob[:cut]) is None


@fuzz
@given(st.data())
def test_bit_flips_are_caught_or_change_nothing(tmp_path, draw):
    buf = bytearray(_Ckpt.blob)
    for _ in range(draw.draw(st.integers(1, 3))):
        buf[draw.draw(st.integers(0, len(buf) - 1))] ^= 1 << draw.draw(st.integers(0, 7))
    state = _load(tmp_path, bytes(buf))
    assert state is None or _same(state, _Ckpt.state)


@fuzz
@given(st.binary(min_size=0, max_size=2048))
def test_foreign_bytes(tmp_path, blob):
    assert _load(tmp_path, blob) is None


def _data_offsets(blob: bytes) -> dict[str, int]:
    """Where each tensor record's bytes start in the file (zip local header + name + extra)."""
    import io

    out = {}
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        for info in zf.infolist():
            if "/data/" in info.filename:
                n, m = struct.unpack("<HH", blob[info.header_offset + 26:info.header_offset + 30])
                out[info.filename] = info.header_offset + 30 + n + m
    return out


@pytest.mark.parametrize("which", ["weights", "optimizer"])
def test_a_flipped_bit_in_any_tensor_is_refused(tmp_path, which):
    """0.1007 -> 3.4e37 in a weight was evaluated without a word; a flip in the optimizer state
    would have been resumed from."""
    offsets = _data_offsets(_Ckpt.blob)
    target = torch.full((4,), 0.25).numpy().tobytes() if which == "optimizer" else None
    hits = [off for off in offsets.values()
            if target is None or _Ckpt.blob[off:off + len(target)] == target]
    assert hits
    buf = bytearray(_Ckpt.blob)
    buf[hits[0] + 3] ^= 0x40  # the exponent of the first float
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(buf))
    with pytest.raises(CheckpointError, match=r"flipped\.pt' is corrupt: its SHA-256 does not match"):
        load_checkpoint(path)


def test_checkpoints_without_a_checksum_still_load(tmp_path):
    """Written before checksums existed: accepted as they are."""
    state = dict(_Ckpt.state)
    path = tmp_path / "old.pt"
    torch.save({k: v for k, v in torch.load(_write(tmp_path, _Ckpt.blob), weights_only=True).items()
                if k != "checksum"}, path)
    model, meta = load_checkpoint(path)
    assert meta["epoch"] == state["epoch"] and "checksum" not in meta


def _write(tmp_path: Path, blob: bytes) -> Path:
    path = tmp_path / "copy.pt"
    path.write_bytes(blob)
    return path


@pytest.mark.parametrize("blob,kind", [(b"", "an empty file"), (b"\x7fELF\x02\x01", "an ELF executable"),
                                       (b"ESEPROG\x00" + bytes(64), "an ese program image"),
                                       (b"hello\n", "a text file")])
def test_foreign_files_say_what_they_are(tmp_path, blob, kind):
    path = _write(tmp_path, blob)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert f"it is {kind}" in str(info.value) and "EOFError" not in str(info.value)


def test_other_checked_files_are_verified_too(tmp_path):
    """A pruning state (or any dict) written with write_checked is verified by read_checked."""
    from ese.model.checkpoint import read_checked, write_checked

    path = tmp_path / "state.pt"
    write_checked(path, {"version": 7, "weights": torch.full((16,), 0.5)})
    assert torch.equal(read_checked(path, "pruning state")["weights"], torch.full((16,), 0.5))
    blob = bytearray(path.read_bytes())
    off = next(iter(_data_offsets(bytes(blob)).values()))
    blob[off + 3] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match=r"^pruning state '.*state\.pt' is corrupt: its SHA-256"):
        read_checked(path, "pruning state")
