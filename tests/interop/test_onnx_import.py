"""``ese import`` from ONNX: LSTM ops (gate order i o f c, two biases, peepholes i o f,
sequence_lens) and GRU ops (gate order z r h, linear_before_reset=1) + MatMul/Add, built here
with the onnx helper API; the imported checkpoint must give onnxruntime's outputs. Unsupported
attributes and ops are refused naming the node."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cli_inprocess import ese

from ese.config import Config
from ese.errors import InteropError
from ese.interop.build import import_model
from ese.model.checkpoint import load_checkpoint

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

D, H, C = 153, 12, 48


def _lstm_model(path, *, layers: int = 2, peephole: bool = True, lstm_attrs: dict | None = None,
                op: str = "LSTM", seed: int = 0):
    """x (time, batch, D) -> LSTM -> Squeeze -> ... -> MatMul -> Add -> logits (time, batch, C)."""
    rng = np.random.default_rng(seed)

    def u(*shape, scale=0.5):
        return rng.uniform(-scale, scale, shape).astype(np.float32)

    inits = [numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes = []
    h, d = "x", D
    gates = 3 if op == "GRU" else 4
    for k in range(layers):
        inits += [numpy_helper.from_array(u(1, gates * H, d), f"W{k}"),
                  numpy_helper.from_array(u(1, gates * H, H), f"R{k}"),
                  numpy_helper.from_array(u(1, 2 * gates * H), f"B{k}")]
        ins = [h, f"W{k}", f"R{k}", f"B{k}"]
        if k == 0:
            ins.append("seq")  # sequence_lens as a graph input
        if peephole and k == 0 and op == "LSTM":
            inits.append(numpy_helper.from_array(u(1, 3 * H), f"P{k}"))
            ins += ["", "", f"P{k}"]
        nodes.append(helper.make_node(op, ins, [f"Y{k}"], name=f"lstm{k}", hidden_size=H, **(lstm_attrs or {})))
        nodes.append(helper.make_node("Squeeze", [f"Y{k}", "axis1"], [f"h{k}"]))  # (T, 1, B, H) -> (T, B, H)
        h, d = f"h{k}", H
    inits += [numpy_helper.from_array(u(H, C), "Wout"), numpy_helper.from_array(u(C), "bout")]
    nodes += [helper.make_node("MatMul", [h, "Wout"], ["z"], name="fc"),
              helper.make_node("Add", ["z", "bout"], ["logits"], name="fc_bias")]
    graph = helper.make_graph(
        nodes, "theirs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", "batch", D]),
         helper.make_tensor_value_info("seq", TensorProto.INT32, ["batch"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["time", "batch", C])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _assert_equals_onnxruntime(model, src) -> None:
    """The imported model's logits equal onnxruntime's on the source graph (3 x 41 random frames)."""
    x = np.random.default_rng(9).standard_normal((3, 41, D)).astype(np.float32)  # (B, T, D)
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    want = sess.run(["logits"], {"x": x.transpose(1, 0, 2).copy(), "seq": np.full(3, 41, np.int32)})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(got, want.transpose(1, 0, 2), atol=2e-5, err_msg="ese vs onnxruntime")


@pytest.mark.parametrize("layers,peephole", [(1, False), (2, True)])
def test_onnx_lstm_import_equals_onnxruntime(tmp_path, layers, peephole):
    src = _lstm_model(tmp_path / "theirs.onnx", layers=layers, peephole=peephole, seed=layers)
    report = import_model(src, tmp_path / "m.pt", Config.load())
    assert report["check"]["passed"] and report["source"]["format"] == "onnx"
    model, _ = load_checkpoint(tmp_path / "m.pt")
    assert model.cfg.peepholes == peephole and model.cfg.proj == H  # no projection: identity w_ym
    _assert_equals_onnxruntime(model, src)


@pytest.mark.parametrize("layers", [1, 2])
def test_onnx_gru_import_equals_onnxruntime(tmp_path, layers):
    src = _lstm_model(tmp_path / "theirs.onnx", layers=layers, op="GRU", lstm_attrs={"linear_before_reset": 1},
                      seed=10 + layers)
    report = import_model(src, tmp_path / "m.pt", Config.load())
    assert report["check"]["passed"] and report["source"]["format"] == "onnx"
    model, _ = load_checkpoint(tmp_path / "m.pt")
    assert model.cfg.cell == "gru" and model.cfg.layers == layers and model.cfg.hidden == H
    _assert_equals_onnxruntime(model, src)


class _TorchGRU(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru, self.fc = torch.nn.GRU(D, H, num_layers=2), torch.nn.Linear(H, C)

    def forward(self, x):  # (T, B, D) -> (T, B, C)
        return self.fc(self.gru(x)[0])


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # torch.onnx's own notices
def test_torch_onnx_gru_export_imports(tmp_path):
    """nn.GRU exported by torch.onnx (GRU ops with linear_before_reset=1, initial_h computed as
    zeros of the batch size) -> ese import: the imported model gives nn.GRU's outputs."""
    torch.manual_seed(2)
    net = _TorchGRU().eval()
    kwargs = {"input_names": ["x"], "output_names": ["logits"], "opset_version": 17,
              "dynamic_axes": {"x": {0: "time", 1: "batch"}}}
    try:
        torch.onnx.export(net, (torch.zeros(5, 1, D),), str(tmp_path / "gru.onnx"), dynamo=False, **kwargs)
    except TypeError:  # a torch without the dynamo switch: the TorchScript exporter is its only one
        torch.onnx.export(net, (torch.zeros(5, 1, D),), str(tmp_path / "gru.onnx"), **kwargs)
    nodes = [n for n in onnx.load(str(tmp_path / "gru.onnx")).graph.node if n.op_type == "GRU"]
    assert len(nodes) == 2 and all(helper.get_attribute_value(a) == 1 for n in nodes for a in n.attribute
                                   if a.name == "linear_before_reset")
    report = import_model(tmp_path / "gru.onnx", tmp_path / "m.pt", Config.load())
    assert report["check"]["passed"]
    model, _ = load_checkpoint(tmp_path / "m.pt")
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((2, 29, D)).astype(np.float32))
    with torch.no_grad():
        want = net(x.transpose(0, 1)).transpose(0, 1)
        np.testing.assert_allclose(model(x)[0].numpy(), want.numpy(), atol=2e-5, err_msg="ese vs nn.GRU")


