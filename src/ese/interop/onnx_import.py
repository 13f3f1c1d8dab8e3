"""Read an ONNX model whose recurrent layers are ``LSTM`` or ``GRU`` ops, then one linear output layer.

Accepted (docs/interop.md): forward recurrent nodes of an op some cell's description holds
(``CellSpec.foreign["onnx"]``: the LSTMP's ``LSTM``, its gate order and its optional vector
inputs; the GRU's ``GRU``, with ``linear_before_reset=1``) with constant ``W``, ``R``, optional
``B`` and vectors; ``sequence_lens`` and the initial states may be graph inputs (the reference
run feeds the full length and zeros: ese starts every utterance from zero state), the initial
states also zero constants or computed (``torch.onnx`` builds zeros of the input's batch size;
the equality check decides);
then ``MatMul`` (+ ``Add``) or ``Gemm`` with constant weights. Shape plumbing between them
(``Squeeze``, ``Reshape``, ``Transpose``, ...) is allowed and not interpreted: the equality check
of ``ese import`` on onnxruntime's own output decides. Refused, naming the node: another
direction, non-default ``activations``, ``clip``, the attributes the layout fixes, any other
op with weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import Tensor

from ese.cell import CELLS, CellSpec, ForeignLayer
from ese.errors import InteropError
from ese.filekind import describe_file
from ese.interop.layers import Layer, Network, from_foreign

def _onnx_cells() -> dict[str, tuple[CellSpec, ForeignLayer]]:
    """ONNX op -> the cell it holds and its layout (``CellSpec.foreign["onnx"]``)."""
    return {spec.foreign["onnx"].kind: (spec, spec.foreign["onnx"]) for spec in CELLS.values() if "onnx" in spec.foreign}


def _supported() -> str:
    cells = _onnx_cells()
    fixed = "".join(f", {a}={want}" for _, layout in cells.values() for a, (want, _) in layout.attributes.items())
    return (f"supported: forward {'/'.join(cells)} nodes (default activations, no clip{fixed}), "
            "then one MatMul (+ Add) or Gemm output layer")


SUPPORTED = _supported()
OPS = "/".join(_onnx_cells())  # the recurrent ops, for messages
PLUMBING = {"Squeeze", "Unsqueeze", "Reshape", "Transpose", "Identity", "Shape", "Gather", "Concat",
            "Constant", "Cast", "Slice", "ConstantOfShape", "Flatten"}


def _load(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise InteropError(f"{str(path)!r} does not exist" if not path.exists()
                           else f"{str(path)!r} is a directory, not a model file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, ValidationError, ...: none helps a user
        kind = describe_file(path)
        detail = ("truncated, damaged or not ONNX" if kind.startswith("binary") or kind == "an empty file"
                  else f"it is {kind}")
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise InteropError(f"{str(path)!r} is not a readable ONNX model: {detail} ({first})") from None
    if not model.graph.node:
        raise InteropError(f"{str(path)!r} is not a readable ONNX model: its graph has no nodes")
    return model


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    out = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    return out


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _name(node: onnx.NodeProto, index: int) -> str:
    return f"ONNX node '{node.name or f'#{index}'}' ({node.op_type})"


def _recurrent_layer(node: onnx.NodeProto, where: str, consts: dict[str, np.ndarray],
                     graph_inputs: set[str]) -> Layer:
    spec, layout = _onnx_cells()[node.op_type]
    a = _attrs(node)
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction != "forward":
        raise InteropError(f"{where} runs {direction}; ese streams left to right: {SUPPORTED}")
    default = list(layout.activations)
    acts = [x.decode() if isinstance(x, bytes) else x for x in a.get("activations", default)]
    if acts != default or "activation_alpha" in a or "activation_beta" in a:
        raise InteropError(f"{where} uses activations {acts}; ese's cell is {default}: {SUPPORTED}")
    if "clip" in a:
        raise InteropError(f"{where} clips its cell input at {a['clip']:g}; ese does not clip: {SUPPORTED}")
    for attr, (want, meaning) in layout.attributes.items():
        value = a.get(attr, layout.attribute_defaults.get(attr, want))  # left out: the op's default
        if value != want:
            said = "" if attr in a else ", the op's default"
            raise InteropError(f"{where} {meaning} ({attr}={value}{said}): {SUPPORTED}")
    ins = dict(zip(layout.inputs, list(node.input)))  # input name -> tensor ("" or absent: not given)

    def const(name: str, what: str) -> np.ndarray:
        if name not in consts:
            raise InteropError(f"{where}: its {what} '{name}' is not a constant (an initializer)")
        return consts[name].astype(np.float32)

    W, R = const(ins["W"], "W"), const(ins["R"], "R")  # (1, nH, D), (1, nH, H)
    n_in, n_rec = layout.gate_blocks
    hidden = int(a.get("hidden_size", R.shape[-1]))
    if W.ndim != 3 or W.shape[0] != 1 or W.shape[1] != n_in * hidden or R.shape != (1, n_rec * hidden, hidden):
        raise InteropError(f"{where}: W {W.shape} and R {R.shape} are not (1, {n_in} x {hidden}, .) matrices")
    rows = (n_in + n_rec) * hidden
    B = const(ins["B"], "B") if ins.get("B") else np.zeros((1, rows), np.float32)  # (1, rows): Wb then Rb
    if B.shape != (1, rows):
        raise InteropError(f"{where}: B has shape {B.shape}, expected (1, {rows})")
    seq_lens = ins.get("sequence_lens")
    if seq_lens and seq_lens not in graph_inputs:
        raise InteropError(f"{where}: its sequence_lens '{seq_lens}' is computed or constant; ese runs whole "
                           "utterances: leave it out or make it a graph input")
    for what in layout.inputs:
        name = ins.get(what)
        # computed (torch.onnx's zeros from ConstantOfShape): the equality check on onnxruntime decides
        if what.startswith("initial_") and name in consts and np.any(consts[name] != 0):
            raise InteropError(f"{where}: its {what} is a non-zero constant; ese starts every utterance "
                               "from zero state")
    vectors = {}
    for vec, (what, blocks) in layout.vectors.items():
        if ins.get(what):
            v = const(ins[what], what)  # (1, rows x H) in the op's row order
            if v.shape != (1, len(blocks) * hidden):
                raise InteropError(f"{where}: {what} has shape {v.shape}, expected (1, {len(blocks) * hidden})")
            vectors[vec] = torch.from_numpy(v[0])
    t = torch.from_numpy
    return from_foreign(spec, "onnx", where, t(W[0]), t(R[0]), t(B[0, :n_in * hidden]), t(B[0, n_in * hidden:]),
                        vectors=vectors)


def _linear(node: onnx.NodeProto, where: str, consts: dict[str, np.ndarray]) -> tuple[Tensor, Tensor | None]:
    """(weight (C, P), bias or None) of a MatMul or Gemm with a constant weight."""
    if node.op_type == "MatMul":
        w = next((consts[i] for i in node.input if i in consts), None)
        if w is None or w.ndim != 2:
            raise InteropError(f"{where} has no constant 2-D weight: {SUPPORTED}")
        if node.input[0] in consts:
            raise InteropError(f"{where} multiplies from the left (W @ x): {SUPPORTED}")
        return torch.from_numpy(w.T.astype(np.float32).copy()), None
    a = _attrs(node)  # Gemm: alpha * A' B' + beta * C
    if node.input[1] not in consts or a.get("transA", 0):
        raise InteropError(f"{where} is not x @ W (+ C) with a constant W: {SUPPORTED}")
    w = consts[node.input[1]].astype(np.float32) * a.get("alpha", 1.0)
    w = w if a.get("transB", 0) else w.T  # (C, P)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in consts:
            raise InteropError(f"{where}: its bias '{node.input[2]}' is not a constant")
        bias = torch.from_numpy((consts[node.input[2]].astype(np.float32) * a.get("beta", 1.0)).reshape(-1))
    return torch.from_numpy(np.ascontiguousarray(w)), bias


def read_onnx(path: str | Path) -> tuple[Network, Callable[[Tensor], Tensor]]:
    """The layers of the ONNX model at ``path`` in ese's order, and onnxruntime running it."""
    path = Path(path)
    model = _load(path)
    graph = model.graph
    consts = _constants(graph)
    inits = {t.name for t in graph.initializer}
    graph_inputs = {i.name for i in graph.input if i.name not in inits}
    layers: list[Layer] = []
    out: tuple[Tensor, Tensor | None, str] | None = None
    for k, node in enumerate(graph.node):
        where = _name(node, k)
        if node.op_type in PLUMBING:
            continue
        if out is not None and not (node.op_type == "Add" and out[1] is None):
            raise InteropError(f"{where} follows the output layer; {SUPPORTED}")
        if node.op_type in _onnx_cells():
            layers.append(_recurrent_layer(node, where, consts, graph_inputs))
        elif node.op_type in ("MatMul", "Gemm"):
            if not layers:
                raise InteropError(f"{where} comes before any {OPS} node; {SUPPORTED}")
            w, b = _linear(node, where, consts)
            out = (w, b, where)
        elif node.op_type == "Add" and out is not None:
            bias = next((consts[i] for i in node.input if i in consts), None)
            if bias is None:
                raise InteropError(f"{where} adds no constant bias to the output layer; {SUPPORTED}")
            out = (out[0], torch.from_numpy(bias.astype(np.float32).reshape(-1)), out[2])
        else:
            raise InteropError(f"{where} is not supported; {SUPPORTED}")
    if not layers:
        raise InteropError(f"{str(path)!r} has no {OPS} nodes; {SUPPORTED}")
    if out is None:
        raise InteropError(f"{str(path)!r} has no output layer after its {OPS}s; {SUPPORTED}")
    w, b, name = out
    if b is not None and b.shape != (w.shape[0],):
        raise InteropError(f"{name}: bias has {tuple(b.shape)} values, expected {w.shape[0]}")
    net = Network(layers, w, torch.zeros(w.shape[0]) if b is None else b, name)
    return net, _ort_reference(model, graph_inputs, layers[0].input_dim, path)


