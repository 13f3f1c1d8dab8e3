"""Read a PyTorch state dict of ``nn.LSTM`` (or ``nn.GRU``) layers plus one ``nn.Linear`` output layer.

The file is loaded with ``torch.load(weights_only=True)``: tensors and plain containers only,
never arbitrary pickled objects. Accepted layouts (docs/interop.md):

- one ``nn.LSTM`` with 1..n layers, or several in a row (taken in state-dict order, which is the
  order the modules were defined in), unidirectional, with or without ``proj_size`` and ``bias``;
  ``nn.GRU`` layers likewise (ese's GRU cell, ``ese.model.gru``); each layer is the cell whose
  torch layout (``ese.cell.CellSpec.foreign["torch"]``) has its gate-block counts;
- then exactly one ``nn.Linear`` (``<name>.weight`` (C, P), optional ``<name>.bias``);
- the state dict at the top level or as the one dict of tensors inside (``{"state_dict": ...}``).

Anything else (bidirectional, plain RNN weights, other tensors) is refused naming the tensor.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ese.cell import CELLS, CellSpec, ForeignLayer
from ese.errors import InteropError
from ese.filekind import describe_file
from ese.interop.layers import Layer, Network, from_foreign

SUPPORTED = ("supported: unidirectional nn.LSTM layers (1..n, with or without proj_size) or nn.GRU "
             "layers, then one nn.Linear output layer")
_LSTM_KEY = re.compile(r"^(?P<prefix>.*?)weight_ih_l(?P<layer>\d+)(?P<reverse>_reverse)?$")


def load_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of ``path`` by name; one-line InteropError for anything that is not a state dict."""
    path = Path(path)
    if not path.is_file():
        raise InteropError(f"{str(path)!r} does not exist" if not path.exists()
                           else f"{str(path)!r} is a directory, not a model file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise InteropError(
                f"{str(path)!r} holds pickled Python objects (a whole module?), which ese does not "
                "unpickle; save the model's state dict instead: torch.save(model.state_dict(), path)") from None
        raise InteropError(_unreadable(path)) from None
    except Exception:  # truncated zips, foreign bytes: torch raises many types
        raise InteropError(_unreadable(path)) from None
    return _find_state_dict(obj, path)


def _unreadable(path: Path) -> str:
    kind = describe_file(path)
    detail = ("truncated or damaged" if kind in ("a PyTorch file", "a damaged or truncated ZIP archive")
              else f"it is {kind}, not a PyTorch state dict")
    return f"{str(path)!r} is unreadable: {detail}"


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, Tensor) for v in obj.values())


def _find_state_dict(obj: Any, path: Path) -> dict[str, Tensor]:
    if isinstance(obj, dict) and obj.get("format") == "ese-checkpoint":
        raise InteropError(f"{str(path)!r} is already an ese checkpoint: use it directly")
    if _is_tensor_dict(obj):
        return obj
    inner = [k for k, v in obj.items() if _is_tensor_dict(v)] if isinstance(obj, dict) else []
    if len(inner) == 1:
        return obj[inner[0]]
    if len(inner) > 1:
        raise InteropError(f"{str(path)!r} holds several state dicts ({', '.join(map(repr, inner))}); "
                           "save the one of the model to import alone")
    raise InteropError(f"{str(path)!r} holds no state dict (a dict of tensors by name); "
                       f"it holds a {type(obj).__name__}")


