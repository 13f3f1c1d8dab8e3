"""The fixed-point model: integer weights, binary points, LUTs; a versioned file without pickle.

File layout (``.qnpz``, a numpy ``.npz`` zip read with ``allow_pickle=False``)::

    header             uint8 bytes of a UTF-8 JSON object:
                         format "ese-fixed-point", spec_version (FIXED_POINT_SPEC_VERSION),
                         quant (QuantConfig), model (ModelConfig), output_delay, phones,
                         layers: [{formats: {signal: [bits, frac]}}], output: {formats: ...},
                         calibration (measured float ranges), source (free-form provenance),
                         features (FeatureConfig) and normalisation (ese.data.frontend): what
                         turns audio into the model's input; absent in files written before
                         they existed (``ese complete`` adds them)
    layer{k}.<matrix>  weight_bits integers, every matrix of the model's cell (``ese.cell``:
                       its name, shape and row-block order; docs/fixed-point.md for the LSTMP)
    layer{k}.<vector>  act_bits integers, every vector of the cell the model has
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
from ese.cell import CellSpec, cell_spec, known_arrays
from ese.compress.fixedpoint import (FIXED_POINT_SPEC_VERSION, FRAC_MAX, FRAC_MIN, Format,
                                     QuantError, check_quant_config, dequantize)
from ese.compress.lut import LutSpec, lut_specs
from ese.config import FeatureConfig, ModelConfig, QuantConfig, from_dict
from ese.data.frontend import Normalisation
from ese.errors import ConfigError, FeatureError
from ese.filekind import describe_file

FORMAT = "ese-fixed-point"
OUTPUT_SIGNALS = ("w", "b", "logits")


def sum_frac(fracs: Mapping[str, int], cell: CellSpec | str = "lstmp") -> int:
    """Fsum, the binary point of a layer's exact gate sum (LSTMP: ``W_x x + W_r y + b``,
    docs/fixed-point.md): the finest of its terms' binary points, so that each term moves there by
    an exact left shift. ``fracs`` maps signal -> fractional bits. Every executor (reference,
    functional model, RTL, CPU engine) and the quantizer call this one (``CellSpec.sum_frac``).
    """
    return cell_spec(cell).sum_frac(fracs)


class QLayer:
    """One quantized layer: int64 arrays by the names of its cell's matrices and vectors, and the
    format of every signal: ``QLayer(formats=..., **arrays)``; ``layer.<name>`` reads an array;
    an array some cell defines but this layer lacks (an optional vector) reads as None."""

    def __init__(self, formats: dict[str, Format] | None = None, **arrays: np.ndarray | None) -> None:
        self.formats = {} if formats is None else formats
        known = known_arrays()
        order = sorted(arrays, key=lambda n: known.index(n) if n in known else len(known))
        self._arrays = {name: arrays[name] for name in order if arrays[name] is not None}

    def __getattr__(self, name: str) -> np.ndarray | None:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self.__dict__.get("_arrays", {}):
            return self._arrays[name]
        if name in known_arrays():
            return None
        raise AttributeError(f"a fixed-point layer has no array {name!r}")

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("formats", "_arrays"):
            object.__setattr__(self, name, value)
        elif value is None:
            self._arrays.pop(name, None)
        else:
            self._arrays[name] = value

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays it holds, in the order they were given (the file's order)."""
        return dict(self._arrays)

    def replace(self, **changes: object) -> QLayer:
        """A copy with some arrays (or ``formats``) replaced."""
        formats = changes.pop("formats", self.formats)
        return QLayer(formats=formats, **{**self._arrays, **changes})


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
    features: FeatureConfig | None = None  # audio -> input features (None: an older file)
    normalisation: Normalisation | None = None

    @property
    def lut_specs(self) -> dict[str, LutSpec]:
        q = self.quant
        return lut_specs(q.act_bits, q.lut_index_bits, q.sigmoid_range, q.tanh_range)

    @property
    def cell(self) -> CellSpec:
        """The description of the model's recurrent cell (``model.cell``)."""
        return cell_spec(self.model)

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
        """Non-zero integer weights per recurrent-layer matrix ("layer0.w_x", ...)."""
        return {f"layer{k}.{name}": int(np.count_nonzero(getattr(layer, name)))
                for k, layer in enumerate(self.layers) for name in self.cell.matrix_names}


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
        **frontend_metadata(qm.features, qm.normalisation),
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
    except (KeyError, TypeError, ValueError, ConfigError, FeatureError) as exc:
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

    cell = cell_spec(model)
    names = [n for n in cell.array_names if n in cell.matrix_names or n in cell.vector_names(model)]
    layers = [QLayer(formats=_formats(raw["formats"]), **{n: take(f"layer{k}.{n}") for n in names})
              for k, raw in enumerate(header["layers"])]
    return QModel(quant=quant, model=model, output_delay=int(header["output_delay"]), layers=layers,
                  w_out=take("output.w"), b_out=take("output.b"),
                  output_formats=_formats(header["output"]["formats"]),
                  luts={name: take(f"lut.{name}") for name in ("sigmoid", "tanh")},
                  phones=list(header.get("phones", [])), calibration=header.get("calibration", {}),
                  source=header.get("source", {}), spec_version=int(header["spec_version"]),
                  **frontend_from_metadata(header))


