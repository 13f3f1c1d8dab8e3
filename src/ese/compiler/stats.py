"""Statistics of a compiled program: non-zeros, padding and entries per matrix and PE."""

from __future__ import annotations

from typing import Any

import numpy as np


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
