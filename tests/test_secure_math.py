"""seqlib.secure_math: every math function on shares returns the cleartext integers of seqlib.lut bit for bit, and
its communication is the sum of its protocols' formulas."""

from __future__ import annotations

import math

import pytest
import torch

from seqlib import lut
from seqlib import secure_math as sm
from seqlib.mpc import split_widths
from seqlib.twoparty import TwoParty

pytestmark = pytest.mark.part4


def inputs(f: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    edges = torch.tensor([0, 1, -1, 1 << f, -(1 << f), 1 << (f + 6), -(1 << (f + 6)), 1 << 40, -(1 << 40)])
    return torch.cat([torch.randint(-(20 << f), 20 << f, (400,), generator=g), edges])


@pytest.mark.parametrize("f,d,g,ring,cmp", [(12, 8, 12, 64, 4), (8, 4, 10, 64, 2), (16, 6, 16, 64, 4),
                                            (6, 3, 6, 48, 3), (10, 8, 8, 64, 1)])
def test_secure_functions_equal_the_cleartext_ones(f, d, g, ring, cmp):
    tp = TwoParty(ring_bits=ring, compare_bits=cmp, seed=f + d)
    q = inputs(f, seed=d)
    if ring < 64:  # the generic recipe's squarings leave a small ring for |x| >> 2^n; stay where it is defined
        q = q.clamp(-(1 << (f + 6)), 1 << (f + 6))
    x = tp.share_input(1, q)
    neg = tp.share_input(1, -q.abs())
    assert torch.equal(tp.reveal(sm.sigmoid_lut(tp, x, f, d, g)), lut.sigmoid_lut(q, f, d, g))
    assert torch.equal(tp.reveal(sm.tanh_lut(tp, x, f, d, g)), lut.tanh_lut(q, f, d, g))
    assert torch.equal(tp.reveal(sm.exp_lut(tp, neg, f, d, g)), lut.exp_lut(-q.abs(), f, d, g))
    assert torch.equal(tp.reveal(sm.sigmoid_generic(tp, x, f)), lut.sigmoid_generic(q, f))
    assert torch.equal(tp.reveal(sm.tanh_generic(tp, x, f)), lut.tanh_generic(q, f))
    assert torch.equal(tp.reveal(sm.exp_generic(tp, neg, f, 6)), lut.exp_generic(-q.abs(), f, 6))
    d_plain = torch.randint(1 << g, (2 << g) + 1, (50,))
    D = tp.share_input(0, d_plain)
    assert torch.equal(tp.reveal(sm.reciprocal_newton(tp, D, g)), lut.reciprocal_newton(d_plain, g))


# -- the communication of a sigmoid, from the formulas of its protocols ------------------------------------------------
ELL, CMP = 64, 4


def prefix_gates(K: int) -> int:
    gates, span = 0, 1
    while span < K:
        gates += 2 * sum(1 for i in range(K) if (i // span) % 2 == 1)
        span *= 2
    return gates


def decompose_bits(n: int, widths: list[int], lookups: int = 0) -> int:
    """open c = x + r (l bits each way), the AND gates of the prefix (2 bits each way), one masked bit per lookup."""
    return n * (2 * ELL + 4 * prefix_gates(len(widths)) + 2 * lookups)


def mul_bits(n: int) -> int:
    return n * 4 * ELL  # D and E, l bits each, each way


def trunc_bits(n: int, s: int) -> int:
    return decompose_bits(n, split_widths([s, ELL], CMP)) + 4 * n  # and two bits converted


def sigmoid_bits(n: int, f: int, d: int, g: int) -> int:
    msb = decompose_bits(n, split_widths([ELL - 1], CMP))
    b2a = 2 * n
    widths = lut.exp_digit_widths(f, d, g)
    starts = [sum(widths[:k]) for k in range(1, len(widths) + 1)]
    digits = decompose_bits(2 * n, split_widths(starts + [ELL - 1], CMP)) + 2 * n * len(widths)
    tree, K = 0, len(widths)
    while K > 1:
        pairs = K // 2
        tree += mul_bits(pairs * n) + trunc_bits(pairs * n, g)
        K -= pairs
    newton = 0
    for k in range(lut.newton_iterations(g)):
        newton += 2 * (mul_bits(n) + trunc_bits(n, g + 1 if k == 0 else g))
    if lut.newton_iterations(g) == 0:
        newton = trunc_bits(n, 1)
    # |x| (one product), the range flag's conversion and product, the final selection
    return msb + b2a + mul_bits(n) + digits + tree + b2a + mul_bits(n) + newton + mul_bits(n)


@pytest.mark.parametrize("f,d", [(12, 8), (12, 4), (16, 6), (3, 8)])
def test_sigmoid_communication_is_the_sum_of_its_protocols(f, d):
    tp = TwoParty(seed=0)
    n = 30
    x = tp.share_input(1, torch.arange(n) - 15)
    tp.channel.online.clear()
    sm.sigmoid_lut(tp, x, f, d)
    assert tp.totals().bits == sigmoid_bits(n, f, d, f)
    assert {k[1][0] for k in tp.channel.online} == {"sigmoid"}


def test_tables_need_less_communication_than_the_generic_recipe():
    for f in (12, 16):
        tp = TwoParty(seed=1)
        x = tp.share_input(1, torch.arange(100) - 50)
        tp.channel.online.clear()
        sm.sigmoid_lut(tp, x, f, 8)
        lut_bits, lut_rounds = tp.totals().bits, tp.totals().rounds
        tp.channel.online.clear()
        sm.sigmoid_generic(tp, x, f)
        assert lut_bits < tp.totals().bits and lut_rounds < tp.totals().rounds
        assert math.isfinite(lut_bits)


def test_function_cost_reports_per_element_figures():
    one = sm.function_cost("sigmoid_lut", 12, 8, n=10)
    many = sm.function_cost("sigmoid_lut", 12, 8, n=40)
    assert one["online_bytes"] == many["online_bytes"] == sigmoid_bits(10, 12, 8, 12) / 8 / 10
    assert one["rounds"] == many["rounds"]  # rounds do not grow with the number of elements
    assert sm.function_cost("exp_generic", 12)["online_bytes"] > sm.function_cost("exp_lut", 12)["online_bytes"]
    with pytest.raises(ValueError, match="method"):
        sm.function_cost("sigmoid_poly", 12)
