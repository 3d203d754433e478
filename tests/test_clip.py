"""clip_grad_norm_ / clip_grad_value_ against torch.nn.utils on identical copies of the same gradients."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import seqlib
from seqlib.clip import clip_grad_norm_, clip_grad_value_

pytestmark = pytest.mark.part1

NORM_TYPES = [1.0, 2.0, 3.5, math.inf]


def twin_params(shapes, dtype=torch.float32, scale=1.0, seed=0, none_at=()):
    """Two lists of leaf tensors with identical .grad (None at the positions in ``none_at``)."""
    g = torch.Generator().manual_seed(seed)
    ours, theirs = [], []
    for k, shape in enumerate(shapes):
        value = torch.randn(shape, generator=g, dtype=dtype)
        grad = None if k in none_at else scale * torch.randn(shape, generator=g, dtype=dtype)
        for group in (ours, theirs):
            p = value.clone().requires_grad_()
            p.grad = None if grad is None else grad.clone()
            group.append(p)
    return ours, theirs


def assert_same_grads(ours, theirs):
    for a, b in zip(ours, theirs, strict=True):
        if b.grad is None:
            assert a.grad is None
        else:
            torch.testing.assert_close(a.grad, b.grad, equal_nan=True)


SHAPES = [(3, 4), (5,), (2, 2, 2), ()]


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    ours, theirs = twin_params(SHAPES, dtype=dtype, none_at=(1,))
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ref = nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert total.dtype == ref.dtype and total.shape == ref.shape == ()
    torch.testing.assert_close(total, ref)
    assert_same_grads(ours, theirs)


def test_clipping_happens_only_above_max_norm():
    ours, _ = twin_params([(10,)], dtype=torch.float64)
    before = ours[0].grad.clone()
    total = clip_grad_norm_(ours, 1e9)
    torch.testing.assert_close(ours[0].grad, before)  # coefficient clamped to 1
    total = clip_grad_norm_(ours, 0.5)
    assert float(total) > 0.5
    assert float(ours[0].grad.norm()) == pytest.approx(0.5, rel=1e-5)
    torch.testing.assert_close(ours[0].grad / ours[0].grad.norm(), before / before.norm())  # same direction


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_single_tensor_generator_and_module(norm_type):
    ours, theirs = twin_params([(4, 3)], scale=10.0)
    torch.testing.assert_close(clip_grad_norm_(ours[0], 1.0, norm_type),
                               nn.utils.clip_grad_norm_(theirs[0], 1.0, norm_type))
    assert_same_grads(ours, theirs)
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 3)
    (a(x) ** 2).sum().backward()
    (b(x) ** 2).sum().backward()
    torch.testing.assert_close(seqlib.clip_grad_norm_((p for p in a.parameters()), 0.01, norm_type),
                               nn.utils.clip_grad_norm_(b.parameters(), 0.01, norm_type))
    assert_same_grads(list(a.parameters()), list(b.parameters()))


def test_no_gradients():
    ours, theirs = twin_params([(2,), (3,)], none_at=(0, 1))
    assert torch.equal(clip_grad_norm_(ours, 1.0), nn.utils.clip_grad_norm_(theirs, 1.0))
    assert torch.equal(clip_grad_norm_([], 1.0), torch.tensor(0.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clip_grad_norm_((p for p in []), 1.0)
    assert any("empty generator" in str(w.message) for w in caught)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_nonfinite(bad, norm_type):
    ours, theirs = twin_params(SHAPES[:2], dtype=torch.float64)
    for group in (ours, theirs):
        group[0].grad[0, 0] = bad
    with pytest.raises(RuntimeError, match="non-finite") as ours_err:
        clip_grad_norm_(ours, 1.0, norm_type, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as ref_err:
        nn.utils.clip_grad_norm_(theirs, 1.0, norm_type, error_if_nonfinite=True)
    assert str(ours_err.value) == str(ref_err.value)
    assert_same_grads(ours, theirs)  # nothing was touched
    # without the error, torch scales by the non-finite norm anyway: so do we
    total = clip_grad_norm_(ours, 1.0, norm_type)
    ref = nn.utils.clip_grad_norm_(theirs, 1.0, norm_type)
    torch.testing.assert_close(total, ref, equal_nan=True)
    assert_same_grads(ours, theirs)


def test_mixed_dtypes():
    a32, t32 = twin_params([(3,)], dtype=torch.float32, scale=5.0)
    a64, t64 = twin_params([(4,)], dtype=torch.float64, scale=5.0, seed=1)
    total = clip_grad_norm_(a32 + a64, 1.0)
    ref = nn.utils.clip_grad_norm_(t32 + t64, 1.0)
    assert total.dtype == ref.dtype
    torch.testing.assert_close(total, ref)
    assert_same_grads(a32 + a64, t32 + t64)


@settings(max_examples=25, deadline=None)
@given(norm_type=st.sampled_from(NORM_TYPES + [0.5, 7.0]), max_norm=st.floats(1e-3, 1e3),
       scale=st.floats(1e-3, 1e3), seed=st.integers(0, 2**16))
def test_clip_grad_norm_property(norm_type, max_norm, scale, seed):
    ours, theirs = twin_params(SHAPES, dtype=torch.float64, scale=scale, seed=seed)
    torch.testing.assert_close(clip_grad_norm_(ours, max_norm, norm_type),
                               nn.utils.clip_grad_norm_(theirs, max_norm, norm_type))
    assert_same_grads(ours, theirs)


@pytest.mark.parametrize("clip_value", [0.0, 0.3, 1.0, 100.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_clip_grad_value_matches_torch(clip_value, dtype):
    ours, theirs = twin_params(SHAPES, dtype=dtype, scale=2.0, none_at=(2,))
    assert clip_grad_value_(ours, clip_value) is None
    nn.utils.clip_grad_value_(theirs, clip_value)
    assert_same_grads(ours, theirs)
    ours, theirs = twin_params([(6,)], dtype=dtype, scale=2.0)
    seqlib.clip_grad_value_(ours[0], clip_value)
    nn.utils.clip_grad_value_(theirs[0], clip_value)
    assert_same_grads(ours, theirs)
    assert float(ours[0].grad.abs().max()) <= float(torch.tensor(clip_value, dtype=dtype))


def test_clip_grad_value_nonfinite():
    ours, theirs = twin_params([(4,)], dtype=torch.float64)
    for group in (ours, theirs):
        group[0].grad[:2] = torch.tensor([math.inf, -math.inf], dtype=torch.float64)
    clip_grad_value_(ours, 0.5)
    nn.utils.clip_grad_value_(theirs, 0.5)
    assert_same_grads(ours, theirs)


def test_argument_errors():
    with pytest.raises(TypeError, match="parameters"):
        clip_grad_norm_(3, 1.0)
    with pytest.raises(TypeError, match="max_norm"):
        clip_grad_norm_([], "big")
    with pytest.raises(TypeError, match="clip_value"):
        clip_grad_value_([], None)
