"""Small random fixed-point and float models for the CPU engine tests: the shared generator
(tests/random_models.py) with binary points chosen to exercise the engine's shifts."""

from __future__ import annotations

import numpy as np
from random_models import random_float_model, random_qmodel

from ese.compress.qmodel import QModel
from ese.model.lstmp import AcousticModel


def tiny_qmodel(*, D: int = 5, H: int = 20, P: int = 6, layers: int = 1, C: int = 4, peepholes: bool = True,
                density: float = 0.4, seed: int = 0, shift: int = 0) -> QModel:
    """A valid random QModel whose binary points make the engine both round and shift left
    (``w_x`` finer than its width, ``shift`` moves the activation points)."""
    A, W = 16, 12
    fracs = {"x": A - 5 + shift, "w_x": W + 1, "w_r": W, "w_ym": W - 1, "bias": A - 3, "peephole": A - 1,
             "y": A - 5 + shift, "c": A - 4 - shift, "z_i": A - 5, "z_f": A - 4, "z_g": A - 6 + shift,
             "z_o": A - 5, "acc": 6, "acc_y": 3}
    return random_qmodel(D=D, H=H, P=P, layers=layers, C=C, peepholes=peepholes, density=density, seed=seed,
                         weight_bits=W, act_bits=A, fracs=fracs)


def int_input(qm: QModel, frames: int, seed: int = 0) -> np.ndarray:
    fmt = qm.input_format
    return np.random.default_rng(seed + 7).integers(fmt.lo, fmt.hi + 1, size=(frames, qm.model.input_dim))


def tiny_float_model(*, D: int = 7, H: int = 20, P: int = 6, layers: int = 2, peepholes: bool = True,
                     density: float = 0.3, seed: int = 0) -> AcousticModel:
    """A random LSTMP model with its matrices pruned to ``density`` (random pattern)."""
    return random_float_model(D=D, H=H, P=P, layers=layers, peepholes=peepholes, density=density, seed=seed)
