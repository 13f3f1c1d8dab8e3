"""Small fixed-point models for the compiler tests: pruned, quantized, two layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ese.compress.quantize import quantize_checkpoint
from ese.config import Config, ModelConfig
from ese.data.dataset import FeatureSet, Utterance
from ese.model.lstmp import AcousticModel

D, H, P = 10, 16, 8


def calibration_set(n: int = 4, seed: int = 1) -> FeatureSet:
    rng = np.random.default_rng(seed)
    return FeatureSet("train", [Utterance(f"u{k}", "s", (1.5 * rng.normal(size=(20, D))).astype(np.float32),
                                          np.zeros(20, np.int64), ("aa",)) for k in range(n)])


def pruned_qmodel(density: float = 0.3, seed: int = 0, peepholes: bool = True, layers: int = 2):
    """A quantized 2-layer LSTMP whose matrices keep a random ``density`` of their weights."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = AcousticModel(ModelConfig(input_dim=D, hidden=H, proj=P, layers=layers, peepholes=peepholes))
    with torch.no_grad():
        for layer in model.layers:
            for w in (layer.w_x, layer.w_r, layer.w_ym):
                w.mul_(2.0)
                w.mul_(torch.from_numpy(rng.random(tuple(w.shape)) < density).to(w.dtype))
    return quantize_checkpoint(model.eval(), Config(model=model.cfg), calibration_set())


@pytest.fixture(scope="session")
def small_qmodel():
    return pruned_qmodel()

