"""LSTMP layer: ESE.md section 1 equations, nn.LSTM equivalence, streaming state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ese.config import ModelConfig
from ese.model.lstmp import AcousticModel, LSTMPLayer

# nn.LSTM notes that oneDNN lacks projections; the reference path it falls back to is what we want
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")


def _copy_to_lstm(model: AcousticModel) -> torch.nn.LSTM:
    cfg = model.cfg
    lstm = torch.nn.LSTM(cfg.input_dim, cfg.hidden, num_layers=cfg.layers, proj_size=cfg.proj,
                         batch_first=True)
    with torch.no_grad():
        for k, layer in enumerate(model.layers):
            getattr(lstm, f"weight_ih_l{k}").copy_(layer.w_x)
            getattr(lstm, f"weight_hh_l{k}").copy_(layer.w_r)
            getattr(lstm, f"bias_ih_l{k}").copy_(layer.bias)
            getattr(lstm, f"bias_hh_l{k}").zero_()
            getattr(lstm, f"weight_hr_l{k}").copy_(layer.w_ym)
    return lstm


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_zero_peepholes_equal_nn_lstm(layers: int) -> None:
    torch.manual_seed(layers)
    cfg = ModelConfig(input_dim=7, hidden=10, proj=5, layers=layers, num_classes=4,
                      peepholes=False)
    model = AcousticModel(cfg)
    lstm = _copy_to_lstm(model)
    x = torch.randn(3, 13, 7, requires_grad=True)

    logits, state = model(x)
    ref_y, (ref_h, ref_c) = lstm(x)
    ref_logits = model.output(ref_y)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    for k in range(layers):
        torch.testing.assert_close(state[k][0], ref_h[k], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(state[k][1], ref_c[k], atol=1e-5, rtol=1e-5)

    # gradients agree too: the training path is the same function
    grad_ours = torch.autograd.grad(logits.square().sum(), [x, model.layers[0].w_r])
    grad_ref = torch.autograd.grad(ref_logits.square().sum(), [x, lstm.weight_hh_l0])
    for a, b in zip(grad_ours, grad_ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_initial_state_is_used_like_nn_lstm() -> None:
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(input_dim=4, hidden=6, proj=3, layers=2, peepholes=False))
    lstm = _copy_to_lstm(model)
    x = torch.randn(2, 5, 4)
    h0, c0 = torch.randn(2, 2, 3), torch.randn(2, 2, 6)
    _, state = model(x, [(h0[k], c0[k]) for k in range(2)])
    _, (h, c) = lstm(x, (h0, c0))
    torch.testing.assert_close(torch.stack([s[0] for s in state]), h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack([s[1] for s in state]), c, atol=1e-5, rtol=1e-5)


def _naive_lstmp(layer: LSTMPLayer, x: np.ndarray) -> np.ndarray:
    """The ESE.md equations written out per gate, in float64 numpy, for one sequence (T, D)."""
    def sig(v: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-v))
    H = layer.hidden
    wx, wr = layer.w_x.detach().double().numpy(), layer.w_r.detach().double().numpy()
    b, wym = layer.bias.detach().double().numpy(), layer.w_ym.detach().double().numpy()
    w_ic, w_fc, w_oc = layer.peephole.detach().double().numpy()
    blk = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("ifgo")}
    y, c, out = np.zeros(layer.proj), np.zeros(H), []
    for xt in x.astype(np.float64):
        pre = {g: wx[s] @ xt + wr[s] @ y + b[s] for g, s in blk.items()}
        i = sig(pre["i"] + w_ic * c)
        f = sig(pre["f"] + w_fc * c)
        g = np.tanh(pre["g"])
        c = f * c + i * g
        o = sig(pre["o"] + w_oc * c)
        y = wym @ (o * np.tanh(c))
        out.append(y)
    return np.stack(out)


def test_peepholes_follow_the_equations() -> None:
    torch.manual_seed(3)
    layer = LSTMPLayer(5, 8, 4, peepholes=True)
    with torch.no_grad():
        layer.peephole.uniform_(-1.5, 1.5)  # large enough that a misplaced peephole shows
    x = torch.randn(1, 9, 5)
    ys, _ = layer(x)
    np.testing.assert_allclose(ys[0].detach().numpy(), _naive_lstmp(layer, x[0].numpy()),
                               atol=1e-5, rtol=1e-5)


def test_streaming_chunks_equal_one_shot() -> None:
    torch.manual_seed(1)
    model = AcousticModel(ModelConfig(input_dim=6, hidden=12, proj=5, layers=2, num_classes=7))
    x = torch.randn(2, 31, 6)
    whole, final = model(x)
    parts, state = [], None
    for start, end in [(0, 1), (1, 11), (11, 12), (12, 31)]:
        out, state = model(x[:, start:end], state)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, atol=1e-6, rtol=1e-6)
    for (y, c), (y_ref, c_ref) in zip(state, final):
        torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(c, c_ref, atol=1e-6, rtol=1e-6)


def test_parameter_layout_is_the_contract() -> None:
    model = AcousticModel(ModelConfig(input_dim=153, hidden=32, proj=16, layers=2, num_classes=48))
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes == {
        "layers.0.w_x": (128, 153), "layers.0.w_r": (128, 16), "layers.0.bias": (128,),
        "layers.0.peephole": (3, 32), "layers.0.w_ym": (16, 32),
        "layers.1.w_x": (128, 16), "layers.1.w_r": (128, 16), "layers.1.bias": (128,),
        "layers.1.peephole": (3, 32), "layers.1.w_ym": (16, 32),
        "output.weight": (48, 16), "output.bias": (48,),
    }
    no_peep = AcousticModel(ModelConfig(input_dim=4, hidden=4, proj=2, layers=1, peepholes=False))
    assert "layers.0.peephole" not in dict(no_peep.named_parameters())


def test_bad_shape_is_rejected_with_the_value() -> None:
    with pytest.raises(ValueError, match=r"hidden must be a positive integer, not 0"):
        LSTMPLayer(4, 0, 2)


def test_non_finite_parameters_are_named() -> None:
    model = AcousticModel(ModelConfig(input_dim=4, hidden=4, proj=2, layers=1))
    assert model.non_finite_parameters() == []
    with torch.no_grad():
        model.layers[0].w_r[0, 0] = float("inf")
    assert model.non_finite_parameters() == ["layers.0.w_r"]
