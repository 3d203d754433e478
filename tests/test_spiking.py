"""seqlib.spiking: the surrogate spike, the LIF cell and layer, the readout; against snnTorch with the same weights."""

from __future__ import annotations

import math

import pytest
import snntorch as snn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snntorch import surrogate as snn_surrogate

from seqlib import spiking
from seqlib.spiking import LIF, SURROGATES, LeakyReadout, LIFCell, SpikingClassifier, spike

pytestmark = pytest.mark.part4

F32 = torch.float32


def snn_grad(name: str, slope: float):
    """snnTorch's surrogate spike function of the same name and sharpness."""
    if name == "fast_sigmoid":
        return snn_surrogate.fast_sigmoid(slope=slope)
    if name == "arctan":
        return snn_surrogate.atan(alpha=slope)
    if name == "sigmoid":
        return snn_surrogate.sigmoid(slope=slope)
    if name == "stable_sigmoid":
        # snnTorch's own sigmoid surrogate overflows to nan in float32 for k z < -88 (see below); the same
        # derivative in a stable form, through snnTorch's custom-surrogate hook
        return snn_surrogate.custom_surrogate(
            lambda z, grad, spikes: grad * slope * torch.sigmoid(slope * z) * torch.sigmoid(-slope * z))
    return snn_surrogate.straight_through_estimator()


# ---------------------------------------------------------------------------------------------------------------------
# the spike and its surrogates
# ---------------------------------------------------------------------------------------------------------------------
def test_spike_is_the_heaviside_step():
    z = torch.tensor([-2.0, -1e-6, 0.0, 1e-6, 3.0], dtype=torch.float64)
    out = spike(z)
    assert out.dtype == torch.float64
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # strictly above the threshold, as snnTorch


