"""seqlib.lut: the table-based math functions against float math over their whole input range, with error bounds
derived from the bit-widths (digits, fractional bits, Newton steps), and the generic approximations."""

from __future__ import annotations

import math

import pytest
import torch

from seqlib import lut
from seqlib.fixedpoint import dequantize

pytestmark = pytest.mark.part4

# (f, d, g): input fractional bits, digit bits, output fractional bits
CONFIGS = [(8, 8, 8), (12, 8, 12), (12, 4, 12), (16, 8, 16), (16, 6, 14), (6, 3, 10), (4, 8, 4), (10, 5, 6)]


def inputs(f: int, span: float, seed: int = 0) -> torch.Tensor:
    """Every integer in [-span 2^f, span 2^f] when that is small, else 200k random ones plus the ends."""
    n = int(span * 2**f)
    if n <= 200_000:
        return torch.arange(-n, n + 1)
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randint(-n, n + 1, (200_000,), generator=g), torch.tensor([-n, -1, 0, 1, n])])


# -- the error bounds, derived from the bit-widths ---------------------------------------------------------------------
def exp_bound(f: int, d: int, g: int) -> float:
    """K table entries, each within half an ulp u = 2^-g of a factor <= 1; K - 1 floors below one ulp each; the
    product of the K entry errors adds at most K^2 u^2."""
    K = len(lut.exp_digit_widths(f, d, g))
    u = 2.0**-g
    return (1.5 * K - 1) * u + K * K * u * u


def recip_bound(g: int) -> float:
    """Newton from y0 = (3 - D)/2 (exact; |y0 - 1/D| <= 1/8 on [1, 2]): y(2 - Dy) = 1/D - D e^2 and two floors add
    below (1 + e) ulps, so e <- 2 e^2 + (1 + e) u per step; with no step, the final floor adds half an ulp."""
    u, e = 2.0**-g, 0.125
    steps = lut.newton_iterations(g)
    for _ in range(steps):
        e = 2 * e * e + (1 + e) * u
    return e if steps else e + u / 2


def test_the_integer_bits_of_exp_make_the_rest_underflow():
    for g in range(0, 31):
        m = lut.exp_int_bits(g)
        assert math.exp(-(2**m)) < 2.0 ** (-g - 1)  # |x| >= 2^m rounds to 0
        assert m == 0 or math.exp(-(2 ** (m - 1))) >= 2.0 ** (-g - 1)  # and m is the smallest such


@pytest.mark.parametrize("f,d,g", CONFIGS)
def test_exp_lut_within_its_bound_over_the_whole_range(f, d, g):
    m = lut.exp_int_bits(g)
    q = inputs(f, 2 ** (m + 1))
    q = -q.abs()
    e = lut.exp_lut(q, f, d, g)
    err = (dequantize(e, g) - torch.exp(dequantize(q, f))).abs()
    assert float(err.max()) <= exp_bound(f, d, g)
    assert int(lut.exp_lut(torch.tensor([0]), f, d, g)) == 1 << g  # e^0 = 1 exactly
    assert lut.exp_lut(torch.tensor([-(1 << (f + m)), -(1 << 40)]), f, d, g).tolist() == [0, 0]  # underflow