def read_network(state: dict[str, Tensor], where: str) -> tuple[Network, Callable[[Tensor], Tensor]]:
    """The layers of ``state`` in ese's order, and the source model rebuilt from standard
    ``nn.LSTM`` / ``nn.Linear`` modules: ``reference(x (B, T, D)) -> logits (B, T, C)``."""
    used: set[str] = set()
    groups = _lstm_groups(state, where)
    layers: list[Layer] = []
    modules: list[nn.Module] = []
    for prefix, count in groups:
        group_layers = [_layer(state, prefix, k, used) for k in range(count)]
        layers += group_layers
        modules.append(_nn_lstm(state, prefix, group_layers, count))
    out_w, out_b, out_name = _output_layer(state, used, where)
    linear = nn.Linear(out_w.shape[1], out_w.shape[0], bias=f"{out_name}.bias" in state)
    linear.load_state_dict({k.removeprefix(out_name + "."): v for k, v in state.items()
                            if k in (f"{out_name}.weight", f"{out_name}.bias")})
    modules.append(linear)

    def reference(x: Tensor) -> Tensor:
        h = x
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "LSTM with projections is not supported with oneDNN"
            for m in modules[:-1]:
                h, _ = m(h)  # (B, T, P)
            return modules[-1](h)  # (B, T, C)

    return Network(layers, out_w, out_b, f"'{out_name}'"), reference


def _lstm_groups(state: dict[str, Tensor], where: str) -> list[tuple[str, int]]:
    """[(prefix, layer count)] of every nn.LSTM in state-dict order."""
    found: dict[str, set[int]] = {}
    for key in state:
        m = _LSTM_KEY.match(key)
        if not m:
            continue
        if m["reverse"]:
            raise InteropError(f"layer '{key}' is the backward half of a bidirectional LSTM, which ese "
                               f"cannot run (it streams left to right); {SUPPORTED}")
        found.setdefault(m["prefix"], set()).add(int(m["layer"]))
    if not found:
        raise InteropError(f"{where} holds no nn.LSTM weights (no '<name>.weight_ih_l0'); {SUPPORTED}")
    out = []
    for prefix, ks in found.items():
        if ks != set(range(len(ks))):
            raise InteropError(f"nn.LSTM '{prefix}*' has layers {sorted(ks)}: they must be numbered 0..n-1")
        out.append((prefix, len(ks)))
    return out


def _take(state: dict[str, Tensor], key: str, used: set[str], required: bool = True) -> Tensor | None:
    if key not in state:
        if required:
            raise InteropError(f"tensor '{key}' is missing: an nn.LSTM layer needs weight_ih, weight_hh "
                               "(and bias_ih, bias_hh together, weight_hr with proj_size)")
        return None
    used.add(key)
    t = state[key]
    if not torch.is_floating_point(t):
        raise InteropError(f"tensor '{key}' holds {t.dtype} values, not floating point")
    return t.detach().to(torch.float32)


def _torch_cells() -> list[tuple[CellSpec, ForeignLayer]]:
    """Every cell a torch.nn layer can hold, with its layout (``CellSpec.foreign["torch"]``)."""
    return [(spec, spec.foreign["torch"]) for spec in CELLS.values() if "torch" in spec.foreign]


def _article(kind: str) -> str:
    return f"{'an' if kind[0] in 'AEFHILMNORSX' else 'a'} {kind}"  # letters said with a vowel: an LSTM


def _layer(state: dict[str, Tensor], prefix: str, k: int, used: set[str]) -> Layer:
    w_ih = _take(state, f"{prefix}weight_ih_l{k}", used)
    w_hh = _take(state, f"{prefix}weight_hh_l{k}", used)
    w_hr = _take(state, f"{prefix}weight_hr_l{k}", used, required=False)
    b_ih = _take(state, f"{prefix}bias_ih_l{k}", used, required=False)
    b_hh = _take(state, f"{prefix}bias_hh_l{k}", used, required=False)
    name = f"'{prefix}weight_ih_l{k}'"
    if w_ih.dim() != 2 or w_hh.dim() != 2:
        raise InteropError(f"layer {name}: weight_ih and weight_hh must be matrices; {SUPPORTED}")
    rows, recurrent = w_hh.shape
    hidden = w_hr.shape[1] if w_hr is not None else recurrent
    cells = _torch_cells()
    found = next(((spec, layout) for spec, layout in cells
                  if (len(layout.input_blocks) * hidden, len(layout.recurrent_blocks) * hidden) == (w_ih.shape[0], rows)
                  and (w_hr is None or layout.projection)), None)
    if found is None:
        blocks = rows // max(hidden, 1) if rows % max(hidden, 1) == 0 else 0
        kinds = [_article(layout.kind) for _, layout in cells]
        cell = {1: "a plain RNN"}.get(blocks, f"neither {' nor '.join(kinds)}")
        sizes = ", ".join(f"{_article(layout.kind)} has {len(layout.recurrent_blocks)} x {hidden} rows"
                          for _, layout in cells)
        raise InteropError(f"layer {name} has {rows}-row gate matrices for {hidden} cells: it looks like "
                           f"{cell} ({sizes}); {SUPPORTED}")
    spec, layout = found
    if w_hr is not None and tuple(w_hr.shape) != (recurrent, hidden):
        raise InteropError(f"layer {name}: weight_hr has shape {tuple(w_hr.shape)}, expected {(recurrent, hidden)}")
    if (b_ih is None) != (b_hh is None):
        raise InteropError(f"layer {name} has only one of bias_ih and bias_hh; nn.{layout.kind} has both or neither")
    for b, want in ((b_ih, w_ih.shape[0]), (b_hh, rows)):
        if b is not None and tuple(b.shape) != (want,):
            raise InteropError(f"layer {name}: a bias has shape {tuple(b.shape)}, expected ({want},)")
    return from_foreign(spec, "torch", name, w_ih, w_hh, b_ih, b_hh, projection=w_hr)


