"""seqlib.rnn against torch.nn: RNN/LSTM/GRU cells and layers, weight for weight, value for value, gradient too.

Every test builds the torch.nn twin, copies the weights with ``load_state_dict(strict=True)`` and compares outputs,
final states and the gradients of the input, the initial state and every parameter.
"""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import seqlib
from seqlib import rnn as seqlib_rnn

F64, F32 = torch.float64, torch.float32



# kind -> (seqlib/torch class name, extra constructor kwargs, pytest marker)
KINDS = {
    "rnn_tanh": ("RNN", {}, pytest.mark.part1),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}, pytest.mark.part1),
    "lstm": ("LSTM", {}, pytest.mark.part2),
    "gru": ("GRU", {}, pytest.mark.part2),
}
CELLS = {
    "rnn_tanh": ("RNNCell", {}, pytest.mark.part1),
    "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}, pytest.mark.part1),
    "lstm": ("LSTMCell", {}, pytest.mark.part2),
    "gru": ("GRUCell", {}, pytest.mark.part2),
}


def kinds(table=KINDS):
    return [pytest.param(k, marks=m, id=k) for k, (_, _, m) in table.items()]


def make_pair(kind: str, dtype: torch.dtype, table=KINDS, **kwargs):
    """(ours, theirs) with identical weights: torch draws them, ours loads them strictly."""
    name, extra, _ = table[kind]
    ref = getattr(torch.nn, name)(**extra, **kwargs).to(dtype)
    ours = getattr(seqlib, name)(**extra, **kwargs).to(dtype)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def state_list(h) -> list[torch.Tensor]:
    return list(h) if isinstance(h, tuple) else [h]


def run_and_compare(ours, ref, x, hx, dtype, *, packed_lengths=None, enforce_sorted=True, batch_first=False):
    """Run both on the same leaves, backprop the same random projection of every output, compare everything."""
    gen = torch.Generator().manual_seed(1234)
    results = []
    for module in (ours, ref):
        x_leaf = leaf(x)
        hx_leaves = None if hx is None else (tuple(leaf(h) for h in hx) if isinstance(hx, tuple) else leaf(hx))
        inp = x_leaf
        if packed_lengths is not None:
            inp = pack_padded_sequence(x_leaf, packed_lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
        out, h = module(inp, hx_leaves)
        results.append((x_leaf, hx_leaves, out, h))
    (x1, hx1, out1, h1), (x2, hx2, out2, h2) = results
    if packed_lengths is not None:
        assert isinstance(out1, PackedSequence)
        torch.testing.assert_close(out1.batch_sizes, out2.batch_sizes)
        for a, b in ((out1.sorted_indices, out2.sorted_indices), (out1.unsorted_indices, out2.unsorted_indices)):
            assert (a is None) == (b is None)
            if a is not None:
                assert torch.equal(a, b)
        out1, out2 = out1.data, out2.data
    tol = {} if dtype == F64 else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(out1, out2, **tol)
    assert isinstance(h1, tuple) == isinstance(h2, tuple)
    for a, b in zip(state_list(h1), state_list(h2), strict=True):
        torch.testing.assert_close(a, b, **tol)
    # one scalar that depends on the output and on every final state, with random (not all-ones) weights
    tensors = [out1] + state_list(h1)
    weights = [torch.randn(t.shape, generator=gen, dtype=dtype) for t in tensors]
    sum(((t * w).sum() for t, w in zip(tensors, weights, strict=True)), torch.zeros((), dtype=dtype)).backward()
    sum(((t * w).sum() for t, w in zip([out2] + state_list(h2), weights, strict=True)),
        torch.zeros((), dtype=dtype)).backward()
    torch.testing.assert_close(x1.grad, x2.grad, **tol)
    if hx is not None:
        for a, b in zip(state_list(hx1), state_list(hx2), strict=True):
            torch.testing.assert_close(a.grad, b.grad, **tol)
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, theirs[name].grad, **tol, msg=lambda m, n=name: f"{n}: {m}")


def random_state(kind, num_layers, bidirectional, n, hidden, dtype, batched=True):
    shape = (num_layers * (2 if bidirectional else 1),) + ((n,) if batched else ()) + (hidden,)
    h = torch.randn(shape, dtype=dtype)
    return (h, torch.randn(shape, dtype=dtype)) if kind == "lstm" else h


# ---------------------------------------------------------------------------------------------------------------------
# layers on padded input: the full cross-product in float64 at tiny sizes
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", kinds())
@pytest.mark.parametrize("num_layers,bias,batch_first,bidirectional,with_hx,batched",
                         list(itertools.product([1, 2], [True, False], [False, True], [False, True], [False, True],
                                                [True, False])))
