"""Manual BPTT, the fast path and the gradient-flow measurements, checked against autograd and torch.nn.

The references are built here: torch.nn's layers and cells with the same weights, run by autograd
(a loop of cells with ``retain_grad`` gives the per-step gradients), in float64 with tight tolerances.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from seqlib import bptt

pytestmark = pytest.mark.part1

F64 = torch.float64
TIGHT = {"rtol": 1e-10, "atol": 1e-10}

# kind -> (torch.nn layer, torch.nn cell, gates G)
KINDS = ["tanh", "relu", "lstm", "gru"]


def make_layer(kind: str, input_size: int, hidden_size: int, bias: bool = True, dtype=F64, **kw) -> nn.Module:
    if kind == "lstm":
        return nn.LSTM(input_size, hidden_size, bias=bias, dtype=dtype, **kw)
    if kind == "gru":
        return nn.GRU(input_size, hidden_size, bias=bias, dtype=dtype, **kw)
    return nn.RNN(input_size, hidden_size, nonlinearity=kind, bias=bias, dtype=dtype, **kw)


def make_cell(kind: str, layer: nn.Module, k: int = 0) -> nn.Module:
    """A torch.nn cell holding layer ``k``'s weights (copied)."""
    I, H = getattr(layer, f"weight_ih_l{k}").shape[1], layer.hidden_size
    dtype = layer.weight_ih_l0.dtype
    if kind == "lstm":
        cell = nn.LSTMCell(I, H, bias=layer.bias, dtype=dtype)
    elif kind == "gru":
        cell = nn.GRUCell(I, H, bias=layer.bias, dtype=dtype)
    else:
        cell = nn.RNNCell(I, H, bias=layer.bias, nonlinearity=kind, dtype=dtype)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if getattr(cell, name) is not None:
                getattr(cell, name).copy_(getattr(layer, f"{name}_l{k}"))
    return cell


