"""seqlib.Embedding against torch.nn.Embedding: same weights, same lookups, same gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import seqlib

pytestmark = pytest.mark.part1




def make_pair(dtype=torch.float64, **kwargs):
    ref = torch.nn.Embedding(**kwargs).to(dtype)
    ours = seqlib.Embedding(**kwargs).to(dtype)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


def compare(ours, ref, idx, dtype, exact=True):
    out1, out2 = ours(idx), ref(idx)
    tol = {"rtol": 0, "atol": 0} if exact else {}  # a plain lookup is exact
    torch.testing.assert_close(out1, out2, **tol)
    w = torch.randn(out1.shape, dtype=dtype)
    (out1 * w).sum().backward()
    (out2 * w).sum().backward()
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1, -7])
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4)])
def test_matches_torch(dtype, padding_idx, shape):
    torch.manual_seed(0)
    ours, ref = make_pair(dtype, num_embeddings=7, embedding_dim=5, padding_idx=padding_idx)
    assert ours.padding_idx == ref.padding_idx
    idx = torch.randint(0, 7, shape)
    idx.view(-1)[:3] = torch.tensor([0, 3, 6])  # repeats and the padding rows appear
    compare(ours, ref, idx, dtype)
    assert ours(idx).shape == (*shape, 5)


@pytest.mark.parametrize("padding_idx", [0, 2, -1])
def test_padding_row_is_zero_and_gets_no_gradient(padding_idx):
    torch.manual_seed(1)
    emb = seqlib.Embedding(6, 4, padding_idx=padding_idx)
    row = padding_idx % 6
    assert torch.all(emb.weight[row] == 0)
    idx = torch.tensor([[row, 1, row], [5, row, 3]])
    out = emb(idx)
    assert torch.all(out[idx == row] == 0)
    (out * torch.randn(out.shape)).sum().backward()
    assert torch.all(emb.weight.grad[row] == 0)
    assert emb.weight.grad[1].abs().sum() > 0
    # a weight shared with another use (e.g. tied output layer) still gets that use's gradient in the padding row
    emb.weight.grad = None
    (emb(idx).sum() + emb.weight.sum()).backward()
    torch.testing.assert_close(emb.weight.grad[row], torch.ones(4))


def test_default_init_standard_normal_with_zero_padding_row():
    torch.manual_seed(2)
    emb = seqlib.Embedding(2000, 32, padding_idx=5)
    w = emb.weight.detach().clone()
    assert torch.all(w[5] == 0)
    others = torch.cat([w[:5], w[6:]]).reshape(-1)  # (63968,)
    assert abs(others.mean().item()) < 0.02  # std of the mean: 1/sqrt(64000) = 0.004
    assert abs(others.std().item() - 1) < 0.02
    assert abs((others.abs() < 1).float().mean().item() - 0.6827) < 0.01  # the normal's one-sigma mass
    emb.reset_parameters()
    assert torch.all(emb.weight[5] == 0) and not torch.equal(emb.weight.detach(), w)


def test_state_dict_both_ways():
    ours, theirs = seqlib.Embedding(9, 4, padding_idx=1), torch.nn.Embedding(9, 4, padding_idx=1)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    theirs.load_state_dict(ours.state_dict(), strict=True)
    assert torch.equal(theirs.weight, ours.weight)
    ours2 = seqlib.Embedding(9, 4, padding_idx=1)
    ours2.load_state_dict(theirs.state_dict(), strict=True)
    assert torch.equal(ours2.weight, theirs.weight)
    assert repr(ours) == "Embedding(9, 4, padding_idx=1)" == repr(theirs)


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_max_norm_matches_torch(norm_type):
    torch.manual_seed(3)
    ours, ref = make_pair(torch.float64, num_embeddings=8, embedding_dim=4, max_norm=1.5, norm_type=norm_type)
    idx = torch.tensor([[1, 2, 2], [7, 0, 1]])
    compare(ours, ref, idx, torch.float64, exact=False)  # renormalised rows: the norm's rounding may differ
    torch.testing.assert_close(ours.weight, ref.weight)  # rows renormalised in place, the same way
    assert ours.weight[[0, 1, 2, 7]].norm(p=norm_type, dim=1).max() <= 1.5 + 1e-6


def test_scale_grad_by_freq_matches_torch():
    torch.manual_seed(4)
    ours, ref = make_pair(torch.float64, num_embeddings=6, embedding_dim=3, scale_grad_by_freq=True, padding_idx=0)
    compare(ours, ref, torch.tensor([[1, 1, 1, 2], [0, 3, 3, 1]]), torch.float64)


def test_from_pretrained_matches_torch():
    weights = torch.randn(5, 3, dtype=torch.float64)
    for freeze in (True, False):
        ours = seqlib.Embedding.from_pretrained(weights, freeze=freeze, padding_idx=2)
        theirs = torch.nn.Embedding.from_pretrained(weights, freeze=freeze, padding_idx=2)
        assert ours.weight.requires_grad == theirs.weight.requires_grad == (not freeze)
        idx = torch.tensor([2, 4, 0])
        torch.testing.assert_close(ours(idx), theirs(idx))


@settings(max_examples=15, deadline=None)
@given(V=st.integers(1, 12), E=st.integers(1, 6), shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       pad=st.one_of(st.none(), st.integers(-12, 11)), seed=st.integers(0, 2**16))
def test_property_matches_torch(V, E, shape, pad, seed):
    if pad is not None and not -V <= pad < V:
        pad = None
    torch.manual_seed(seed)
    ours, ref = make_pair(torch.float64, num_embeddings=V, embedding_dim=E, padding_idx=pad)
    compare(ours, ref, torch.randint(0, V, shape), torch.float64)


BAD = [
    ("float-input", lambda e: e(torch.tensor([0.0, 1.0])), TypeError, ["input", "(*)", "integer", "torch.float32"]),
    ("list-input", lambda e: e([1, 2]), TypeError, ["input", "(*)", "list"]),
    ("index-too-big", lambda e: e(torch.tensor([[1, 10]])), ValueError,
     ["input", "(*)", "index 10", "num_embeddings", "[0, 10)", "(1, 2)"]),
    ("index-negative", lambda e: e(torch.tensor([-1])), ValueError, ["input", "index -1", "[0, 10)"]),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_raises_clear_error(case):
    _, call, exc, parts = case
    with pytest.raises(exc) as info:
        call(seqlib.Embedding(10, 3))
    for part in parts:
        assert part in str(info.value), f"{part!r} not in: {info.value}"


@pytest.mark.parametrize("kwargs,exc,parts", [
    ({"num_embeddings": 0, "embedding_dim": 3}, ValueError, ["num_embeddings", "0"]),
    ({"num_embeddings": 4, "embedding_dim": -2}, ValueError, ["embedding_dim", "-2"]),
    ({"num_embeddings": 4.0, "embedding_dim": 2}, TypeError, ["num_embeddings", "float"]),
    ({"num_embeddings": 4, "embedding_dim": 2, "padding_idx": 4}, ValueError, ["padding_idx", "[-4, 4)", "4"]),
    ({"num_embeddings": 4, "embedding_dim": 2, "padding_idx": -5}, ValueError, ["padding_idx", "-5"]),
    ({"num_embeddings": 4, "embedding_dim": 2, "_weight": torch.zeros(3, 2)}, ValueError,
     ["_weight", "(num_embeddings, embedding_dim)", "(4, 2)", "(3, 2)"]),
])
def test_bad_constructor_args(kwargs, exc, parts):
    with pytest.raises(exc) as info:
        seqlib.Embedding(**kwargs)
    for part in parts:
        assert part in str(info.value), f"{part!r} not in: {info.value}"
