"""Manual BPTT (seqlib.bptt, and its tuned twin seqlib.bptt_fast) checked against autograd.

The references are built here: torch.nn's cells with the same weights, run over time by autograd (a loop of
cells with ``retain_grad`` gives the per-step gradients), in float64 with tight tolerances. Every test of the
forward/backward functions runs for both modules; ``test_bptt_fast.py`` checks that the two agree on many more
shapes and options, and the fast path's autograd Functions against torch.nn's layers.
"""

from __future__ import annotations

import pytest
import torch
from recurrent_refs import (
    F64,
    GATES,
    KINDS,
    TIGHT,
    cell_loop,
    layer_weights,
    make_cell,
    make_layer,
    run_backward,
    run_forward,
)

from seqlib import bptt, bptt_fast, gradflow

pytestmark = pytest.mark.part1

IMPLS = pytest.mark.parametrize("impl", [bptt, bptt_fast], ids=["plain", "fast"])


def weights_of(layer, bias: bool) -> list:
    w = [p.detach() for p in layer_weights(layer)[:2]]
    return w + ([p.detach() for p in layer_weights(layer)[2:]] if bias else [None, None])


@IMPLS
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("truncate", [None, 1, 3, 4])
def test_manual_bptt_matches_autograd(impl, kind, bias, truncate):
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
    leaves = [x, h0] + ([c0] if kind == "lstm" else []) + list(cell.parameters())
    loss.backward()
    ref = [leaf.grad for leaf in leaves]

    out, h_T, c_T, cache = run_forward(impl, kind, x.detach(), h0.detach(), None if c0 is None else c0.detach(),
                                       weights_of(layer, bias))
    torch.testing.assert_close(out, torch.stack(hs).detach(), **TIGHT)
    torch.testing.assert_close(h_T, hs[-1].detach(), **TIGHT)
    if kind == "lstm":
        torch.testing.assert_close(c_T, cs[-1].detach(), **TIGHT)
    g = run_backward(impl, kind, cache, grad_out, grad_h_T, grad_c_T, truncate=truncate)

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


@IMPLS
@pytest.mark.parametrize("kind", KINDS)
def test_caches_hold_what_the_lectures_read(impl, kind):
    """The cache fields the widgets and lectures read: activated gates, cell states, outputs."""
    torch.manual_seed(0)
    T, N, I, H = 6, 2, 3, 4
    layer = make_layer(kind, I, H)
    cell = make_cell(kind, layer)
    x, h0, c0 = torch.randn(T, N, I, dtype=F64), torch.randn(N, H, dtype=F64), torch.randn(N, H, dtype=F64)
    out, _, _, cache = run_forward(impl, kind, x, h0, c0, weights_of(layer, True))
    torch.testing.assert_close(cache.out, out, **TIGHT)
    w_ih, w_hh, b_ih, b_hh = weights_of(layer, True)
    h, c = h0, c0
    for t in range(T):
        a = x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh  # (N, G*H)
        if kind == "lstm":
            gates = torch.cat([a[:, :2 * H].sigmoid(), a[:, 2 * H:3 * H].tanh(), a[:, 3 * H:].sigmoid()], dim=1)
            torch.testing.assert_close(cache.gates[t], gates, **TIGHT)  # (N, 4H): i, f, g, o
            torch.testing.assert_close(cache.c[t], c, **TIGHT)  # c[t] = c_{t-1}, c[0] = c0
            h, c = cell(x[t], (h, c))
            torch.testing.assert_close(cache.c[t + 1], c, **TIGHT)
            torch.testing.assert_close(cache.tanh_c[t], c.tanh(), **TIGHT)
        elif kind == "gru":
            hn = h @ w_hh[2 * H:].T + b_hh[2 * H:]  # (N, H)
            r_z = a[:, :2 * H].sigmoid()  # (N, 2H)
            n = (x[t] @ w_ih[2 * H:].T + b_ih[2 * H:] + r_z[:, :H] * hn).tanh()  # (N, H)
            torch.testing.assert_close(cache.hn[t], hn, **TIGHT)
            torch.testing.assert_close(cache.gates[t], torch.cat([r_z, n], dim=1), **TIGHT)  # (N, 3H): r, z, n
            h = cell(x[t], h)
        else:
            h = cell(x[t], h)
    if kind in ("lstm", "gru"):
        assert cache.gates.shape == (T, N, GATES[kind] * H)
    if kind == "lstm":
        assert cache.c.shape == (T + 1, N, H) and cache.tanh_c.shape == (T, N, H)


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