def layer_weights(layer: nn.Module, k: int = 0) -> list:
    return [getattr(layer, f"{n}_l{k}", None) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def cell_loop(kind, cell, x, h0, c0=None, truncate=None):
    """Autograd reference: run ``cell`` over time, keeping every state (retain_grad) and detaching every k."""
    h, c, hs, cs = h0, c0, [], []
    for t in range(x.shape[0]):
        if truncate is not None and t > 0 and t % truncate == 0:
            h = h.detach()
            c = None if c is None else c.detach()
        if kind == "lstm":
            h, c = cell(x[t], (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = cell(x[t], h)
        h.retain_grad()
        hs.append(h)
    return hs, cs


def run_manual(kind, x, h0, c0, w):
    if kind == "lstm":
        out, h_T, c_T, cache = bptt.lstm_forward(x, h0, c0, *w)
        return out, h_T, c_T, cache
    if kind == "gru":
        out, h_T, cache = bptt.gru_forward(x, h0, *w)
    else:
        out, h_T, cache = bptt.rnn_forward(x, h0, *w, nonlinearity=kind)
    return out, h_T, None, cache


def manual_backward(kind, cache, grad_out, grad_h_T, grad_c_T=None, truncate=None):
    if kind == "lstm":
        return bptt.lstm_backward(cache, grad_out, grad_h_T, grad_c_T, truncate=truncate)
    if kind == "gru":
        return bptt.gru_backward(cache, grad_out, grad_h_T, truncate=truncate)
    return bptt.rnn_backward(cache, grad_out, grad_h_T, truncate=truncate)


# ------------------------------------------------------------------------------------------------------
# manual forward/backward vs autograd
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("truncate", [None, 1, 3, 4])
def test_manual_bptt_matches_autograd(kind, bias, truncate):
    torch.manual_seed(0)
    T, N, I, H = 9, 3, 4, 5
    layer = make_layer(kind, I, H, bias=bias)
    cell = make_cell(kind, layer)
    x = torch.randn(T, N, I, dtype=F64, requires_grad=True)
    h0 = torch.randn(N, H, dtype=F64, requires_grad=True)
    c0 = torch.randn(N, H, dtype=F64, requires_grad=True) if kind == "lstm" else None
    grad_out, grad_h_T, grad_c_T = (torch.randn(T, N, H, dtype=F64), torch.randn(N, H, dtype=F64),
                                    torch.randn(N, H, dtype=F64))

    # autograd on the unrolled graph (detached every `truncate` steps)
    hs, cs = cell_loop(kind, cell, x, h0, c0, truncate)
    loss = (torch.stack(hs) * grad_out).sum() + (hs[-1] * grad_h_T).sum()
    if kind == "lstm":
        loss = loss + (cs[-1] * grad_c_T).sum()
    params = [p for p in cell.parameters()]
    leaves = [x, h0] + ([c0] if kind == "lstm" else []) + params
    loss.backward()
    ref = [leaf.grad for leaf in leaves]

    w = [p.detach() for p in layer_weights(layer)] if bias else [p.detach() for p in layer_weights(layer)[:2]] + [
        None, None]
    out, h_T, c_T, cache = run_manual(kind, x.detach(), h0.detach(), None if c0 is None else c0.detach(), w)
    torch.testing.assert_close(out, torch.stack(hs).detach(), **TIGHT)
    torch.testing.assert_close(h_T, hs[-1].detach(), **TIGHT)
    g = manual_backward(kind, cache, grad_out, grad_h_T, grad_c_T, truncate)

    got = [g.dx, g.dh0] + ([g.dc0] if kind == "lstm" else []) + [g.dw_ih, g.dw_hh]
    if bias:
        got += [g.db_ih, g.db_hh]
    else:
        assert g.db_ih is None and g.db_hh is None
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, **TIGHT)
    # the per-step total gradients dL/dh_t (and dL/dc_t)
    torch.testing.assert_close(g.dh, torch.stack([h.grad for h in hs]), **TIGHT)
    if kind == "lstm":
        torch.testing.assert_close(g.dc, torch.stack([c.grad for c in cs]), **TIGHT)
    else:
        assert g.dc is None


def test_truncation_really_cuts():
    """Sanity of the reference itself: with a loss on the last step only, truncation zeroes early gradients."""
    torch.manual_seed(1)
    layer = make_layer("tanh", 2, 3)
    x = torch.randn(8, 1, 2, dtype=F64)
    h0 = torch.zeros(1, 3, dtype=F64)
    _, _, cache = bptt.rnn_forward(x, h0, *[p.detach() for p in layer_weights(layer)])
    g = bptt.rnn_backward(cache, grad_h_T=torch.ones(1, 3, dtype=F64), truncate=4)
    assert torch.count_nonzero(g.dh[:4]) == 0 and torch.count_nonzero(g.dh[4:]) > 0
    full = bptt.rnn_backward(cache, grad_h_T=torch.ones(1, 3, dtype=F64))
    assert torch.count_nonzero(full.dh[:4]) > 0


def test_backward_with_no_upstream_gradient_is_zero():
    torch.manual_seed(0)
    layer = make_layer("lstm", 3, 4)
    x, h0 = torch.randn(5, 2, 3, dtype=F64), torch.randn(2, 4, dtype=F64)
    *_, cache = bptt.lstm_forward(x, h0, h0, *[p.detach() for p in layer_weights(layer)])
    g = bptt.lstm_backward(cache)
    for t in (g.dx, g.dh0, g.dc0, g.dw_ih, g.dw_hh, g.db_ih, g.dh, g.dc):
        assert torch.count_nonzero(t) == 0


def test_need_skips_gradients():
    torch.manual_seed(0)
    layer = make_layer("gru", 3, 4)
    x, h0 = torch.randn(5, 2, 3, dtype=F64), torch.randn(2, 4, dtype=F64)
    *_, cache = bptt.gru_forward(x, h0, *[p.detach() for p in layer_weights(layer)])
    g = bptt.gru_backward(cache, torch.randn(5, 2, 4, dtype=F64), need={"w_hh"})
    assert g.dw_hh is not None and g.dh is not None
    assert g.dx is None and g.dw_ih is None and g.db_ih is None and g.db_hh is None and g.dh0 is None


# ------------------------------------------------------------------------------------------------------
# the fast path vs torch.nn
# ------------------------------------------------------------------------------------------------------


def fast(kind, x, h0, c0, w):
    if kind == "lstm":
        return bptt.lstm_sequence(x, h0, c0, *w)
    if kind == "gru":
        return bptt.gru_sequence(x, h0, *w)
    return bptt.rnn_sequence(x, h0, *w, nonlinearity=kind)


def compare_with_torch(kind, T, N, I, H, bias, dtype, which=("out", "h", "c"), input_grad=True, seed=0):
    torch.manual_seed(seed)
    layer = make_layer(kind, I, H, bias=bias, dtype=dtype)
    x = torch.randn(T, N, I, dtype=dtype, requires_grad=input_grad)
    h0 = torch.randn(1, N, H, dtype=dtype, requires_grad=input_grad)
    c0 = torch.randn(1, N, H, dtype=dtype, requires_grad=input_grad)
    g_out, g_h, g_c = torch.randn(T, N, H, dtype=dtype), torch.randn(N, H, dtype=dtype), torch.randn(N, H, dtype=dtype)

    def loss_of(out, h_T, c_T):
        loss = out.sum() * 0 if "out" not in which else (out * g_out).sum()
        if "h" in which:
            loss = loss + (h_T * g_h).sum()
        if "c" in which and c_T is not None:
            loss = loss + (c_T * g_c).sum()
        return loss

    if kind == "lstm":
        ref_out, (ref_h, ref_c) = layer(x, (h0, c0))
        ref = (ref_out, ref_h[0], ref_c[0])
    else:
        ref_out, ref_h = layer(x, h0)
        ref = (ref_out, ref_h[0], None)
    w = layer_weights(layer)
    got = fast(kind, x, h0[0], c0[0], w)
    got = tuple(got) + (None,) * (3 - len(got))
    tol = TIGHT if dtype == F64 else {}
    for a, b in zip(got, ref, strict=True):
        if b is not None:
            torch.testing.assert_close(a, b, **tol)
    leaves = ([x, h0] + ([c0] if kind == "lstm" else []) if input_grad else []) + [p for p in w if p is not None]
    ref_g = torch.autograd.grad(loss_of(*ref), leaves, allow_unused=True)
    got_g = torch.autograd.grad(loss_of(*got), leaves, allow_unused=True)
    for a, b in zip(got_g, ref_g, strict=True):
        a = torch.zeros_like(b) if a is None else a
        torch.testing.assert_close(a.reshape(b.shape), b, **tol)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_fast_path_matches_torch_nn(kind, dtype, bias):
    compare_with_torch(kind, 7, 3, 4, 6, bias, dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", [("out",), ("h",), ("c",), ("h", "c")])
def test_fast_path_uses_every_output_gradient(kind, which):
    """Gradients arriving only through h_T, only through c_T, ... (the others are None in backward)."""
    compare_with_torch(kind, 6, 2, 3, 4, True, F64, which=which)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_without_input_grad(kind):
    compare_with_torch(kind, 5, 2, 3, 4, True, F64, input_grad=False)
    compare_with_torch(kind, 5, 2, 3, 4, False, torch.float32, input_grad=False)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_no_grad_at_all(kind):
    torch.manual_seed(0)
    layer = make_layer(kind, 3, 4)
    w = [p.detach() for p in layer_weights(layer)]
    x, h = torch.randn(5, 2, 3, dtype=F64), torch.zeros(2, 4, dtype=F64)
    outs = fast(kind, x, h, h, w)
    assert all(not o.requires_grad for o in outs)
    with torch.no_grad():
        ref = layer(x, (h[None], h[None]) if kind == "lstm" else h[None])[0]
    torch.testing.assert_close(outs[0], ref, **TIGHT)


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(KINDS), T=st.integers(1, 6), N=st.integers(1, 3), I=st.integers(1, 4),
       H=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_fast_path_shapes(kind, T, N, I, H, seed):
    compare_with_torch(kind, T, N, I, H, True, F64, seed=seed)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_gradcheck(kind):
    torch.manual_seed(0)
    G = {"lstm": 4, "gru": 3}.get(kind, 1)
    T, N, I, H = 4, 2, 3, 3
    args = [torch.randn(T, N, I, dtype=F64), torch.randn(N, H, dtype=F64)]
    if kind == "lstm":
        args.append(torch.randn(N, H, dtype=F64))
    args += [torch.randn(G * H, I, dtype=F64), torch.randn(G * H, H, dtype=F64), torch.randn(G * H, dtype=F64),
             torch.randn(G * H, dtype=F64)]
    args = [a.requires_grad_() for a in args]
    extra = () if kind in ("lstm", "gru") else (kind,)
    fn = {"lstm": bptt.lstm_sequence, "gru": bptt.gru_sequence}.get(kind, bptt.rnn_sequence)
    assert torch.autograd.gradcheck(lambda *a: fn(*a, *extra), args)


def test_fast_path_noncontiguous_inputs_and_expanded_grads():
    torch.manual_seed(0)
    layer = make_layer("lstm", 3, 4)
    xb = torch.randn(2, 6, 3, dtype=F64, requires_grad=True)  # batch first: (N, T, H_in)
    x = xb.transpose(0, 1)  # (T, N, H_in), not contiguous
    h0 = torch.zeros(2, 4, dtype=F64)
    out, h_T, c_T = bptt.lstm_sequence(x, h0, h0, *layer_weights(layer))
    out.sum().backward()  # grad_out is an expanded tensor
    ref_out, _ = layer(x.detach().clone().requires_grad_())
    torch.testing.assert_close(out, ref_out, **TIGHT)
    xr = xb.detach().clone().requires_grad_()
    layer(xr.transpose(0, 1))[0].sum().backward()
    torch.testing.assert_close(xb.grad, xr.grad, **TIGHT)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda w, x, h: bptt.lstm_sequence(x[0], h, h, *w), ValueError, ["x", "(T, N, H_in)"]),
        (lambda w, x, h: bptt.lstm_sequence(x, h[:, :2], h, *w), ValueError, ["h0", "(N, H)"]),
        (lambda w, x, h: bptt.lstm_sequence(x, h, h, w[0][:, :2], *w[1:]), ValueError, ["w_ih", "(G*H, H_in)"]),
        (lambda w, x, h: bptt.lstm_sequence(x.float(), h, h, *w), TypeError, ["dtype"]),
        (lambda w, x, h: bptt.lstm_sequence(x, h, None, *w), TypeError, ["c0"]),
        (lambda w, x, h: bptt.lstm_sequence(x[:0], h, h, *w), ValueError, ["T >= 1"]),
        (lambda w, x, h: bptt.rnn_sequence(x, h, *w, nonlinearity="sigmoid"), ValueError, ["nonlinearity"]),
        (lambda w, x, h: bptt.gru_sequence(x, h, w[0], w[1][:, :3], None, None), ValueError, ["w_hh"]),
        (lambda w, x, h: bptt.lstm_sequence(x.long(), h, h, *w), TypeError, ["x", "floating"]),
    ],
)
def test_errors_name_the_argument(call, error, words):
    layer = make_layer("lstm", 3, 4)
    w = [p.detach() for p in layer_weights(layer)]
    if "gru" in str(call.__code__.co_names):
        w = [torch.zeros(12, 3, dtype=F64), torch.zeros(12, 4, dtype=F64)]
    x, h = torch.randn(5, 2, 3, dtype=F64), torch.zeros(2, 4, dtype=F64)
    with pytest.raises(error) as info:
        call(w, x, h)
    for word in words:
        assert word in str(info.value)


