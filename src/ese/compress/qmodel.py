"""The fixed-point model: integer weights, binary points, LUTs; a versioned file without pickle.

File layout (``.qnpz``, a numpy ``.npz`` zip read with ``allow_pickle=False``)::

    header             uint8 bytes of a UTF-8 JSON object:
                         format "ese-fixed-point", spec_version (FIXED_POINT_SPEC_VERSION),
                         quant (QuantConfig), model (ModelConfig), output_delay, phones,
                         layers: [{formats: {signal: [bits, frac]}}], output: {formats: ...},
                         calibration (measured float ranges), source (free-form provenance)
    layer{k}.w_x       (4H, D)  weight_bits integers          gate order i, f, g, o by rows
    layer{k}.w_r       (4H, P)
    layer{k}.bias      (4H,)    act_bits integers
    layer{k}.peephole  (3, H)   act_bits integers (absent without peepholes)
    layer{k}.w_ym      (P, H)
    output.w           (C, P)   weight_bits integers
    output.b           (C,)     acc_bits integers at the logits' binary point
    lut.sigmoid        (2**lut_index_bits,) act_bits integers
    lut.tanh           (2**lut_index_bits,)

Integers are stored in the narrowest of int16 / int32 / int64 that holds their width and read
back as int64. The loader checks everything before it trusts it.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ese.atomic import atomic_path
from ese.compress.fixedpoint import (FIXED_POINT_SPEC_VERSION, FRAC_MAX, FRAC_MIN, Format,
                                     QuantError, check_quant_config, dequantize)
from ese.compress.lut import LutSpec, lut_specs
from ese.config import ModelConfig, QuantConfig, from_dict
from ese.errors import ConfigError
from ese.filekind import describe_file

FORMAT = "ese-fixed-point"
GATES = ("i", "f", "g", "o")
# signal -> what it is; every layer's "formats" holds exactly these keys (docs/fixed-point.md table)
LAYER_SIGNALS = ("x", "w_x", "w_r", "bias", "peephole", "acc", "z_i", "z_f", "z_g", "z_o",
                 "gate", "c", "tanh_c", "m", "w_ym", "acc_y", "y")
OUTPUT_SIGNALS = ("w", "b", "logits")


def sum_frac(fracs: Mapping[str, int]) -> int:
    """Fsum, the binary point of a layer's exact gate sum ``W_x x + W_r y + b`` (docs/fixed-point.md).

    The finest of the three terms' binary points, so that each term moves there by an exact left
    shift. ``fracs`` maps signal -> fractional bits (needs ``x``, ``w_x``, ``w_r``, ``y``, ``bias``).
    Every executor (reference, functional model, RTL, CPU engine) and the quantizer call this one.
    """
    return max(fracs["w_x"] + fracs["x"], fracs["w_r"] + fracs["y"], fracs["bias"])


@dataclass
class QLayer:
    """One quantized LSTMP layer: int64 arrays and the format of every signal."""

    w_x: np.ndarray  # (4H, D)
    w_r: np.ndarray  # (4H, P)
    bias: np.ndarray  # (4H,)
    peephole: np.ndarray | None  # (3, H): w_ic, w_fc, w_oc
    w_ym: np.ndarray  # (P, H)
    formats: dict[str, Format]

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"w_x": self.w_x, "w_r": self.w_r, "bias": self.bias, "w_ym": self.w_ym}
        if self.peephole is not None:
            out["peephole"] = self.peephole
        return out


@dataclass
class QModel:
    """The whole fixed-point model (the artefact of ``ese quantize``)."""

    quant: QuantConfig
    model: ModelConfig
    output_delay: int
    layers: list[QLayer]
    w_out: np.ndarray  # (C, P)
    b_out: np.ndarray  # (C,)
    output_formats: dict[str, Format]
    luts: dict[str, np.ndarray]  # "sigmoid", "tanh": (2**lut_index_bits,)
    phones: list[str] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    spec_version: int = FIXED_POINT_SPEC_VERSION

    @property
    def lut_specs(self) -> dict[str, LutSpec]:
        q = self.quant
        return lut_specs(q.act_bits, q.lut_index_bits, q.sigmoid_range, q.tanh_range)

    @property
    def input_format(self) -> Format:
        return self.layers[0].formats["x"]

    def dequantized(self) -> tuple[list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
        """The real values of every stored weight, float64 and exact (:func:`dequantize`).

        Returns (per layer {name: array} for the arrays it has, see :meth:`QLayer.arrays`; the
        output weights; the output bias): the one dequantization that the float model built
        from a fixed-point file and the CPU engine's float mode both use.
        """
        layers = [{name: dequantize(arr, layer.formats[name].frac) for name, arr in layer.arrays().items()}
                  for layer in self.layers]
        return (layers, dequantize(self.w_out, self.output_formats["w"].frac),
                dequantize(self.b_out, self.output_formats["b"].frac))

    def nnz(self) -> dict[str, int]:
        """Non-zero integer weights per LSTM matrix ("layer0.w_x", ...)."""
        return {f"layer{k}.{name}": int(np.count_nonzero(getattr(layer, name)))
                for k, layer in enumerate(self.layers) for name in ("w_x", "w_r", "w_ym")}


def _dtype_for(bits: int) -> type:
    return np.int16 if bits <= 16 else np.int32 if bits <= 32 else np.int64


def save_qmodel(path: str | Path, qm: QModel) -> None:
    """Write ``qm`` atomically (validated first, so a bad model is never written)."""
    validate_qmodel(qm, where="the model to save")
    header = {
        "format": FORMAT,
        "spec_version": qm.spec_version,
        "quant": dataclasses.asdict(qm.quant),
        "model": dataclasses.asdict(qm.model),
        "output_delay": qm.output_delay,
        "phones": list(qm.phones),
        "layers": [{"formats": {k: f.to_list() for k, f in layer.formats.items()}} for layer in qm.layers],
        "output": {"formats": {k: f.to_list() for k, f in qm.output_formats.items()}},
        "calibration": qm.calibration,
        "source": qm.source,
    }
    arrays: dict[str, np.ndarray] = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    for k, layer in enumerate(qm.layers):
        for name, arr in layer.arrays().items():
            arrays[f"layer{k}.{name}"] = arr.astype(_dtype_for(layer.formats[name].bits))
    arrays["output.w"] = qm.w_out.astype(_dtype_for(qm.output_formats["w"].bits))
    arrays["output.b"] = qm.b_out.astype(_dtype_for(qm.output_formats["b"].bits))
    for name, table in qm.luts.items():
        arrays[f"lut.{name}"] = table.astype(_dtype_for(qm.quant.act_bits))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_qmodel(path: str | Path) -> QModel:
    """Read and validate a fixed-point model file (QuantError on anything unexpected)."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise QuantError(f"fixed-point model {where!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError):
        # never repeat numpy's advice to load unsafely: say what the file is instead
        kind = describe_file(path)
        if kind.startswith(("a damaged", "a NumPy", "a ZIP", "a text", "binary data", "an empty")):
            raise QuantError(f"fixed-point model {where!r} is unreadable or truncated ({kind})") from None
        raise QuantError(f"{where!r} is not a fixed-point model (.qnpz from ese quantize): it is {kind}") from None
    if "header" not in arrays:
        raise QuantError(f"{where!r} is not an ese fixed-point model (no header): it is {describe_file(path)}")
    try:
        header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QuantError(f"fixed-point model {where!r} has a corrupt header ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise QuantError(f"{where!r} is not an ese fixed-point model")
    version = header.get("spec_version")
    if version != FIXED_POINT_SPEC_VERSION:
        raise QuantError(f"fixed-point model {where!r} uses fixed-point spec version {version!r}; this ese "
                         f"implements version {FIXED_POINT_SPEC_VERSION} (docs/fixed-point.md); re-run "
                         "ese quantize on the float checkpoint")
    try:
        qm = _from_header(header, arrays)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise QuantError(f"fixed-point model {where!r} is inconsistent: {type(exc).__name__}: {exc}") from None
    validate_qmodel(qm, where=where)
    return qm


def _formats(raw: dict[str, Any]) -> dict[str, Format]:
    return {k: Format(int(v[0]), int(v[1])) for k, v in raw.items()}


def _from_header(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> QModel:
    quant = from_dict(QuantConfig, header["quant"])
    model = from_dict(ModelConfig, header["model"])

    def take(name: str) -> np.ndarray:
        if name not in arrays:
            raise KeyError(f"array {name!r} is missing")
        arr = arrays[name]
        if arr.dtype.kind not in "iu":
            raise TypeError(f"array {name!r} has dtype {arr.dtype}, expected integers")
        return arr.astype(np.int64)

    layers = []
    for k, raw in enumerate(header["layers"]):
        layers.append(QLayer(
            w_x=take(f"layer{k}.w_x"), w_r=take(f"layer{k}.w_r"), bias=take(f"layer{k}.bias"),
            peephole=take(f"layer{k}.peephole") if model.peepholes else None,
            w_ym=take(f"layer{k}.w_ym"), formats=_formats(raw["formats"])))
    return QModel(quant=quant, model=model, output_delay=int(header["output_delay"]), layers=layers,
                  w_out=take("output.w"), b_out=take("output.b"),
                  output_formats=_formats(header["output"]["formats"]),
                  luts={name: take(f"lut.{name}") for name in ("sigmoid", "tanh")},
                  phones=list(header.get("phones", [])), calibration=header.get("calibration", {}),
                  source=header.get("source", {}), spec_version=int(header["spec_version"]))


def validate_qmodel(qm: QModel, *, where: str) -> None:
    """Shapes, integer ranges and binary points agree with the configs (QuantError otherwise)."""
    check_quant_config(qm.quant)
    m, q = qm.model, qm.quant
    H, P, C = m.hidden, m.proj, m.num_classes

    def fail(msg: str) -> None:
        raise QuantError(f"fixed-point model {where!r}: {msg}")

    if len(qm.layers) != m.layers:
        fail(f"{len(qm.layers)} layers stored, the model config says {m.layers}")
    if qm.output_delay < 0:
        fail(f"output_delay must be >= 0, not {qm.output_delay!r}")

    def check_array(name: str, arr: np.ndarray | None, shape: tuple[int, ...], bits: int) -> None:
        if arr is None:
            fail(f"{name} is missing")
        if arr.shape != shape:
            fail(f"{name} has shape {arr.shape}, expected {shape}")
        if arr.dtype.kind not in "iu":
            fail(f"{name} has dtype {arr.dtype}, expected integers")
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if arr.size and (arr.min() < lo or arr.max() > hi):
            fail(f"{name} holds values outside the signed {bits}-bit range")

    for k, layer in enumerate(qm.layers):
        tag = f"layer{k}"
        missing = set(LAYER_SIGNALS) - set(layer.formats)
        if missing:
            fail(f"{tag} lacks the formats of {', '.join(sorted(missing))}")
        for sig, fmt in layer.formats.items():
            if not FRAC_MIN <= fmt.frac <= FRAC_MAX or not 2 <= fmt.bits <= 64:
                fail(f"{tag}.{sig} has an out-of-range format {fmt.to_list()}")
        D = m.input_dim if k == 0 else P
        check_array(f"{tag}.w_x", layer.w_x, (4 * H, D), q.weight_bits)
        check_array(f"{tag}.w_r", layer.w_r, (4 * H, P), q.weight_bits)
        check_array(f"{tag}.w_ym", layer.w_ym, (P, H), q.weight_bits)
        check_array(f"{tag}.bias", layer.bias, (4 * H,), q.act_bits)
        if m.peepholes:
            check_array(f"{tag}.peephole", layer.peephole, (3, H), q.act_bits)
        if k > 0 and layer.formats["x"] != qm.layers[k - 1].formats["y"]:
            fail(f"{tag}.x format {layer.formats['x'].to_list()} differs from layer{k - 1}.y")
    if set(OUTPUT_SIGNALS) - set(qm.output_formats):
        fail("output formats are incomplete")
    check_array("output.w", qm.w_out, (C, P), q.weight_bits)
    check_array("output.b", qm.b_out, (C,), qm.output_formats["b"].bits)
    for name, spec in qm.lut_specs.items():
        check_array(f"lut.{name}", qm.luts.get(name), (spec.entries,), q.act_bits)
