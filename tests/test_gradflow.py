"""The gradient-flow measurements (seqlib.gradflow) against autograd, torch.functional Jacobians and linear algebra."""

from __future__ import annotations

import pytest
import torch
from recurrent_refs import F64, KINDS, TIGHT, cell_loop, make_cell, make_layer
from torch import nn

import seqlib
from seqlib import gradflow

pytestmark = pytest.mark.part1



def reference_top_dh(kind, layer, x, loss_fn, batch_first=False):
    """Independent autograd computation: loop cells layer by layer, retain_grad on the top layer's states."""
    xs = x.transpose(0, 1) if batch_first else x  # (T, N, H_in)
    N = xs.shape[1]
    hs = cs = None
    for k in range(layer.num_layers):
        cell = make_cell(kind, layer, k)
        h0 = torch.zeros(N, layer.hidden_size, dtype=x.dtype)
        hs, cs = cell_loop(kind, cell, xs, h0, torch.zeros_like(h0) if kind == "lstm" else None)
        xs = torch.stack(hs)
    out = xs.transpose(0, 1) if batch_first else xs
    loss_fn(out).backward()
    dh = torch.stack([h.grad for h in hs])
    dc = torch.stack([c.grad for c in cs]) if kind == "lstm" else None
    return dh, dc


def last_step_loss(out):
    return (out[-1] ** 2).sum()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("num_layers", "batch_first"), [(1, False), (2, True)])
def test_gradient_norms_match_autograd(kind, num_layers, batch_first):
    torch.manual_seed(0)
    layer = make_layer(kind, 3, 5, num_layers=num_layers, batch_first=batch_first)
    x = torch.randn(2, 12, 3, dtype=F64) if batch_first else torch.randn(12, 2, 3, dtype=F64)

    def loss_fn(out):  # the output in the model's layout
        last = out[:, -1] if batch_first else out[-1]
        return (last**2).sum() + 0.1 * out.sum()

    dh, dc = reference_top_dh(kind, layer, x, loss_fn, batch_first)
    norms = gradflow.gradient_norms(layer, x, loss_fn)
    assert norms.shape == (12,)
    torch.testing.assert_close(norms, dh.flatten(1).norm(dim=1), **TIGHT)
    if kind == "lstm":
        torch.testing.assert_close(gradflow.cell_state_norms(layer, x, loss_fn), dc.flatten(1).norm(dim=1), **TIGHT)


def test_gradient_norms_seqlib_model_and_cells():
    torch.manual_seed(0)
    ours = seqlib.LSTM(3, 4, dtype=F64)
    theirs = nn.LSTM(3, 4, dtype=F64)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(10, 3, dtype=F64)  # unbatched (T, H_in)
    a = gradflow.gradient_norms(ours, x, last_step_loss)
    dh, _ = reference_top_dh("lstm", theirs, x[:, None], last_step_loss)
    torch.testing.assert_close(a, dh.flatten(1).norm(dim=1), **TIGHT)
    # a cell is run over time from a zero state like a one-layer model
    cell = nn.GRUCell(3, 4, dtype=F64)
    layer = nn.GRU(3, 4, dtype=F64)
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    xb = torch.randn(10, 2, 3, dtype=F64)
    torch.testing.assert_close(gradflow.gradient_norms(cell, xb, last_step_loss),
                               gradflow.gradient_norms(layer, xb, last_step_loss), **TIGHT)
    seq_cell = seqlib.RNNCell(3, 4, nonlinearity="relu", dtype=F64)
    ref_cell = nn.RNNCell(3, 4, nonlinearity="relu", dtype=F64)
    ref_cell.load_state_dict(seq_cell.state_dict())
    torch.testing.assert_close(gradflow.gradient_norms(seq_cell, xb, last_step_loss),
                               gradflow.gradient_norms(ref_cell, xb, last_step_loss), **TIGHT)


def test_gradient_norms_errors():
    x = torch.randn(5, 2, 3)
    with pytest.raises(TypeError, match="model"):
        gradflow.gradient_norms(nn.Linear(3, 3), x, last_step_loss)
    with pytest.raises(ValueError, match="bidirectional"):
        gradflow.gradient_norms(nn.GRU(3, 4, bidirectional=True), x, last_step_loss)
    with pytest.raises(ValueError, match="loss_fn"):
        gradflow.gradient_norms(nn.GRU(3, 4), x, lambda out: out)
    with pytest.raises(ValueError, match="H_in"):
        gradflow.gradient_norms(nn.GRU(4, 4), x, last_step_loss)
    with pytest.raises(TypeError, match="LSTM"):
        gradflow.cell_state_norms(nn.GRU(3, 4), x, last_step_loss)


def run_from(kind, cell, x, t, h, c):
    """h_T as a function of h_t (c_t fixed): the reference for jacobian_norms."""
    for k in range(t, x.shape[0]):
        if kind == "lstm":
            h, c = cell(x[k], (h, c))
        else:
            h = cell(x[k], h)
    return h


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("norm", ["spectral", "fro"])
def test_jacobian_norms_match_autograd_functional(kind, norm):
    torch.manual_seed(0)
    T, I, H = 6, 3, 4
    cell = make_cell(kind, make_layer(kind, I, H))
    x = torch.randn(T, I, dtype=F64)
    h0 = torch.randn(H, dtype=F64)
    got = gradflow.jacobian_norms(cell, x, h0, norm=norm)
    assert got.shape == (T,)
    # states h_0..h_{T-1} (and c) from an ordinary run
    h, c, hs, cs = h0, torch.zeros(H, dtype=F64), [], []
    with torch.no_grad():
        for t in range(T):
            hs.append(h)
            cs.append(c)
            h, c = cell(x[t], (h, c)) if kind == "lstm" else (cell(x[t], h), c)
    for t in range(T):
        jac = torch.autograd.functional.jacobian(lambda h_t, t=t: run_from(kind, cell, x, t, h_t, cs[t]), hs[t])
        ref = torch.linalg.matrix_norm(jac, ord=2 if norm == "spectral" else "fro")
        torch.testing.assert_close(got[t], ref, **TIGHT)