def test_backward_checks_truncate():
    layer = make_layer("tanh", 2, 3)
    _, _, cache = bptt.rnn_forward(torch.randn(4, 1, 2, dtype=F64), torch.zeros(1, 3, dtype=F64),
                                   *[p.detach() for p in layer_weights(layer)])
    with pytest.raises(ValueError, match="truncate"):
        bptt.rnn_backward(cache, truncate=0)
    with pytest.raises(ValueError, match="grad_out"):
        bptt.rnn_backward(cache, grad_out=torch.zeros(3, 1, 3, dtype=F64))


# ------------------------------------------------------------------------------------------------------
# gradient flow
# ------------------------------------------------------------------------------------------------------


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
    norms = bptt.gradient_norms(layer, x, loss_fn)
    assert norms.shape == (12,)
    torch.testing.assert_close(norms, dh.flatten(1).norm(dim=1), **TIGHT)
    if kind == "lstm":
        torch.testing.assert_close(bptt.cell_state_norms(layer, x, loss_fn), dc.flatten(1).norm(dim=1), **TIGHT)


def test_gradient_norms_seqlib_model_and_cells():
    import seqlib

    torch.manual_seed(0)
    ours = seqlib.LSTM(3, 4, dtype=F64)
    theirs = nn.LSTM(3, 4, dtype=F64)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(10, 3, dtype=F64)  # unbatched (T, H_in)
    a = bptt.gradient_norms(ours, x, last_step_loss)
    dh, _ = reference_top_dh("lstm", theirs, x[:, None], last_step_loss)
    torch.testing.assert_close(a, dh.flatten(1).norm(dim=1), **TIGHT)
    # a cell is run over time from a zero state like a one-layer model
    cell = nn.GRUCell(3, 4, dtype=F64)
    layer = nn.GRU(3, 4, dtype=F64)
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    xb = torch.randn(10, 2, 3, dtype=F64)
    torch.testing.assert_close(bptt.gradient_norms(cell, xb, last_step_loss),
                               bptt.gradient_norms(layer, xb, last_step_loss), **TIGHT)
    seq_cell = seqlib.RNNCell(3, 4, nonlinearity="relu", dtype=F64)
    ref_cell = nn.RNNCell(3, 4, nonlinearity="relu", dtype=F64)
    ref_cell.load_state_dict(seq_cell.state_dict())
    torch.testing.assert_close(bptt.gradient_norms(seq_cell, xb, last_step_loss),
                               bptt.gradient_norms(ref_cell, xb, last_step_loss), **TIGHT)