def test_layer_matches_torch_float64(kind, num_layers, bias, batch_first, bidirectional, with_hx, batched):
    torch.manual_seed(0)
    L, N, H_in, H = 4, 3, 3, 4
    ours, ref = make_pair(kind, F64, input_size=H_in, hidden_size=H, num_layers=num_layers, bias=bias,
                          batch_first=batch_first, bidirectional=bidirectional)
    if batched:
        x = torch.randn((N, L, H_in) if batch_first else (L, N, H_in), dtype=F64)
    else:
        x = torch.randn(L, H_in, dtype=F64)
    hx = random_state(kind, num_layers, bidirectional, N, H, F64, batched) if with_hx else None
    run_and_compare(ours, ref, x, hx, F64)


@pytest.mark.parametrize("kind", kinds())
@pytest.mark.parametrize("num_layers,batch_first,bidirectional,with_hx",
                         [(1, False, False, False), (2, True, True, True), (2, False, True, False)])
def test_layer_matches_torch_float32(kind, num_layers, batch_first, bidirectional, with_hx):
    torch.manual_seed(1)
    L, N, H_in, H = 6, 4, 5, 7
    ours, ref = make_pair(kind, F32, input_size=H_in, hidden_size=H, num_layers=num_layers,
                          batch_first=batch_first, bidirectional=bidirectional)
    x = torch.randn((N, L, H_in) if batch_first else (L, N, H_in))
    hx = random_state(kind, num_layers, bidirectional, N, H, F32) if with_hx else None
    run_and_compare(ours, ref, x, hx, F32)


# ---------------------------------------------------------------------------------------------------------------------
# packed sequences (variable lengths)
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", kinds())
@pytest.mark.parametrize("num_layers,bias,bidirectional,enforce_sorted,with_hx",
                         list(itertools.product([1, 2], [True, False], [False, True], [True, False], [False, True])))
def test_packed_matches_torch_float64(kind, num_layers, bias, bidirectional, enforce_sorted, with_hx):
    torch.manual_seed(2)
    H_in, H = 3, 4
    lengths = torch.tensor([5, 4, 4, 2, 1]) if enforce_sorted else torch.tensor([2, 5, 1, 4, 4])
    N, L = len(lengths), int(lengths.max())
    ours, ref = make_pair(kind, F64, input_size=H_in, hidden_size=H, num_layers=num_layers, bias=bias,
                          bidirectional=bidirectional)
    x = torch.randn(L, N, H_in, dtype=F64)
    hx = random_state(kind, num_layers, bidirectional, N, H, F64) if with_hx else None
    run_and_compare(ours, ref, x, hx, F64, packed_lengths=lengths, enforce_sorted=enforce_sorted)


@pytest.mark.parametrize("kind", kinds())
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_matches_torch_float32_batch_first(kind, bidirectional):
    torch.manual_seed(3)
    lengths = torch.tensor([3, 7, 1, 7, 5, 2])
    ours, ref = make_pair(kind, F32, input_size=5, hidden_size=6, num_layers=2, batch_first=True,
                          bidirectional=bidirectional)
    x = torch.randn(len(lengths), 7, 5)
    hx = random_state(kind, 2, bidirectional, len(lengths), 6, F32)
    run_and_compare(ours, ref, x, hx, F32, packed_lengths=lengths, enforce_sorted=False, batch_first=True)