def _ort_reference(model: onnx.ModelProto, graph_inputs: set[str], dim: int,
                   path: Path) -> Callable[[Tensor], Tensor]:
    """x (B, T, D) -> the model's output (B, T, C), one utterance per onnxruntime run (batch 1, so
    the output's layout, time- or batch-major, needs no interpreting)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own limits (e.g. batch-major LSTM, layout=1)
        detail = " ".join(str(exc).split())[-200:]
        raise InteropError(f"onnxruntime cannot load {str(path)!r}, so the import cannot be checked: {detail}") from None
    inputs = [i for i in sess.get_inputs() if i.name in graph_inputs]
    if len(inputs) != 1 + sum(1 for i in inputs[1:] if _is_side_input(model, i.name)):
        raise InteropError(f"{str(path)!r} has graph inputs {[i.name for i in inputs]}; ese feeds one: the "
                           f"features (others may only be {OPS} sequence_lens / initial states)")
    main, side = inputs[0], inputs[1:]
    first = next(n for n in model.graph.node if n.op_type in _onnx_cells())
    batch_major = _attrs(first).get("layout", 0) == 1  # X (batch, time, D) rather than (time, batch, D)

    def one(x: np.ndarray) -> np.ndarray:  # (T, D) -> (T, C)
        T = x.shape[0]
        shapes = [(T, dim)] if len(main.shape) == 2 else [(T, 1, dim), (1, T, dim)][::-1 if batch_major else 1]
        last: Exception | None = None
        for shape in shapes:
            feeds = {main.name: x.reshape(shape).astype(np.float32)}
            for s in side:
                feeds[s.name] = _side_value(s, T)
            try:
                y = sess.run(None, feeds)[0]
            except Exception as exc:  # the other layout, then give up
                last = exc
                continue
            return y.reshape(T, -1)
        raise InteropError(f"onnxruntime cannot run {str(path)!r} on (time, batch 1, {dim}) features: {last}")

    def reference(x: Tensor) -> Tensor:
        return torch.from_numpy(np.stack([one(u) for u in x.numpy()]))

    return reference


def _is_side_input(model: onnx.ModelProto, name: str) -> bool:
    """True for a recurrent node's sequence_lens or initial state."""
    cells = _onnx_cells()
    for node in model.graph.node:
        if node.op_type in cells:
            side = [i for what, i in zip(cells[node.op_type][1].inputs, node.input)
                    if what == "sequence_lens" or what.startswith("initial_")]
            if name in side:
                return True
    return False


def _side_value(inp: Any, T: int) -> np.ndarray:
    """sequence_lens: the full length; an initial state: zeros (num_directions, batch 1, H)."""
    if "int" in inp.type:
        return np.array([T], dtype=np.int32)
    dims = [d if isinstance(d, int) else 1 for d in inp.shape]
    return np.zeros(dims, np.float32)
