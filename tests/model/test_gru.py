"""The GRU layer equals torch.nn.GRU (same gate order r, z, n; biases mapped as documented:
``bias`` = [b_ih_r + b_hh_r, b_ih_z + b_hh_z, b_ih_n, b_hh_n], the cell's accumulator blocks)."""

import pytest
import torch

from ese.cell import GRU
from ese.config import Config, ModelConfig
from ese.errors import ConfigError
from ese.model.gru import GRULayer, from_torch_gru
from ese.model.lstmp import AcousticModel


@pytest.mark.parametrize("layers", [1, 2])
def test_gru_layers_equal_torch_gru(layers):
    torch.manual_seed(0)
    ref = torch.nn.GRU(7, 16, num_layers=layers, batch_first=True)
    with torch.no_grad():  # non-trivial biases on both sides, so a swapped bias would show
        for name, p in ref.named_parameters():
            if "bias" in name:
                p.uniform_(-1, 1)
    ours = [from_torch_gru(ref, k) for k in range(layers)]
    x = torch.randn(3, 11, 7)
    want, h_want = ref(x)
    h, states = x, []
    for layer in ours:
        h, (y, s) = layer(h)
        assert torch.equal(y, s)  # no projection: y is h
        states.append(s)
    torch.testing.assert_close(h, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.stack(states), h_want, rtol=1e-5, atol=1e-6)


def test_chunks_with_carried_state_equal_the_whole_sequence():
    torch.manual_seed(1)
    layer = GRULayer(5, 8)
    x = torch.randn(2, 10, 5)
    whole, s_whole = layer(x)
    a, s = layer(x[:, :4])
    b, s = layer(x[:, 4:], s)
    torch.testing.assert_close(torch.cat([a, b], dim=1), whole)
    torch.testing.assert_close(s, s_whole)


def test_reset_gate_scales_only_the_recurrent_candidate_term():
    # with W_nh = 0 and b_nh = 0 the reset gate cannot matter: changing its weights leaves h alone
    torch.manual_seed(2)
    layer = GRULayer(4, 6)
    with torch.no_grad():
        layer.w_r[12:].zero_()
        layer.bias[18:].zero_()  # b_hn
    x = torch.randn(1, 5, 4)
    before, _ = layer(x)
    with torch.no_grad():
        layer.w_x[:6].normal_()
        layer.w_r[:6].normal_()
    after, _ = layer(x)
    torch.testing.assert_close(before, after)


def test_bad_shapes_and_bidirectional_are_refused():
    with pytest.raises(ValueError, match="hidden"):
        GRULayer(4, 0)
    with pytest.raises(ValueError, match="unidirectional"):
        from_torch_gru(torch.nn.GRU(4, 4, bidirectional=True))


def test_the_acoustic_model_stacks_gru_layers_from_the_config():
    cfg = Config.load(preset="tiny", overrides=["model.cell=gru", "model.layers=2"]).model
    assert (cfg.cell, cfg.proj, cfg.peepholes) == ("gru", cfg.hidden, False)  # y = h, no peepholes
    model = AcousticModel(cfg)
    assert all(isinstance(layer, GRULayer) for layer in model.layers)
    assert model.layers[1].input_dim == cfg.hidden
    assert {n for n, _ in model.layers[0].named_parameters()} == set(GRU.matrix_names) | {"bias"}
    logits, state = model(torch.randn(2, 5, cfg.input_dim))
    assert logits.shape == (2, 5, cfg.num_classes) and len(state) == 2


def test_an_unknown_cell_is_one_clear_error():
    with pytest.raises(ConfigError, match="unknown cell 'lstm'; known: gru, lstmp"):
        ModelConfig(cell="lstm")