@pytest.mark.parametrize("kind", kinds())
def test_packed_state_is_in_callers_batch_order(kind):
    """With enforce_sorted=False, h_n[:, i] belongs to sequence i, and equals running sequence i on its own."""
    torch.manual_seed(4)
    lengths = torch.tensor([2, 5, 1, 4])
    ours, _ = make_pair(kind, F64, input_size=3, hidden_size=4, bidirectional=True)
    x = torch.randn(5, 4, 3, dtype=F64)
    hx = random_state(kind, 1, True, 4, 4, F64)
    out, h_n = ours(pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
    padded, out_lengths = pad_packed_sequence(out)
    assert torch.equal(out_lengths, lengths)
    for i, n in enumerate(lengths.tolist()):
        hx_i = tuple(h[:, i] for h in hx) if kind == "lstm" else hx[:, i]
        out_i, h_i = ours(x[:n, i], hx_i)  # unbatched (L, H_in)
        torch.testing.assert_close(padded[:n, i], out_i)
        assert torch.all(padded[n:, i] == 0)
        for a, b in zip(state_list(h_n), state_list(h_i), strict=True):
            torch.testing.assert_close(a[:, i], b)


# ---------------------------------------------------------------------------------------------------------------------
# dropout between layers
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", kinds())
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("packed", [False, True])
def test_dropout_train_mode_matches_torch_with_same_seed(kind, dtype, packed):
    torch.manual_seed(5)
    ours, ref = make_pair(kind, dtype, input_size=3, hidden_size=5, num_layers=3, dropout=0.5, bidirectional=True)
    ours.train(), ref.train()
    x = torch.randn(6, 4, 3, dtype=dtype)
    lengths = torch.tensor([6, 2, 5, 3])
    # the same seed draws the same masks only if both consume random numbers identically: reseed for each
    x1, x2 = leaf(x), leaf(x)
    inp1 = pack_padded_sequence(x1, lengths, enforce_sorted=False) if packed else x1
    inp2 = pack_padded_sequence(x2, lengths, enforce_sorted=False) if packed else x2
    torch.manual_seed(99)
    out1, h1 = ours(inp1)
    torch.manual_seed(99)
    out2, h2 = ref(inp2)
    out1, out2 = (out1.data, out2.data) if packed else (out1, out2)
    tol = {} if dtype == F64 else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(out1, out2, **tol)
    for a, b in zip(state_list(h1), state_list(h2), strict=True):
        torch.testing.assert_close(a, b, **tol)
    w = torch.randn(out1.shape, dtype=dtype)
    (out1 * w).sum().backward()
    (out2 * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, **tol)
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, theirs[name].grad, **tol)
    # and dropout really did something: eval mode differs
    ours.eval()
    with torch.no_grad():
        out_eval = ours(inp1)[0]
    assert not torch.allclose(out_eval.data if packed else out_eval, out1)


@pytest.mark.parametrize("kind", kinds())
def test_dropout_eval_mode_matches_torch_and_is_deterministic(kind):
    torch.manual_seed(6)
    ours, ref = make_pair(kind, F64, input_size=3, hidden_size=4, num_layers=2, dropout=0.7)
    ours.eval(), ref.eval()
    x = torch.randn(5, 2, 3, dtype=F64)
    run_and_compare(ours, ref, x, None, F64)
    torch.testing.assert_close(ours(x)[0], ours(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("kind", kinds())
def test_dropout_is_between_layers_only(kind):
    """Structure: no dropout after the last layer (1 layer: train == eval); p=1 zeroes the input of layer 2."""
    torch.manual_seed(7)
    x = torch.randn(5, 2, 3, dtype=F64)
    with pytest.warns(UserWarning, match="num_layers"):
        one, _ = make_pair(kind, F64, input_size=3, hidden_size=4, num_layers=1, dropout=0.9)
    one.train()
    train_out = one(x)[0]
    one.eval()
    torch.testing.assert_close(train_out, one(x)[0], rtol=0, atol=0)
    # p = 1: layer 2 sees zeros, so its output does not depend on x at all
    two, _ = make_pair(kind, F64, input_size=3, hidden_size=4, num_layers=2, dropout=1.0)
    two.train()
    torch.testing.assert_close(two(x)[0], two(torch.randn(5, 2, 3, dtype=F64))[0], rtol=0, atol=0)


@pytest.mark.part1
def test_dropout_statistics():
    """About a fraction p of the first layer's outputs are zeroed, the rest scaled by 1/(1-p)."""
    torch.manual_seed(8)
    p = 0.3
    model = seqlib.RNN(2, 64, num_layers=2, dropout=p)
    seen = {}
    real_dropout = seqlib_rnn.F.dropout

    def spy(x, prob, training):
        out = real_dropout(x, prob, training=training)
        seen["in"], seen["out"] = x.detach(), out.detach()
        return out

    seqlib_rnn.F.dropout = spy
    try:
        model(torch.randn(50, 8, 2))
    finally:
        seqlib_rnn.F.dropout = real_dropout
    zeroed = (seen["out"] == 0).float().mean().item()
    assert abs(zeroed - p) < 0.03, zeroed  # 25,600 draws: std of the fraction is about 0.003
    kept = seen["out"] != 0
    torch.testing.assert_close(seen["out"][kept], seen["in"][kept] / (1 - p))


# ---------------------------------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", kinds(CELLS))
@pytest.mark.parametrize("dtype,bias,batched,with_hx",
                         [(F64, *c) for c in itertools.product([True, False], [True, False], [True, False])]
                         + [(F32, True, True, True), (F32, False, False, False)])
def test_cell_matches_torch(kind, dtype, bias, batched, with_hx):
    torch.manual_seed(9)
    N, H_in, H = 3, 4, 5
    ours, ref = make_pair(kind, dtype, table=CELLS, input_size=H_in, hidden_size=H, bias=bias)
    x = torch.randn((N, H_in) if batched else (H_in,), dtype=dtype)
    hx = None
    if with_hx:
        shape = (N, H) if batched else (H,)
        hx = (torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)) if kind == "lstm" else \
            torch.randn(shape, dtype=dtype)
    tol = {} if dtype == F64 else {"rtol": 1e-5, "atol": 1e-5}
    outs, leaves = [], []
    for module in (ours, ref):
        x_leaf = leaf(x)
        hx_leaf = None if hx is None else (tuple(map(leaf, hx)) if kind == "lstm" else leaf(hx))
        outs.append(module(x_leaf, hx_leaf))
        leaves.append((x_leaf, hx_leaf))
    for a, b in zip(state_list(outs[0]), state_list(outs[1]), strict=True):
        torch.testing.assert_close(a, b, **tol)
    ws = [torch.randn(t.shape, dtype=dtype) for t in state_list(outs[0])]
    for out in outs:
        sum((t * w).sum() for t, w in zip(state_list(out), ws, strict=True)).backward()
    torch.testing.assert_close(leaves[0][0].grad, leaves[1][0].grad, **tol)
    if hx is not None:
        for a, b in zip(state_list(leaves[0][1]), state_list(leaves[1][1]), strict=True):
            torch.testing.assert_close(a.grad, b.grad, **tol)
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, theirs[name].grad, **tol)