def test_gradient_norms_errors():
    x = torch.randn(5, 2, 3)
    with pytest.raises(TypeError, match="model"):
        bptt.gradient_norms(nn.Linear(3, 3), x, last_step_loss)
    with pytest.raises(ValueError, match="bidirectional"):
        bptt.gradient_norms(nn.GRU(3, 4, bidirectional=True), x, last_step_loss)
    with pytest.raises(ValueError, match="loss_fn"):
        bptt.gradient_norms(nn.GRU(3, 4), x, lambda out: out)
    with pytest.raises(ValueError, match="H_in"):
        bptt.gradient_norms(nn.GRU(4, 4), x, last_step_loss)
    with pytest.raises(TypeError, match="LSTM"):
        bptt.cell_state_norms(nn.GRU(3, 4), x, last_step_loss)


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
    got = bptt.jacobian_norms(cell, x, h0, norm=norm)
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
    got = bptt.jacobian_norms(cell, x)
    assert got.shape == (5, 4)
    for n in range(4):
        torch.testing.assert_close(got[:, n], bptt.jacobian_norms(cell, x[:, n]), **TIGHT)
    # a linear recurrence h' = W h: dh_T/dh_t = W^(T-t), so the spectral norms are those of matrix powers
    W = torch.randn(3, 3, dtype=F64) * 0.5
    got = bptt.jacobian_norms(lambda x_t, h: h @ W.T + x_t[:, :1], torch.randn(5, 1, dtype=F64),
                              h0=torch.zeros(3, dtype=F64))
    ref = torch.stack([torch.linalg.matrix_norm(torch.linalg.matrix_power(W, 5 - t), ord=2) for t in range(5)])
    torch.testing.assert_close(got, ref, **TIGHT)
    with pytest.raises(ValueError, match="norm"):
        bptt.jacobian_norms(cell, x, norm="nuclear")
    with pytest.raises(ValueError, match="h0"):
        bptt.jacobian_norms(lambda x_t, h: h, x[:, 0])


