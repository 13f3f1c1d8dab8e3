"""``ese export``: an ese float checkpoint -> a PyTorch state dict or an ONNX model, checked.

The written bytes are loaded back (``torch.load(weights_only=True)`` into ``nn.LSTM``, or an
onnxruntime session) and run on random input at two sequence lengths against our own model
before anything is written; a model that does not reproduce ours is never written.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ese.atomic import write_bytes
from ese.cell import CELLS, cell_spec
from ese.errors import InteropError
from ese.filekind import describe_file
from ese.model.checkpoint import checkpoint_config, load_checkpoint
from ese.model.lstmp import AcousticModel

TARGETS = ("torch", "onnx")
CHECK_LENGTHS = (7, 23)  # two sequence lengths: the exported model must not be tied to one
CHECK_BATCH = 2
CHECK_RTOL = 1e-4  # |export - ese| <= CHECK_RTOL * max(1, max |ese|): float32 summation order only


def _density(model: AcousticModel) -> float:
    names = cell_spec(model.cfg).matrix_names
    mats = [p for n, p in model.named_parameters() if n.split(".")[-1] in names]
    return float(sum(int((p != 0).sum()) for p in mats) / sum(p.numel() for p in mats))


def _check(ours: AcousticModel, run: Callable[[np.ndarray], np.ndarray], runner: str) -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    worst, tol = 0.0, 0.0
    for length in CHECK_LENGTHS:
        x = torch.randn(CHECK_BATCH, length, ours.cfg.input_dim, generator=g)  # (B, T, D)
        with torch.no_grad():
            want = ours(x)[0].numpy()
        got = run(x.numpy())
        if got.shape != want.shape:
            raise InteropError(f"the exported model gives logits of shape {got.shape} for input "
                               f"{tuple(x.shape)}, expected {want.shape}; nothing written")
        worst = max(worst, float(np.abs(got - want).max()))
        tol = max(tol, CHECK_RTOL * max(1.0, float(np.abs(want).max())))
    return {"runner": runner, "lengths": list(CHECK_LENGTHS), "batch": CHECK_BATCH,
            "max_abs_diff": worst, "tolerance": tol, "passed": worst <= tol}


def _without(model: AcousticModel, vectors: tuple[str, ...]) -> AcousticModel:
    """A copy of ``model`` with the vectors ``vectors`` zero (what the export leaves out)."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for layer in out.layers:
            for name, p in layer.params().items():
                if name in vectors and p is not None:
                    p.zero_()
    return out


def _torch_bytes(model: AcousticModel, drop: bool, report: dict[str, Any]) -> bytes:
    from ese.interop.torch_export import load_torch_modules, torch_state

    state, info = torch_state(model, drop=drop)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    ctor = info["nn_lstm"]
    ref = _without(model, info["lacking"]) if info["dropped"] else model

    def run(x: np.ndarray) -> np.ndarray:
        lstm, linear = load_torch_modules(torch.load(io.BytesIO(data), weights_only=True), ctor)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "LSTM with projections is not supported with oneDNN"
            return linear(lstm(torch.from_numpy(x))[0]).numpy()

    report["check"] = _check(ref, run, "torch nn.LSTM + nn.Linear")
    report.update(nn_lstm=ctor, dropped_peepholes=info["dropped"])
    proj = f", proj_size={ctor['proj_size']}" if ctor["proj_size"] else ""
    module = f"nn.{ctor['module']}"
    report["notes"].append(
        f"{module}({ctor['input_size']}, {ctor['hidden_size']}, num_layers={ctor['num_layers']}{proj}, "
        f"batch_first=True) as 'lstm.*', nn.Linear({ctor['proj_size'] or ctor['hidden_size']}, "
        f"{ctor['output_features']}) as 'output.*'")
    output = cell_spec(model.cfg).projection
    if output is not None and not ctor["proj_size"] and model.cfg.proj == model.cfg.hidden:
        report["notes"].append(f"no projection: every {output.name} is the identity, so {module} without proj_size")
    if info["dropped"]:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(1, max(CHECK_LENGTHS), model.cfg.input_dim, generator=g)
        with torch.no_grad():
            change = float((model(x)[0] - ref(x)[0]).abs().max())
        report["peephole_drop_change"] = change
        what = " and ".join(str(cell_spec(model.cfg).vector(v).flag) for v in info["lacking"])
        for s in info["dropped"]:
            report["notes"].append(f"dropped the {what} of layer {s['layer']}: {s['nonzero']} non-zero, "
                                   f"max |w| {s['max_abs']:.3g}")
        report["notes"].append(f"without them the logits change by up to {change:.3g} on random input")
    return data


def _onnx_bytes(model: AcousticModel, meta: dict[str, Any], report: dict[str, Any]) -> bytes:
    try:
        from ese.interop.onnx_export import OPSET, run_onnx, to_onnx
    except ModuleNotFoundError as exc:
        raise InteropError(f"ONNX export needs the onnx and onnxruntime packages ({exc.name} is missing): "
                           "pip install onnx onnxruntime") from None
    if "onnx" not in cell_spec(model.cfg).foreign:
        cells = "/".join(spec.name.upper() for spec in CELLS.values() if "onnx" in spec.foreign)
        raise InteropError(f"ese export --to onnx builds the {cells} step; this model's cell is {model.cfg.cell!r}: "
                           "export it --to torch")
    cfg = checkpoint_config(meta)
    metadata = {"model_config": dataclasses.asdict(model.cfg), "features": dataclasses.asdict(cfg.features),
                "output_delay": cfg.train.output_delay, "phones": list(meta.get("phones") or [])}
    data = to_onnx(model, metadata).SerializeToString()
    report["check"] = _check(model, lambda x: run_onnx(data, x), "onnxruntime")
    report["opset"] = OPSET
    report["notes"].append(f"ONNX opset {OPSET}: input 'features' (batch, time, {model.cfg.input_dim}), output "
                           f"'logits' (batch, time, {model.cfg.num_classes}); one Scan per layer")
    return data


def export_model(ckpt: str | Path, to: str, out: str | Path, *, drop_peepholes: bool = False) -> dict[str, Any]:
    """Export ``ckpt`` as ``to`` (torch | onnx) to ``out``; the report (``check``, ``notes``, ...)."""
    if to not in TARGETS:
        raise InteropError(f"--to must be torch or onnx, not {to!r}")
    kind = describe_file(ckpt) if Path(ckpt).is_file() else ""
    if kind.startswith(("a NumPy archive", "an ese program image")):
        raise InteropError(f"{str(ckpt)!r} is {kind}: ese export takes the float checkpoint (.pt) it was made "
                           "from, e.g. the pruned.pt of the run")
    model, meta = load_checkpoint(ckpt)
    report: dict[str, Any] = {"model": str(ckpt), "to": to, "out": str(out), "density": _density(model),
                              "model_config": dataclasses.asdict(model.cfg), "notes": [],
                              "nn_lstm": None, "dropped_peepholes": [], "opset": None}
    data = _torch_bytes(model, drop_peepholes, report) if to == "torch" else _onnx_bytes(model, meta, report)
    check = report["check"]
    if not check["passed"]:
        raise InteropError(f"the exported model does not reproduce {str(ckpt)!r} ({check['runner']}): max "
                           f"|difference| {check['max_abs_diff']:.3g} > {check['tolerance']:.3g}; nothing written")
    write_bytes(out, data)
    return report