@pytest.mark.parametrize("kind", kinds(CELLS))
def test_cell_unrolled_equals_one_layer(kind):
    """A cell applied step by step is the one-layer network with the same weights (the same gate maths)."""
    torch.manual_seed(10)
    layer_name = KINDS[kind][0]
    cell = getattr(seqlib, CELLS[kind][0])(3, 4, **CELLS[kind][1]).double()
    layer = getattr(seqlib, layer_name)(3, 4, **KINDS[kind][1]).double()
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()}, strict=True)
    x = torch.randn(5, 2, 3, dtype=F64)
    state = None
    outs = []
    for t in range(5):
        state = cell(x[t], state)
        outs.append(state[0] if kind == "lstm" else state)
    torch.testing.assert_close(torch.stack(outs), layer(x)[0])


# ---------------------------------------------------------------------------------------------------------------------
# parameters: names, shapes, state_dict both ways, initialisation
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", kinds())
@pytest.mark.parametrize("num_layers,bias,bidirectional", [(1, True, False), (2, False, True), (3, True, True)])
def test_parameter_names_shapes_and_state_dict_both_ways(kind, num_layers, bias, bidirectional):
    name, extra, _ = KINDS[kind]
    kwargs = {"input_size": 3, "hidden_size": 5, "num_layers": num_layers, "bias": bias,
              "bidirectional": bidirectional, **extra}
    ours, theirs = getattr(seqlib, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    theirs.load_state_dict(ours.state_dict(), strict=True)
    for (n, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), n
    ours2 = getattr(seqlib, name)(**kwargs)
    ours2.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(ours2(x)[0], theirs(x)[0], rtol=1e-5, atol=1e-5)
    assert "_reverse" in " ".join(ours.state_dict()) if bidirectional else True
    # torch.nn.RNN's repr leaves out a ReLU nonlinearity; ours shows it
    assert repr(ours).split("(", 1)[1].replace(", nonlinearity=relu", "") == repr(theirs).split("(", 1)[1]


@pytest.mark.parametrize("kind", kinds(CELLS))
@pytest.mark.parametrize("bias", [True, False])
def test_cell_parameter_names_and_state_dict_both_ways(kind, bias):
    name, extra, _ = CELLS[kind]
    ours, theirs = getattr(seqlib, name)(3, 5, bias=bias, **extra), getattr(torch.nn, name)(3, 5, bias=bias, **extra)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert ours.bias_ih is None if not bias else ours.bias_ih.shape == theirs.bias_ih.shape


@pytest.mark.part2
def test_lstm_gate_order_is_i_f_g_o_and_gru_is_r_z_n():
    """Hand-set gates: a huge forget bias keeps c; a huge input-gate bias with g = tanh(big) writes ~1."""
    lstm = seqlib.LSTMCell(1, 1)
    with torch.no_grad():
        for p in lstm.parameters():
            p.zero_()
        lstm.bias_ih.copy_(torch.tensor([-50.0, 50.0, 0.0, 50.0]))  # i closed, f open, g = 0, o open
    h, c = lstm(torch.zeros(1, 1), (torch.zeros(1, 1), torch.full((1, 1), 0.5)))
    torch.testing.assert_close(c, torch.full((1, 1), 0.5))
    torch.testing.assert_close(h, torch.tanh(torch.full((1, 1), 0.5)))
    gru = seqlib.GRUCell(1, 1)
    with torch.no_grad():
        for p in gru.parameters():
            p.zero_()
        gru.bias_ih.copy_(torch.tensor([0.0, -50.0, 2.0]))  # z closed: h' = n = tanh(b_in)
    torch.testing.assert_close(gru(torch.zeros(1, 1), torch.ones(1, 1)), torch.tanh(torch.full((1, 1), 2.0)))


@pytest.mark.parametrize("kind", kinds())
def test_default_init_is_uniform_within_one_over_sqrt_hidden(kind):
    torch.manual_seed(11)
    name, extra, _ = KINDS[kind]
    H = 64
    model = getattr(seqlib, name)(32, H, num_layers=2, bidirectional=True, **extra)
    cell = getattr(seqlib, CELLS[kind][0])(32, H, **CELLS[kind][1])
    bound = 1 / math.sqrt(H)
    for module in (model, cell):
        values = torch.cat([p.detach().reshape(-1) for p in module.parameters()])  # (P,)
        assert values.abs().max() <= bound
        # U(-k, k): mean 0, variance k^2/3, each quarter of the range about a quarter of the draws
        assert abs(values.mean().item()) < 0.02 * bound
        assert abs(values.var().item() / (bound ** 2 / 3) - 1) < 0.05
        quarters = torch.histc(values, bins=4, min=-bound, max=bound) / values.numel()
        assert torch.all((quarters - 0.25).abs() < 0.02), quarters
        for p in module.parameters():  # every tensor, biases included, is drawn
            assert p.abs().max() > 0.5 * bound


@pytest.mark.part1
@pytest.mark.part2
def test_default_init_follows_torch_rng_stream():
    """The same seed gives the same weights as torch.nn (parameters drawn in the same order)."""
    for name in ("RNN", "LSTM", "GRU"):
        torch.manual_seed(12)
        ours = getattr(seqlib, name)(3, 4, num_layers=2, bidirectional=True)
        torch.manual_seed(12)
        theirs = getattr(torch.nn, name)(3, 4, num_layers=2, bidirectional=True)
        for (n, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
            assert torch.equal(a, b), n


# ---------------------------------------------------------------------------------------------------------------------
# property tests over shapes and lengths
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.part1
@pytest.mark.part2
@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(list(KINDS)), L=st.integers(1, 5), N=st.integers(1, 4), H_in=st.integers(1, 4),
       H=st.integers(1, 4), num_layers=st.integers(1, 2), bidirectional=st.booleans(), batch_first=st.booleans(),
       seed=st.integers(0, 2**16))
def test_property_layers_match_torch(kind, L, N, H_in, H, num_layers, bidirectional, batch_first, seed):
    torch.manual_seed(seed)
    ours, ref = make_pair(kind, F64, input_size=H_in, hidden_size=H, num_layers=num_layers,
                          bidirectional=bidirectional, batch_first=batch_first)
    x = torch.randn((N, L, H_in) if batch_first else (L, N, H_in), dtype=F64)
    run_and_compare(ours, ref, x, random_state(kind, num_layers, bidirectional, N, H, F64), F64)


@pytest.mark.part1
@pytest.mark.part2
@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(list(KINDS)), lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5),
       bidirectional=st.booleans(), num_layers=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_property_packed_match_torch(kind, lengths, bidirectional, num_layers, seed):
    torch.manual_seed(seed)
    ours, ref = make_pair(kind, F64, input_size=2, hidden_size=3, num_layers=num_layers, bidirectional=bidirectional)
    x = torch.randn(max(lengths), len(lengths), 2, dtype=F64)
    hx = random_state(kind, num_layers, bidirectional, len(lengths), 3, F64)
    run_and_compare(ours, ref, x, hx, F64, packed_lengths=torch.tensor(lengths), enforce_sorted=False)