def _nn_lstm(state: dict[str, Tensor], prefix: str, layers: list[Layer], count: int) -> nn.Module:
    """The source nn.LSTM (or nn.GRU) itself, loaded from the same tensors (the reference of the check)."""
    first = layers[0]
    kind = first.spec.foreign["torch"].kind
    has_bias = f"{prefix}bias_ih_l0" in state
    if any(layer.cell != first.cell for layer in layers):
        kinds = sorted({layer.spec.foreign["torch"].kind for layer in layers})
        raise InteropError(f"module '{prefix}*' mixes {' and '.join(kinds)} layers")
    proj = first.proj if first.projected else 0
    if any(layer.projected != (proj > 0) or layer.hidden != first.hidden for layer in layers):
        raise InteropError(f"nn.{kind} '{prefix}*' mixes layer sizes or projections, which nn.{kind} cannot hold")
    extra = {"proj_size": proj} if first.spec.foreign["torch"].projection else {}
    lstm = getattr(nn, kind)(first.input_dim, first.hidden, num_layers=count, bias=has_bias, batch_first=True,
                             **extra)
    own = {k.removeprefix(prefix): v for k, v in state.items()
           if k.startswith(prefix) and _param_name(k.removeprefix(prefix))}
    try:
        lstm.load_state_dict(own)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[-1].strip()
        raise InteropError(f"module '{prefix}*' does not load into {type(lstm).__name__}: {first_line}") from None
    return lstm.eval()


def _param_name(name: str) -> bool:
    return re.fullmatch(r"(weight_ih|weight_hh|weight_hr|bias_ih|bias_hh)_l\d+", name) is not None


def _output_layer(state: dict[str, Tensor], used: set[str], where: str) -> tuple[Tensor, Tensor, str]:
    rest = [k for k in state if k not in used]
    weights = [k for k in rest if k.endswith("weight") and state[k].dim() == 2]
    if len(weights) != 1:
        what = "no" if not weights else f"{len(weights)} candidate ({', '.join(map(repr, weights))})"
        raise InteropError(f"{where} has {what} output layers after its LSTMs; {SUPPORTED}")
    name = weights[0].removesuffix(".weight").removesuffix("weight").rstrip(".")
    w = _take(state, weights[0], used)
    b = _take(state, f"{name}.bias", used, required=False)
    extra = [k for k in state if k not in used]
    if extra:
        raise InteropError(f"tensor '{extra[0]}' is neither part of an nn.LSTM nor of the output layer "
                           f"'{name}'; {SUPPORTED}")
    if b is not None and b.shape != (w.shape[0],):
        raise InteropError(f"output layer '{name}': bias has shape {tuple(b.shape)}, expected ({w.shape[0]},)")
    return w, torch.zeros(w.shape[0]) if b is None else b, name
