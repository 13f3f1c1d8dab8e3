"""``ese export --to torch|onnx``: the exported model, loaded by nn.LSTM / onnxruntime, gives our
float model's logits (two sequence lengths); peepholes are refused by nn.LSTM unless dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_inprocess import ese
from torch import nn

from ese.config import Config, ModelConfig
from ese.errors import InteropError
from ese.interop.build import import_model
from ese.interop.export import export_model
from ese.model.checkpoint import load_checkpoint, save_checkpoint
from ese.model.lstmp import AcousticModel


def _checkpoint(tmp: Path, *, peepholes: bool, layers: int = 2, hidden: int = 16, proj: int = 8,
                prune: float = 0.0, seed: int = 0) -> tuple[Path, AcousticModel]:
    torch.manual_seed(seed)
    cfg = ModelConfig(input_dim=153, hidden=hidden, proj=proj, layers=layers, peepholes=peepholes)
    model = AcousticModel(cfg).eval()
    if prune:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.split(".")[-1] in ("w_x", "w_r", "w_ym"):
                    p.mul_(torch.rand(p.shape) >= prune)  # a pruned model: exact zeros
    path = tmp / "ours.pt"
    save_checkpoint(path, model, config=Config.load().to_dict())
    return path, model


def _ours(model: AcousticModel, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x))[0].numpy()


@pytest.mark.parametrize("prune", [0.0, 0.8])
def test_torch_export_loads_into_nn_lstm(tmp_path, prune):
    ck, model = _checkpoint(tmp_path, peepholes=False, prune=prune)
    report = export_model(ck, "torch", tmp_path / "x.pt")
    state = torch.load(tmp_path / "x.pt", weights_only=True)
    # as a user would: nn.LSTM(proj_size) and nn.Linear with the documented prefixes
    lstm = nn.LSTM(153, 16, num_layers=2, proj_size=8, batch_first=True)
    lstm.load_state_dict({k[len("lstm."):]: v for k, v in state.items() if k.startswith("lstm.")})
    fc = nn.Linear(8, 48)
    fc.load_state_dict({k[len("output."):]: v for k, v in state.items() if k.startswith("output.")})
    x = np.random.default_rng(1).standard_normal((3, 31, 153)).astype(np.float32)
    with torch.no_grad():
        got = fc(lstm(torch.from_numpy(x))[0]).numpy()
    np.testing.assert_allclose(got, _ours(model, x), atol=1e-5)
    assert report["nn_lstm"]["proj_size"] == 8 and report["check"]["passed"]
    assert report["density"] == pytest.approx(1 - prune, abs=0.05)


def test_peepholes_refused_unless_dropped_and_the_drop_is_reported(tmp_path):
    ck, model = _checkpoint(tmp_path, peepholes=True)
    with pytest.raises(InteropError, match=r"layer 0 has 48 non-zero peepholes .*--drop-peepholes"):
        export_model(ck, "torch", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    report = export_model(ck, "torch", tmp_path / "x.pt", drop_peepholes=True)
    assert [d["layer"] for d in report["dropped_peepholes"]] == [0, 1]
    assert any("dropped the peepholes of layer 1: 48 non-zero" in n for n in report["notes"])
    assert report["peephole_drop_change"] > 0


def test_no_projection_round_trip_through_import(tmp_path):
    """nn.LSTM without proj_size -> ese import (identity w_ym) -> ese export: the same tensors back."""
    torch.manual_seed(4)
    lstm, fc = nn.LSTM(153, 12, num_layers=2, batch_first=True), nn.Linear(12, 48)
    theirs = {**{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
              **{f"output.{k}": v for k, v in fc.state_dict().items()}}
    torch.save(theirs, tmp_path / "theirs.pt")
    import_model(tmp_path / "theirs.pt", tmp_path / "ours.pt", Config.load())
    report = export_model(tmp_path / "ours.pt", "torch", tmp_path / "back.pt")
    assert report["nn_lstm"]["proj_size"] == 0
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    assert set(back) == set(theirs)
    for k in theirs:
        if "bias" in k and k.startswith("lstm."):
            continue  # the two biases come back summed into bias_ih
        assert torch.equal(back[k], theirs[k]), k
    b_sum = theirs["lstm.bias_ih_l1"] + theirs["lstm.bias_hh_l1"]
    assert torch.allclose(back["lstm.bias_ih_l1"] + back["lstm.bias_hh_l1"], b_sum)


@pytest.mark.parametrize("peepholes", [False, True])
def test_onnx_export_matches_onnxruntime_at_two_lengths(tmp_path, peepholes):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    ck, model = _checkpoint(tmp_path, peepholes=peepholes, layers=2, prune=0.7, seed=3)
    report = export_model(ck, "onnx", tmp_path / "m.onnx")
    assert report["check"]["passed"] and report["check"]["lengths"] == [7, 23]
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[:2]] == ["batch", "time"] and dims[2].dim_value == 153
    assert "LSTM" not in {n.op_type for n in graph.node}  # the projection needs standard ops
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    for length in (5, 64):  # not the lengths the command checked
        x = rng.standard_normal((2, length, 153)).astype(np.float32)
        got = sess.run(["logits"], {"features": x})[0]
        np.testing.assert_allclose(got, _ours(model, x), atol=1e-5, rtol=1e-5,
                                   err_msg=f"onnxruntime vs ese float model, T={length}")


def test_cli_export_bad_input_is_one_line(tmp_path, capsys):
    ck, _ = _checkpoint(tmp_path, peepholes=False)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(ck.read_bytes()[:500])
    foreign = tmp_path / "sd.pt"
    torch.save(nn.LSTM(4, 4).state_dict(), foreign)
    qnpz = tmp_path / "m.qnpz"
    with open(qnpz, "wb") as fh:
        np.savez(fh, w=np.zeros(3))
    for bad, to, said in ((cut, "torch", "truncated or damaged"), (foreign, "onnx", "is not an ese checkpoint"),
                          (tmp_path / "no.pt", "torch", "does not exist"), (ck, "tflite", "--to must be torch or onnx"),
                          (qnpz, "onnx", "takes the float checkpoint (.pt) it was made from")):
        proc = ese(capsys, "export", str(bad), "--to", to, "--out", str(tmp_path / "x.out"))
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and said in lines[0], proc.stderr
    assert not (tmp_path / "x.out").exists()
    proc = ese(capsys, "export", str(ck), "--to", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert proc.returncode == 0 and "check: max |export - ese|" in proc.stdout, proc.stderr


def _gru_checkpoint(tmp: Path) -> tuple[Path, AcousticModel]:
    torch.manual_seed(6)
    model = AcousticModel(ModelConfig(input_dim=153, hidden=16, layers=2, cell="gru")).eval()
    with torch.no_grad():
        for layer in model.layers:
            layer.params()["bias"].uniform_(-0.5, 0.5)  # b_hn (inside the reset product) non-zero too
    save_checkpoint(tmp / "gru.pt", model, config=Config.load().to_dict())
    return tmp / "gru.pt", model


def test_gru_model_exports_to_nn_gru(tmp_path):
    ck, model = _gru_checkpoint(tmp_path)
    report = export_model(ck, "torch", tmp_path / "x.pt")
    assert report["nn_lstm"]["module"] == "GRU" and report["check"]["max_abs_diff"] < 1e-5
    state = torch.load(tmp_path / "x.pt", weights_only=True)
    gru = nn.GRU(153, 16, num_layers=2, batch_first=True)
    gru.load_state_dict({k[len("lstm."):]: v for k, v in state.items() if k.startswith("lstm.")})
    fc = nn.Linear(16, 48)
    fc.load_state_dict({k[len("output."):]: v for k, v in state.items() if k.startswith("output.")})
    x = np.random.default_rng(3).standard_normal((2, 19, 153)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(fc(gru(torch.from_numpy(x))[0]).numpy(), _ours(model, x), atol=1e-5)


def test_gru_onnx_export_matches_onnxruntime_at_two_lengths(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    ck, model = _gru_checkpoint(tmp_path)
    proc = ese(capsys, "export", str(ck), "--to", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert proc.returncode == 0 and "check: max |export - ese|" in proc.stdout, proc.stderr
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[:2]] == ["batch", "time"] and dims[2].dim_value == 153
    assert [n.op_type for n in graph.node].count("Scan") == 2
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    for batch, length in ((2, 5), (3, 64)):  # batch and time both dynamic
        x = rng.standard_normal((batch, length, 153)).astype(np.float32)
        got = sess.run(["logits"], {"features": x})[0]
        np.testing.assert_allclose(got, _ours(model, x), atol=1e-5, rtol=1e-5,
                                   err_msg=f"onnxruntime vs ese float GRU model, T={length}")
