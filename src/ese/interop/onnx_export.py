"""An ese model as an ONNX graph built from standard ops (the ONNX ``LSTM`` op has no projection).

Input ``features`` (batch, time, D) float32, output ``logits`` (batch, time, C); both dims are
dynamic. Per layer k, in the structure of ``ese.model.recurrence``::

    xw    = features_k @ W_x^T + bias            MatMul, Add      (B, T, blocks x H), all steps at once
    y, s  = zeros (B, P), zeros (B, H) per state Shape, Concat, ConstantOfShape
    Scan over time (axis 1) of xw with state (y, s...); the body is one step of the cell:
        acc   = xw_t + y @ W_r^T                 MatMul, Add
        the cell's float_step on acc             its own ops, traced (Split, Sigmoid, Tanh, Mul, Add, Sub)
        y     = out @ W_out^T                    MatMul: the projection (y = out without one)
    features_{k+1} = the scanned y               (B, T, P)
    logits = features_L @ W_out^T + b_out

The step is the cell description's ``float_step`` (``ese.cell``) run on symbolic values that
emit ONNX nodes, so the graph computes what the float model computes by construction. A gate
matrix whose row blocks are not the accumulator blocks is written scattered into accumulator
rows (zero rows elsewhere). Weights are initializers of the main graph, read by the Scan bodies
from the outer scope. The phone set, feature config and output delay are in
``metadata_props`` (keys ``ese.*``, JSON).
"""

from __future__ import annotations

import json
from numbers import Real
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ese.cell import INPUT, RECURRENT, CellSpec, cell_spec
from ese.model.lstmp import AcousticModel

OPSET = 17
INPUT_NAME, OUTPUT = "features", "logits"
f32 = TensorProto.FLOAT


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


class _Value:
    """A tensor of a Scan body under construction; arithmetic adds nodes to its :class:`_Body`."""

    def __init__(self, body: _Body, name: str) -> None:
        self.body, self.name = body, name

    def _bin(self, op: str, a: Any, b: Any) -> _Value:
        return self.body.node(op, [self.body.operand(a), self.body.operand(b)])

    def __add__(self, o: Any) -> _Value:
        return self._bin("Add", self, o)

    def __radd__(self, o: Any) -> _Value:
        return self._bin("Add", o, self)

    def __sub__(self, o: Any) -> _Value:
        return self._bin("Sub", self, o)

    def __rsub__(self, o: Any) -> _Value:
        return self._bin("Sub", o, self)

    def __mul__(self, o: Any) -> _Value:
        return self._bin("Mul", self, o)

    def __rmul__(self, o: Any) -> _Value:
        return self._bin("Mul", o, self)

    def __neg__(self) -> _Value:
        return self.body.node("Neg", [self.name])


class _Rows:
    """A (rows, H) vector of the layer: row k is the outer initializer ``<prefix><name><k>``."""

    def __init__(self, body: _Body, prefix: str) -> None:
        self.body, self.prefix = body, prefix

    def __getitem__(self, k: int) -> _Value:
        return _Value(self.body, f"{self.prefix}{k}")


