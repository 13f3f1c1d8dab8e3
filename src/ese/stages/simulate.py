"""The simulate stage of ``ese run``: the cycle model's summary of a compiled program (the JSON of
``ese simulate`` without the per-PE lists)."""

from __future__ import annotations

from typing import Any

from ese.accel.cycles import DEFAULT_FRAMES, simulate
from ese.compiler.program import Program
from ese.config import HardwareConfig


def simulate_summary(program: Program, hardware: HardwareConfig | None = None, n_frames: int = DEFAULT_FRAMES) -> dict[str, Any]:
    """The JSON of :func:`ese.accel.cycles.simulate` with only the per-PE spreads."""
    out = simulate(program, hardware, n_frames).to_json()
    pe = out.pop("per_pe")
    out["per_pe"] = {k: v for k, v in pe.items() if k.endswith("_spread")}
    return out
