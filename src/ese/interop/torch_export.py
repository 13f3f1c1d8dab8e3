"""An ese model as a standard PyTorch state dict for ``nn.LSTM(proj_size)`` + ``nn.Linear``.

Keys (``lstm.`` is an ``nn.LSTM(D, H, num_layers=L, proj_size=P, batch_first=True)``, ``output.``
an ``nn.Linear(P, C)``)::

    lstm.weight_ih_l{k}  (4H, D or P)  our w_x (gate order i f g o is nn.LSTM's own)
    lstm.weight_hh_l{k}  (4H, P)       our w_r
    lstm.bias_ih_l{k}    (4H,)         our bias
    lstm.bias_hh_l{k}    (4H,)         zeros (nn.LSTM adds the two)
    lstm.weight_hr_l{k}  (P, H)        our w_ym; absent when P == H and w_ym is the identity
    output.weight, output.bias

``nn.LSTM`` has no peepholes: non-zero ones are refused unless ``drop_peepholes``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ese.errors import InteropError
from ese.interop.layers import TORCH_GATES, to_foreign
from ese.model.lstmp import AcousticModel

PREFIX_LSTM, PREFIX_OUT = "lstm.", "output."


def has_identity_projection(model: AcousticModel) -> bool:
    """True when every layer's projection is exactly the identity (P == H): no projection at all."""
    return all(layer.proj == layer.hidden and torch.equal(layer.w_ym.detach(), torch.eye(layer.hidden))
               for layer in model.layers)


def peephole_summary(model: AcousticModel) -> list[dict[str, Any]]:
    """Per layer with peepholes: how many are non-zero and the largest magnitude."""
    out = []
    for k, layer in enumerate(model.layers):
        if layer.peephole is not None:
            p = layer.peephole.detach()
            out.append({"layer": k, "nonzero": int((p != 0).sum()), "max_abs": float(p.abs().max())})
    return out


def torch_state(model: AcousticModel, *, drop_peepholes: bool = False) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(state dict, the ``nn.LSTM`` constructor arguments and what was dropped)."""
    cfg = model.cfg
    peeps = [s for s in peephole_summary(model) if s["nonzero"]]
    if peeps and not drop_peepholes:
        s = peeps[0]
        raise InteropError(f"layer {s['layer']} has {s['nonzero']} non-zero peepholes (max |w| {s['max_abs']:.3g}) "
                           "and nn.LSTM has none: export with --drop-peepholes to leave them out (the exported "
                           "model then differs from this one), or export --to onnx, which keeps them")
    identity = has_identity_projection(model)
    if cfg.proj >= cfg.hidden and not identity:
        raise InteropError(f"the model projects {cfg.hidden} cells to {cfg.proj} outputs; nn.LSTM needs "
                           "proj_size < hidden_size (or no projection at all)")
    proj = 0 if identity else cfg.proj
    state: dict[str, Tensor] = {}
    for k, layer in enumerate(model.layers):
        state[f"{PREFIX_LSTM}weight_ih_l{k}"] = to_foreign(layer.w_x.detach(), TORCH_GATES).clone()
        state[f"{PREFIX_LSTM}weight_hh_l{k}"] = to_foreign(layer.w_r.detach(), TORCH_GATES).clone()
        state[f"{PREFIX_LSTM}bias_ih_l{k}"] = to_foreign(layer.bias.detach(), TORCH_GATES).clone()
        state[f"{PREFIX_LSTM}bias_hh_l{k}"] = torch.zeros(4 * cfg.hidden)
        if proj:
            state[f"{PREFIX_LSTM}weight_hr_l{k}"] = layer.w_ym.detach().clone()
    state[f"{PREFIX_OUT}weight"] = model.output.weight.detach().clone()
    state[f"{PREFIX_OUT}bias"] = model.output.bias.detach().clone()
    ctor = {"input_size": cfg.input_dim, "hidden_size": cfg.hidden, "num_layers": cfg.layers,
            "proj_size": proj, "batch_first": True, "output_features": cfg.num_classes}
    return state, {"nn_lstm": ctor, "dropped_peepholes": peeps if drop_peepholes else []}


def load_torch_modules(state: dict[str, Tensor], ctor: dict[str, Any]) -> tuple[nn.LSTM, nn.Linear]:
    """The exported state loaded into fresh ``nn.LSTM`` and ``nn.Linear`` (strict: every key used)."""
    lstm = nn.LSTM(ctor["input_size"], ctor["hidden_size"], num_layers=ctor["num_layers"],
                   proj_size=ctor["proj_size"], batch_first=True)
    lstm.load_state_dict({k.removeprefix(PREFIX_LSTM): v for k, v in state.items() if k.startswith(PREFIX_LSTM)})
    last = ctor["proj_size"] or ctor["hidden_size"]
    linear = nn.Linear(last, ctor["output_features"])
    linear.load_state_dict({k.removeprefix(PREFIX_OUT): v for k, v in state.items() if k.startswith(PREFIX_OUT)})
    return lstm.eval(), linear.eval()
