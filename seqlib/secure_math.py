r"""The math functions of :mod:`seqlib.lut` on secret shares, bit for bit the same integers (C30, C32).

Each function takes a :class:`~seqlib.twoparty.TwoParty` and a :class:`~seqlib.mpc.Shared` value and follows its
cleartext twin step by step, replacing each integer operation by its protocol:

==================================  ================================================================================
cleartext                           on shares
==================================  ================================================================================
``a + b``, ``k * a``, ``a << k``    local
``a * b``                           Beaver triple, one round (:meth:`~seqlib.twoparty.TwoParty.mul`)
``a >> s``                          exact truncation (:meth:`~seqlib.twoparty.TwoParty.trunc`)
``q < 0``, ``where``                the sign bit (:meth:`~seqlib.twoparty.TwoParty.msb`) and a product with it
``T_k[a_k]``                        digits by masking, a rotated table (:meth:`~seqlib.twoparty.TwoParty.decompose`)
==================================  ================================================================================

**SIRNN's exp** (:func:`exp_lut`): the digits of :math:`a = -x` and the overflow test :math:`a \ge 2^n` come
from one masked opening of the stacked pair :math:`(a, a - 2^n)` (the test is the sign of :math:`a - 2^n`);
each digit is a rotated-table lookup, then the factors are multiplied level by level of the same product
tree, each level one Beaver round and one truncation. **The generic exp** (:func:`exp_generic`) needs one
truncation and then :math:`n` squarings, each a Beaver round and a truncation: the communication of the
truncations is what SIRNN's tables save.

Every function runs inside ``tp.scope(name)``, so the channel attributes its messages to it.
"""

from __future__ import annotations

import torch

from .lut import exp_digit_widths, exp_tables, newton_iterations, product_tree
from .mpc import Shared, split_widths
from .twoparty import TwoParty

__all__ = ["exp_lut", "reciprocal_newton", "sigmoid_lut", "tanh_lut", "exp_generic", "reciprocal_generic",
           "sigmoid_generic", "tanh_generic", "abs_and_sign", "function_cost"]


def _mul_trunc_all(tp: TwoParty, shift: int):
    """``product_tree``'s level product on shares: all pairs of a level in one Beaver round and one truncation."""
    def mul_all(lefts: list[Shared], rights: list[Shared]) -> list[Shared]:
        prod = tp.trunc(tp.mul(Shared.stack(lefts), Shared.stack(rights)), shift)  # (pairs, *)
        return [prod[k] for k in range(len(lefts))]
    return mul_all


def _exp_nonneg(tp: TwoParty, a: Shared, frac_bits: int, digit_bits: int, out_frac_bits: int) -> Shared:
    r""":math:`e^{-a}` for a shared :math:`a \ge 0`, as :func:`seqlib.lut.exp_lut` computes it for :math:`q = -a`."""
    widths = exp_digit_widths(frac_bits, digit_bits, out_frac_bits)
    if not widths:
        raise ValueError("exp_lut on shares needs at least one input bit (frac_bits + integer bits > 0)")
    ell = tp.ring_bits
    starts = [sum(widths[:k]) for k in range(len(widths) + 1)]  # LUT digit boundaries 0, d, 2d, ..., n
    n = starts[-1]
    tables = exp_tables(frac_bits, digit_bits, out_frac_bits)
    lookups = [(s, w, t) for s, w, t in zip(starts, widths, tables, strict=False)]
    pair = Shared.stack([a, a - (1 << n)])  # (2, *): digits of a, and the sign of a - 2^n (= [a < 2^n])
    dec = tp.decompose(pair, split_widths(starts[1:] + [ell - 1], tp.compare_bits), r_bits=[ell - 1],
                       lookups=lookups, lookup_of=0)
    top = ((dec.c[1] >> (ell - 1)) & 1).to(torch.uint8)
    in_range = dec.borrows[ell - 1][1] ^ dec.r_bits[ell - 1][1] ^ top  # a - 2^n < 0
    e = product_tree(dec.lookups, _mul_trunc_all(tp, out_frac_bits))  # the factors T_k[a_k], multiplied
    return tp.mul(e, tp.b2a(in_range))  # 0 where a >= 2^n


def exp_lut(tp: TwoParty, x: Shared, frac_bits: int, digit_bits: int = 8, out_frac_bits: int | None = None) -> Shared:
    r""":func:`seqlib.lut.exp_lut` on shares, for :math:`x \le 0` (a shared input is not checked)."""
    g = frac_bits if out_frac_bits is None else out_frac_bits
    with tp.scope("exp"):
        return _exp_nonneg(tp, -x, frac_bits, digit_bits, g)


def reciprocal_newton(tp: TwoParty, d: Shared, frac_bits: int, iterations: int | None = None) -> Shared:
    r""":func:`seqlib.lut.reciprocal_newton` on shares (:math:`D \in [1, 2]`)."""
    g = frac_bits
    steps = newton_iterations(g) if iterations is None else iterations
    y, shift = -d + (3 << g), g + 1  # y0 = (3 - D) / 2 with g + 1 fractional bits
    for _ in range(steps):
        t = tp.trunc(tp.mul(d, y), shift)
        y = tp.trunc(tp.mul(y, -t + (2 << g)), shift)
        shift = g
    return y if steps else tp.trunc(y, 1)


def abs_and_sign(tp: TwoParty, x: Shared) -> tuple[Shared, Shared]:
    r""":math:`(|x|, s)` with :math:`s = [x < 0]` as a shared 0/1: the sign bit, converted, and
    :math:`|x| = x - 2 s x` (one product)."""
    s = tp.b2a(tp.msb(x))
    return x - tp.mul(s, x) * 2, s


