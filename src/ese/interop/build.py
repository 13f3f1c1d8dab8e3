"""``ese import``: a foreign model -> an ese checkpoint, checked against its source on random input.

What a state dict or an ONNX graph does not say comes from the config (``--preset``, ``--config``,
``--set``): the feature recipe (its ``features.dim`` must equal the model's input size; the
default recipe gives 153), CMVN, the output delay (``train.output_delay``). The output classes
must be the 48 TIMIT classes of ``ese.data.phones.PHONES_48``, in that order unless ``phones``
gives the source's order (its rows are then permuted into ours).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ese.cell import CELLS
from ese.config import Config
from ese.data.phones import PHONES_48
from ese.errors import InteropError
from ese.interop.layers import Network, to_model
from ese.model.checkpoint import save_checkpoint
from ese.model.lstmp import AcousticModel

CHECK_BATCH, CHECK_FRAMES = 2, 40  # random input of the equality check: (B, T, D)
CHECK_RTOL = 1e-4  # |ours - source| <= CHECK_RTOL * max(1, max |source|): float32 summation order only


def source_format(path: Path, fmt: str) -> str:
    """``torch`` or ``onnx``: ``fmt`` unless ``auto``, then by the suffix (``.onnx`` is ONNX)."""
    if fmt not in ("auto", "torch", "onnx"):
        raise InteropError(f"--from must be auto, torch or onnx, not {fmt!r}")
    if fmt != "auto":
        return fmt
    return "onnx" if path.suffix.lower() == ".onnx" else "torch"


def read_source(path: Path, fmt: str) -> tuple[Network, Callable[[Tensor], Tensor]]:
    """The network of ``path`` and its reference implementation (x (B, T, D) -> logits (B, T, C))."""
    if fmt == "onnx":
        try:
            from ese.interop.onnx_import import read_onnx
        except ModuleNotFoundError as exc:
            raise InteropError(f"ONNX import needs the onnx and onnxruntime packages ({exc.name} is missing): "
                               "pip install onnx onnxruntime") from None
        return read_onnx(path)
    from ese.interop.torch_import import load_state_dict, read_network

    return read_network(load_state_dict(path), repr(str(path)))


def phone_permutation(phones: Sequence[str] | None, classes: int) -> list[int] | None:
    """Source row of each of our classes (None: the source is in our order already)."""
    if phones is None:
        if classes != len(PHONES_48):
            raise InteropError(
                f"the output layer has {classes} classes; ese scores the 48 TIMIT classes "
                f"(ese.data.phones.PHONES_48): give the source's phone order with --phones when it has them")
        return None
    phones = list(phones)
    unknown = [p for p in phones if p not in PHONES_48]
    if unknown:
        raise InteropError(f"--phones names {unknown[0]!r}, not one of the 48 TIMIT classes "
                           f"({' '.join(PHONES_48)})")
    if len(phones) != classes or len(set(phones)) != len(PHONES_48):
        raise InteropError(f"--phones lists {len(phones)} phones ({len(set(phones))} distinct); the output "
                           f"layer has {classes} classes and ese needs each of the 48 exactly once")
    return [phones.index(p) for p in PHONES_48]


def compare(model: AcousticModel, reference: Callable[[Tensor], Tensor], perm: list[int] | None, *,
            seed: int = 0) -> dict[str, Any]:
    """Our logits against the source's on random input; ``passed`` when within CHECK_RTOL."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(CHECK_BATCH, CHECK_FRAMES, model.cfg.input_dim, generator=g)  # (B, T, D)
    want = reference(x)
    if perm is not None:
        want = want[..., perm]  # (B, T, C) in our class order
    with torch.no_grad():
        got, _ = model(x)
    diff = (got - want).abs()
    tol = CHECK_RTOL * max(1.0, float(want.abs().max()))
    worst = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
    return {"batch": CHECK_BATCH, "frames": CHECK_FRAMES, "max_abs_diff": float(diff.max()),
            "tolerance": tol, "passed": bool(diff.max() <= tol), "worst_at": list(worst)}


def import_model(src: str | Path, out: str | Path, cfg: Config, *, fmt: str = "auto",
                 phones: Sequence[str] | None = None) -> dict[str, Any]:
    """Convert ``src``, check it reproduces its source, write the checkpoint ``out``; the report."""
    src = Path(src)
    fmt = source_format(src, fmt)
    net, reference = read_source(src, fmt)
    model = to_model(net)
    perm = phone_permutation(phones, model.cfg.num_classes)
    if perm is not None:
        with torch.no_grad():
            model.output.weight.copy_(model.output.weight[perm])
            model.output.bias.copy_(model.output.bias[perm])
    if model.cfg.input_dim != cfg.features.dim:
        f = cfg.features
        raise InteropError(
            f"the model takes {model.cfg.input_dim} inputs but the feature config gives {f.dim} "
            f"(({f.num_mel_bins} mel bins + {int(f.use_energy)} energy) x {f.delta_order + 1} for deltas); "
            "give the features it was trained on with --config or --set features.num_mel_bins=...")
    check = compare(model, reference, perm)
    if not check["passed"]:
        raise InteropError(
            f"the imported model does not reproduce {str(src)!r}: max |difference| {check['max_abs_diff']:.3g} "
            f"> {check['tolerance']:.3g} at (batch, frame, class) {tuple(check['worst_at'])}; nothing written")
    source = {"path": str(src), "format": fmt,
              "layers": [layer.name for layer in net.layers], "output_layer": net.out_name,
              "projection": [layer.projected for layer in net.layers]}
    for spec in CELLS.values():  # per ModelConfig switch of an optional vector: whether each layer has it
        for flag, vector in spec.flags.items():
            source.setdefault(flag, [layer.holds(vector) for layer in net.layers])
    full = dataclasses.replace(cfg, model=model.cfg)
    save_checkpoint(out, model, config=full.to_dict(), extra={"imported": {"source": source, "check": check}})
    return {"source": source, "out": str(out), "model": dataclasses.asdict(model.cfg),
            "features": {"dim": cfg.features.dim, "cmvn": cfg.features.cmvn},
            "output_delay": cfg.train.output_delay, "phones_reordered": perm is not None, "check": check}