# ---------------------------------------------------------------------------------------------------------------------
# the dispatch point
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", kinds())
def test_every_layer_and_direction_goes_through_the_dispatch_point(kind, monkeypatch):
    mode = {"rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU", "lstm": "LSTM", "gru": "GRU"}[kind]
    calls = []
    real = seqlib_rnn._SEQUENCE_FNS[mode]

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setitem(seqlib_rnn._SEQUENCE_FNS, mode, spy)
    ours, ref = make_pair(kind, F64, input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3, dtype=F64)
    run_and_compare(ours, ref, x, None, F64)
    assert calls == [(5, 2, 3), (5, 2, 3), (5, 2, 8), (5, 2, 8)]


@pytest.mark.parametrize("fn,n_states", [pytest.param(seqlib_rnn.rnn_sequence, 1, marks=pytest.mark.part1),
                                         pytest.param(seqlib_rnn.lstm_sequence, 2, marks=pytest.mark.part2),
                                         pytest.param(seqlib_rnn.gru_sequence, 1, marks=pytest.mark.part2)])
@pytest.mark.parametrize("bias", [True, False])
def test_sequence_functions_signature(fn, n_states, bias):
    """(x (T, N, H_in), h0 [, c0] (N, H), w_ih, w_hh, b_ih, b_hh) -> (out (T, N, H), h_T [, c_T])."""
    T, N, H_in, H = 4, 2, 3, 5
    G = {seqlib_rnn.lstm_sequence: 4, seqlib_rnn.gru_sequence: 3}.get(fn, 1) * H
    x = torch.randn(T, N, H_in, dtype=F64)
    states = [torch.randn(N, H, dtype=F64) for _ in range(n_states)]
    w = [torch.randn(G, H_in, dtype=F64), torch.randn(G, H, dtype=F64)]
    b = [torch.randn(G, dtype=F64), torch.randn(G, dtype=F64)] if bias else [None, None]
    result = fn(x, *states, *w, *b)
    assert len(result) == 1 + n_states
    assert result[0].shape == (T, N, H)
    torch.testing.assert_close(result[1], result[0][-1])
    for s in result[1:]:
        assert s.shape == (N, H)


