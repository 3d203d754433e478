"""seqlib.quant and seqlib.observers: bit-for-bit parity with torch's fake-quant ops and observers, and bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlib.observers import (
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    PercentileObserver,
    choose_qparams,
    make_observer,
)
from seqlib.quant import dequantize, fake_quantize, quant_range, quantize

pytestmark = pytest.mark.part4

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
BITS = [2, 3, 4, 5, 7, 8, 11, 12, 16]


def _inputs(scale: float, qmin: int, qmax: int, dtype: torch.dtype, n: int = 600, seed: int = 0) -> torch.Tensor:
    """Values across and beyond the grid, many of them exactly between two levels (where rounding can differ)."""
    g = torch.Generator().manual_seed(seed)
    spread = torch.randn(n, generator=g, dtype=torch.float64) * scale * (qmax - qmin) / 3
    levels = torch.randint(qmin - 4, qmax + 5, (n,), generator=g).double()
    s32 = float(torch.tensor(scale, dtype=torch.float32))
    ties = torch.cat([(levels + 0.5) * scale, (levels + 0.5) * s32, (levels - 0.5) * s32])
    return torch.cat([spread, ties]).to(dtype)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.nan_to_num(), b.nan_to_num())


def _values_and_grads(fn_ours, fn_torch, x: torch.Tensor) -> tuple[bool, bool]:
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = fn_ours(a), fn_torch(b)
    upstream = torch.randn(ya.shape, generator=torch.Generator().manual_seed(1)).to(x.dtype)
    ya.backward(upstream)
    yb.backward(upstream)
    return _same(ya.detach(), yb.detach()), _same(a.grad, b.grad)


# ------------------------------------------------------------------------------------------------ per tensor
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("tensor_qparams", [False, True])
def test_per_tensor_equals_torch(dtype, bits, signed, tensor_qparams):
    qmin, qmax = quant_range(bits, signed)
    for scale, zp in [(0.1, qmin + (qmax - qmin) // 3), (1 / 3, qmax), (2.0**-7, qmin), (7.3, (qmin + qmax) // 2)]:
        x = torch.cat([_inputs(scale, qmin, qmax, dtype), torch.tensor([float("nan"), float("inf"), -float("inf"),
                                                                        0.0, -0.0], dtype=dtype)])
        if tensor_qparams:
            s, z = torch.tensor([scale]), torch.tensor([zp], dtype=torch.int32)
        else:
            s, z = scale, zp
        same_y, same_g = _values_and_grads(
            lambda t: fake_quantize(t, s, z, bits, signed),  # noqa: B023
            lambda t: torch.fake_quantize_per_tensor_affine(t, s, z, qmin, qmax),  # noqa: B023
            x,
        )
        assert same_y, (dtype, bits, signed, scale, zp)
        assert same_g, (dtype, bits, signed, scale, zp)


def test_per_tensor_qparam_tensor_dtypes_torch_accepts():
    """torch takes float64/float16 scales and int64/float zero-point tensors per tensor; so do we, with its result."""
    x = _inputs(0.05, -128, 127, torch.float32)
    for s in (torch.tensor([0.05], dtype=torch.float64), torch.tensor([0.05], dtype=torch.float16)):
        for z in (torch.tensor([3]), torch.tensor([3], dtype=torch.int32), torch.tensor([3.0])):
            ours = fake_quantize(x, s, z, 8, True)
            assert torch.equal(ours, torch.fake_quantize_per_tensor_affine(x, s, z, -128, 127)), (s.dtype, z.dtype)


# ------------------------------------------------------------------------------------------------ per channel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("zp_dtype", [torch.int32, torch.float32, torch.float16])
def test_per_channel_equals_torch(dtype, bits, signed, zp_dtype):
    qmin, qmax = quant_range(bits, signed)
    base = _inputs(0.1, qmin, qmax, torch.float64, n=240)  # (960,)
    x = base[:960].reshape(4, 8, 30).to(dtype)  # (A, B, C)
    for axis in range(3):
        channels = x.shape[axis]
        g = torch.Generator().manual_seed(axis)
        scale = (0.02 + torch.rand(channels, generator=g) * 0.3).float()
        zp = torch.randint(qmin, qmax + 1, (channels,), generator=g)
        zp[0], zp[-1] = qmin, qmax
        if zp_dtype == torch.float16 and bits > 11:  # keep to zero-points that float16 holds exactly
            zp = torch.div(zp, 64, rounding_mode="floor") * 64
        zp = zp.to(zp_dtype) if zp_dtype == torch.int32 else (zp.double() + 0.25 * (zp < qmax)).to(zp_dtype)
        same_y, same_g = _values_and_grads(
            lambda t: fake_quantize(t, scale, zp, bits, signed, per_channel_axis=axis),  # noqa: B023
            lambda t: torch.fake_quantize_per_channel_affine(t, scale, zp, axis, qmin, qmax),  # noqa: B023
            x,
        )
        assert same_y, (dtype, bits, signed, zp_dtype, axis)
        assert same_g, (dtype, bits, signed, zp_dtype, axis)


def test_per_channel_bfloat16_scale_and_negative_axis():
    """torch's CPU kernel accepts a bfloat16 scale in its dtype check but then fails an internal assert; ours takes
    it as the float32 number it holds, and a negative axis counts from the end."""
    x = _inputs(0.1, -8, 7, torch.float32, n=150)[:600].reshape(20, 30)
    scale_bf16 = torch.linspace(0.05, 0.4, 30).to(torch.bfloat16)
    zp = torch.zeros(30, dtype=torch.int32)
    expected = torch.fake_quantize_per_channel_affine(x, scale_bf16.float(), zp, 1, -8, 7)
    assert torch.equal(fake_quantize(x, scale_bf16, zp, 4, True, per_channel_axis=1), expected)
    assert torch.equal(fake_quantize(x, scale_bf16.float(), zp, 4, True, per_channel_axis=-1), expected)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), bits=st.integers(2, 16), signed=st.booleans(),
       data=st.data())
def test_random_shapes_and_qparams_equal_torch(shape, bits, signed, data):
    qmin, qmax = quant_range(bits, signed)
    seed = data.draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * data.draw(st.floats(0.01, 100.0))
    axis = data.draw(st.one_of(st.none(), st.integers(0, len(shape) - 1)))
    if axis is None:
        scale, zp = data.draw(st.floats(1e-4, 10.0)), data.draw(st.integers(qmin, qmax))
        reference = torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
    else:
        scale = 1e-4 + torch.rand(shape[axis], generator=g) * 2
        zp = torch.randint(qmin, qmax + 1, (shape[axis],), generator=g, dtype=torch.int32)
        reference = torch.fake_quantize_per_channel_affine(x, scale, zp, axis, qmin, qmax)
    assert torch.equal(fake_quantize(x, scale, zp, bits, signed, per_channel_axis=axis), reference)


def test_straight_through_gradient_is_one_inside_and_zero_outside():
    x = torch.tensor([-3.0, -1.0, -0.26, 0.0, 0.4, 0.70, 0.76, 2.0], requires_grad=True)
    y = fake_quantize(x, 0.1, 0, bits=4, signed=True)  # levels -0.8 .. 0.7
    y.sum().backward()
    assert torch.equal(y.detach(), torch.tensor([-0.8, -0.8, -0.3, 0.0, 0.4, 0.7, 0.7, 0.7]))
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]  # round(7.6) = 8 > 7: outside


def test_quantize_dequantize_are_the_two_halves_of_fake_quantize():
    x = _inputs(0.05, 0, 15, torch.float32)
    q = quantize(x, 0.05, 3, bits=4, signed=False)
    assert q.dtype == torch.uint8 and int(q.min()) >= 0 and int(q.max()) <= 15
    assert torch.equal(dequantize(q, 0.05, 3), fake_quantize(x, 0.05, 3, 4, False))
    w = torch.randn(6, 5)
    scale, zp = torch.rand(6) + 0.01, torch.zeros(6, dtype=torch.long)
    qw = quantize(w, scale, zp, bits=12, per_channel_axis=0)
    assert qw.dtype == torch.int16
    assert torch.equal(dequantize(qw, scale, zp, per_channel_axis=0),
                       fake_quantize(w, scale, zp, 12, per_channel_axis=0))
    with pytest.raises(ValueError, match="NaN"):
        quantize(torch.tensor([float("nan")]), 0.1, 0)
    with pytest.raises(TypeError, match="integer tensor"):
        dequantize(torch.zeros(3), 0.1, 0)


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bits", [0, 1, 17, 32, -4])
def test_bits_outside_2_to_16_are_rejected(bits):
    with pytest.raises(ValueError, match="bits must be from 2 to 16"):
        fake_quantize(torch.randn(3), 0.1, 0, bits=bits)
    with pytest.raises(ValueError, match="bits"):
        quant_range(bits)


@pytest.mark.parametrize("bits", [2.0, "8", True, None])
def test_bits_of_the_wrong_type_are_rejected(bits):
    with pytest.raises(TypeError, match="bits must be an int"):
        fake_quantize(torch.randn(3), 0.1, 0, bits=bits)


@pytest.mark.parametrize("scale", [0.0, -0.1, float("inf"), float("nan"), torch.tensor([-1.0])])
def test_scale_must_be_positive_and_finite(scale):
    with pytest.raises(ValueError, match="scale must be positive"):
        fake_quantize(torch.randn(3), scale, 0)
    with pytest.raises(ValueError, match="scale must be positive"):
        fake_quantize(torch.randn(2, 3), torch.tensor([0.1, 0.0, 0.2]), torch.zeros(3, dtype=torch.int32),
                      per_channel_axis=1)


@pytest.mark.parametrize(("bits", "signed", "zp"), [(8, True, 128), (8, True, -129), (4, False, 16), (4, False, -1),
                                                   (2, True, 2), (16, False, 65536)])
def test_zero_point_outside_the_range_is_rejected(bits, signed, zp):
    with pytest.raises(ValueError, match=r"zero_point must lie in the integer range"):
        fake_quantize(torch.randn(3), 0.1, zp, bits, signed)
    with pytest.raises(ValueError, match=r"zero_point must lie in the integer range"):
        fake_quantize(torch.randn(2, 2), torch.ones(2), torch.tensor([0, zp], dtype=torch.int32) if zp < 2**31 else
                      torch.tensor([0, zp]), bits, signed, per_channel_axis=0)
    with pytest.raises(ValueError, match=r"zero_point must lie in the integer range"):
        fake_quantize(torch.randn(2, 2), torch.ones(2), torch.tensor([0.0, float(zp)]), bits, signed,
                      per_channel_axis=1)


def test_other_bad_inputs_name_the_argument():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        fake_quantize([1.0, 2.0], 0.1, 0)
    with pytest.raises(TypeError, match="floating-point"):
        fake_quantize(torch.arange(3), 0.1, 0)
    with pytest.raises(ValueError, match="per-tensor"):
        fake_quantize(torch.randn(3), torch.tensor([0.1, 0.2]), 0)
    with pytest.raises(ValueError, match=r"scale must have shape \(C,\) with C = 4"):
        fake_quantize(torch.randn(3, 4), torch.ones(3), torch.zeros(3, dtype=torch.int32), per_channel_axis=1)
    with pytest.raises(ValueError, match="per_channel_axis must be in"):
        fake_quantize(torch.randn(3, 4), torch.ones(4), torch.zeros(4, dtype=torch.int32), per_channel_axis=2)
    with pytest.raises(ValueError, match="zero_point must be an integer"):
        fake_quantize(torch.randn(3), 0.1, torch.tensor([1.5]))
    with pytest.raises(TypeError, match="signed must be True or False"):
        fake_quantize(torch.randn(3), 0.1, 0, signed=1)


# ------------------------------------------------------------------------------------------------ observers
def _torch_observer(cls, bits, signed, symmetric, ch_axis=None, **kw):
    from torch.ao import quantization as tq

    qmin, qmax = quant_range(bits, signed)
    dtype = (torch.qint8 if signed else torch.quint8) if bits <= 8 else torch.qint32
    if ch_axis is None:
        scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    else:
        scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
        kw["ch_axis"] = ch_axis
    kinds = {"minmax": (tq.MinMaxObserver, tq.PerChannelMinMaxObserver),
             "moving_average": (tq.MovingAverageMinMaxObserver, tq.MovingAveragePerChannelMinMaxObserver)}
    return kinds[cls][ch_axis is not None](dtype=dtype, qscheme=scheme, quant_min=qmin, quant_max=qmax, **kw)


@pytest.mark.parametrize("kind", ["minmax", "moving_average"])
@pytest.mark.parametrize("bits", [2, 4, 8, 12, 16])
@pytest.mark.parametrize(("signed", "symmetric"), [(True, False), (False, False), (True, True)])
@pytest.mark.parametrize("ch_axis", [None, 0, 1])
def test_observers_equal_torch(kind, bits, signed, symmetric, ch_axis):
    ours = make_observer(kind, bits=bits, signed=signed, symmetric=symmetric, ch_axis=ch_axis)
    theirs = _torch_observer(kind, bits, signed, symmetric, ch_axis)
    g = torch.Generator().manual_seed(bits)
    for shift in (0.5, -1.0, 3.0):  # three batches: the moving average differs from the min/max after the first
        x = torch.randn(5, 7, generator=g) * 2 + shift
        assert ours(x) is x
        theirs(x)
    scale, zp = ours.qparams()
    t_scale, t_zp = theirs.calculate_qparams()
    torch.testing.assert_close(scale, t_scale.float().reshape(-1), rtol=0, atol=0)
    assert torch.equal(zp, t_zp.long().reshape(-1))


def test_unsigned_symmetric_8_bit_zero_point_is_128_as_in_torch():
    ours = MinMaxObserver(bits=8, signed=False, symmetric=True)
    from torch.ao.quantization import MinMaxObserver as TorchMinMax

    theirs = TorchMinMax(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric)
    x = torch.randn(100)
    ours(x), theirs(x)
    assert ours.qparams()[1].item() == theirs.calculate_qparams()[1].item() == 128
    torch.testing.assert_close(ours.qparams()[0], theirs.calculate_qparams()[0], rtol=0, atol=0)


def test_percentile_observer_averages_batch_percentiles_and_ignores_outliers():
    import numpy as np

    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(1000, generator=g) for _ in range(3)]
    batches[1][0] = 1000.0  # one outlier
    obs = PercentileObserver(bits=8, percentile=99.0)
    for b in batches:
        obs(b)
    lo = np.mean([np.percentile(b.numpy(), 1.0) for b in batches])
    hi = np.mean([np.percentile(b.numpy(), 99.0) for b in batches])
    assert obs.min_val.item() == pytest.approx(lo, rel=1e-5)
    assert obs.max_val.item() == pytest.approx(hi, rel=1e-5)
    minmax = MinMaxObserver(bits=8)
    for b in batches:
        minmax(b)
    assert obs.qparams()[0].item() < minmax.qparams()[0].item() / 50  # the outlier no longer sets the step
    full = PercentileObserver(percentile=100)
    full(batches[0])
    assert full.min_val.item() == batches[0].min().item() and full.max_val.item() == batches[0].max().item()


def test_choose_qparams_holds_zero_and_covers_the_range():
    scale, zp = choose_qparams(0.5, 2.0, bits=4, signed=False)  # widened to [0, 2]
    assert zp.item() == 0 and scale.item() == pytest.approx(2.0 / 15)
    scale, zp = choose_qparams(torch.tensor([-1.0, -3.0]), torch.tensor([1.0, 1.0]), bits=8, signed=True)
    x = torch.tensor([[-1.0, 0.0, 1.0], [-3.0, 0.0, 1.0]])
    y = fake_quantize(x, scale, zp, 8, True, per_channel_axis=0)
    torch.testing.assert_close(y, x, atol=float(scale.max()) / 2, rtol=0)
    assert torch.equal(y[:, 1], torch.zeros(2))  # 0 is exactly representable


def test_observer_bad_input():
    with pytest.raises(RuntimeError, match="has not seen any data"):
        MinMaxObserver().qparams()
    with pytest.raises(ValueError, match="empty tensor"):
        MinMaxObserver()(torch.empty(0))
    with pytest.raises(ValueError, match="min_val must not exceed max_val"):
        choose_qparams(1.0, -1.0)
    with pytest.raises(ValueError, match="finite"):
        choose_qparams(float("-inf"), 1.0)
    with pytest.raises(ValueError, match="observer must be one of"):
        make_observer("histogram")
    with pytest.raises(ValueError, match="percentile must be in"):
        PercentileObserver(percentile=40)
    with pytest.raises(ValueError, match="averaging_constant"):
        MovingAverageMinMaxObserver(averaging_constant=0)
    with pytest.raises(ValueError, match="bits must be from 2 to 16"):
        MinMaxObserver(bits=1)
    obs = MinMaxObserver(ch_axis=0)
    obs(torch.randn(3, 4))
    with pytest.raises(ValueError, match="channel"):
        obs(torch.randn(5, 4))


def test_per_channel_observer_state_dict_round_trip():
    obs = MinMaxObserver(ch_axis=1)
    obs(torch.randn(4, 6))
    fresh = MinMaxObserver(ch_axis=1)
    fresh.load_state_dict(obs.state_dict())
    assert torch.equal(fresh.qparams()[0], obs.qparams()[0])
