"""The GRU layer equals torch.nn.GRU (same gate order r, z, n; biases mapped as documented)."""

import pytest
import torch

from ese.model.gru import GRULayer, from_torch_gru


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
        h, s = layer(h)
        states.append(s)
    torch.testing.assert_close(h, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.stack(states), h_want, rtol=1e-5, atol=1e-6)


def test_chunks_with_carried_state_equal_the_whole_sequence():
    torch.manual_seed(1)
    layer = GRULayer(5, 8)
    x = torch.randn(2, 10, 5)
    whole, h_whole = layer(x)
    a, h = layer(x[:, :4])
    b, h = layer(x[:, 4:], h)
    torch.testing.assert_close(torch.cat([a, b], dim=1), whole)
    torch.testing.assert_close(h, h_whole)


def test_reset_gate_scales_only_the_recurrent_candidate_term():
    # with W_nh = 0 and b_nh = 0 the reset gate cannot matter: changing its weights leaves h alone
    torch.manual_seed(2)
    layer = GRULayer(4, 6)
    with torch.no_grad():
        layer.w_r[12:].zero_()
        layer.bias_nh.zero_()
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