def test_spectral_radius():
    torch.manual_seed(0)
    Q = torch.linalg.qr(torch.randn(5, 5, dtype=F64))[0]
    eig = torch.tensor([0.3, -1.7, 0.9, 1.2, -0.1], dtype=F64)
    W = Q @ torch.diag(eig) @ Q.T
    assert bptt.spectral_radius(W) == pytest.approx(1.7, rel=1e-9)
    rotation = 0.8 * torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # eigenvalues +-0.8i
    assert bptt.spectral_radius(rotation) == pytest.approx(0.8, rel=1e-6)
    with pytest.raises(ValueError, match="square"):
        bptt.spectral_radius(torch.zeros(8, 2))


def test_jacobian_norms_seqlib_cells_match_torch_cells():
    import seqlib

    torch.manual_seed(0)
    x = torch.randn(6, 2, 3, dtype=F64)
    for name in ("RNNCell", "LSTMCell", "GRUCell"):
        ours = getattr(seqlib, name)(3, 4, dtype=F64)
        theirs = getattr(nn, name)(3, 4, dtype=F64)
        theirs.load_state_dict(ours.state_dict())
        torch.testing.assert_close(bptt.jacobian_norms(ours, x), bptt.jacobian_norms(theirs, x), **TIGHT)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("H", [1, 3])
