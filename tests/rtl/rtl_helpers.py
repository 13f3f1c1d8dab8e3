"""Programs and runners shared by the RTL tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ese.compiler.program import Program, compile_qmodel
from ese.compress.qmodel import load_qmodel
from ese.compress.reference import ReferenceModel, Trace
from ese.config import HardwareConfig
from ese.rtl.toy import crop_qmodel, random_frames, random_qmodel

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "paper" / "paper-b32-d11-w12a16.qnpz"


def toy_program(seed: int = 0, hw: HardwareConfig | None = None, **shape) -> Program:
    return compile_qmodel(random_qmodel(seed, **shape), hw or HardwareConfig(pes=2, queue_depth=2))


@lru_cache(maxsize=2)
def shipped_small(hidden: int = 32, proj: int = 16, input_dim: int = 24):
    """The shipped trained model cut to a small shape (its real weights, formats and tables)."""
    return crop_qmodel(load_qmodel(SHIPPED), hidden=hidden, proj=proj, input_dim=input_dim)


def reference(program: Program, x: np.ndarray) -> Trace:
    return ReferenceModel(program.to_qmodel()).run(x)


__all__ = ["SHIPPED", "random_frames", "reference", "shipped_small", "toy_program"]