# ---------------------------------------------------------------------------------------------------------------------
# bad input: the type, and a message naming the argument, the expected shape and what was received
# ---------------------------------------------------------------------------------------------------------------------
def _lstm(**kw):
    return seqlib.LSTM(3, 4, **kw)


def _rnn(**kw):
    return seqlib.RNN(3, 4, **kw)


def _gru(**kw):
    return seqlib.GRU(3, 4, **kw)


BAD_LAYER_INPUTS = [
    # (id, module factory, input, hx, exception, substrings the message must contain)
    ("rank-4", _rnn, torch.randn(2, 3, 4, 3), None, ValueError, ["input", "(L, N, H_in)", "(L, H_in)", "4-D"]),
    ("rank-1", _gru, torch.randn(3), None, ValueError, ["input", "(L, N, H_in)", "1-D", "(3,)"]),
    ("feature-size", _lstm, torch.randn(5, 2, 7), None, ValueError, ["input", "(L, N, H_in)", "H_in = 3", "(5, 2, 7)"]),
    ("feature-size-batch-first", lambda: _rnn(batch_first=True), torch.randn(2, 5, 6), None, ValueError,
     ["input", "(N, L, H_in)", "H_in = 3", "(2, 5, 6)"]),
    ("feature-size-unbatched", _gru, torch.randn(5, 2), None, ValueError, ["input", "(L, H_in)", "H_in = 3", "(5, 2)"]),
    ("list-input", _rnn, [[0.0, 1.0, 2.0]], None, TypeError, ["input", "(L, N, H_in)", "list"]),
    ("int-input", _lstm, torch.zeros(5, 2, 3, dtype=torch.long), None, TypeError,
     ["input", "(L, N, H_in)", "torch.int64", "Embedding"]),
    ("empty-sequence", _gru, torch.randn(0, 2, 3), None, ValueError, ["input", "(L, N, H_in)", "L >= 1", "(0, 2, 3)"]),
    ("dtype-vs-weights", _rnn, torch.randn(5, 2, 3, dtype=F64), None, TypeError,
     ["input", "(L, N, H_in)", "torch.float64", "torch.float32", "weight_ih_l0"]),
    ("hx-shape", _rnn, torch.randn(5, 2, 3), torch.randn(1, 3, 4), ValueError,
     ["hx", "(D*num_layers, N, H_out)", "(1, 2, 4)", "(1, 3, 4)"]),
    ("hx-shape-bidirectional", lambda: _gru(num_layers=2, bidirectional=True), torch.randn(5, 2, 3),
     torch.randn(2, 2, 4), ValueError, ["hx", "(D*num_layers, N, H_out)", "(4, 2, 4)", "(2, 2, 4)"]),
    ("hx-rank-unbatched", _gru, torch.randn(5, 3), torch.randn(1, 1, 4), ValueError,
     ["hx", "(D*num_layers, H_out)", "(1, 4)", "(1, 1, 4)"]),
    ("hx-dtype", _rnn, torch.randn(5, 2, 3), torch.randn(1, 2, 4, dtype=F64), TypeError,
     ["hx", "(D*num_layers, N, H_out)", "torch.float64", "torch.float32"]),
    ("hx-list", _rnn, torch.randn(5, 2, 3), [[0.0]], TypeError, ["hx", "(D*num_layers, N, H_out)", "list"]),
    ("hx-tuple-for-rnn", _rnn, torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(1, 2, 4)), TypeError,
     ["hx", "(D*num_layers, N, H_out)", "tuple", "only LSTM"]),
    ("hx-tuple-for-gru", _gru, torch.randn(5, 2, 3), (torch.randn(1, 2, 4),), TypeError,
     ["hx", "(D*num_layers, N, H_out)", "tuple"]),
    ("hx-tensor-for-lstm", _lstm, torch.randn(5, 2, 3), torch.randn(1, 2, 4), TypeError,
     ["hx", "(h_0, c_0)", "(D*num_layers, N, H_out)", "Tensor", "(1, 2, 4)"]),
    ("hx-triple-for-lstm", _lstm, torch.randn(5, 2, 3), (torch.randn(1, 2, 4),) * 3, TypeError,
     ["hx", "(h_0, c_0)", "(D*num_layers, N, H_out)", "length 3"]),
    ("lstm-c0-shape", _lstm, torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(1, 2, 5)), ValueError,
     ["c_0", "(D*num_layers, N, H_out)", "(1, 2, 4)", "(1, 2, 5)"]),
    ("lstm-h0-dtype", _lstm, torch.randn(5, 2, 3), (torch.randn(1, 2, 4, dtype=F64), torch.randn(1, 2, 4)),
     TypeError, ["h_0", "(D*num_layers, N, H_out)", "torch.float64"]),
]