def test_exp_lut_is_the_product_of_its_table_entries():
    f, d, g = 12, 4, 12
    tables = lut.exp_tables(f, d, g)
    widths = lut.exp_digit_widths(f, d, g)
    assert [len(t) for t in tables] == [2**w for w in widths]
    a = 0b1011_0110_1101_0011
    digits, shift = [], 0
    for w in widths:
        digits.append((a >> shift) & (2**w - 1))
        shift += w
    factors = [int(t[v]) for t, v in zip(tables, digits, strict=True)]
    level = factors
    while len(level) > 1:  # the documented pairing: [ab, cd, e] ...
        level = [(level[i] * level[i + 1]) >> g for i in range(0, len(level) - 1, 2)] + level[len(level) // 2 * 2:]
    expected = level[0] if a < 2**shift else 0
    assert int(lut.exp_lut(torch.tensor([-a]), f, d, g)) == expected


def test_product_tree_pairs_level_by_level():
    seen = []

    def mul_all(lefts, rights):
        seen.append(list(zip(lefts, rights, strict=True)))
        return [f"({a}{b})" for a, b in zip(lefts, rights, strict=True)]

    assert lut.product_tree(list("abcde"), mul_all) == "(((ab)(cd))e)"
    assert seen == [[("a", "b"), ("c", "d")], [("(ab)", "(cd)")], [("((ab)(cd))", "e")]]


@pytest.mark.parametrize("g", [2, 4, 8, 12, 16, 24, 30])
def test_reciprocal_within_its_bound(g):
    d = torch.arange(1 << g, (2 << g) + 1) if g <= 16 else torch.randint(1 << g, (2 << g) + 1, (200_000,))
    y = lut.reciprocal_newton(d, g)
    err = (dequantize(y, g) - 1 / dequantize(d, g)).abs()
    assert float(err.max()) <= recip_bound(g)
    if g >= 8:
        assert recip_bound(g) <= 2.0 ** (1 - g)  # the steps stop at two ulps


@pytest.mark.parametrize("f,d,g", CONFIGS)
def test_sigmoid_lut_within_its_bound_and_symmetric(f, d, g):
    q = inputs(f, 2 ** (lut.exp_int_bits(g) + 1))
    s = lut.sigmoid_lut(q, f, d, g)
    err = (dequantize(s, g) - torch.sigmoid(dequantize(q, f))).abs()
    # |d sigma / d e| <= 1 on e in [0, 1], so the exp error passes through; the reciprocal adds its own
    assert float(err.max()) <= exp_bound(f, d, g) + recip_bound(g)
    assert bool((s + lut.sigmoid_lut(-q, f, d, g) == (1 << g)).all())  # sigma(-x) = 1 - sigma(x), exactly
    assert int(lut.sigmoid_lut(torch.tensor([0]), f, d, g)) == 1 << (g - 1)


@pytest.mark.parametrize("f,d,g", CONFIGS)
def test_tanh_lut_within_its_bound_and_odd(f, d, g):
    q = inputs(f, 2 ** (lut.exp_int_bits(g + 1) + 1))
    t = lut.tanh_lut(q, f, d, g)
    err = (dequantize(t, g) - torch.tanh(dequantize(q, f))).abs()
    # tanh = 2 sigma(2|x|) - 1 with sigma at g + 1 bits: twice sigma's error at u = 2^-(g+1)
    assert float(err.max()) <= 2 * (exp_bound(f, d, g + 1) + recip_bound(g + 1))
    assert torch.equal(lut.tanh_lut(-q, f, d, g), -t)
    assert lut.tanh_lut(torch.tensor([0, 1 << 40, -(1 << 40)]), f, d, g).tolist() == [0, 1 << g, -(1 << g)]


@pytest.mark.parametrize("f,d,g", [(8, 8, 8), (12, 8, 12), (16, 4, 16), (16, 8, 12), (6, 2, 10), (20, 8, 20)])
def test_rsqrt_lut_within_its_bound(f, d, g):
    n = 1 << (f + 8)
    q = torch.arange(1, n) if n <= 300_000 else torch.randint(1, n, (200_000,), generator=torch.Generator())
    r = lut.rsqrt_lut(q, f, d, g)
    exact = dequantize(q, f).rsqrt()
    G = g + 2
    u = 2.0**-G
    eps = 2.0 ** (-d - 2) + u  # table: half an interval of width 2^-d, plus the rounded entry
    for _ in range(lut.rsqrt_iterations(g, d)):
        eps = 1.5 * eps * eps + 0.5 * eps**3 + 7 * u  # Newton's relative error, plus three floors
    eps += u / 2  # the normalised input itself floored to G bits
    assert bool(((dequantize(r, g) - exact).abs() <= exact * eps + 2.0**-g).all())


def test_lut_beats_the_generic_approximations_at_equal_fractional_bits():
    for f in (12, 16):
        q = torch.arange(-(8 << f), (8 << f) + 1, 7)
        exact = torch.sigmoid(dequantize(q, f))
        err_lut = (dequantize(lut.sigmoid_lut(q, f), f) - exact).abs().max()
        err_gen = (dequantize(lut.sigmoid_generic(q, f), f) - exact).abs().max()
        err_poly = (dequantize(lut.sigmoid_poly(q, f), f) - exact).abs().max()
        assert err_lut < err_gen / 10 and err_lut < err_poly / 10


def test_generic_functions_follow_their_recipes():
    f = 12
    q = torch.arange(-(6 << f), 1, 37)
    x = dequantize(q, f)
    # exp: (1 + x/2^n)^(2^n), floor after the shift and after each squaring
    e8 = lut.exp_generic(q, f, 8)
    y = (1 << f) + (q >> 8)
    for _ in range(8):
        y = (y * y) >> f
    assert torch.equal(e8, y)
    d = torch.arange(1 << f, (2 << f) + 1, 5)
    r = lut.reciprocal_generic(d, f, iterations=6)
    assert float((dequantize(r, f) - 1 / dequantize(d, f)).abs().max()) < 1e-3
    # tanh = 2 sigma(2x) - 1, exactly in integers
    assert torch.equal(lut.tanh_generic(q, f), 2 * lut.sigmoid_generic(2 * q, f) - (1 << f))
    # a higher-degree polynomial fits better
    p3 = (dequantize(lut.sigmoid_poly(q, f, degree=3), f) - torch.sigmoid(x)).abs().max()
    p9 = (dequantize(lut.sigmoid_poly(q, f, degree=9), f) - torch.sigmoid(x)).abs().max()
    assert p9 < p3


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="x <= 0"):
        lut.exp_lut(torch.tensor([-5, 3]), 8)
    with pytest.raises(TypeError, match="integer tensor"):
        lut.sigmoid_lut(torch.tensor([0.5]), 8)
    with pytest.raises(ValueError, match="digit_bits must be from 1 to 12"):
        lut.exp_lut(torch.tensor([-5]), 8, digit_bits=0)
    with pytest.raises(ValueError, match="frac_bits must be from 0 to 30"):
        lut.tanh_lut(torch.tensor([1]), 31)
    with pytest.raises(ValueError, match="x > 0"):
        lut.rsqrt_lut(torch.tensor([4, 0]), 8)
    with pytest.raises(ValueError, match=r"D in \[1, 2\]"):
        lut.reciprocal_newton(torch.tensor([10]), 8)
    with pytest.raises(ValueError, match="power of two"):
        lut.sigmoid_poly(torch.tensor([1]), 8, bound=6)


def test_function_error_measures_against_float_math():
    out = lut.function_error("tanh_lut", 10, digit_bits=5, span=3.0, points=500)
    assert set(out) == {"x", "approx", "exact", "error", "max_error"}
    q = torch.round(out["x"] * 2**10).long()
    assert torch.equal(out["approx"], dequantize(lut.tanh_lut(q, 10, 5), 10))
    torch.testing.assert_close(out["error"], (out["approx"] - torch.tanh(out["x"])).abs())
    assert float(out["x"].min()) == -3.0 and float(lut.function_error("exp_lut", 8)["x"].max()) == 0.0
    with pytest.raises(ValueError, match="method"):
        lut.function_error("softmax_lut", 8)