@pytest.mark.parametrize("name", SURROGATES)
def test_surrogate_grad_is_the_derivative_of_its_primitive(name):
    """gradcheck: the analytic surrogate against finite differences of the smooth function it differentiates."""

    class Smooth(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return spiking.surrogate_primitive(z, name, 3.0)

        @staticmethod
        def backward(ctx, grad):
            (z,) = ctx.saved_tensors
            return grad * spiking.surrogate_grad(z, name, 3.0)

    z = torch.linspace(-1.5, 1.5, 41, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(Smooth.apply, (z,), eps=1e-6, atol=1e-7)
    # and the primitive's autograd derivative agrees with the formula everywhere
    (auto,) = torch.autograd.grad(spiking.surrogate_primitive(z, name, 3.0).sum(), z)
    torch.testing.assert_close(auto, spiking.surrogate_grad(z.detach(), name, 3.0))


@pytest.mark.parametrize("name", SURROGATES)
def test_spike_backward_uses_the_surrogate(name):
    torch.manual_seed(0)
    z = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 7, dtype=torch.float64)
    (g,) = torch.autograd.grad((spike(z, name, 4.0) * w).sum(), z)
    torch.testing.assert_close(g, w * spiking.surrogate_grad(z.detach(), name, 4.0), rtol=0, atol=0)
    # the formulas of the module docstring, written out here
    zd, k = z.detach(), 4.0
    expected = {"fast_sigmoid": 1 / (1 + k * zd.abs()) ** 2,
                "arctan": (k / 2) / (1 + (math.pi * k * zd / 2) ** 2),
                "sigmoid": k * torch.sigmoid(k * zd) * (1 - torch.sigmoid(k * zd)),
                "straight_through": torch.ones_like(zd)}[name]
    torch.testing.assert_close(spiking.surrogate_grad(zd, name, k), expected)


@pytest.mark.parametrize("name", SURROGATES)
def test_spike_matches_snntorch_surrogates(name):
    torch.manual_seed(1)
    z = torch.randn(200)
    for slope in (None, 5.0):
        k = spiking.DEFAULT_SLOPES[name] if slope is None else slope
        a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
        ours, theirs = spike(a, name, slope), snn_grad(name, k)(b)
        assert torch.equal(ours, theirs)
        (ours * torch.arange(200.0)).sum().backward()
        (theirs * torch.arange(200.0)).sum().backward()
        # snnTorch's sigmoid surrogate computes exp(-k z) / (exp(-k z) + 1)^2, which is inf / inf = nan for
        # k z < -88 in float32; ours is finite everywhere and equal wherever theirs is finite
        assert bool(torch.isfinite(a.grad).all())
        finite = torch.isfinite(b.grad)
        assert finite.float().mean() > 0.8
        torch.testing.assert_close(a.grad[finite], b.grad[finite])


# ---------------------------------------------------------------------------------------------------------------------
# parity with snnTorch: the same weights, the same spikes, membranes and gradients
# ---------------------------------------------------------------------------------------------------------------------
def snntorch_run(ours: spiking._LIFBase, x: torch.Tensor, use_rleaky: bool = True):
    """The same network in snnTorch: an nn.Linear for W x + b, then snn.RLeaky (recurrent, subtract) or snn.Leaky.

    ``snn.RLeaky`` with ``reset_mechanism="zero"`` zeroes the whole new potential after a spike (input included),
    unlike ``snn.Leaky``; the recurrent zero-reset reference is therefore ``snn.Leaky`` fed with the recurrent current
    of an ``nn.Linear`` over its own previous spikes.
    """
    H, H_in = ours.weight_ih.shape
    beta = ours.beta.detach().clone()
    fc = torch.nn.Linear(H_in, H, bias=ours.bias)
    with torch.no_grad():
        fc.weight.copy_(ours.weight_ih)
        if ours.bias:
            fc.bias.copy_(ours.bias_ih)
    surrogate = "stable_sigmoid" if ours.surrogate == "sigmoid" else ours.surrogate
    kw = {"beta": beta, "threshold": ours.threshold, "spike_grad": snn_grad(surrogate, ours.slope),
          "reset_mechanism": ours.reset, "learn_beta": ours.learn_beta}
    rec = None
    if ours.recurrent and ours.reset == "subtract" and ours.bias and use_rleaky:
        neuron = snn.RLeaky(linear_features=H, **kw)
        rec = neuron.recurrent
    else:
        neuron = snn.Leaky(**kw)
        if ours.recurrent:
            rec = torch.nn.Linear(H, H, bias=ours.bias)
    if rec is not None:
        with torch.no_grad():
            rec.weight.copy_(ours.weight_hh)
            if ours.bias:
                rec.bias.copy_(ours.bias_hh)
    L, N = x.shape[0], x.shape[1]
    current = fc(x)  # (L, N, H)
    spk, mem = torch.zeros(N, H), torch.zeros(N, H)
    spikes, membranes = [], []
    for t in range(L):
        if isinstance(neuron, snn.RLeaky):
            spk, mem = neuron(current[t], spk, mem)
        else:
            extra = rec(spk) if rec is not None else 0.0
            spk, mem = neuron(current[t] + extra, mem)
        spikes.append(spk)
        membranes.append(mem)
    params = {"weight_ih": fc.weight, "bias_ih": fc.bias if ours.bias else None,
              "weight_hh": rec.weight if rec is not None else None,
              "bias_hh": rec.bias if rec is not None and ours.bias else None, "beta": neuron.beta}
    return torch.stack(spikes), torch.stack(membranes), params


def loss_of(spikes, membranes, weights):
    """A loss that reaches every step through both the spikes and the membranes."""
    return (spikes * weights).sum() + (membranes * weights).pow(2).sum() * 0.1


def compare_with_snntorch(ours, x, atol=2e-5, use_rleaky=True):
    torch.manual_seed(123)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    s, u = ours(xa)
    s_ref, u_ref, params = snntorch_run(ours, xb, use_rleaky)
    assert torch.equal(s, s_ref), f"spikes differ at {int((s != s_ref).sum())} places"
    torch.testing.assert_close(u, u_ref, rtol=1e-5, atol=atol)
    w = torch.rand_like(u)
    loss_of(s, u, w).backward()
    loss_of(s_ref, u_ref, w).backward()
    # float32 sums in another order: the tolerance scales with the size of the gradient
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=atol * max(1.0, float(xb.grad.abs().max())))
    for name, p in params.items():
        mine = getattr(ours, name)
        if p is None or mine is None or not mine.requires_grad:
            continue
        torch.testing.assert_close(mine.grad, p.grad, rtol=1e-4, atol=atol * max(1.0, float(p.grad.abs().max())),
                                   msg=f"gradient of {name}")
    return s


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("recurrent", [True, False])
def test_lif_matches_snntorch(surrogate, reset, recurrent, fast):
    torch.manual_seed(0)
    ours = LIF(5, 12, beta=0.85, reset=reset, recurrent=recurrent, surrogate=surrogate, fast=fast)
    x = 1.5 * torch.randn(30, 4, 5)
    s = compare_with_snntorch(ours, x)
    assert 0.02 < float(s.detach().mean()) < 0.6  # the comparison covers both spiking and silent steps