@pytest.mark.part1
@pytest.mark.parametrize("case", BAD_LAYER_INPUTS, ids=[c[0] for c in BAD_LAYER_INPUTS])
def test_bad_layer_input_raises_clear_error(case):
    _, factory, x, hx, exc, parts = case
    with pytest.raises(exc) as info:
        factory()(x, hx)
    for part in parts:
        assert part in str(info.value), f"{part!r} not in: {info.value}"


@pytest.mark.part1
def test_bad_packed_input_raises_clear_error():
    model = seqlib.GRU(3, 4)
    packed = pack_padded_sequence(torch.randn(5, 2, 6), torch.tensor([5, 3]))
    with pytest.raises(ValueError) as info:
        model(packed)
    for part in ["input.data", "(sum(batch_sizes), H_in)", "H_in = 3", "(8, 6)"]:
        assert part in str(info.value)
    packed = pack_padded_sequence(torch.randn(5, 2, 3), torch.tensor([5, 3]))
    with pytest.raises(ValueError) as info:
        model(packed, torch.randn(1, 3, 4))
    for part in ["hx", "(D*num_layers, N, H_out)", "(1, 2, 4)", "(1, 3, 4)"]:
        assert part in str(info.value)


BAD_CELL_INPUTS = [
    ("rank-3", lambda: seqlib.RNNCell(3, 4), torch.randn(2, 2, 3), None, ValueError,
     ["input", "(N, H_in)", "(H_in,)", "3-D"]),
    ("feature-size", lambda: seqlib.GRUCell(3, 4), torch.randn(2, 5), None, ValueError,
     ["input", "(N, H_in)", "H_in = 3", "(2, 5)"]),
    ("list", lambda: seqlib.LSTMCell(3, 4), [1.0, 2.0, 3.0], None, TypeError, ["input", "(N, H_in)", "list"]),
    ("dtype", lambda: seqlib.RNNCell(3, 4), torch.randn(2, 3, dtype=F64), None, TypeError,
     ["input", "(N, H_in)", "torch.float64", "weight_ih"]),
    ("hx-batch", lambda: seqlib.RNNCell(3, 4), torch.randn(2, 3), torch.randn(3, 4), ValueError,
     ["hx", "(N, H_out)", "(2, 4)", "(3, 4)"]),
    ("hx-unbatched", lambda: seqlib.GRUCell(3, 4), torch.randn(3), torch.randn(1, 4), ValueError,
     ["hx", "(H_out,)", "(4,)", "(1, 4)"]),
    ("hx-tuple-for-gru", lambda: seqlib.GRUCell(3, 4), torch.randn(2, 3), (torch.randn(2, 4),), TypeError,
     ["hx", "(N, H_out)", "tuple"]),
    ("hx-tensor-for-lstm", lambda: seqlib.LSTMCell(3, 4), torch.randn(2, 3), torch.randn(2, 4), TypeError,
     ["hx", "(h_0, c_0)", "(N, H_out)", "Tensor"]),
    ("c0-shape", lambda: seqlib.LSTMCell(3, 4), torch.randn(2, 3), (torch.randn(2, 4), torch.randn(2, 5)),
     ValueError, ["c_0", "(N, H_out)", "(2, 4)", "(2, 5)"]),
]