@pytest.mark.parametrize("attrs,op,message", [
    ({"clip": 3.0}, "LSTM", r"ONNX node 'lstm0' \(LSTM\) clips its cell input"),
    ({"input_forget": 1}, "LSTM", r"'lstm0' \(LSTM\) couples the input and forget gates"),
    ({"activations": ["Sigmoid", "Tanh", "Relu"]}, "LSTM", r"'lstm0' \(LSTM\) uses activations"),
    ({"direction": "reverse"}, "LSTM", r"'lstm0' \(LSTM\) runs reverse"),
    ({}, "GRU", r"ONNX node 'lstm0' \(GRU\) applies the reset gate to h before the recurrent product, where "
                r"ese's GRU \(as torch.nn.GRU\) applies it after \(linear_before_reset=0, the op's default\): "
                r"supported: .*linear_before_reset=1"),
    ({"linear_before_reset": 0}, "GRU", r"'lstm0' \(GRU\) applies the reset gate .*\(linear_before_reset=0\)"),
    ({"linear_before_reset": 1, "clip": 2.0}, "GRU", r"'lstm0' \(GRU\) clips its cell input"),
    ({"linear_before_reset": 1, "activations": ["Sigmoid", "Relu"]}, "GRU", r"'lstm0' \(GRU\) uses activations"),
    ({"linear_before_reset": 1, "direction": "reverse"}, "GRU", r"'lstm0' \(GRU\) runs reverse"),
])
def test_refused_onnx_layers_are_named(tmp_path, attrs, op, message):
    src = _lstm_model(tmp_path / "theirs.onnx", layers=1, peephole=False, lstm_attrs=attrs, op=op)
    with pytest.raises(InteropError, match=message):
        import_model(src, tmp_path / "m.pt", Config.load())
    assert not (tmp_path / "m.pt").exists()


