"""Traces on disk and the comparison every executor's test uses.

``save_trace`` writes one ``.npz`` (no pickle): ``layer{k}.{signal}`` (T, n) int64 arrays,
``logits``, and a JSON ``header`` with the counters and free-form metadata. ``first_difference``
names the first (layer, signal, step, index) where two traces differ, scanning step by step so the
earliest diverging vector is reported (later differences are usually its consequences).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ese.accel.errors import AccelError
from ese.atomic import atomic_path
from ese.compress.fixedpoint import SaturationCounter
from ese.compress.reference import Trace

TRACE_FORMAT = "ese-trace"


def save_trace(path: str | Path, trace: Trace, meta: dict[str, Any] | None = None) -> None:
    """Write ``trace`` atomically."""
    header = {"format": TRACE_FORMAT, "layers": len(trace.layers), "saturation": dict(trace.saturation),
              "lut_clipped": dict(trace.lut_clipped), "meta": meta or {}}
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8), "logits": trace.logits}
    for k, layer in enumerate(trace.layers):
        for name, arr in layer.items():
            arrays[f"layer{k}.{name}"] = arr
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_trace(path: str | Path) -> tuple[Trace, dict[str, Any]]:
    """(trace, meta) from a file written by :func:`save_trace` (AccelError if it is not one)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {n: z[n] for n in z.files}
        header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
        if header.get("format") != TRACE_FORMAT:
            raise ValueError("not an ese trace")
        layers = [{name.split(".", 1)[1]: arr.astype(np.int64) for name, arr in arrays.items()
                   if name.startswith(f"layer{k}.")} for k in range(header["layers"])]  # the cell's signals, in order
        if any("y" not in layer for layer in layers):
            raise KeyError("a layer's y")
        trace = Trace(layers, arrays["logits"].astype(np.int64), SaturationCounter(header["saturation"]),
                      SaturationCounter(header["lut_clipped"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise AccelError(f"{str(path)!r} is not a readable ese trace ({type(exc).__name__}: {exc})") from None
    return trace, header.get("meta", {})


@dataclass(frozen=True)
class TraceDifference:
    """Where two traces first differ. ``layer``/``step``/``index`` are None where they do not apply
    (a counter, a shape, the logits' layer)."""

    where: str  # "layer0.c", "logits", "saturation[layer0.acc]", ...
    layer: int | None
    signal: str
    step: int | None
    index: int | None
    a: Any
    b: Any
    a_name: str = "a"
    b_name: str = "b"

    def __str__(self) -> str:
        at = "" if self.step is None else f" at step {self.step}" + ("" if self.index is None else f", index {self.index}")
        return f"{self.where}{at}: {self.a_name} has {self.a!r}, {self.b_name} has {self.b!r}"


def first_difference(a: Trace | np.ndarray, b: Trace | np.ndarray, a_name: str = "a",
                     b_name: str = "b") -> TraceDifference | None:
    """The earliest difference between two traces (step first, then layer, then signal order), or
    between two (steps, n) arrays of one signal (e.g. the y of two executors), or None. The one
    helper every exact cross-check reports its first mismatch with."""
    def diff(where, layer, signal, step, index, va, vb):
        return TraceDifference(where, layer, signal, step, index, va, vb, a_name, b_name)

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return diff("array", None, "array", None, None, a.shape, b.shape)
        bad = np.argwhere(a != b)
        if not bad.size:
            return None
        t, i = (int(v) for v in bad[0])
        return diff("array", None, "array", t, i, a[t, i].item(), b[t, i].item())

    if len(a.layers) != len(b.layers):
        return diff("layers", None, "layers", None, None, len(a.layers), len(b.layers))
    signals = [list(dict.fromkeys([*la, *lb])) for la, lb in zip(a.layers, b.layers)]  # the cell's trace order
    for k, (la, lb) in enumerate(zip(a.layers, b.layers)):
        for s in signals[k]:
            if s not in la or s not in lb or la[s].shape != lb[s].shape:
                return diff(f"layer{k}.{s}", k, s, None, None, "missing" if s not in la else la[s].shape,
                            "missing" if s not in lb else lb[s].shape)
    T = a.layers[0]["y"].shape[0] if a.layers else 0
    for t in range(T):
        for k, (la, lb) in enumerate(zip(a.layers, b.layers)):
            for s in signals[k]:
                bad = np.flatnonzero(la[s][t] != lb[s][t])
                if bad.size:
                    i = int(bad[0])
                    return diff(f"layer{k}.{s}", k, s, t, i, int(la[s][t, i]), int(lb[s][t, i]))
    if a.logits.shape != b.logits.shape:
        return diff("logits", None, "logits", None, None, a.logits.shape, b.logits.shape)
    bad = np.argwhere(a.logits != b.logits)
    if bad.size:
        t, i = (int(v) for v in bad[0])
        return diff("logits", None, "logits", t, i, int(a.logits[t, i]), int(b.logits[t, i]))
    for kind in ("saturation", "lut_clipped"):
        ca, cb = getattr(a, kind), getattr(b, kind)
        for key in sorted(set(ca) | set(cb)):
            if ca.get(key, 0) != cb.get(key, 0):
                return diff(f"{kind}[{key}]", None, kind, None, None, ca.get(key, 0), cb.get(key, 0))
    return None


def assert_traces_equal(a: Trace, b: Trace, a_name: str = "a", b_name: str = "b") -> None:
    """AssertionError naming both sides and the first differing vector, if the traces differ."""
    d = first_difference(a, b, a_name, b_name)
    if d is not None:
        raise AssertionError(f"{a_name} != {b_name}: first difference in {d}")