@pytest.mark.part1
@pytest.mark.parametrize("case", BAD_CELL_INPUTS, ids=[c[0] for c in BAD_CELL_INPUTS])
def test_bad_cell_input_raises_clear_error(case):
    _, factory, x, hx, exc, parts = case
    with pytest.raises(exc) as info:
        factory()(x, hx)
    for part in parts:
        assert part in str(info.value), f"{part!r} not in: {info.value}"


BAD_CONSTRUCTORS = [
    ("hidden-zero", lambda: seqlib.RNN(3, 0), ValueError, ["hidden_size", "positive", "0"]),
    ("input-negative", lambda: seqlib.LSTM(-1, 4), ValueError, ["input_size", "positive", "-1"]),
    ("layers-zero", lambda: seqlib.GRU(3, 4, num_layers=0), ValueError, ["num_layers", "positive", "0"]),
    ("hidden-float", lambda: seqlib.GRU(3, 4.0), TypeError, ["hidden_size", "int", "float"]),
    ("nonlinearity", lambda: seqlib.RNN(3, 4, nonlinearity="sigmoid"), ValueError,
     ["nonlinearity", "'tanh'", "'relu'", "'sigmoid'"]),
    ("cell-nonlinearity", lambda: seqlib.RNNCell(3, 4, nonlinearity="gelu"), ValueError,
     ["nonlinearity", "'tanh'", "'gelu'"]),
    ("dropout-high", lambda: seqlib.LSTM(3, 4, num_layers=2, dropout=1.5), ValueError, ["dropout", "[0, 1]", "1.5"]),
    ("dropout-negative", lambda: seqlib.GRU(3, 4, num_layers=2, dropout=-0.1), ValueError,
     ["dropout", "[0, 1]", "-0.1"]),
    ("dropout-str", lambda: seqlib.GRU(3, 4, num_layers=2, dropout="0.1"), TypeError, ["dropout", "str"]),
    ("bias-not-bool", lambda: seqlib.RNN(3, 4, bias=1), TypeError, ["bias", "True or False", "int"]),
    ("batch-first-not-bool", lambda: seqlib.RNN(3, 4, batch_first="yes"), TypeError, ["batch_first", "str"]),
    ("cell-hidden-zero", lambda: seqlib.LSTMCell(3, 0), ValueError, ["hidden_size", "0"]),
    ("proj-size", lambda: seqlib.LSTM(3, 4, proj_size=2), ValueError, ["proj_size", "2"]),
]


@pytest.mark.part1
@pytest.mark.parametrize("case", BAD_CONSTRUCTORS, ids=[c[0] for c in BAD_CONSTRUCTORS])
def test_bad_constructor_args_raise_clear_error(case):
    _, factory, exc, parts = case
    with pytest.raises(exc) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        factory()
    for part in parts:
        assert part in str(info.value), f"{part!r} not in: {info.value}"


# ---------------------------------------------------------------------------------------------------------------------
# exports and devices
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.part1
def test_exported_from_top_level():
    for name in ("Embedding", "Vocab", "CharTokenizer", "WordTokenizer", "pad_sequences", "RNNCell", "LSTMCell",
                 "GRUCell", "RNN", "LSTM", "GRU"):
        assert getattr(seqlib, name) is not None
    assert seqlib.LSTM is seqlib_rnn.LSTM


@pytest.mark.part2
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    torch.manual_seed(13)
    for kind in KINDS:
        cpu, _ = make_pair(kind, F32, input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
        gpu, _ = make_pair(kind, F32, input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
        gpu.load_state_dict(cpu.state_dict())
        gpu.cuda()
        x = torch.randn(5, 3, 3)
        lengths = torch.tensor([5, 2, 4])
        for inp_cpu, inp_gpu in ((x, x.cuda()), (pack_padded_sequence(x, lengths, enforce_sorted=False),
                                                  pack_padded_sequence(x.cuda(), lengths, enforce_sorted=False))):
            out_c, h_c = cpu(inp_cpu)
            out_g, h_g = gpu(inp_gpu)
            out_c, out_g = (out_c.data, out_g.data) if isinstance(out_c, PackedSequence) else (out_c, out_g)
            assert out_g.device.type == "cuda"
            torch.testing.assert_close(out_g.cpu(), out_c, rtol=1e-4, atol=1e-5)
            for a, b in zip(state_list(h_g), state_list(h_c), strict=True):
                torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5)
    emb = seqlib.Embedding(10, 3, padding_idx=0).cuda()
    idx = torch.tensor([[0, 3], [9, 0]], device="cuda")
    emb(idx).sum().backward()
    assert torch.all(emb.weight.grad[0] == 0)