def test_recurrent_subtract_matches_snntorch_leaky_with_explicit_recurrence_too():
    torch.manual_seed(2)
    ours = LIF(3, 10, beta=0.9)
    compare_with_snntorch(ours, 2 * torch.randn(25, 3, 3), use_rleaky=False)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("recurrent", [True, False])
def test_learnable_and_per_neuron_beta_match_snntorch(recurrent, fast):
    torch.manual_seed(3)
    beta = torch.linspace(0.5, 0.95, 8)
    ours = LIF(4, 8, beta=beta, learn_beta=True, recurrent=recurrent, threshold=0.7, slope=10.0, fast=fast)
    assert isinstance(ours.beta, torch.nn.Parameter) and ours.beta.shape == (8,)
    compare_with_snntorch(ours, torch.randn(20, 5, 4))
    assert ours.beta.grad is not None and ours.beta.grad.abs().sum() > 0
    assert "beta" in dict(ours.named_parameters())
    fixed = LIF(4, 8, beta=0.9)
    assert "beta" in dict(fixed.named_buffers()) and "beta" not in dict(fixed.named_parameters())


def test_learned_beta_outside_the_range_is_clipped_when_used():
    ours = LIF(2, 3, beta=0.5, learn_beta=True, recurrent=False)
    with torch.no_grad():
        ours.beta.fill_(1.7)
    x = torch.zeros(4, 1, 2)
    x[0] = 0.0
    with torch.no_grad():
        ours.weight_ih.zero_()
        ours.bias_ih.fill_(0.25)
    _, u = ours(x)
    torch.testing.assert_close(u[:, 0, 0], torch.tensor([0.25, 0.5, 0.75, 1.0]))  # beta = 1: no leak


def test_no_bias_matches_snntorch():
    torch.manual_seed(4)
    compare_with_snntorch(LIF(3, 6, bias=False, recurrent=True), 2 * torch.randn(15, 2, 3))
    compare_with_snntorch(LIF(3, 6, bias=False, recurrent=False, reset="zero"), 2 * torch.randn(15, 2, 3))


