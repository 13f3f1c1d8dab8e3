"""The fixed-point model file: exact round trip, and clear errors for every bad file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ese.compress.fixedpoint import FIXED_POINT_SPEC_VERSION, QuantError
from ese.compress.qmodel import load_qmodel, save_qmodel
from ese.compress.quantize import quantize_checkpoint
from ese.config import Config, ModelConfig
from ese.data.dataset import FeatureSet, Utterance
from ese.model.lstmp import AcousticModel


@pytest.fixture(scope="module")
def qm():
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(input_dim=6, hidden=8, proj=4, layers=2)).eval()
    rng = np.random.default_rng(0)
    fset = FeatureSet("train", [Utterance(f"u{k}", "s", rng.normal(size=(15, 6)).astype(np.float32),
                                          np.zeros(15, np.int64)) for k in range(3)])
    return quantize_checkpoint(model, Config(model=model.cfg), fset, source={"checkpoint": "x.pt"})


def _rewrite(path, tmp_path, change_header=None, drop=None, change_array=None):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if change_header:
        header = json.loads(arrays["header"].tobytes())
        change_header(header)
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    if drop:
        del arrays[drop]
    if change_array:
        name, value = change_array
        arrays[name] = value
    out = tmp_path / "edited.qnpz"
    with open(out, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
        np.savez(fh, **arrays)
    return out


def test_round_trip_is_exact(qm, tmp_path):
    path = tmp_path / "m.qnpz"
    save_qmodel(path, qm)
    back = load_qmodel(path)
    assert back.quant == qm.quant and back.model == qm.model and back.output_delay == qm.output_delay
    assert back.spec_version == FIXED_POINT_SPEC_VERSION and back.source == qm.source
    for a, b in zip(qm.layers, back.layers):
        assert a.formats == b.formats
        for name, arr in a.arrays().items():
            assert np.array_equal(arr, b.arrays()[name]) and b.arrays()[name].dtype == np.int64
    assert np.array_equal(qm.w_out, back.w_out) and np.array_equal(qm.b_out, back.b_out)
    assert back.output_formats == qm.output_formats
    assert all(np.array_equal(qm.luts[n], back.luts[n]) for n in ("sigmoid", "tanh"))
    assert back.calibration["ranges"] == qm.calibration["ranges"]  # JSON round-trips floats exactly
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary behind


def test_unknown_spec_version_is_refused(qm, tmp_path):
    save_qmodel(tmp_path / "m.qnpz", qm)
    bad = _rewrite(tmp_path / "m.qnpz", tmp_path, change_header=lambda h: h.update(spec_version=99))
    with pytest.raises(QuantError) as err:
        load_qmodel(bad)
    assert str(err.value) == (f"fixed-point model {str(bad)!r} uses fixed-point spec version 99; this ese "
                              "implements version 1 (docs/fixed-point.md); re-run ese quantize on the float "
                              "checkpoint")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_file_is_refused(qm, tmp_path, keep):
    path = tmp_path / "m.qnpz"
    save_qmodel(path, qm)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(QuantError, match=r"fixed-point model '.*m\.qnpz' is unreadable or truncated"):
        load_qmodel(path)


def test_missing_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(QuantError, match=r"fixed-point model '.*nope\.qnpz' does not exist"):
        load_qmodel(tmp_path / "nope.qnpz")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(QuantError, match=r"is not an ese fixed-point model \(no header\)"):
        load_qmodel(other)


def test_inconsistent_contents_are_refused(qm, tmp_path):
    save_qmodel(tmp_path / "m.qnpz", qm)
    src = tmp_path / "m.qnpz"
    bad = _rewrite(src, tmp_path, drop="layer1.w_r")
    with pytest.raises(QuantError, match=r"is inconsistent: KeyError: \"array 'layer1.w_r' is missing\""):
        load_qmodel(bad)
    bad = _rewrite(src, tmp_path, change_array=("layer0.w_x", np.full((32, 6), 5000, dtype=np.int32)))
    with pytest.raises(QuantError, match="layer0.w_x holds values outside the signed 12-bit range"):
        load_qmodel(bad)
    bad = _rewrite(src, tmp_path, change_array=("layer0.bias", np.zeros(7, dtype=np.int16)))
    with pytest.raises(QuantError, match=r"layer0.bias has shape \(7,\), expected \(32,\)"):
        load_qmodel(bad)
    bad = _rewrite(src, tmp_path, change_array=("lut.tanh", np.zeros(1024, dtype=np.float32)))
    with pytest.raises(QuantError, match="array 'lut.tanh' has dtype float32, expected integers"):
        load_qmodel(bad)
