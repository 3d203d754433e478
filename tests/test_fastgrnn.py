"""seqlib.fastgrnn: the cell against its equations written out in float64, the layer against the cell unrolled,
gradients, shapes and bad input."""

from __future__ import annotations

import pytest
import torch

import seqlib
from seqlib.fastgrnn import FastGRNN, FastGRNNCell

pytestmark = pytest.mark.part4


def reference_step(x, h, W, U, bz, bh, zeta, nu):
    """FastGRNN's equations, written out: one W, U pair for the gate and the candidate."""
    z = 1 / (1 + torch.exp(-(x @ W.T + h @ U.T + bz)))
    h_tilde = torch.tanh(x @ W.T + h @ U.T + bh)
    z_scale, nu_shift = 1 / (1 + torch.exp(-zeta)), 1 / (1 + torch.exp(-nu))
    return (z_scale * (1 - z) + nu_shift) * h_tilde + z * h


@pytest.mark.parametrize("batched", [True, False])
def test_cell_matches_the_equations_and_their_gradients(batched):
    torch.manual_seed(0)
    cell = FastGRNNCell(5, 7).double()
    with torch.no_grad():
        cell.zeta.fill_(0.3)
        cell.nu.fill_(-1.2)
    x = torch.randn(4, 5, dtype=torch.float64) if batched else torch.randn(5, dtype=torch.float64)
    h = torch.randn(4, 7, dtype=torch.float64) if batched else torch.randn(7, dtype=torch.float64)
    out = cell(x, h)
    ref = reference_step(x, h, cell.weight_ih, cell.weight_hh, cell.bias_gate, cell.bias_update, cell.zeta, cell.nu)
    torch.testing.assert_close(out, ref)
    grads = torch.autograd.grad(out.square().sum(), list(cell.parameters()))
    ref_grads = torch.autograd.grad(ref.square().sum(), list(cell.parameters()))
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)
    assert out.shape == ((4, 7) if batched else (7,))


@pytest.mark.parametrize("batch_first", [False, True])
def test_layer_is_the_cell_unrolled(batch_first):
    torch.manual_seed(1)
    layer = FastGRNN(3, 6, batch_first=batch_first).double()
    cell = FastGRNNCell(3, 6).double()
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()}, strict=True)
    x = torch.randn(2, 9, 3, dtype=torch.float64)  # (N, L, H_in)
    h0 = torch.randn(1, 2, 6, dtype=torch.float64)
    out, h_n = layer(x if batch_first else x.transpose(0, 1), h0)
    h, steps = h0[0], []
    for t in range(9):
        h = cell(x[:, t], h)
        steps.append(h)
    expected = torch.stack(steps, dim=1 if batch_first else 0)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(h_n, h.unsqueeze(0))
    # unbatched (L, H_in)
    out1, h1 = layer(x[0], h0[:, 0])  # (L, H_in), (1, H_out)
    torch.testing.assert_close(out1, expected[0] if batch_first else expected[:, 0])
    assert h1.shape == (1, 6)


def test_parameters_names_and_size():
    layer = FastGRNN(3, 16)
    assert [n for n, _ in layer.named_parameters()] == ["weight_ih_l0", "weight_hh_l0", "bias_gate_l0",
                                                        "bias_update_l0", "zeta_l0", "nu_l0"]
    assert layer.zeta_l0.item() == 1.0 and layer.nu_l0.item() == -4.0
    gru = seqlib.GRU(3, 16)
    n_fast = sum(p.numel() for p in layer.parameters())
    n_gru = sum(p.numel() for p in gru.parameters())
    # one W, U pair and two biases against the GRU's three pairs and six biases, plus the two scalars
    assert n_fast == (16 * 3 + 16 * 16 + 2 * 16) + 2
    assert n_gru == 3 * (16 * 3 + 16 * 16 + 2 * 16)
    nobias = FastGRNNCell(3, 4, bias=False)
    assert nobias.bias_gate is None and nobias.bias_update is None
    assert nobias(torch.randn(2, 3)).shape == (2, 4)


def test_a_fastgrnn_learns():
    torch.manual_seed(0)
    layer = FastGRNN(1, 8, batch_first=True)
    head = torch.nn.Linear(8, 1)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=0.03)
    x = torch.randn(64, 10, 1)
    y = x.sum(1)  # the running sum
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(head(layer(x)[0][:, -1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_bad_input_raises_clear_errors():
    layer = FastGRNN(3, 4)
    with pytest.raises(ValueError, match=r"H_in = 3"):
        layer(torch.randn(5, 2, 4))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(5, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(1, N, H_out\)"):
        layer(torch.randn(5, 2, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="L >= 1"):
        layer(torch.randn(0, 2, 3))
    with pytest.raises(ValueError, match="positive integer"):
        FastGRNNCell(0, 3)
    with pytest.raises(TypeError, match="zeta_init"):
        FastGRNNCell(2, 3, zeta_init="one")
    cell = FastGRNNCell(3, 4)
    with pytest.raises(ValueError, match=r"\(N, H_in\)"):
        cell(torch.randn(2, 2, 3))
