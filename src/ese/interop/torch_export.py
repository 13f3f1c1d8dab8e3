"""An ese model as a standard PyTorch state dict for ``nn.LSTM(proj_size)`` + ``nn.Linear``.

Keys (``lstm.`` is an ``nn.LSTM(D, H, num_layers=L, proj_size=P, batch_first=True)``, ``output.``
an ``nn.Linear(P, C)``)::

    lstm.weight_ih_l{k}  (4H, D or P)  our w_x (gate order i f g o is nn.LSTM's own)
    lstm.weight_hh_l{k}  (4H, P)       our w_r
    lstm.bias_ih_l{k}    (4H,)         our bias
    lstm.bias_hh_l{k}    (4H,)         zeros (nn.LSTM adds the two)
    lstm.weight_hr_l{k}  (P, H)        our w_ym; absent when P == H and w_ym is the identity
    output.weight, output.bias

``nn.LSTM`` has no peepholes: non-zero ones are refused unless ``drop_peepholes``. A GRU model
(``ModelConfig.cell = "gru"``) is written for ``nn.GRU`` under the same ``lstm.`` prefix.
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
        if getattr(layer, "peephole", None) is not None:
            p = layer.peephole.detach()
            out.append({"layer": k, "nonzero": int((p != 0).sum()), "max_abs": float(p.abs().max())})
    return out


def torch_state(model: AcousticModel, *, drop_peepholes: bool = False) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(state dict, the ``nn.LSTM`` constructor arguments and what was dropped)."""
    cfg = model.cfg
    if cfg.cell == "gru":
        return _gru_state(model)
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
    ctor = {"module": "LSTM", "input_size": cfg.input_dim, "hidden_size": cfg.hidden, "num_layers": cfg.layers,
            "proj_size": proj, "batch_first": True, "output_features": cfg.num_classes}
    return state, {"nn_lstm": ctor, "dropped_peepholes": peeps if drop_peepholes else []}


def _gru_state(model: AcousticModel) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``nn.GRU`` keys under ``lstm.`` (the same prefix): bias_ih = b_r, b_z, b_in and
    bias_hh = 0, 0, b_hn (nn.GRU adds b_hh_n inside the reset product, as ese does)."""
    cfg, h = model.cfg, model.cfg.hidden
    state: dict[str, Tensor] = {}
    for k, layer in enumerate(model.layers):
        b = layer.bias.detach()  # (4H,): r, z, n_x, n_h
        state[f"{PREFIX_LSTM}weight_ih_l{k}"] = layer.w_x.detach().clone()
        state[f"{PREFIX_LSTM}weight_hh_l{k}"] = layer.w_r.detach().clone()
        state[f"{PREFIX_LSTM}bias_ih_l{k}"] = b[:3 * h].clone()
        state[f"{PREFIX_LSTM}bias_hh_l{k}"] = torch.cat([torch.zeros(2 * h), b[3 * h:]])
    state[f"{PREFIX_OUT}weight"] = model.output.weight.detach().clone()
    state[f"{PREFIX_OUT}bias"] = model.output.bias.detach().clone()
    ctor = {"module": "GRU", "input_size": cfg.input_dim, "hidden_size": h, "num_layers": cfg.layers,
            "proj_size": 0, "batch_first": True, "output_features": cfg.num_classes}
    return state, {"nn_lstm": ctor, "dropped_peepholes": []}


def load_torch_modules(state: dict[str, Tensor], ctor: dict[str, Any]) -> tuple[nn.Module, nn.Linear]:
    """The exported state loaded into a fresh ``nn.LSTM`` (``nn.GRU``) and ``nn.Linear`` (strict)."""
    if ctor.get("module") == "GRU":
        lstm = nn.GRU(ctor["input_size"], ctor["hidden_size"], num_layers=ctor["num_layers"], batch_first=True)
    else:
        lstm = nn.LSTM(ctor["input_size"], ctor["hidden_size"], num_layers=ctor["num_layers"],
                       proj_size=ctor["proj_size"], batch_first=True)
    lstm.load_state_dict({k.removeprefix(PREFIX_LSTM): v for k, v in state.items() if k.startswith(PREFIX_LSTM)})
    last = ctor["proj_size"] or ctor["hidden_size"]
    linear = nn.Linear(last, ctor["output_features"])
    linear.load_state_dict({k.removeprefix(PREFIX_OUT): v for k, v in state.items() if k.startswith(PREFIX_OUT)})
    return lstm.eval(), linear.eval()
