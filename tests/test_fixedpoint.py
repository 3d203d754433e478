"""seqlib.fixedpoint: quantize, dequantize, saturation, shifts, products and width changes, against exact integers
and (optionally) fxpmath."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlib import fixedpoint as fx

pytestmark = pytest.mark.part4


# -- quantize / dequantize ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits,frac", [(8, 4), (16, 8), (16, 12), (32, 16), (12, 0), (32, 31)])
def test_quantize_error_is_half_an_ulp_inside_the_range(bits, frac):
    lo, hi = fx.qrange(bits)
    g = torch.Generator().manual_seed(bits * 100 + frac)
    x = (torch.rand(5000, generator=g, dtype=torch.float64) * (hi - lo) + lo) * 2.0**-frac  # inside the range
    q = fx.quantize(x, frac, bits)
    assert q.dtype == torch.int64
    assert int(q.min()) >= lo and int(q.max()) <= hi
    err = (fx.dequantize(q, frac) - x).abs()
    assert float(err.max()) <= 2.0 ** (-frac - 1)


def test_quantize_rounds_ties_to_even_and_saturates():
    ulp = 2.0**-4
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5]) * ulp  # exact ties
    assert fx.quantize(x, 4, 8).tolist() == [0, 2, 2, 0, -2]
    big = torch.tensor([1e9, -1e9, math.inf, -math.inf, 7.96875, 7.97, -8.0, -8.1])
    assert fx.quantize(big, 4, 8).tolist() == [127, -128, 127, -128, 127, 127, -128, -128]


def test_dequantize_is_exact_and_takes_a_dtype():
    q = torch.tensor([-(2**31), -1, 0, 1, 2**31 - 1])
    x = fx.dequantize(q, 16)
    assert x.dtype == torch.float64
    assert [v * 2**16 for v in x.tolist()] == q.tolist()
    assert fx.dequantize(q, 16, torch.float32).dtype == torch.float32


@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=20), st.integers(2, 32),
       st.integers(0, 31))
@settings(max_examples=60, deadline=None)
def test_quantize_matches_exact_rounding(values, bits, frac):
    frac = min(frac, bits - 1)
    lo, hi = fx.qrange(bits)
    q = fx.quantize(torch.tensor(values, dtype=torch.float64), frac, bits)
    expected = [min(max(round(v * 2**frac), lo), hi) for v in values]  # Python's round: ties to even
    assert q.tolist() == expected


# -- saturation, wrap, shifts ------------------------------------------------------------------------------------------
def test_saturate_and_wrap_differ_on_overflow():
    q = torch.tensor([127 + 1, -128 - 1, 300, -300, 5])
    assert fx.saturate(q, 8).tolist() == [127, -128, 127, -128, 5]
    assert fx.wrap(q, 8).tolist() == [-128, 127, 300 - 256, -300 + 512 - 256, 5]


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=30), st.integers(0, 20))
@settings(max_examples=60, deadline=None)
def test_shift_right_floor_and_nearest_against_python_integers(values, s):
    q = torch.tensor(values)
    assert fx.shift_right(q, s).tolist() == [v >> s for v in values]  # Python's >> floors
    assert fx.shift_right(q, s, "nearest").tolist() == [math.floor(v / 2**s + 0.5) for v in values]


def test_rescale_both_ways():
    q = fx.quantize(torch.tensor([1.25, -3.5, 7.9]), 4, 16)
    up = fx.rescale(q, 4, 8, 16)
    assert fx.dequantize(up, 8).tolist() == fx.dequantize(q, 4).tolist()
    assert fx.rescale(up, 8, 4, 16).tolist() == q.tolist()
    assert fx.rescale(q, 4, 14, 16).tolist() == [20480, -(2**15), 2**15 - 1]  # 1.25 fits, -3.5 and 7.9 saturate


# -- mul against exact integer arithmetic ------------------------------------------------------------------------------
@given(st.integers(2, 32), st.integers(0, 31), st.data())
@settings(max_examples=80, deadline=None)
def test_mul_against_exact_integer_arithmetic(bits, frac, data):
    frac = min(frac, bits - 1)
    lo, hi = fx.qrange(bits)
    a = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=12))
    b = data.draw(st.lists(st.integers(lo, hi), min_size=len(a), max_size=len(a)))
    got = fx.mul(torch.tensor(a), torch.tensor(b), frac, bits).tolist()
    assert got == [min(max((x * y) >> frac, lo), hi) for x, y in zip(a, b, strict=True)]
    near = fx.mul(torch.tensor(a), torch.tensor(b), frac, bits, rounding="nearest").tolist()
    assert near == [min(max(math.floor(x * y / 2**frac + 0.5), lo), hi) for x, y in zip(a, b, strict=True)]


def test_mul_extremes_of_32_bits_are_exact():
    lo, hi = fx.qrange(32)
    a = torch.tensor([lo, lo, hi, hi, -1])
    b = torch.tensor([lo, hi, hi, lo, lo])
    assert fx.mul(a, b, 0, 32).tolist() == [hi, lo, hi, lo, hi]  # saturated
    exact = [min(max((int(x) * int(y)) >> 31, lo), hi) for x, y in zip(a, b, strict=True)]
    assert fx.mul(a, b, 31, 32).tolist() == exact


def test_mul_broadcasts():
    a = torch.tensor([[256], [512]])
    b = torch.tensor([128, 64, -256])
    assert fx.mul(a, b, 8, 16).tolist() == [[128, 64, -256], [256, 128, -512]]


# -- width changes on bit patterns -------------------------------------------------------------------------------------
def test_extension_and_truncation_of_patterns():
    q = torch.tensor([-128, -1, 0, 1, 127])
    u8 = fx.to_unsigned(q, 8)
    assert u8.tolist() == [128, 255, 0, 1, 127]
    assert fx.to_signed(u8, 8).tolist() == q.tolist()
    s16 = fx.sign_extend(u8, 8, 16)
    assert s16.tolist() == [0xFF80, 0xFFFF, 0, 1, 127]
    assert fx.to_signed(s16, 16).tolist() == q.tolist()  # the value survives sign extension
    z16 = fx.zero_extend(u8, 8, 16)
    assert fx.to_signed(z16, 16).tolist() == [128, 255, 0, 1, 127]  # the pattern read as unsigned
    assert fx.truncate_bits(s16, 16, 8).tolist() == u8.tolist()  # and narrowing back is exact
    assert fx.truncate_bits(torch.tensor([0x1234]), 16, 8).tolist() == [0x34]


@given(st.lists(st.integers(-(2**20), 2**20 - 1), min_size=1, max_size=20), st.integers(21, 40))
@settings(max_examples=40, deadline=None)
def test_sign_extension_preserves_values(values, to_bits):
    u = fx.to_unsigned(torch.tensor(values), 21)
    assert fx.to_signed(fx.sign_extend(u, 21, to_bits), to_bits).tolist() == values


# -- fxpmath as an optional reference ----------------------------------------------------------------------------------
def test_against_fxpmath():
    fxpmath = pytest.importorskip("fxpmath", reason="fxpmath (a reference package of the test extra) is missing")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, generator=g, dtype=torch.float64) * 40
    for bits, frac in [(16, 8), (12, 4), (24, 16), (8, 7)]:
        ref = fxpmath.Fxp(x.numpy(), signed=True, n_word=bits, n_frac=frac, rounding="around", overflow="saturate")
        assert fx.quantize(x, frac, bits).tolist() == [int(v) for v in ref.val]
        a = fx.quantize(x[:1000], frac, bits)
        b = fx.quantize(x[1000:], frac, bits)
        # fxpmath's product at 2f fractional bits, then its floor shift back to f bits and saturation
        fa = fxpmath.Fxp(None, signed=True, n_word=bits, n_frac=frac)
        fa.set_val(a.numpy(), raw=True)
        fb = fxpmath.Fxp(None, signed=True, n_word=bits, n_frac=frac)
        fb.set_val(b.numpy(), raw=True)
        prod = fxpmath.Fxp(fa.get_val() * fb.get_val(), signed=True, n_word=bits, n_frac=frac, rounding="floor",
                           overflow="saturate")
        assert fx.mul(a, b, frac, bits).tolist() == [int(v) for v in prod.val]


# -- bad input ---------------------------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    q = torch.tensor([1, 2])
    with pytest.raises(TypeError, match="integer tensor"):
        fx.mul(torch.tensor([1.0]), q[:1], 4)
    with pytest.raises(TypeError, match="floating-point"):
        fx.quantize(q, 4)
    with pytest.raises(TypeError, match="torch.Tensor"):
        fx.quantize([1.0], 4)
    with pytest.raises(ValueError, match="frac_bits < bits"):
        fx.quantize(torch.tensor([1.0]), 16, 16)
    with pytest.raises(ValueError, match="frac_bits < bits"):
        fx.mul(q, q, 8, 8)
    with pytest.raises(ValueError, match="from 2 to 32"):
        fx.quantize(torch.tensor([1.0]), 4, 33)
    with pytest.raises(ValueError, match="outside the signed 8-bit range"):
        fx.mul(torch.tensor([300]), torch.tensor([1]), 4, 8)  # mismatched bit-widths
    with pytest.raises(ValueError, match="NaN"):
        fx.quantize(torch.tensor([math.nan]), 4)
    with pytest.raises(ValueError, match="from_bits must be from 2 to 8"):
        fx.sign_extend(torch.tensor([1]), 16, 8)  # widening to fewer bits
    with pytest.raises(ValueError, match="8-bit patterns"):
        fx.sign_extend(torch.tensor([-1]), 8, 16)  # a value, not a pattern
    with pytest.raises(ValueError, match="rounding"):
        fx.shift_right(q, 1, "up")
    with pytest.raises(TypeError, match="frac_bits must be an int"):
        fx.quantize(torch.tensor([1.0]), 4.0)
