"""``rtl_check``: run a program's RTL on some frames and compare it with the golden models."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ese.compiler.program import Program
from ese.compress.reference import ReferenceModel
from ese.rtl.params import rtl_params


def cycle_model_total(program: Program, frames: int) -> int | None:
    """``ese.accel.cycles``' compute ``total`` for ``frames`` frames (None if that module is absent)."""
    try:
        from ese.accel.cycles import simulate
    except ImportError:
        return None
    report = simulate(program, program.hardware, n_frames=frames, breakdown=False)
    total = report.compute_cycles_per_frame * frames  # an exact Fraction: total / T
    return int(total)


def rtl_check(program: Program, x_q_frames: np.ndarray, *, simulator: str = "amaranth",
              workdir: Path | None = None) -> dict[str, Any]:
    """Simulate the RTL of ``program`` on integer frames (T, D); compare with the reference model.

    ``simulator``: ``"amaranth"`` (amaranth.sim) or ``"iverilog"`` (the exported Verilog; needs
    ``workdir``). Returns ``match`` (every y_t equal), ``first_mismatch`` (step, index) or None,
    ``rtl_cycles``, ``model_cycles`` (None if unavailable), ``cycles_match``, ``columns_match``
    (amaranth only: every b[c] and s[p, c] equal to the cycle model's timeline) and timings.
    """
    x_q = np.asarray(x_q_frames, dtype=np.int64)
    params = rtl_params(program, max_frames=max(len(x_q), 1))
    t0 = time.perf_counter()
    if simulator == "iverilog":
        from ese.rtl.export import run_iverilog
        run = run_iverilog(params, x_q, Path(workdir or "build/rtl/check"))
    else:
        from ese.rtl.sim import simulate_top
        run = simulate_top(params, x_q)
    sim_s = time.perf_counter() - t0
    ref = ReferenceModel(program.to_qmodel()).run(x_q).y
    diff = np.argwhere(ref != run.y)
    model = cycle_model_total(program, len(x_q))
    return {
        "simulator": simulator, "frames": len(x_q), "match": bool(diff.size == 0),
        "first_mismatch": None if diff.size == 0 else [int(v) for v in diff[0]],
        "rtl_cycles": run.cycles, "rtl_cycles_per_frame": run.cycles / max(len(x_q), 1),
        "model_cycles": model, "cycles_match": None if model is None else model == run.cycles,
        "columns_match": _columns_match(program, len(x_q), run), "sim_seconds": round(sim_s, 3),
    }


def _columns_match(program: Program, frames: int, run) -> bool | None:
    """Every broadcast cycle b[c] and pop cycle s[p, c] equal to ``ese.accel.cycles.timeline``
    (None if the run did not record them or the timeline is unavailable / too large)."""
    if run.b is None:
        return None
    try:
        from ese.accel.cycles import timeline
        from ese.errors import EseError
    except ImportError:
        return None
    try:
        tl = timeline(program, n_frames=frames)
    except EseError:
        return None
    return bool(np.array_equal(tl.b, run.b) and np.array_equal(tl.s, run.s))
