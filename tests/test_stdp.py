"""seqlib.stdp: the STDP window, the all-pairs sum and its trace-based online form, the winner-take-all layer."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlib.data import digits_8x8
from seqlib.stdp import STDPTraces, WTALayer, assign_labels, predict_labels, stdp_pairs, stdp_traces, stdp_window

pytestmark = pytest.mark.part4

F64 = torch.float64


def test_window_is_the_formula():
    dt = torch.tensor([-40.0, -5.0, -1.0, 0.0, 1.0, 5.0, 40.0], dtype=F64)
    w = stdp_window(dt, a_plus=0.2, a_minus=0.3, tau_plus=10.0, tau_minus=5.0)
    expected = [-0.3 * math.exp(d / 5.0) if d <= 0 else 0.2 * math.exp(-d / 10.0) for d in dt.tolist()]
    torch.testing.assert_close(w, torch.tensor(expected, dtype=F64), rtol=1e-15, atol=0)
    assert float(stdp_window(0.0)) == -0.0105  # simultaneous spikes depress ("otherwise" in the formula)
    assert float(stdp_window(1)) == pytest.approx(0.01 * math.exp(-1 / 20))
    assert stdp_window(torch.arange(-3, 4)).dtype == F64  # integer time differences become float


def pair_sum_by_hand(pre, post, **window):
    """The definition with explicit loops over spike times."""
    dw = torch.zeros(post.shape[1], pre.shape[1], dtype=F64)
    for i in range(post.shape[1]):
        for j in range(pre.shape[1]):
            for t_post in torch.nonzero(post[:, i]).flatten().tolist():
                for t_pre in torch.nonzero(pre[:, j]).flatten().tolist():
                    dw[i, j] += float(stdp_window(float(t_post - t_pre), **window))
    return dw


def test_pairs_and_traces_equal_the_definition():
    g = torch.Generator().manual_seed(0)
    pre = (torch.rand(30, 4, generator=g) < 0.2).to(F64)
    post = (torch.rand(30, 3, generator=g) < 0.2).to(F64)
    window = {"a_plus": 0.5, "a_minus": 0.4, "tau_plus": 6.0, "tau_minus": 9.0}
    expected = pair_sum_by_hand(pre, post, **window)
    torch.testing.assert_close(stdp_pairs(pre, post, **window), expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(stdp_traces(pre, post, **window), expected, rtol=1e-12, atol=1e-14)


def test_one_pair_of_spikes_reproduces_the_window_point_by_point():
    """A single pre spike and a single post spike, dt apart: the online rule gives exactly W(dt)."""
    T, t0 = 61, 30
    for dt in range(-30, 31):
        pre = torch.zeros(T, 1, dtype=F64)
        post = torch.zeros(T, 1, dtype=F64)
        pre[t0, 0], post[t0 + dt, 0] = 1, 1
        torch.testing.assert_close(stdp_traces(pre, post)[0, 0], stdp_window(float(dt)), rtol=1e-13, atol=0)


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 40), n_pre=st.integers(1, 5), n_post=st.integers(1, 4), p=st.floats(0.0, 0.6),
       tau_plus=st.floats(0.5, 30.0), tau_minus=st.floats(0.5, 30.0), a_plus=st.floats(0.0, 1.0),
       a_minus=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_traces_equal_pairs_over_random_trains(T, n_pre, n_post, p, tau_plus, tau_minus, a_plus, a_minus, seed):
    g = torch.Generator().manual_seed(seed)
    pre = (torch.rand(T, n_pre, generator=g) < p).to(F64)
    post = (torch.rand(T, n_post, generator=g) < p).to(F64)
    window = {"a_plus": a_plus, "a_minus": a_minus, "tau_plus": tau_plus, "tau_minus": tau_minus}
    dw = stdp_traces(pre, post, **window)
    assert dw.shape == (n_post, n_pre)
    torch.testing.assert_close(dw, stdp_pairs(pre, post, **window), rtol=1e-10, atol=1e-12)


def test_batched_traces_sum_the_presentations():
    g = torch.Generator().manual_seed(1)
    pre = (torch.rand(25, 3, 6, generator=g) < 0.3).to(F64)  # (T, B, N_pre)
    post = (torch.rand(25, 3, 2, generator=g) < 0.3).to(F64)
    rule = STDPTraces()
    batched = sum(rule.step(pre[t], post[t]) for t in range(25))
    separate = sum(stdp_pairs(pre[:, b], post[:, b]) for b in range(3))
    torch.testing.assert_close(batched, separate, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------------------------------
# the winner-take-all layer
# ---------------------------------------------------------------------------------------------------------------------
def test_wta_forward_one_winner_per_step_and_learning_keeps_the_bounds():
    wta = WTALayer(16, 5, seed=3)
    before = wta.weight.clone()
    torch.testing.assert_close(before.sum(1), torch.full((5,), 1.6))
    x = (torch.rand(30, 4, 16, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    out = wta(x)
    assert out.shape == (30, 4, 5) and bool((out.sum(2) <= 1).all()) and out.sum() > 0
    assert torch.equal(wta.weight, before)  # no learning without learn=True
    wta(x, learn=True)
    assert not torch.equal(wta.weight, before)
    assert bool((wta.weight >= 0).all()) and bool((wta.weight <= wta.w_max).all())
    torch.testing.assert_close(wta.weight.sum(1), torch.full((5,), 1.6))
    assert bool((wta.theta > 0).any())
    again = WTALayer(16, 5, seed=3)
    again(x, learn=True)
    assert torch.equal(again.weight, wta.weight)  # deterministic


def test_wta_output_is_the_written_out_dynamics():
    """Two neurons, fixed weights, no learning: the potentials, the winner and the reset, by hand."""
    wta = WTALayer(2, 2, beta=0.5, threshold=1.0, weight_sum=1.0, w_max=1.0)
    wta.weight = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])[:, None, :]  # (T, 1, 2)
    u, expected = torch.zeros(2), []
    for t in range(5):
        u = 0.5 * u + wta.weight @ x[t, 0]
        k = int((u - 1.0).argmax())
        s = torch.zeros(2)
        if u[k] > 1.0:
            s[k], u = 1.0, torch.zeros(2)
        expected.append(s)
    out = wta(x)[:, 0]
    assert torch.equal(out, torch.stack(expected)) and out.sum() >= 1


@pytest.mark.slow
def test_wta_learns_digit_features_without_labels():
    data = digits_8x8()
    x, y = data.inputs.reshape(-1, 64), data.targets
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[:800], order[800:1300]
    untrained = WTALayer(64, 30, seed=0)
    wta = WTALayer(64, 30, seed=0).fit(x[train], epochs=2, seed=0)

    def accuracy(layer):
        labels = assign_labels(layer.spike_counts(x[train], seed=1), y[train], 10)
        return float((predict_labels(layer.spike_counts(x[test], seed=2), labels, 10) == y[test]).float().mean())

    trained_acc, untrained_acc = accuracy(wta), accuracy(untrained)
    assert trained_acc > 0.55 and trained_acc > untrained_acc + 0.2, (trained_acc, untrained_acc)
    # the features are digit-like: each learned row is closer to its class's mean image than to the average digit
    protos = torch.stack([x[train][y[train] == c].mean(0) for c in range(10)])  # (10, 64)
    cos = torch.nn.functional.normalize(wta.weight, dim=1) @ torch.nn.functional.normalize(protos, dim=1).T
    assert float(cos.max(1).values.mean()) > 0.8


def test_labels_and_votes():
    counts = torch.tensor([[5.0, 0.0, 1.0], [4.0, 1.0, 0.0], [0.0, 6.0, 0.0], [1.0, 0.0, 7.0]])
    labels = torch.tensor([0, 0, 1, 2])
    neuron_labels = assign_labels(counts, labels)
    assert neuron_labels.tolist() == [0, 1, 2]
    assert predict_labels(counts, neuron_labels).tolist() == [0, 0, 1, 2]
    assert assign_labels(counts, labels, num_classes=4).tolist() == [0, 1, 2]


@pytest.mark.slow
def test_digits_are_scikit_learns_read_without_importing_it():
    code = ("import sys, seqlib, seqlib.data, seqlib.stdp; from seqlib.data import digits_8x8; d = digits_8x8(); "
            "print('sklearn' in sys.modules, 'scipy' in sys.modules, tuple(d.inputs.shape))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False (1797, 8, 8)"
    from sklearn.datasets import load_digits  # the reference: scikit-learn's own loader of the same file

    reference = load_digits()
    data = digits_8x8()
    assert data.inputs.dtype == torch.float32 and data.targets.dtype == torch.int64
    assert torch.equal(data.inputs, torch.from_numpy(reference.images).float() / 16)
    assert torch.equal(data.targets, torch.from_numpy(reference.target).long())
    assert float(data.inputs.min()) == 0.0 and float(data.inputs.max()) == 1.0
    assert data.targets.bincount(minlength=10).min() > 170


# ---------------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="tau_plus"):
        stdp_window(1.0, tau_plus=0.0)
    with pytest.raises(ValueError, match="a_minus"):
        stdp_window(1.0, a_minus=-0.1)
    with pytest.raises(TypeError, match="dt"):
        stdp_window("1")
    with pytest.raises(ValueError, match="same T"):
        stdp_pairs(torch.zeros(5, 2), torch.zeros(6, 2))
    with pytest.raises(ValueError, match="spikes"):
        stdp_traces(torch.full((5, 2), 0.5), torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"\(T, N_pre\)"):
        stdp_pairs(torch.zeros(5), torch.zeros(5, 2))
    with pytest.raises(TypeError, match="floating-point"):
        stdp_pairs(torch.zeros(5, 2, dtype=torch.long), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="beta"):
        WTALayer(4, 2, beta=1.5)
    with pytest.raises(ValueError, match="threshold"):
        WTALayer(4, 2, threshold=0.0)
    wta = WTALayer(64, 3)
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        wta.fit(torch.full((3, 8, 8), 16.0))
    with pytest.raises(ValueError, match="D = 64"):
        wta.fit(torch.zeros(3, 7, 7))
    with pytest.raises(ValueError, match="epochs"):
        wta.fit(torch.zeros(3, 64), epochs=0)
    with pytest.raises(ValueError, match=r"\(T, B, D\) with D = 64"):
        wta(torch.zeros(5, 2, 10))
    with pytest.raises(ValueError, match=r"labels must be integer class indices of shape \(n,\) = \(2,\)"):
        assign_labels(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"neuron_labels must have shape \(K,\) = \(3,\)"):
        predict_labels(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