@IMPLS
def test_backward_with_no_upstream_gradient_is_zero(impl):
    torch.manual_seed(0)
    layer = make_layer("lstm", 3, 4)
    x, h0 = torch.randn(5, 2, 3, dtype=F64), torch.randn(2, 4, dtype=F64)
    *_, cache = impl.lstm_forward(x, h0, h0, *[p.detach() for p in layer_weights(layer)])
    g = impl.lstm_backward(cache)
    for t in (g.dx, g.dh0, g.dc0, g.dw_ih, g.dw_hh, g.db_ih, g.dh, g.dc):
        assert torch.count_nonzero(t) == 0


@IMPLS
def test_need_skips_gradients(impl):
    torch.manual_seed(0)
    layer = make_layer("gru", 3, 4)
    x, h0 = torch.randn(5, 2, 3, dtype=F64), torch.randn(2, 4, dtype=F64)
    *_, cache = impl.gru_forward(x, h0, *[p.detach() for p in layer_weights(layer)])
    g = impl.gru_backward(cache, torch.randn(5, 2, 4, dtype=F64), need={"w_hh"})
    assert g.dw_hh is not None and g.dh is not None
    assert g.dx is None and g.dw_ih is None and g.db_ih is None and g.db_hh is None and g.dh0 is None


@IMPLS
@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda m, w, x, h: m.lstm_forward(x[0], h, h, *w), ValueError, ["x", "(T, N, H_in)"]),
        (lambda m, w, x, h: m.lstm_forward(x, h[:, :2], h, *w), ValueError, ["h0", "(N, H)"]),
        (lambda m, w, x, h: m.lstm_forward(x, h, h, w[0][:, :2], *w[1:]), ValueError, ["w_ih", "(G*H, H_in)"]),
        (lambda m, w, x, h: m.lstm_forward(x.float(), h, h, *w), TypeError, ["dtype"]),
        (lambda m, w, x, h: m.lstm_forward(x, h, None, *w), TypeError, ["c0"]),
        (lambda m, w, x, h: m.lstm_forward(x[:0], h, h, *w), ValueError, ["T >= 1"]),
        (lambda m, w, x, h: m.lstm_forward(x.long(), h, h, *w), TypeError, ["x", "floating"]),
        (lambda m, w, x, h: m.lstm_forward(x, h, h, w[0], w[1], w[2][:3], w[3]), ValueError, ["b_ih", "(G*H,)"]),
        (lambda m, w, x, h: m.rnn_forward(x, h, w[0][:4], w[1][:4], nonlinearity="sigmoid"), ValueError,
         ["nonlinearity"]),
        (lambda m, w, x, h: m.gru_forward(x, h, w[0][:12], w[1][:12, :3]), ValueError, ["w_hh"]),
    ],
)
def test_errors_name_the_argument(impl, call, error, words):
    layer = make_layer("lstm", 3, 4)
    w = [p.detach() for p in layer_weights(layer)]
    x, h = torch.randn(5, 2, 3, dtype=F64), torch.zeros(2, 4, dtype=F64)
    with pytest.raises(error) as info:
        call(impl, w, x, h)
    for word in words:
        assert word in str(info.value)


@IMPLS
def test_backward_checks_truncate_and_gradient_shapes(impl):
    layer = make_layer("tanh", 2, 3)
    _, _, cache = impl.rnn_forward(torch.randn(4, 1, 2, dtype=F64), torch.zeros(1, 3, dtype=F64),
                                   *[p.detach() for p in layer_weights(layer)])
    with pytest.raises(ValueError, match="truncate"):
        impl.rnn_backward(cache, truncate=0)
    with pytest.raises(ValueError, match=r"grad_out must have shape \(T, N, H\)"):
        impl.rnn_backward(cache, grad_out=torch.zeros(3, 1, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"grad_h_T must have shape \(N, H\)"):
        impl.rnn_backward(cache, grad_h_T=torch.zeros(2, 3, dtype=F64))


def test_the_plain_module_holds_only_the_plain_loops():
    """The fast path lives in seqlib.bptt_fast and the measurements in seqlib.gradflow, not here."""
    for name in ("rnn_sequence", "lstm_sequence", "gru_sequence", "gradient_norms", "jacobian_norms"):
        assert not hasattr(bptt, name), name
    assert callable(bptt_fast.rnn_sequence) and callable(gradflow.gradient_norms)