def test_cli_refuses_a_gru_without_linear_before_reset_in_one_line(tmp_path, capsys):
    src = _lstm_model(tmp_path / "theirs.onnx", layers=1, peephole=False, op="GRU")  # the op's default: 0
    proc = ese(capsys, "import", str(src), "--out", str(tmp_path / "m.pt"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "ONNX node 'lstm0' (GRU)" in lines[0] and "linear_before_reset=0" in lines[0], proc.stderr
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("op,gates", [("LSTM", 4), ("GRU", 3)])
def test_bidirectional_is_refused(tmp_path, op, gates):
    src = tmp_path / "bi.onnx"
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((2, gates * H, D)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal((2, gates * H, H)).astype(np.float32), "R")]
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "W", "R"], ["Y"], name="blstm", hidden_size=H, direction="bidirectional")],
        "bi", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", "batch", D])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["time", 2, "batch", H])], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    with pytest.raises(InteropError, match=rf"'blstm' \({op}\) runs bidirectional"):
        import_model(src, tmp_path / "m.pt", Config.load())


def test_foreign_and_truncated_onnx_files(tmp_path, capsys):
    good = _lstm_model(tmp_path / "theirs.onnx", layers=1, peephole=False)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[:1000])
    text = tmp_path / "notes.onnx"
    text.write_text("not a model\n")
    for bad in (cut, text):
        with pytest.raises(InteropError, match=r"is not a readable ONNX model"):
            import_model(bad, tmp_path / "m.pt", Config.load())
    proc = ese(capsys, "import", str(cut), "--out", str(tmp_path / "m.pt"))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "is not a readable ONNX model" in proc.stderr


def test_batch_major_lstm_and_gemm_output(tmp_path):
    """A Reshape to rows and a Gemm with alpha, beta, transB; layout=1 (onnxruntime cannot run it)
    is one line naming onnxruntime."""
    rng = np.random.default_rng(11)
    f = lambda *s: rng.uniform(-0.5, 0.5, s).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(f(1, 4 * H, D), "W"), numpy_helper.from_array(f(1, 4 * H, H), "R"),
             numpy_helper.from_array(f(1, 8 * H), "B"), numpy_helper.from_array(f(C, H), "G"),
             numpy_helper.from_array(f(C), "c"), numpy_helper.from_array(np.array([-1, H], np.int64), "rows")]
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y"], name="rnn", hidden_size=H),
             helper.make_node("Reshape", ["Y", "rows"], ["flat"]),  # (T, 1, B, H) -> (T*B, H)
             helper.make_node("Gemm", ["flat", "G", "c"], ["logits"], name="head", transB=1, alpha=0.5, beta=2.0)]
    graph = helper.make_graph(nodes, "bm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", "batch", D])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["rows", C])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "bm.onnx"))
    report = import_model(tmp_path / "bm.onnx", tmp_path / "m.pt", Config.load())
    assert report["check"]["passed"]
    ours, _ = load_checkpoint(tmp_path / "m.pt")
    x = np.random.default_rng(2).standard_normal((33, 1, D)).astype(np.float32)
    want = ort.InferenceSession(str(tmp_path / "bm.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with torch.no_grad():
        got = ours(torch.from_numpy(x.transpose(1, 0, 2).copy()))[0][0].numpy()
    np.testing.assert_allclose(got, want, atol=2e-5)
    model.graph.node[0].attribute.append(helper.make_attribute("layout", 1))
    onnx.save(model, str(tmp_path / "bm1.onnx"))
    with pytest.raises(InteropError, match=r"onnxruntime cannot load .*bm1.onnx.*layout"):
        import_model(tmp_path / "bm1.onnx", tmp_path / "m1.pt", Config.load())
