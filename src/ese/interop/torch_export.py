"""An ese model as a standard PyTorch state dict for ``nn.LSTM(proj_size)`` (``nn.GRU``) + ``nn.Linear``.

Keys (``lstm.`` is the cell's torch.nn module, e.g. ``nn.LSTM(D, H, num_layers=L, proj_size=P,
batch_first=True)``, ``output.`` an ``nn.Linear(P, C)``)::

    lstm.weight_ih_l{k}  (nH, D or P)  our input matrix, in the module's gate order
    lstm.weight_hh_l{k}  (nH, P)       our recurrent matrix
    lstm.bias_ih_l{k}    (nH,)         our bias (the module adds the two)
    lstm.bias_hh_l{k}    (nH,)         zeros, but for a bias block we keep apart (nn.GRU's b_hn)
    lstm.weight_hr_l{k}  (P, H)        our output matrix; absent when P == H and it is the identity
    output.weight, output.bias

Gate orders and which of our arrays the module lacks are the cell description's
(``CellSpec.foreign["torch"]``); vectors it lacks are refused when non-zero unless dropped.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ese.cell import cell_spec
from ese.errors import InteropError
from ese.interop.layers import lacking_vectors, to_foreign_arrays
from ese.model.lstmp import AcousticModel

PREFIX_LSTM, PREFIX_OUT = "lstm.", "output."


def has_identity_projection(model: AcousticModel) -> bool:
    """True when every layer's output matrix is exactly the identity (P == H), or the cell has
    none: no projection at all."""
    proj = cell_spec(model.cfg).projection
    if proj is None:
        return True
    return all(layer.proj == layer.hidden and torch.equal(layer.params()[proj.name].detach(), torch.eye(layer.hidden))
               for layer in model.layers)


def vector_summary(model: AcousticModel, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per layer holding one of the vectors ``names``: how many of their values are non-zero
    and the largest magnitude."""
    out = []
    for k, layer in enumerate(model.layers):
        held = [p.detach() for n, p in layer.params().items() if n in names and p is not None]
        if held:
            p = torch.cat([v.reshape(-1) for v in held])
            out.append({"layer": k, "nonzero": int((p != 0).sum()), "max_abs": float(p.abs().max())})
    return out


def torch_state(model: AcousticModel, *, drop: bool = False) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(state dict, ``{"nn_lstm": the module's constructor arguments, "dropped": per layer what was
    left out, "lacking": the vectors torch has no place for}``). ``drop``: leave the lacking
    vectors out (export --drop-<their ModelConfig flag>) instead of refusing non-zero ones."""
    cfg, spec = model.cfg, cell_spec(model.cfg)
    layout = spec.foreign.get("torch")
    if layout is None:
        raise InteropError(f"the {spec.name!r} cell has no torch.nn counterpart: export it --to onnx")
    lacking = lacking_vectors(spec, "torch")
    dropped = [s for s in vector_summary(model, lacking) if s["nonzero"]]
    if dropped and not drop:
        s = dropped[0]
        what = " and ".join(str(spec.vector(v).flag) for v in lacking)
        raise InteropError(f"layer {s['layer']} has {s['nonzero']} non-zero {what} (max |w| {s['max_abs']:.3g}) "
                           f"and nn.{layout.kind} has none: export with --drop-{what} to leave them out (the "
                           f"exported model then differs from this one), or export --to onnx, which keeps them")
    identity = has_identity_projection(model)
    if layout.projection and cfg.proj >= cfg.hidden and not identity:
        raise InteropError(f"the model projects {cfg.hidden} cells to {cfg.proj} outputs; nn.{layout.kind} needs "
                           "proj_size < hidden_size (or no projection at all)")
    proj = 0 if identity else cfg.proj
    state: dict[str, Tensor] = {}
    for k, layer in enumerate(model.layers):
        params = layer.params()
        w_in, w_rec, b_in, b_rec = to_foreign_arrays(spec, "torch", params)
        state[f"{PREFIX_LSTM}weight_ih_l{k}"] = w_in.clone()
        state[f"{PREFIX_LSTM}weight_hh_l{k}"] = w_rec.clone()
        state[f"{PREFIX_LSTM}bias_ih_l{k}"] = b_in.clone()
        state[f"{PREFIX_LSTM}bias_hh_l{k}"] = b_rec.clone()
        if proj:
            state[f"{PREFIX_LSTM}weight_hr_l{k}"] = params[spec.projection.name].detach().clone()
    state[f"{PREFIX_OUT}weight"] = model.output.weight.detach().clone()
    state[f"{PREFIX_OUT}bias"] = model.output.bias.detach().clone()
    ctor = {"module": layout.kind, "input_size": cfg.input_dim, "hidden_size": cfg.hidden, "num_layers": cfg.layers,
            "proj_size": proj, "batch_first": True, "output_features": cfg.num_classes}
    return state, {"nn_lstm": ctor, "dropped": dropped if drop else [], "lacking": lacking}


def load_torch_modules(state: dict[str, Tensor], ctor: dict[str, Any]) -> tuple[nn.Module, nn.Linear]:
    """The exported state loaded into a fresh ``nn.LSTM`` (``nn.GRU``) and ``nn.Linear`` (strict)."""
    extra = {"proj_size": ctor["proj_size"]} if ctor["proj_size"] else {}
    lstm = getattr(nn, ctor["module"])(ctor["input_size"], ctor["hidden_size"], num_layers=ctor["num_layers"],
                                       batch_first=True, **extra)
    lstm.load_state_dict({k.removeprefix(PREFIX_LSTM): v for k, v in state.items() if k.startswith(PREFIX_LSTM)})
    last = ctor["proj_size"] or ctor["hidden_size"]
    linear = nn.Linear(last, ctor["output_features"])
    linear.load_state_dict({k.removeprefix(PREFIX_OUT): v for k, v in state.items() if k.startswith(PREFIX_OUT)})
    return lstm.eval(), linear.eval()