def sigmoid_lut(tp: TwoParty, x: Shared, frac_bits: int, digit_bits: int = 8,
                out_frac_bits: int | None = None) -> Shared:
    r""":func:`seqlib.lut.sigmoid_lut` on shares: :math:`y = 1/(1 + e^{-|x|})`, then :math:`y + s(1 - 2y)`."""
    g = frac_bits if out_frac_bits is None else out_frac_bits
    with tp.scope("sigmoid"):
        a, s = abs_and_sign(tp, x)
        e = _exp_nonneg(tp, a, frac_bits, digit_bits, g)
        y = reciprocal_newton(tp, e + (1 << g), g)
        return y + tp.mul(s, -(y * 2) + (1 << g))


def tanh_lut(tp: TwoParty, x: Shared, frac_bits: int, digit_bits: int = 8,
             out_frac_bits: int | None = None) -> Shared:
    r""":func:`seqlib.lut.tanh_lut` on shares: :math:`t = \sigma(2|x|)\,2^{g+1} - 2^g`, then :math:`t - 2 s t`."""
    g = frac_bits if out_frac_bits is None else out_frac_bits
    with tp.scope("tanh"):
        a, s = abs_and_sign(tp, x)
        e = _exp_nonneg(tp, a * 2, frac_bits, digit_bits, g + 1)
        t = reciprocal_newton(tp, e + (1 << (g + 1)), g + 1) - (1 << g)
        return t - tp.mul(s, t) * 2


# ---------------------------------------------------------------------------------------------------------------------
# the generic approximations on shares
# ---------------------------------------------------------------------------------------------------------------------
def exp_generic(tp: TwoParty, x: Shared, frac_bits: int, iterations: int = 8) -> Shared:
    r""":func:`seqlib.lut.exp_generic` on shares: one truncation, then ``iterations`` squarings."""
    with tp.scope("exp"):
        y = tp.trunc(x, iterations) + (1 << frac_bits)
        for _ in range(iterations):
            y = tp.trunc(tp.mul(y, y), frac_bits)
        return y


def reciprocal_generic(tp: TwoParty, d: Shared, frac_bits: int, iterations: int = 3,
                       initial: float = 0.75) -> Shared:
    r""":func:`seqlib.lut.reciprocal_generic` on shares: :math:`y \leftarrow 2y - D y^2` from a public constant."""
    y = tp.public(round(initial * 2**frac_bits), d.shape)
    for _ in range(iterations):
        y = y * 2 - tp.trunc(tp.mul(d, tp.trunc(tp.mul(y, y), frac_bits)), frac_bits)
    return y


def sigmoid_generic(tp: TwoParty, x: Shared, frac_bits: int, exp_iterations: int = 9,
                    recip_iterations: int = 3) -> Shared:
    r""":func:`seqlib.lut.sigmoid_generic` on shares."""
    f = frac_bits
    with tp.scope("sigmoid"):
        a, s = abs_and_sign(tp, x)
        with tp.scope("exp"):
            y = tp.trunc(-a, exp_iterations) + (1 << f)
            for _ in range(exp_iterations):
                y = tp.trunc(tp.mul(y, y), f)
        y = reciprocal_generic(tp, y + (1 << f), f, recip_iterations)
        return y + tp.mul(s, -(y * 2) + (1 << f))


def tanh_generic(tp: TwoParty, x: Shared, frac_bits: int, exp_iterations: int = 9,
                 recip_iterations: int = 3) -> Shared:
    r""":func:`seqlib.lut.tanh_generic` on shares: :math:`2\sigma(2x) - 1`."""
    with tp.scope("tanh"):
        return sigmoid_generic(tp, x * 2, frac_bits, exp_iterations, recip_iterations) * 2 - (1 << frac_bits)


# ---------------------------------------------------------------------------------------------------------------------
# measuring: what one function costs on shares
# ---------------------------------------------------------------------------------------------------------------------
def function_cost(method: str, frac_bits: int, digit_bits: int = 8, n: int = 64, ring_bits: int = 64,
                  compare_bits: int = 4, seed: int = 0) -> dict[str, float]:
    r"""Run one of :data:`seqlib.lut.METHODS` on ``n`` shared inputs and return its cost per element.

    Returns:
        ``{"online_bytes", "offline_bytes"}`` per element, ``"rounds"`` (for the whole vector: rounds do not grow
        with ``n``), and ``"online_bits"`` in total.
    """
    fns = {"exp_lut": lambda tp, x: exp_lut(tp, -x, frac_bits, digit_bits),
           "exp_generic": lambda tp, x: exp_generic(tp, -x, frac_bits),
           "sigmoid_lut": lambda tp, x: sigmoid_lut(tp, x, frac_bits, digit_bits),
           "sigmoid_generic": lambda tp, x: sigmoid_generic(tp, x, frac_bits),
           "tanh_lut": lambda tp, x: tanh_lut(tp, x, frac_bits, digit_bits),
           "tanh_generic": lambda tp, x: tanh_generic(tp, x, frac_bits)}
    if method not in fns:
        raise ValueError(f"method must be one of {', '.join(fns)}, but got {method!r}")
    tp = TwoParty(ring_bits=ring_bits, compare_bits=compare_bits, seed=seed)
    x = tp.share_input(1, torch.randint(0, 4 << frac_bits, (n,), generator=torch.Generator().manual_seed(seed)))
    tp.channel.online.clear()
    fns[method](tp, x)
    online, offline = tp.totals(), tp.totals(online=False)
    return {"online_bytes": online.bits / 8 / n, "offline_bytes": offline.bits / 8 / n, "rounds": online.rounds,
            "online_bits": online.bits}
