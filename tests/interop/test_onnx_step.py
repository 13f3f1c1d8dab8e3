"""The ONNX step is the cell description's float step traced into nodes: for the LSTMP (with
and without peepholes) and for the GRU, whose candidate's recurrent product is scattered into
its own accumulator block, onnxruntime gives our float model's logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ese.config import ModelConfig
from ese.interop.onnx_export import run_onnx, to_onnx
from ese.model.lstmp import AcousticModel


@pytest.mark.parametrize("kw", [dict(peepholes=True, proj=8), dict(peepholes=False, proj=8), dict(cell="gru")])
def test_traced_step_equals_the_float_model(kw):
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(input_dim=20, hidden=16, layers=2, num_classes=48, **kw)).eval()
    with torch.no_grad():
        for layer in model.layers:
            for name, p in layer.params().items():
                if p is not None and p.dim() == 2 and p.shape[0] == 3:
                    p.normal_()  # peepholes large enough to matter
    x = np.random.default_rng(0).standard_normal((2, 13, 20)).astype(np.float32)  # (B, T, D)
    got = run_onnx(to_onnx(model).SerializeToString(), x)
    with torch.no_grad():
        want = model(torch.from_numpy(x))[0].numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    plain = AcousticModel(ModelConfig(input_dim=20, hidden=16, layers=2, num_classes=48, **kw)).eval()
    assert np.abs(run_onnx(to_onnx(plain).SerializeToString(), x) - want).max() > 1e-3  # weights matter
