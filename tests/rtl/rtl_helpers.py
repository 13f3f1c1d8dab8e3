"""Programs and runners shared by the RTL tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from random_models import random_qmodel

from ese.cell import cell_spec
from ese.compiler.program import Program, compile_qmodel
from ese.compress.qmodel import load_qmodel
from ese.compress.reference import ReferenceModel, Trace
from ese.config import HardwareConfig
from ese.rtl.toy import crop_qmodel, random_frames

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "paper" / "paper-b32-d11-w12a16.qnpz"


def toy_qmodel(seed: int = 0, *, input_dim: int = 5, hidden: int = 6, proj: int = 4, peepholes: bool = True,
               density: float = 0.4, lut_index_bits: int = 6, big_rows: bool = False, layers: int = 1,
               cell: str = "lstmp"):
    """A small random fixed-point model of ``cell`` (``tests/random_models.py``) in the RTL tests'
    words (a cell without projection has y = h: ``proj`` is ``hidden``)."""
    if cell_spec(cell).projection is None:
        proj = hidden
    return random_qmodel(D=input_dim, H=hidden, P=proj, layers=layers, peepholes=peepholes, density=density,
                         lut_bits=lut_index_bits, seed=seed, big_rows=big_rows, cell=cell)


def toy_program(seed: int = 0, hw: HardwareConfig | None = None, **shape) -> Program:
    return compile_qmodel(toy_qmodel(seed, **shape), hw or HardwareConfig(pes=2, queue_depth=2))


@lru_cache(maxsize=2)
def shipped_small(hidden: int = 32, proj: int = 16, input_dim: int = 24):
    """The shipped trained model cut to a small shape (its real weights, formats and tables)."""
    return crop_qmodel(load_qmodel(SHIPPED), hidden=hidden, proj=proj, input_dim=input_dim)


def reference(program: Program, x: np.ndarray) -> Trace:
    return ReferenceModel(program.to_qmodel()).run(x)


__all__ = ["SHIPPED", "random_frames", "reference", "shipped_small", "toy_program", "toy_qmodel"]