def frontend_metadata(features: FeatureConfig | None, norm: Normalisation | None) -> dict[str, Any]:
    """The ``features`` and ``normalisation`` header entries (omitted when unknown); the program
    image stores the same two."""
    out: dict[str, Any] = {}
    if features is not None:
        out["features"] = dataclasses.asdict(features)
    if norm is not None:
        out["normalisation"] = norm.to_dict()
    return out


def frontend_from_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """``features`` and ``normalisation`` back from a header (None where absent)."""
    raw_f, raw_n = meta.get("features"), meta.get("normalisation")
    return {"features": None if raw_f is None else from_dict(FeatureConfig, raw_f),
            "normalisation": None if raw_n is None else Normalisation.from_dict(raw_n)}


def validate_qmodel(qm: QModel, *, where: str) -> None:
    """Shapes, integer ranges and binary points agree with the configs (QuantError otherwise)."""
    check_quant_config(qm.quant)
    m, q = qm.model, qm.quant
    H, P, C = m.hidden, m.proj, m.num_classes
    cell = cell_spec(m)

    def fail(msg: str) -> None:
        raise QuantError(f"fixed-point model {where!r}: {msg}")

    if len(qm.layers) != m.layers:
        fail(f"{len(qm.layers)} layers stored, the model config says {m.layers}")
    if qm.output_delay < 0:
        fail(f"output_delay must be >= 0, not {qm.output_delay!r}")
    if qm.features is not None and qm.features.dim != m.input_dim:
        fail(f"its feature configuration makes {qm.features.dim} features, the model takes {m.input_dim}")
    if qm.normalisation is not None and qm.normalisation.kind != "none" and qm.normalisation.dim != m.input_dim:
        fail(f"its normalisation has {qm.normalisation.dim} features, the model takes {m.input_dim}")

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
        missing = set(cell.layer_signals) - set(layer.formats)
        if missing:
            fail(f"{tag} lacks the formats of {', '.join(sorted(missing))}")
        for sig, fmt in layer.formats.items():
            if not FRAC_MIN <= fmt.frac <= FRAC_MAX or not 2 <= fmt.bits <= 64:
                fail(f"{tag}.{sig} has an out-of-range format {fmt.to_list()}")
        D = m.input_dim if k == 0 else P
        for name in cell.matrix_names:
            check_array(f"{tag}.{name}", getattr(layer, name), cell.matrix_shape(name, H, P, D), q.weight_bits)
        for name in cell.vector_names(m):
            check_array(f"{tag}.{name}", getattr(layer, name), cell.vector_shape(name, H), q.act_bits)
        if k > 0 and layer.formats["x"] != qm.layers[k - 1].formats["y"]:
            fail(f"{tag}.x format {layer.formats['x'].to_list()} differs from layer{k - 1}.y")
    if set(OUTPUT_SIGNALS) - set(qm.output_formats):
        fail("output formats are incomplete")
    check_array("output.w", qm.w_out, (C, P), q.weight_bits)
    check_array("output.b", qm.b_out, (C,), qm.output_formats["b"].bits)
    for name, spec in qm.lut_specs.items():
        check_array(f"lut.{name}", qm.luts.get(name), (spec.entries,), q.act_bits)
