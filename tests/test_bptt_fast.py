"""The fast path (seqlib.bptt_fast) computes what the plain BPTT (seqlib.bptt) computes, and matches torch.nn.

1. The tuned forward/backward functions against the plain ones, for every output and every gradient, in
   float64, over many shapes (hypothesis), with and without biases, tanh/relu/LSTM/GRU, truncated BPTT and
   ``need`` subsets.
2. The autograd Functions (``rnn_sequence`` etc., what ``seqlib.RNN``/``LSTM``/``GRU`` run) against torch.nn's
   layers, forward and backward.
3. The reusable scratch buffers: results of one call survive later calls, inputs are never written to.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from recurrent_refs import F64, GATES, KINDS, TIGHT, layer_weights, make_layer, run_backward, run_forward

from seqlib import bptt, bptt_fast

pytestmark = pytest.mark.part1

GRADIENTS = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh", "dh", "dc")
NEEDABLE = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")


# ------------------------------------------------------------------------------------------------------
# 1. fast == plain
# ------------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), T=st.integers(1, 7), N=st.integers(1, 4), I=st.integers(1, 4),
       H=st.integers(1, 5), bias=st.sampled_from([(True, True), (False, False), (True, False), (False, True)]),
       truncate=st.sampled_from([None, 1, 2, 3, 5]), need=st.sets(st.sampled_from(NEEDABLE)),
       upstream=st.sets(st.sampled_from(["out", "h", "c"])), seed=st.integers(0, 2**16))
def test_fast_path_equals_the_plain_bptt(kind, T, N, I, H, bias, truncate, need, upstream, seed):
    g = torch.Generator().manual_seed(seed)
    G = GATES[kind]

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=F64)

    x, h0, c0 = randn(T, N, I), randn(N, H), randn(N, H)
    w = [randn(G * H, I), randn(G * H, H), randn(G * H) if bias[0] else None, randn(G * H) if bias[1] else None]
    grad_out = randn(T, N, H) if "out" in upstream else None
    grad_h_T = randn(N, H) if "h" in upstream else None
    grad_c_T = randn(N, H) if "c" in upstream else None

    plain = run_forward(bptt, kind, x, h0, c0, w)
    fast = run_forward(bptt_fast, kind, x, h0, c0, w)
    for a, b in zip(plain[:3], fast[:3], strict=True):
        if a is not None:
            torch.testing.assert_close(b, a, **TIGHT)
    for field in ("out", "gates", "c", "tanh_c", "hn"):  # the caches agree too (either backward reads either)
        if hasattr(plain[3], field):
            torch.testing.assert_close(getattr(fast[3], field), getattr(plain[3], field), **TIGHT)

    kw = {"truncate": truncate, "need": need}
    g_plain = run_backward(bptt, kind, plain[3], grad_out, grad_h_T, grad_c_T, **kw)
    g_fast = run_backward(bptt_fast, kind, fast[3], grad_out, grad_h_T, grad_c_T, **kw)
    for name in GRADIENTS:
        a, b = getattr(g_plain, name), getattr(g_fast, name)
        assert (a is None) == (b is None), f"{name}: plain {a is None}, fast {b is None}"
        if a is not None:
            torch.testing.assert_close(b, a, **TIGHT, msg=name)
    # what was asked for is there, what was not is not
    for name in NEEDABLE:
        exists = name in need and (name != "c0" or kind == "lstm") and \
            (name != "b_ih" or bias[0]) and (name != "b_hh" or bias[1])
        assert (getattr(g_plain, f"d{name}") is not None) == exists, name


@pytest.mark.parametrize("kind", KINDS)
def test_fast_backward_reads_a_plain_cache(kind):
    """One cache layout: the fast backward of a plain forward's cache gives the plain backward's gradients."""
    torch.manual_seed(0)
    layer = make_layer(kind, 3, 4)
    w = [p.detach() for p in layer_weights(layer)]
    x, h0 = torch.randn(6, 2, 3, dtype=F64), torch.randn(2, 4, dtype=F64)
    *_, cache = run_forward(bptt, kind, x, h0, h0.clone(), w)
    grad_out = torch.randn(6, 2, 4, dtype=F64)
    ref = run_backward(bptt, kind, cache, grad_out, None, truncate=2)
    got = run_backward(bptt_fast, kind, cache, grad_out, None, truncate=2)
    for name in GRADIENTS:
        if getattr(ref, name) is not None:
            torch.testing.assert_close(getattr(got, name), getattr(ref, name), **TIGHT)


# ------------------------------------------------------------------------------------------------------
# 2. the autograd Functions vs torch.nn
# ------------------------------------------------------------------------------------------------------


def fast(kind, x, h0, c0, w):
    if kind == "lstm":
        return bptt_fast.lstm_sequence(x, h0, c0, *w)
    if kind == "gru":
        return bptt_fast.gru_sequence(x, h0, *w)
    return bptt_fast.rnn_sequence(x, h0, *w, nonlinearity=kind)


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
    G = GATES[kind]
    T, N, I, H = 4, 2, 3, 3
    args = [torch.randn(T, N, I, dtype=F64), torch.randn(N, H, dtype=F64)]
    if kind == "lstm":
        args.append(torch.randn(N, H, dtype=F64))
    args += [torch.randn(G * H, I, dtype=F64), torch.randn(G * H, H, dtype=F64), torch.randn(G * H, dtype=F64),
             torch.randn(G * H, dtype=F64)]
    args = [a.requires_grad_() for a in args]
    extra = () if kind in ("lstm", "gru") else (kind,)
    fn = {"lstm": bptt_fast.lstm_sequence, "gru": bptt_fast.gru_sequence}.get(kind, bptt_fast.rnn_sequence)
    assert torch.autograd.gradcheck(lambda *a: fn(*a, *extra), args)


def test_fast_path_noncontiguous_inputs_and_expanded_grads():
    torch.manual_seed(0)
    layer = make_layer("lstm", 3, 4)
    xb = torch.randn(2, 6, 3, dtype=F64, requires_grad=True)  # batch first: (N, T, H_in)
    x = xb.transpose(0, 1)  # (T, N, H_in), not contiguous
    h0 = torch.zeros(2, 4, dtype=F64)
    out, h_T, c_T = bptt_fast.lstm_sequence(x, h0, h0, *layer_weights(layer))
    out.sum().backward()  # grad_out is an expanded tensor
    ref_out, _ = layer(x.detach().clone().requires_grad_())
    torch.testing.assert_close(out, ref_out, **TIGHT)
    xr = xb.detach().clone().requires_grad_()
    layer(xr.transpose(0, 1))[0].sum().backward()
    torch.testing.assert_close(xb.grad, xr.grad, **TIGHT)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda w, x, h: bptt_fast.lstm_sequence(x[0], h, h, *w), ValueError, ["x", "(T, N, H_in)"]),
        (lambda w, x, h: bptt_fast.lstm_sequence(x, h[:, :2], h, *w), ValueError, ["h0", "(N, H)"]),
        (lambda w, x, h: bptt_fast.lstm_sequence(x, h, h, w[0][:, :2], *w[1:]), ValueError, ["w_ih", "(G*H, H_in)"]),
        (lambda w, x, h: bptt_fast.lstm_sequence(x.float(), h, h, *w), TypeError, ["dtype"]),
        (lambda w, x, h: bptt_fast.lstm_sequence(x, h, None, *w), TypeError, ["c0"]),
        (lambda w, x, h: bptt_fast.lstm_sequence(x[:0], h, h, *w), ValueError, ["T >= 1"]),
        (lambda w, x, h: bptt_fast.rnn_sequence(x, h, *w, nonlinearity="sigmoid"), ValueError, ["nonlinearity"]),
        (lambda w, x, h: bptt_fast.gru_sequence(x, h, w[0][:12], w[1][:12, :3], None, None), ValueError, ["w_hh"]),
        (lambda w, x, h: bptt_fast.lstm_sequence(x.long(), h, h, *w), TypeError, ["x", "floating"]),
    ],
)
def test_sequence_errors_name_the_argument(call, error, words):
    layer = make_layer("lstm", 3, 4)
    w = [p.detach() for p in layer_weights(layer)]
    x, h = torch.randn(5, 2, 3, dtype=F64), torch.zeros(2, 4, dtype=F64)
    with pytest.raises(error) as info:
        call(w, x, h)
    for word in words:
        assert word in str(info.value)


# ------------------------------------------------------------------------------------------------------
# 3. buffers
# ------------------------------------------------------------------------------------------------------


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
    bptt_fast.release_buffers()
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
    bptt_fast.release_buffers()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", KINDS)
def test_fast_and_plain_on_cuda_match_the_plain_bptt_on_the_cpu(kind):
    """On a GPU the fast path takes fresh buffers (CUDA caches memory itself); the numbers stay the plain ones."""
    g = torch.Generator().manual_seed(0)
    G, T, N, I, H = GATES[kind], 8, 3, 4, 5
    x, h0, c0 = (torch.randn(*s, generator=g, dtype=F64) for s in ((T, N, I), (N, H), (N, H)))
    w = [torch.randn(*s, generator=g, dtype=F64) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
    grad_out, grad_h_T = torch.randn(T, N, H, generator=g, dtype=F64), torch.randn(N, H, generator=g, dtype=F64)
    *ref_out, ref_cache = run_forward(bptt, kind, x, h0, c0, w)
    ref = run_backward(bptt, kind, ref_cache, grad_out, grad_h_T, truncate=3)
    cuda = [t.cuda() for t in (x, h0, c0, *w, grad_out, grad_h_T)]
    for impl in (bptt, bptt_fast):
        *out, cache = run_forward(impl, kind, *cuda[:3], cuda[3:7])
        got = run_backward(impl, kind, cache, *cuda[7:], truncate=3)
        for a, b in zip(out, ref_out, strict=True):
            if b is not None:
                torch.testing.assert_close(a.cpu(), b, **TIGHT)
        for name in GRADIENTS:
            if getattr(ref, name) is not None:
                torch.testing.assert_close(getattr(got, name).cpu(), getattr(ref, name), **TIGHT)
