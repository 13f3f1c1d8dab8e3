"""A trained model (the shipped paper model cut to a small shape) through the whole channel."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_cycle_oracle import cycle_model_total
from rtl_helpers import reference, shipped_small

from ese.accel.trace_io import first_difference
from ese.compiler.program import compile_qmodel
from ese.config import HardwareConfig
from ese.rtl.check import rtl_check
from ese.rtl.params import rtl_params
from ese.rtl.sim import simulate_top

pytestmark = pytest.mark.rtl


def trained_frames(qm, frames: int, seed: int) -> np.ndarray:
    """Inputs spread like features: normal with the calibrated scale, quantized to the input format."""
    fmt = qm.input_format
    x = np.random.default_rng(seed).normal(0.0, 1.0, size=(frames, qm.model.input_dim))
    return np.clip(np.floor(np.ldexp(x, fmt.frac) + 0.5), fmt.lo, fmt.hi).astype(np.int64)


@pytest.mark.slow  # the trained model in the RTL, several hardware points
@pytest.mark.parametrize("hw", [HardwareConfig(pes=8), HardwareConfig(pes=4, queue_depth=2, pointer_prefetch=False),
                                HardwareConfig(pes=16, queue_depth=4, overlap_input=False, y_latency=2)],
                         ids=["pes8", "pes4-noprefetch", "pes16-nooverlap"])
def test_trained_model_equals_reference_and_cycle_model(hw):
    qm = shipped_small()
    prog = compile_qmodel(qm, hw)
    x = trained_frames(qm, 5, 0)
    run = simulate_top(rtl_params(prog, max_frames=5), x)
    ref = reference(prog, x)
    assert np.array_equal(ref.y, run.y), f"reference model vs Amaranth RTL: {first_difference(ref.y, run.y, 'reference', 'RTL')}"
    assert run.cycles == cycle_model_total(prog, 5), "cycle model vs Amaranth RTL cycles"


def test_rtl_check_reports_match_and_cycles():
    prog = compile_qmodel(shipped_small(), HardwareConfig(pes=8))
    x = trained_frames(prog.to_qmodel(), 3, 1)
    out = rtl_check(prog, x)
    assert out["match"] and out["first_mismatch"] is None and out["columns_match"] is True
    assert out["rtl_cycles"] == cycle_model_total(prog, 3)
    if out["model_cycles"] is not None:  # ese.accel.cycles present
        assert out["cycles_match"], out