class _Body:
    """The float arithmetic a cell's ``float_step`` is written against (``sigmoid``, ``tanh``,
    ``split``), emitting the nodes of a Scan body. ``split`` cuts the accumulator into equal
    blocks with the outer initializer ``<prefix>split<n>``, listed in ``splits``."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.nodes, self.splits = prefix, [], set()
        self._count = 0

    def _name(self) -> str:
        self._count += 1
        return f"v{self._count}"

    def node(self, op: str, inputs: list[str], **attrs: Any) -> _Value:
        out = self._name()
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return _Value(self, out)

    def operand(self, v: Any) -> str:
        if isinstance(v, _Value):
            return v.name
        if isinstance(v, Real):
            return self.node("Constant", [], value=helper.make_tensor(self._name(), f32, [], [float(v)])).name
        raise TypeError(f"an ONNX step cannot take a {type(v).__name__}")

    def sigmoid(self, a: _Value) -> _Value:
        return self.node("Sigmoid", [a.name])

    def tanh(self, a: _Value) -> _Value:
        return self.node("Tanh", [a.name])

    def split(self, a: _Value, n: int) -> tuple[_Value, ...]:
        self.splits.add(n)
        outs = [self._name() for _ in range(n)]
        self.nodes.append(helper.make_node("Split", [a.name, f"{self.prefix}split{n}"], outs, axis=1))
        return tuple(_Value(self, o) for o in outs)


def _step_body(spec: CellSpec, k: int, hidden: int, proj: int, vectors: tuple[str, ...]) -> tuple[onnx.GraphProto, set[int]]:
    """One time step of layer ``k``: inputs (y_prev, each state, xw_t), outputs (y, each state,
    y_out); and the split counts it needs initializers for."""
    n = f"l{k}_"
    body = _Body(n)
    acc = body.node("Add", ["xw_t", body.node("MatMul", ["y_prev", f"{n}w_rec_t"]).name])  # (B, blocks x H)
    state = {s: _Value(body, f"{s}_prev") for s in spec.state}
    signals, new_state = spec.float_step(body, acc, state, {v: _Rows(body, f"{n}{v}") for v in vectors})
    out = signals[spec.output]
    y = body.node("MatMul", [out.name, f"{n}w_out_t"]) if spec.projection is not None else out  # (B, P)
    body.nodes += [helper.make_node("Identity", [y.name], ["y"]), helper.make_node("Identity", [y.name], ["y_out"])]
    body.nodes += [helper.make_node("Identity", [new_state[s].name], [s]) for s in spec.state]
    blocks = len(spec.acc_blocks)
    graph = helper.make_graph(
        body.nodes, f"{n}step",
        [helper.make_tensor_value_info("y_prev", f32, ["B", proj])]
        + [helper.make_tensor_value_info(f"{s}_prev", f32, ["B", hidden]) for s in spec.state]
        + [helper.make_tensor_value_info("xw_t", f32, ["B", blocks * hidden])],
        [helper.make_tensor_value_info("y", f32, ["B", proj])]
        + [helper.make_tensor_value_info(s, f32, ["B", hidden]) for s in spec.state]
        + [helper.make_tensor_value_info("y_out", f32, ["B", proj])])
    return graph, body.splits


def _acc_matrix(spec: CellSpec, params: dict[str, Any], operand: str, hidden: int) -> np.ndarray:
    """(blocks x H, cols): the gate matrices on ``operand`` summed into accumulator rows."""
    mats = [m for m in spec.gate_matrices if m.operand == operand]
    out: np.ndarray | None = None
    for m in mats:
        w = _np(params[m.name])
        if out is None:
            out = np.zeros((len(spec.acc_blocks) * hidden, w.shape[1]), np.float32)
        if spec.acc_identity(m.name):
            out += w
        else:
            np.add.at(out, spec.acc_rows(m.name, hidden), w)
    assert out is not None
    return out


def to_onnx(model: AcousticModel, metadata: dict[str, Any] | None = None) -> onnx.ModelProto:
    """The ONNX model of ``model`` (float, dense storage of its possibly pruned weights)."""
    cfg, spec = model.cfg, cell_spec(model.cfg)
    H, P = cfg.hidden, cfg.proj if spec.projection is not None else cfg.hidden
    inits = [numpy_helper.from_array(np.array([P], dtype=np.int64), "proj_dim"),
             numpy_helper.from_array(np.array([H], dtype=np.int64), "hidden_dim")]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    nodes = [
        helper.make_node("Shape", [INPUT_NAME], ["batch"], start=0, end=1),  # (1,) = [B]
        helper.make_node("Concat", ["batch", "proj_dim"], ["y0_shape"], axis=0),
        helper.make_node("Concat", ["batch", "hidden_dim"], ["s0_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["y0_shape"], ["y0"], value=zero),  # (B, P)
        helper.make_node("ConstantOfShape", ["s0_shape"], ["s0"], value=zero),  # (B, H): every state's start
    ]
    h = INPUT_NAME
    for k, layer in enumerate(model.layers):
        n = f"l{k}_"
        params = layer.params()
        vectors = tuple(v.name for v in spec.vectors if v.rows is not None and params.get(v.name) is not None)
        inits += [numpy_helper.from_array(_acc_matrix(spec, params, INPUT, H).T.copy(), f"{n}w_in_t"),  # (D, nH)
                  numpy_helper.from_array(_np(params["bias"]), f"{n}bias"),
                  numpy_helper.from_array(_acc_matrix(spec, params, RECURRENT, H).T.copy(), f"{n}w_rec_t")]  # (P, nH)
        if spec.projection is not None:
            inits.append(numpy_helper.from_array(_np(params[spec.projection.name]).T.copy(), f"{n}w_out_t"))  # (H, P)
        for v in vectors:
            inits += [numpy_helper.from_array(row, f"{n}{v}{r}") for r, row in enumerate(_np(params[v]))]
        body, splits = _step_body(spec, k, H, P, vectors)
        blocks = len(spec.acc_blocks) * H
        inits += [numpy_helper.from_array(np.full(c, blocks // c, dtype=np.int64), f"{n}split{c}") for c in sorted(splits)]
        nodes += [
            helper.make_node("MatMul", [h, f"{n}w_in_t"], [f"{n}xw0"]),  # (B, T, nH)
            helper.make_node("Add", [f"{n}xw0", f"{n}bias"], [f"{n}xw"]),
            helper.make_node("Scan", ["y0"] + ["s0"] * len(spec.state) + [f"{n}xw"],
                             [f"{n}y_last"] + [f"{n}{s}_last" for s in spec.state] + [f"{n}ys"],
                             num_scan_inputs=1, scan_input_axes=[1], scan_output_axes=[1], body=body),  # ys (B, T, P)
        ]
        h = f"{n}ys"
    inits += [numpy_helper.from_array(_np(model.output.weight).T.copy(), "out_w_t"),  # (P, C)
              numpy_helper.from_array(_np(model.output.bias), "out_b")]
    nodes += [helper.make_node("MatMul", [h, "out_w_t"], ["out0"]),
              helper.make_node("Add", ["out0", "out_b"], [OUTPUT])]
    graph = helper.make_graph(
        nodes, f"ese_{spec.name}",
        [helper.make_tensor_value_info(INPUT_NAME, f32, ["batch", "time", cfg.input_dim])],
        [helper.make_tensor_value_info(OUTPUT, f32, ["batch", "time", cfg.num_classes])],
        initializer=inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="ese")
    onnx_model.ir_version = 8  # what onnxruntime releases of the last years all read
    for key, value in (metadata or {}).items():
        onnx_model.metadata_props.add(key=f"ese.{key}", value=json.dumps(value))
    onnx.checker.check_model(onnx_model)
    return onnx_model


def run_onnx(data: bytes, x: np.ndarray) -> np.ndarray:
    """logits (B, T, C) of the serialised model ``data`` on ``x`` (B, T, D), with onnxruntime."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    return sess.run([OUTPUT], {INPUT_NAME: x.astype(np.float32)})[0]