def test_inputs_are_left_untouched(kind, H):
    """Forward and backward work on copies and buffers of their own, never in the caller's tensors."""
    torch.manual_seed(0)
    layer = make_layer(kind, 1, H)
    w = [p.detach().clone().requires_grad_() for p in layer_weights(layer)]
    x = torch.randn(4, 2, 1, dtype=F64, requires_grad=True)
    h0 = torch.randn(2, H, dtype=F64, requires_grad=True)
    before = [t.detach().clone() for t in [x, h0, *w]]
    outs = fast(kind, x, h0, h0, w)
    sum(o.sum() for o in outs).backward()
    for a, b in zip([x, h0, *w], before, strict=True):
        assert torch.equal(a.detach(), b)


@pytest.mark.parametrize("kind", KINDS)
def test_reused_buffers_never_leak_between_calls(kind):
    """The fast path reuses its scratch memory: results of one call survive later calls of other sizes."""
    bptt.release_buffers()
    torch.manual_seed(0)
    layer = make_layer(kind, 3, 4)
    w = layer_weights(layer)
    kept = []
    for T in (7, 3, 9, 7):
        x = torch.randn(T, 2, 3, dtype=F64, requires_grad=True)
        h0 = torch.randn(2, 4, dtype=F64, requires_grad=True)
        outs = fast(kind, x, h0, h0, w)
        grads = torch.autograd.grad(outs[0].pow(2).sum(), [x, h0, *w])
        ref_out = layer(x, (h0[None], h0[None]) if kind == "lstm" else h0[None])[0]
        ref = torch.autograd.grad(ref_out.pow(2).sum(), [x, h0, *w])
        for a, b in zip(grads, ref, strict=True):
            torch.testing.assert_close(a, b, **TIGHT)
        kept.append((grads, [g.clone() for g in grads]))
    for grads, copies in kept:
        for a, b in zip(grads, copies, strict=True):
            assert torch.equal(a, b)
    bptt.release_buffers()
