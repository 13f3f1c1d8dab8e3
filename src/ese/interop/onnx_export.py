"""An ese model as an ONNX graph built from standard ops (the ONNX ``LSTM`` op has no projection).

Input ``features`` (batch, time, D) float32, output ``logits`` (batch, time, C); both dims are
dynamic. Per layer k::

    xw    = features_k @ w_x^T + bias            MatMul, Add      (B, T, 4H), all steps at once
    y, c  = zeros (B, P), zeros (B, H)           Shape, Concat, ConstantOfShape
    Scan over time (axis 1) of xw with state (y, c); the body is one step of ese.model.lstmp:
        i, f, g, o = split(xw_t + y @ w_r^T)     MatMul, Add, Split
        i += w_ic * c;  f += w_fc * c            (only with peepholes)
        c  = sigmoid(f) * c + sigmoid(i) * tanh(g)
        o += w_oc * c                            (only with peepholes)
        y  = (sigmoid(o) * tanh(c)) @ w_ym^T     MatMul: the projection
    features_{k+1} = the scanned y               (B, T, P)
    logits = features_L @ W_out^T + b_out

Weights are initializers of the main graph, read by the Scan bodies from the outer scope. The
phone set, feature config and output delay are in ``metadata_props`` (keys ``ese.*``, JSON).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ese.model.lstmp import AcousticModel

OPSET = 17
INPUT, OUTPUT = "features", "logits"


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _step_body(k: int, hidden: int, proj: int, peepholes: bool) -> onnx.GraphProto:
    """One time step of layer ``k``: inputs (y_prev, c_prev, xw_t), outputs (y, c, y_out)."""
    n = f"l{k}_"
    nodes = [
        helper.make_node("MatMul", ["y_prev", f"{n}w_r_t"], ["rec"]),  # (B, 4H)
        helper.make_node("Add", ["xw_t", "rec"], ["gates"]),
        helper.make_node("Split", ["gates", f"{n}split"], ["zi0", "zf0", "zg", "zo0"], axis=1),  # each (B, H)
    ]
    zi, zf = "zi0", "zf0"
    if peepholes:
        nodes += [helper.make_node("Mul", ["c_prev", f"{n}p_ic"], ["pi"]),
                  helper.make_node("Add", ["zi0", "pi"], ["zi"]),
                  helper.make_node("Mul", ["c_prev", f"{n}p_fc"], ["pf"]),
                  helper.make_node("Add", ["zf0", "pf"], ["zf"])]
        zi, zf = "zi", "zf"
    nodes += [
        helper.make_node("Sigmoid", [zi], ["i"]),
        helper.make_node("Sigmoid", [zf], ["f"]),
        helper.make_node("Tanh", ["zg"], ["g"]),
        helper.make_node("Mul", ["f", "c_prev"], ["fc"]),
        helper.make_node("Mul", ["i", "g"], ["ig"]),
        helper.make_node("Add", ["fc", "ig"], ["c"]),  # c_t (B, H)
    ]
    zo = "zo0"
    if peepholes:
        nodes += [helper.make_node("Mul", ["c", f"{n}p_oc"], ["po"]),  # the output gate sees the new cell
                  helper.make_node("Add", ["zo0", "po"], ["zo"])]
        zo = "zo"
    nodes += [
        helper.make_node("Sigmoid", [zo], ["o"]),
        helper.make_node("Tanh", ["c"], ["tc"]),
        helper.make_node("Mul", ["o", "tc"], ["m"]),  # (B, H)
        helper.make_node("MatMul", ["m", f"{n}w_ym_t"], ["y"]),  # projection (B, P)
        helper.make_node("Identity", ["y"], ["y_out"]),
    ]
    f32 = TensorProto.FLOAT
    return helper.make_graph(
        nodes, f"{n}step",
        [helper.make_tensor_value_info("y_prev", f32, ["B", proj]),
         helper.make_tensor_value_info("c_prev", f32, ["B", hidden]),
         helper.make_tensor_value_info("xw_t", f32, ["B", 4 * hidden])],
        [helper.make_tensor_value_info("y", f32, ["B", proj]),
         helper.make_tensor_value_info("c", f32, ["B", hidden]),
         helper.make_tensor_value_info("y_out", f32, ["B", proj])])


def to_onnx(model: AcousticModel, metadata: dict[str, Any] | None = None) -> onnx.ModelProto:
    """The ONNX model of ``model`` (float, dense storage of its possibly pruned weights)."""
    cfg = model.cfg
    H, P = cfg.hidden, cfg.proj
    inits = [numpy_helper.from_array(np.array([P], dtype=np.int64), "proj_dim"),
             numpy_helper.from_array(np.array([H], dtype=np.int64), "hidden_dim")]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    nodes = [
        helper.make_node("Shape", [INPUT], ["batch"], start=0, end=1),  # (1,) = [B]
        helper.make_node("Concat", ["batch", "proj_dim"], ["y0_shape"], axis=0),
        helper.make_node("Concat", ["batch", "hidden_dim"], ["c0_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["y0_shape"], ["y0"], value=zero),  # (B, P)
        helper.make_node("ConstantOfShape", ["c0_shape"], ["c0"], value=zero),  # (B, H)
    ]
    h = INPUT
    for k, layer in enumerate(model.layers):
        n = f"l{k}_"
        inits += [numpy_helper.from_array(_np(layer.w_x).T.copy(), f"{n}w_x_t"),  # (D, 4H)
                  numpy_helper.from_array(_np(layer.bias), f"{n}bias"),
                  numpy_helper.from_array(_np(layer.w_r).T.copy(), f"{n}w_r_t"),  # (P, 4H)
                  numpy_helper.from_array(_np(layer.w_ym).T.copy(), f"{n}w_ym_t"),  # (H, P)
                  numpy_helper.from_array(np.full(4, H, dtype=np.int64), f"{n}split")]
        if layer.peephole is not None:
            for row, name in enumerate(("p_ic", "p_fc", "p_oc")):
                inits.append(numpy_helper.from_array(_np(layer.peephole[row]), f"{n}{name}"))
        nodes += [
            helper.make_node("MatMul", [h, f"{n}w_x_t"], [f"{n}xw0"]),  # (B, T, 4H)
            helper.make_node("Add", [f"{n}xw0", f"{n}bias"], [f"{n}xw"]),
            helper.make_node("Scan", ["y0", "c0", f"{n}xw"], [f"{n}y_last", f"{n}c_last", f"{n}ys"],
                             num_scan_inputs=1, scan_input_axes=[1], scan_output_axes=[1],
                             body=_step_body(k, H, P, layer.peephole is not None)),  # ys (B, T, P)
        ]
        h = f"{n}ys"
    inits += [numpy_helper.from_array(_np(model.output.weight).T.copy(), "out_w_t"),  # (P, C)
              numpy_helper.from_array(_np(model.output.bias), "out_b")]
    nodes += [helper.make_node("MatMul", [h, "out_w_t"], ["out0"]),
              helper.make_node("Add", ["out0", "out_b"], [OUTPUT])]
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "ese_lstmp",
        [helper.make_tensor_value_info(INPUT, f32, ["batch", "time", cfg.input_dim])],
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
    return sess.run([OUTPUT], {INPUT: x.astype(np.float32)})[0]
