"""seqlib.spiking_bptt: the hand-written BPTT of the LIF layer equals autograd through the plain loop, every option."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlib.spiking import LIF, SURROGATES, lif_sequence
from seqlib.spiking_bptt import lif_sequence_bptt

pytestmark = pytest.mark.part4

F64 = torch.float64


def run_both(kwargs, x, state=None, loss="both"):
    """The same LIF layer with fast=False and fast=True: outputs and every gradient, in float64."""
    torch.manual_seed(0)
    plain = LIF(x.shape[-1], 6, fast=False, dtype=F64, **kwargs)
    fast = LIF(x.shape[-1], 6, fast=True, dtype=F64, **kwargs)
    fast.load_state_dict(plain.state_dict())
    results = []
    for model in (plain, fast):
        xx = x.clone().requires_grad_(True)
        hx = None if state is None else tuple(t.clone().requires_grad_(True) for t in state)
        s, u = model(xx, hx)
        w = torch.linspace(-1, 1, u.numel(), dtype=F64).reshape(u.shape)
        value = {"both": (s * w).sum() + (u * w).pow(2).sum(), "spikes": (s * w).sum(), "membranes": (u * w).sum()}
        value[loss].backward()
        grads = [xx.grad] + ([t.grad for t in hx] if hx else []) + [p.grad for p in model.parameters()]
        results.append([s, u] + grads)
    return results


def assert_equal_results(plain, fast):
    for k, (a, b) in enumerate(zip(plain, fast, strict=True)):
        a = torch.zeros_like(b) if a is None else a  # autograd leaves an unused input's grad at None
        b = torch.zeros_like(a) if b is None else b
        scale = max(1.0, float(a.detach().abs().max()))
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10 * scale, msg=f"result {k}")


OPTIONS = list(itertools.product(["subtract", "zero"], [True, False], [True, False], [True, False], [True, False]))


@pytest.mark.parametrize(("reset", "recurrent", "detach_reset", "bias", "learn_beta"), OPTIONS)
def test_fast_equals_plain_for_every_option(reset, recurrent, detach_reset, bias, learn_beta):
    g = torch.Generator().manual_seed(1)
    x = 2 * torch.randn(15, 4, 3, generator=g, dtype=F64)
    state = ((torch.rand(4, 6, generator=g) < 0.3).to(F64), torch.randn(4, 6, generator=g, dtype=F64))
    beta = torch.linspace(0.5, 0.95, 6, dtype=F64) if learn_beta else 0.8
    kwargs = {"reset": reset, "recurrent": recurrent, "detach_reset": detach_reset, "bias": bias,
              "learn_beta": learn_beta, "beta": beta, "threshold": 0.8}
    plain, fast = run_both(kwargs, x, state)
    assert 0.05 < float(plain[0].detach().mean()) < 0.7
    assert_equal_results(plain, fast)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("loss", ["spikes", "membranes"])
def test_fast_equals_plain_for_each_surrogate_and_a_loss_on_one_output(surrogate, loss):
    x = 2 * torch.randn(12, 3, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    plain, fast = run_both({"surrogate": surrogate, "learn_beta": True}, x, loss=loss)
    assert_equal_results(plain, fast)


def test_functions_directly_and_a_scalar_beta():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10, 2, 3, generator=g, dtype=F64)
    w_ih, w_hh = torch.randn(4, 3, generator=g, dtype=F64), torch.randn(4, 4, generator=g, dtype=F64)
    zeros = torch.zeros(2, 4, dtype=F64)
    a = lif_sequence(x, zeros, zeros, w_ih, w_hh, None, None, 0.7, 0.5, "zero", "arctan", 2.0)
    b = lif_sequence_bptt(x, zeros, zeros, w_ih, w_hh, None, None, 0.7, 0.5, "zero", "arctan", 2.0)
    assert torch.equal(a[0], b[0])
    torch.testing.assert_close(a[1], b[1], rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(L=st.integers(1, 10), N=st.integers(1, 3), H_in=st.integers(1, 4), recurrent=st.booleans(),
       reset=st.sampled_from(["subtract", "zero"]), detach_reset=st.booleans(), seed=st.integers(0, 10_000))
def test_fast_equals_plain_over_random_sizes(L, N, H_in, recurrent, reset, detach_reset, seed):
    x = 2 * torch.randn(L, N, H_in, generator=torch.Generator().manual_seed(seed), dtype=F64)
    plain, fast = run_both({"reset": reset, "recurrent": recurrent, "detach_reset": detach_reset}, x)
    assert_equal_results(plain, fast)
