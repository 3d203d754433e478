"""seqlib.spike_coding: rate, latency and delta codes, their statistics, decoders and snnTorch's spikegen."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snntorch import spikegen

from seqlib.spike_coding import (
    delta_decode,
    delta_encode,
    first_spike_times,
    latency_decode,
    latency_encode,
    rate_decode,
    rate_encode,
)

pytestmark = pytest.mark.part4


# ---------------------------------------------------------------------------------------------------------------------
# rate
# ---------------------------------------------------------------------------------------------------------------------
def test_rate_code_has_bernoulli_statistics():
    p = torch.tensor([0.0, 0.05, 0.3, 0.5, 0.9, 1.0])
    T = 4000
    g = torch.Generator().manual_seed(0)
    s = rate_encode(p, T, generator=g)
    assert s.shape == (T, 6) and s.dtype == torch.float32
    rate = rate_decode(s)
    sigma = torch.sqrt(p * (1 - p) / T)
    assert bool(((rate - p).abs() <= 5 * sigma + 1e-9).all()), (rate, p)
    assert rate[0] == 0 and rate[-1] == 1
    # independent steps: the lag-1 correlation of a p = 0.5 train is near 0
    x = s[:, 3] - s[:, 3].mean()
    assert abs(float((x[1:] * x[:-1]).mean() / x.var())) < 5 / math.sqrt(T)
    # gain scales the rate (then clips at 1)
    s2 = rate_encode(p, T, gain=0.5, generator=g)
    assert bool(((rate_decode(s2, gain=0.5) - p).abs() <= 10 * sigma + 0.03).all())
    assert bool((rate_encode(p, 50, gain=3.0, generator=g)[:, 4:] == 1).all())


def test_rate_code_is_reproducible_and_equals_snntorch_with_the_same_seed():
    x = torch.rand(4, 7)
    a = rate_encode(x, 20, generator=torch.Generator().manual_seed(5))
    b = rate_encode(x, 20, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    torch.manual_seed(11)
    ours = rate_encode(x, 20, gain=0.8)
    torch.manual_seed(11)
    theirs = spikegen.rate(x, num_steps=20, gain=0.8)
    assert torch.equal(ours, theirs)
    # a time-varying signal: one draw per step
    torch.manual_seed(12)
    ours = rate_encode(x)  # (T=4, 7)
    torch.manual_seed(12)
    assert torch.equal(ours, spikegen.rate(x, time_var_input=True))


# ---------------------------------------------------------------------------------------------------------------------
# latency
# ---------------------------------------------------------------------------------------------------------------------
def test_latency_code_one_early_spike_for_strong_inputs_and_decodes_within_half_a_step():
    x = torch.tensor([0.0, 0.005, 0.02, 0.3, 0.5, 0.77, 1.0])
    T = 21
    s = latency_encode(x, T)
    assert s.shape == (T, 7)
    assert s.sum(0).tolist() == [0, 0, 1, 1, 1, 1, 1]  # below the threshold (0.01): silent
    times = first_spike_times(s)
    assert math.isinf(times[0]) and times[-1] == 0 and times[2] == 20 * 0.98 // 1 + 1  # round(19.6) = 20
    assert bool((times[2:].diff() <= 0).all())  # stronger -> earlier
    x_hat = latency_decode(s)
    assert bool(((x_hat[2:] - x[2:]).abs() <= 0.5 / (T - 1) + 1e-6).all())
    assert x_hat[0] == 0 and x_hat[1] == 0


def test_latency_code_equals_snntorch_linear_normalized_clipped():
    torch.manual_seed(0)
    x = torch.rand(5, 9)
    for T, threshold in ((10, 0.01), (33, 0.2)):
        ours = latency_encode(x, T, threshold=threshold)
        theirs = spikegen.latency(x, num_steps=T, threshold=threshold, linear=True, normalize=True, clip=True)
        assert torch.equal(ours, theirs)


# ---------------------------------------------------------------------------------------------------------------------
# delta
# ---------------------------------------------------------------------------------------------------------------------
def test_delta_difference_mode_equals_snntorch():
    torch.manual_seed(1)
    x = torch.cumsum(0.2 * torch.randn(40, 3, 2), 0)
    for initial, padding in ((0.0, False), (None, True)):
        for off in (True, False):
            ours = delta_encode(x, 0.15, mode="difference", off_spikes=off, initial=initial)
            theirs = spikegen.delta(x, threshold=0.15, padding=padding, off_spike=off)
            assert torch.equal(ours, theirs), (initial, off)


def test_delta_tracking_decodes_to_within_the_threshold_and_is_the_reference_by_hand():
    torch.manual_seed(2)
    x = torch.cumsum((0.05 * torch.randn(200, 4)).clamp(-0.09, 0.09), 0) + 1.0  # steps below the threshold
    s = delta_encode(x, 0.1)
    assert set(s.unique().tolist()) <= {-1.0, 0.0, 1.0} and s[0].abs().sum() == 0
    x_hat = delta_decode(s, 0.1, initial=x[0])
    assert float((x_hat - x).abs().max()) < 0.1 + 1e-6
    ref, expected = x[0].clone(), []
    for t in range(200):
        d = x[t] - ref
        step = torch.where(d >= 0.1, 1.0, torch.where(d <= -0.1, -1.0, 0.0))
        ref = ref + 0.1 * step
        expected.append(step)
    assert torch.equal(s, torch.stack(expected))
    # a constant signal sends nothing; a ramp sends regular ON spikes
    assert delta_encode(torch.full((30, 2), 0.7)).abs().sum() == 0
    ramp = delta_encode(torch.linspace(0, 1.05, 106, dtype=torch.float64)[:, None], 0.1)
    assert ramp.sum() == 10 and ramp.min() == 0
    # without OFF spikes the reference still follows the signal down, silently
    down_up = torch.tensor([0.0, -0.5, -1.0, -0.5, 0.0])[:, None]
    assert delta_encode(down_up, 0.5, off_spikes=False)[:, 0].tolist() == [0, 0, 0, 1, 1]


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 30), shape=st.lists(st.integers(1, 4), min_size=0, max_size=2),
       threshold=st.floats(0.05, 1.0), seed=st.integers(0, 1000))
def test_delta_tracking_error_bound_over_shapes(T, shape, threshold, seed):
    g = torch.Generator().manual_seed(seed)
    steps = (2 * torch.rand((T, *shape), generator=g) - 1) * threshold * 0.99  # |change| < threshold
    x = torch.cumsum(steps, 0, dtype=torch.float64)
    s = delta_encode(x, threshold)
    assert s.shape == x.shape
    assert float((delta_decode(s, threshold, initial=x[0]) - x).abs().max()) < threshold + 1e-9


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=3), T=st.integers(2, 25), seed=st.integers(0, 1000))
def test_rate_and_latency_shapes(shape, T, seed):
    x = torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    r = rate_encode(x, T, generator=torch.Generator().manual_seed(seed))
    assert r.shape == (T, *shape) and r.dtype == torch.float64
    lat = latency_encode(x, T)
    assert lat.shape == (T, *shape) and bool((lat.sum(0) <= 1).all())
    assert latency_decode(lat).shape == tuple(shape)


# ---------------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        rate_encode(torch.tensor([0.5, 1.5]), 10)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        latency_encode(torch.tensor([-0.1]), 10)
    with pytest.raises(TypeError, match="floating-point"):
        rate_encode(torch.tensor([0, 1]), 10)
    with pytest.raises(TypeError, match="torch.Tensor"):
        rate_encode([0.5], 10)
    with pytest.raises(ValueError, match="num_steps"):
        rate_encode(torch.tensor([0.5]), 0)
    with pytest.raises(TypeError, match="num_steps"):
        rate_encode(torch.tensor([0.5]), 2.5)
    with pytest.raises(ValueError, match="num_steps must be at least 2"):
        latency_encode(torch.tensor([0.5]), 1)
    with pytest.raises(ValueError, match=r"\(T, \*\) with T >= 1"):
        rate_encode(torch.tensor(0.5))
    with pytest.raises(ValueError, match="finite"):
        delta_encode(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="threshold"):
        delta_encode(torch.zeros(5, 2), 0.0)
    with pytest.raises(ValueError, match="threshold"):
        latency_encode(torch.zeros(3), 5, threshold=1.5)
    with pytest.raises(ValueError, match="mode"):
        delta_encode(torch.zeros(5, 2), mode="sigma")
    with pytest.raises(ValueError, match=r"initial must be a number or have shape \(\*\) = \(2,\)"):
        delta_encode(torch.zeros(5, 2), initial=torch.zeros(3))
    with pytest.raises(ValueError, match="only"):
        rate_decode(torch.tensor([[0.0, 2.0]]))
    with pytest.raises(ValueError, match="only"):
        latency_decode(torch.tensor([[-1.0], [0.0]]))
    with pytest.raises(ValueError, match=r"\(T, \*\)"):
        first_spike_times(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="gain"):
        rate_decode(torch.zeros(3, 1), gain=0.0)
