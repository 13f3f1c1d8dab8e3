"""Statistics of a compiled program: non-zeros, padding and entries per matrix and PE."""

from __future__ import annotations

from typing import Any

import numpy as np

from ese.compiler.program import balance_check


def _spread(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean()) if v.size else 0.0
    return {"min": int(v.min()) if v.size else 0, "mean": round(mean, 3), "max": int(v.max()) if v.size else 0,
            "max_over_mean": round(float(v.max()) / mean, 4) if mean else 0.0}


def program_stats(program: Any) -> dict[str, Any]:
    """Per matrix: nnz, padding, entries, their per-PE min / mean / max, and density."""
    out: dict[str, Any] = {}
    for name, m in program.matrices().items():
        out[name] = {
            "shape": [m.n_rows, m.n_cols],
            "nnz": m.nnz,
            "density": round(m.nnz / max(m.n_rows * m.n_cols, 1), 6),
            "padding_entries": m.padding,
            "entries": m.n_entries,
            "nnz_per_pe": _spread(m.nnz_per_pe),
            "padding_per_pe": _spread(m.padding_per_pe),
            "entries_per_pe": _spread(m.entries_per_pe),
        }
    return out


def _bits_for(max_value: int) -> int:
    return max(1, int(max_value).bit_length())


def storage_bits(program: Any) -> dict[str, int]:
    """Bits the accelerator stores, by kind, at their hardware widths.

    entries and padding: ``index_bits + weight_bits`` each; pointers: ``K + 1`` per PE and matrix
    at the width that addresses the PE's entries; the layers' vectors and LUT entries at
    ``act_bits``. The host-side output layer is counted separately (``output_layer``).
    """
    hw, q = program.hardware, program.quant
    word = hw.index_bits + q.weight_bits
    bits = {"nonzero_entries": 0, "padding_entries": 0, "pointers": 0, "vectors": 0, "luts": 0}
    for m in program.matrices().values():
        bits["nonzero_entries"] += m.nnz * word
        bits["padding_entries"] += m.padding * word
        bits["pointers"] += m.ptr.size * _bits_for(int(m.ptr.max(initial=0)))
    for layer in program.layers:
        bits["vectors"] += (layer.bias.size + sum(v.size for v in layer.vectors.values())) * q.act_bits
    bits["luts"] = sum(t.size for t in program.luts.values()) * q.act_bits
    bits["output_layer"] = program.w_out.size * q.weight_bits + program.b_out.size * q.acc_bits
    return bits


def dense_float_bits(program: Any) -> dict[str, int]:
    """The same model dense in 32-bit floats: every recurrent-layer weight and vector element;
    output layer apart."""
    n = 0
    for layer in program.layers:
        n += sum(m.n_rows * m.n_cols for m in layer.matrices().values()) + layer.bias.size
        n += sum(v.size for v in layer.vectors.values())
    return {"lstm": 32 * n, "output_layer": 32 * (program.w_out.size + program.b_out.size)}


def compile_report(program: Any, image_bytes: int | None = None) -> dict[str, Any]:
    """The compile report: sizes, per-PE balance, padding, bits per non-zero, compression ratio."""
    per_matrix = program_stats(program)
    store = storage_bits(program)
    dense = dense_float_bits(program)
    accel_bits = sum(v for k, v in store.items() if k != "output_layer")
    nnz = sum(m["nnz"] for m in per_matrix.values())
    padding = sum(m["padding_entries"] for m in per_matrix.values())
    weights = sum(m["shape"][0] * m["shape"][1] for m in per_matrix.values())
    return {
        "pes": program.hardware.pes,
        "index_bits": program.hardware.index_bits,
        "weight_bits": program.quant.weight_bits,
        "layers": len(program.layers),
        "nnz": nnz,
        "density": round(nnz / max(weights, 1), 6),
        "padding_entries": padding,
        "padding_fraction": round(padding / max(nnz + padding, 1), 6),
        "storage_bits": store,
        "accelerator_bits": accel_bits,
        "dense_float_bits": dense["lstm"],
        "bits_per_nonzero": round(accel_bits / max(nnz, 1), 4),
        "compression_ratio": round(dense["lstm"] / max(accel_bits, 1), 4),
        "compression_ratio_with_output_layer": round(
            (dense["lstm"] + dense["output_layer"]) / max(accel_bits + store["output_layer"], 1), 4),
        "image_bytes": image_bytes,
        "nnz_per_pe": {name: m["nnz_per_pe"] for name, m in per_matrix.items()},
        "padding_per_pe": {name: m["padding_per_pe"] for name, m in per_matrix.items()},
        "matrices": per_matrix,
        "schedule": program.schedule.to_json(),
        "balance": balance_check(program.source, program.hardware.pes),
    }