def test_jacobian_norms_batched_and_callable():
    torch.manual_seed(0)
    cell = nn.RNNCell(2, 3, dtype=F64)
    x = torch.randn(5, 4, 2, dtype=F64)  # (T, N, H_in)
    got = gradflow.jacobian_norms(cell, x)
    assert got.shape == (5, 4)
    for n in range(4):
        torch.testing.assert_close(got[:, n], gradflow.jacobian_norms(cell, x[:, n]), **TIGHT)
    # a linear recurrence h' = W h: dh_T/dh_t = W^(T-t), so the spectral norms are those of matrix powers
    W = torch.randn(3, 3, dtype=F64) * 0.5
    got = gradflow.jacobian_norms(lambda x_t, h: h @ W.T + x_t[:, :1], torch.randn(5, 1, dtype=F64),
                              h0=torch.zeros(3, dtype=F64))
    ref = torch.stack([torch.linalg.matrix_norm(torch.linalg.matrix_power(W, 5 - t), ord=2) for t in range(5)])
    torch.testing.assert_close(got, ref, **TIGHT)
    with pytest.raises(ValueError, match="norm"):
        gradflow.jacobian_norms(cell, x, norm="nuclear")
    with pytest.raises(ValueError, match="h0"):
        gradflow.jacobian_norms(lambda x_t, h: h, x[:, 0])


def test_spectral_radius():
    torch.manual_seed(0)
    Q = torch.linalg.qr(torch.randn(5, 5, dtype=F64))[0]
    eig = torch.tensor([0.3, -1.7, 0.9, 1.2, -0.1], dtype=F64)
    W = Q @ torch.diag(eig) @ Q.T
    assert gradflow.spectral_radius(W) == pytest.approx(1.7, rel=1e-9)
    rotation = 0.8 * torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # eigenvalues +-0.8i
    assert gradflow.spectral_radius(rotation) == pytest.approx(0.8, rel=1e-6)
    with pytest.raises(ValueError, match="square"):
        gradflow.spectral_radius(torch.zeros(8, 2))


def test_jacobian_norms_seqlib_cells_match_torch_cells():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 3, dtype=F64)
    for name in ("RNNCell", "LSTMCell", "GRUCell"):
        ours = getattr(seqlib, name)(3, 4, dtype=F64)
        theirs = getattr(nn, name)(3, 4, dtype=F64)
        theirs.load_state_dict(ours.state_dict())
        torch.testing.assert_close(gradflow.jacobian_norms(ours, x), gradflow.jacobian_norms(theirs, x), **TIGHT)


# ------------------------------------------------------------------------------------------------------
# recurrent_model: a layer with a chosen spectral radius
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("radius", [0.5, 1.0, 1.7])
def test_recurrent_model_has_the_spectral_radius(cell, radius):
    model = gradflow.recurrent_model(cell, radius, input_size=3, hidden_size=6, seed=2)
    assert isinstance(model, getattr(seqlib, cell)) and model.weight_hh_l0.dtype == F64
    for block in model.weight_hh_l0.detach().split(6, dim=0):  # every gate's (H, H) block
        eigenvalues = torch.linalg.eigvals(block)
        assert float(eigenvalues.abs().max()) == pytest.approx(radius, rel=1e-9)


def test_recurrent_model_random_init_is_torchs_draw_rescaled():
    torch.manual_seed(5)
    ref = nn.RNN(3, 4, nonlinearity="relu").double()  # torch.nn draws the same numbers from the same seed
    got = gradflow.recurrent_model("RNN", 0.9, input_size=3, hidden_size=4, nonlinearity="relu", seed=5)
    assert got.nonlinearity == "relu"
    w = ref.weight_hh_l0.detach()
    torch.testing.assert_close(got.weight_hh_l0.detach(), w * 0.9 / torch.linalg.eigvals(w).abs().max(), **TIGHT)
    torch.testing.assert_close(got.weight_ih_l0.detach(), ref.weight_ih_l0.detach(), **TIGHT)


def test_recurrent_model_identity_init_and_random_state():
    state = torch.get_rng_state()
    model = gradflow.recurrent_model("LSTM", 1.2, input_size=2, hidden_size=3, init="identity")
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random numbers are not consumed
    torch.testing.assert_close(model.weight_hh_l0.detach(), torch.eye(3, dtype=F64).repeat(4, 1) * 1.2, **TIGHT)
    assert torch.count_nonzero(model.bias_ih_l0) == 0 and torch.count_nonzero(model.bias_hh_l0) == 0
    again = gradflow.recurrent_model("LSTM", 1.2, input_size=2, hidden_size=3, init="identity")
    torch.testing.assert_close(again.weight_ih_l0, model.weight_ih_l0, **TIGHT)  # seeded: the same layer


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"cell": "TCN"}, ValueError, "cell"),
        ({"init": "orthogonal"}, ValueError, "init"),
        ({"nonlinearity": "sigmoid"}, ValueError, "nonlinearity"),
        ({"radius": -1.0}, ValueError, "radius"),
        ({"hidden_size": 0}, ValueError, "hidden_size"),
    ],
)
def test_recurrent_model_errors(kwargs, error, word):
    args = {"cell": "RNN", "radius": 1.0, "input_size": 2, "hidden_size": 3} | kwargs
    with pytest.raises(error, match=word):
        gradflow.recurrent_model(**args)