def test_detached_reset_changes_only_the_gradient():
    """detach_reset=False lets the surrogate through the reset too: same forward, the gradient of this loop."""
    torch.manual_seed(5)
    a = LIF(3, 6, beta=0.9, detach_reset=True, fast=False)
    b = LIF(3, 6, beta=0.9, detach_reset=False, fast=False)
    b.load_state_dict(a.state_dict())
    x = 2 * torch.randn(20, 2, 3)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    sa, ua = a(xa)
    sb, ub = b(xb)
    assert torch.equal(sa, sb) and torch.equal(ua, ub)
    ub.pow(2).sum().backward()
    ua.pow(2).sum().backward()
    assert not torch.allclose(xa.grad, xb.grad)
    # the reference: the same update with the reset's spike kept in the graph
    xc = x.clone().requires_grad_(True)
    cur = torch.nn.functional.linear(xc, b.weight_ih, b.bias_ih)
    s, u, us = torch.zeros(2, 6), torch.zeros(2, 6), []
    for t in range(20):
        u = 0.9 * u + cur[t] + torch.nn.functional.linear(s, b.weight_hh, b.bias_hh) - s * 1.0
        s = spike(u - 1.0)
        us.append(u)
    torch.stack(us).pow(2).sum().backward()
    torch.testing.assert_close(xb.grad, xc.grad, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------------------------------------------------------
# the layer's options, the cell, the readout
# ---------------------------------------------------------------------------------------------------------------------
def test_cell_stepped_by_hand_equals_the_layer_and_state_dicts_load_both_ways():
    torch.manual_seed(6)
    layer = LIF(4, 7, beta=0.8, reset="zero")
    cell = LIFCell(4, 7, beta=0.8, reset="zero")
    cell.load_state_dict(layer.state_dict(), strict=True)
    layer.load_state_dict(cell.state_dict(), strict=True)
    x = 2 * torch.randn(12, 3, 4)
    s_seq, u_seq = layer(x)
    state = None
    for t in range(12):
        state = cell(x[t], state)
        assert torch.equal(state[0], s_seq[t])
        torch.testing.assert_close(state[1], u_seq[t])  # the layer's fast path sums in another order
    s1, u1 = cell(x[0, 0])  # unbatched
    assert s1.shape == (7,)
    torch.testing.assert_close(u1, u_seq[0, 0])


def test_batch_first_unbatched_and_a_sequence_split_in_two():
    torch.manual_seed(7)
    a = LIF(3, 5)
    b = LIF(3, 5, batch_first=True)
    b.load_state_dict(a.state_dict())
    x = 2 * torch.randn(16, 4, 3)  # (L, N, H_in)
    s, u = a(x)
    sb, ub = b(x.transpose(0, 1))
    assert sb.shape == (4, 16, 5)
    assert torch.equal(sb.transpose(0, 1), s) and torch.equal(ub.transpose(0, 1), u)
    s1, u1 = a(x[:, 2])  # unbatched (L, H_in)
    assert s1.shape == (16, 5) and torch.equal(u1, u[:, 2])
    s_a, u_a = a(x[:9])
    s_b, u_b = a(x[9:], (s_a[-1], u_a[-1]))
    assert torch.equal(torch.cat([s_a, s_b]), s) and torch.equal(torch.cat([u_a, u_b]), u)
    s_c, u_c = a(x[9:, 2], (s_a[-1, 2], u_a[-1, 2]))  # unbatched state
    assert torch.equal(u_c, u[9:, 2])


def test_float64_and_reset_rules_by_hand():
    """One neuron, constant input: the potentials the formulas give, in float64."""
    for reset in ("subtract", "zero"):
        lif = LIF(1, 1, beta=0.5, threshold=1.0, reset=reset, recurrent=False, dtype=torch.float64)
        with torch.no_grad():
            lif.weight_ih.fill_(1.0)
            lif.bias_ih.zero_()
        s, u = lif(torch.full((5, 1), 0.8, dtype=torch.float64))
        u_ref, s_prev, expected = 0.0, 0.0, []
        for _ in range(5):
            u_ref = 0.5 * u_ref + 0.8 - s_prev if reset == "subtract" else 0.5 * (1 - s_prev) * u_ref + 0.8
            s_prev = float(u_ref > 1.0)
            expected.append(u_ref)
        torch.testing.assert_close(u[:, 0], torch.tensor(expected, dtype=torch.float64))
        assert s.dtype == torch.float64 and s[:, 0].tolist() == [float(v > 1.0) for v in expected]


def test_lif_response_is_a_layer_with_identity_weights():
    current = torch.linspace(0.0, 0.6, 40)[:, None] * torch.tensor([1.0, 2.0, 3.0])  # (T, K) ramps
    for reset in ("subtract", "zero"):
        s, u = spiking.lif_response(current, beta=0.8, threshold=1.0, reset=reset)
        lif = LIF(3, 3, beta=0.8, reset=reset, recurrent=False, bias=False)
        with torch.no_grad():
            lif.weight_ih.copy_(torch.eye(3))
            s_ref, u_ref = lif(current)  # unbatched (L, H_in)
        assert torch.equal(s, s_ref) and s.sum() > 0
        torch.testing.assert_close(u, u_ref)
    s1, u1 = spiking.lif_response(current[:, 2], beta=0.8)
    assert s1.shape == (40,) and torch.equal(s1, spiking.lif_response(current, beta=0.8)[0][:, 2])
    with pytest.raises(ValueError, match="beta"):
        spiking.lif_response(current, beta=1.5)
    with pytest.raises(ValueError, match="threshold"):
        spiking.lif_response(current, threshold=0)


def test_readout_matches_snntorch_leaky_without_reset():
    torch.manual_seed(8)
    ro = LeakyReadout(6, 3, beta=0.7)
    spikes = (torch.rand(20, 4, 6) < 0.3).float().requires_grad_(True)
    v = ro(spikes)
    fc = torch.nn.Linear(6, 3)
    with torch.no_grad():
        fc.weight.copy_(ro.weight)
        fc.bias.copy_(ro.bias)
    leaky = snn.Leaky(beta=0.7, reset_mechanism="none", threshold=1e9)
    ref_in = spikes.detach().clone().requires_grad_(True)
    cur, mem, ref = fc(ref_in), torch.zeros(4, 3), []
    for t in range(20):
        _, mem = leaky(cur[t], mem)
        ref.append(mem)
    ref = torch.stack(ref)
    torch.testing.assert_close(v, ref)
    v.pow(2).sum().backward()
    ref.pow(2).sum().backward()
    torch.testing.assert_close(ro.weight.grad, fc.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(spikes.grad, ref_in.grad, rtol=1e-5, atol=1e-5)
    ro_bf = LeakyReadout(6, 3, beta=0.7, batch_first=True)
    ro_bf.load_state_dict(ro.state_dict())
    torch.testing.assert_close(ro_bf(spikes.detach().transpose(0, 1)).transpose(0, 1), v.detach())
    torch.testing.assert_close(ro(spikes.detach()[:, 1]), v.detach()[:, 1])  # unbatched
    torch.testing.assert_close(ro(spikes.detach()[5:], v.detach()[4]), v.detach()[5:])  # continued from v_0


def test_spiking_classifier_learns_to_separate_two_rates():
    """BPTT through the surrogate: a few Adam steps separate a high-rate input from a low-rate one."""
    torch.manual_seed(9)
    n, L = 64, 20
    y = torch.arange(n) % 2
    x = (torch.rand(n, L, 4) < (0.15 + 0.5 * y.float())[:, None, None]).float()
    model = SpikingClassifier(4, 16, 2, threshold=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert float((model(x).argmax(1) == y).float().mean()) > 0.9
    assert model.last_spikes.shape == (L, n, 16)


@settings(max_examples=25, deadline=None)
@given(L=st.integers(1, 12), N=st.integers(1, 4), H_in=st.integers(1, 5), H=st.integers(1, 6),
       recurrent=st.booleans(), reset=st.sampled_from(["subtract", "zero"]), batch_first=st.booleans(),
       seed=st.integers(0, 10_000))
def test_shapes_and_parity_over_random_sizes(L, N, H_in, H, recurrent, reset, batch_first, seed):
    torch.manual_seed(seed)
    lif = LIF(H_in, H, beta=0.8, reset=reset, recurrent=recurrent, threshold=0.5, batch_first=batch_first)
    x = 2 * torch.randn(L, N, H_in)
    s, u = lif(x.transpose(0, 1) if batch_first else x)
    expected = (N, L, H) if batch_first else (L, N, H)
    assert s.shape == u.shape == expected
    assert bool(((s == 0) | (s == 1)).all())
    lif.batch_first = False
    s_ref, u_ref, _ = snntorch_run(lif, x)
    s, u = lif(x)
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(u, u_ref, rtol=1e-5, atol=2e-5)


# ---------------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [-0.1, 1.1, float("nan"), torch.tensor([0.5, 1.2, 0.3]), torch.tensor([-1.0])])
def test_beta_outside_the_unit_interval_raises(beta):
    with pytest.raises(ValueError, match="beta"):
        LIF(2, 3, beta=beta)


def test_bad_constructor_arguments_raise_clear_errors():
    with pytest.raises(TypeError, match="beta"):
        LIF(2, 3, beta="0.9")
    with pytest.raises(ValueError, match=r"beta must be a number or have shape \(H,\) = \(3,\).*\(4,\)"):
        LIF(2, 3, beta=torch.full((4,), 0.5))
    with pytest.raises(TypeError, match="beta"):
        LIF(2, 3, beta=torch.tensor([1, 0, 1]))
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="threshold"):
            LIF(2, 3, threshold=bad)
    with pytest.raises(TypeError, match="threshold"):
        LIF(2, 3, threshold="1")
    with pytest.raises(ValueError, match="surrogate"):
        LIF(2, 3, surrogate="relu")
    with pytest.raises(ValueError, match="slope"):
        LIF(2, 3, slope=0.0)
    with pytest.raises(TypeError, match="slope"):
        spike(torch.zeros(2), slope="25")
    with pytest.raises(ValueError, match="reset"):
        LIF(2, 3, reset="none")
    with pytest.raises(TypeError, match="recurrent"):
        LIFCell(2, 3, recurrent=1)
    with pytest.raises(ValueError, match="hidden_size"):
        LIF(2, 0)
    with pytest.raises(ValueError, match="beta"):
        LeakyReadout(3, 2, beta=2.0)


def test_bad_inputs_raise_clear_errors():
    lif, cell = LIF(3, 4), LIFCell(3, 4)
    with pytest.raises(ValueError, match=r"input must have shape \(L, N, H_in\) with H_in = 3.*\(5, 2, 2\)"):
        lif(torch.zeros(5, 2, 2))
    with pytest.raises(ValueError, match=r"\(L, N, H_in\) or unbatched \(L, H_in\).*4-D"):
        lif(torch.zeros(5, 2, 3, 1))
    with pytest.raises(TypeError, match="floating-point"):
        lif(torch.zeros(5, 2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="dtype"):
        lif(torch.zeros(5, 2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        lif([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="L >= 1"):
        lif(torch.zeros(0, 2, 3))
    with pytest.raises(ValueError, match=r"\(N, L, H_in\)"):
        LIF(3, 4, batch_first=True)(torch.zeros(2, 5, 4))
    with pytest.raises(TypeError, match=r"tuple \(s_0, u_0\)"):
        lif(torch.zeros(5, 2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"hx\[1\] \(u_0\) must have shape \(N, H\)"):
        lif(torch.zeros(5, 2, 3), (torch.zeros(2, 4), torch.zeros(3, 4)))
    with pytest.raises(TypeError, match=r"hx\[0\] \(s_0\)"):
        lif(torch.zeros(5, 2, 3), (torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, 4)))
    with pytest.raises(ValueError, match=r"\(N, H_in\) or \(H_in,\)"):
        cell(torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match="H_in = 3"):
        cell(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="floating-point"):
        spike(torch.zeros(3, dtype=torch.int32))
    ro = LeakyReadout(4, 2)
    with pytest.raises(ValueError, match="H = 4"):
        ro(torch.zeros(5, 1, 3))
    with pytest.raises(ValueError, match=r"v0 must have shape \(N, C\)"):
        ro(torch.zeros(5, 1, 4), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(N, L, H_in\)"):
        SpikingClassifier(3, 4, 2)(torch.zeros(5, 3))
