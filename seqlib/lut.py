r"""Math functions from lookup tables, the SIRNN way, next to the generic approximations (C30).

Neither a microcontroller without a floating-point unit nor a two-party protocol (:mod:`seqlib.mpc`) has
``exp``. On fixed-point integers (:mod:`seqlib.fixedpoint`) the course builds it from small tables.

**exp by digit decomposition.** For :math:`x \le 0` with :math:`f` fractional bits, :math:`a = -x\,2^f` is a
non-negative integer. Split its bits into :math:`d`-bit digits, :math:`a = \sum_k a_k\,2^{kd}`; then

.. math::
    e^{x} = e^{-a\,2^{-f}} = \prod_k e^{-a_k\,2^{kd-f}} = \prod_k T_k[a_k], \qquad
    T_k[v] = \operatorname{round}\big(e^{-v\,2^{kd-f}}\,2^{g}\big),\ v = 0 .. 2^d-1,

so :math:`K` tables of :math:`2^d` entries replace one table of :math:`2^{K d}` entries, and the looked-up
factors are multiplied in fixed point (output :math:`g` fractional bits). Only :math:`n = f + m` bits of
:math:`a` matter: once :math:`|x| \ge 2^m` with :math:`2^m > (g+1)\ln 2`, :math:`e^x < 2^{-g-1}` rounds to 0
(:func:`exp_int_bits`). Each entry is off by at most half an ulp and each of the :math:`K-1` products adds a
floor error below one ulp, so the error is at most :math:`(1.5K - 1)` ulps of :math:`2^{-g}`.

**sigmoid and tanh from exp and a reciprocal.** For :math:`a = |x|`,
:math:`\sigma(a) = 1/(1 + e^{-a})` with a denominator :math:`D \in [1, 2]`, whose reciprocal is found by
Newton–Raphson, :math:`y \leftarrow y\,(2 - D y)`, from :math:`y_0 = 3/2 - D/2` (error at most 1/8; each
step squares it: :func:`newton_iterations`). The symmetries :math:`\sigma(-a) = 1 - \sigma(a)` and
:math:`\tanh(a) = 2\sigma(2a) - 1`, :math:`\tanh(-a) = -\tanh(a)` give the negative inputs and tanh.

**rsqrt** (reciprocal square root, for normalisation layers): normalise :math:`x = 2^{2s} m` with
:math:`m \in [1, 4)`, look the first guess of :math:`1/\sqrt{m}` up in a table indexed by the :math:`d` bits
after the leading one, refine by Newton :math:`y \leftarrow y (3 - m y^2)/2`, shift by :math:`2^{-s}`.

**The generic approximations** SIRNN is compared with (CrypTen's): :func:`exp_generic`
:math:`e^x \approx (1 + x/2^n)^{2^n}` (one shift, :math:`n` squarings), :func:`reciprocal_generic` (Newton
from a constant), :func:`sigmoid_generic` / :func:`tanh_generic` built from them, and a least-squares
polynomial :func:`sigmoid_poly` (Horner's rule, input clipped).

Every function takes and returns int64 fixed-point tensors of any shape and is vectorised. The order of the
operations (the product tree, the Newton steps, every floor) is part of the definition: the secret-shared
versions in :mod:`seqlib.secure_math` compute the same integers bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

from .fixedpoint import check_bits, check_int_tensor

__all__ = [
    "exp_int_bits", "exp_digit_widths", "exp_tables", "product_tree", "newton_iterations", "rsqrt_iterations",
    "exp_lut", "reciprocal_newton", "sigmoid_lut", "tanh_lut", "rsqrt_lut",
    "exp_generic", "reciprocal_generic", "sigmoid_generic", "tanh_generic", "sigmoid_poly", "METHODS", "function_error",
]

MAX_FRAC_BITS = 30  # two table entries of g <= 30 fractional bits multiply exactly in int64
MAX_DIGIT_BITS = 12  # 4096-entry tables

T = TypeVar("T")


def _check_frac(name: str, value: object) -> int:
    return check_bits(name, value, low=0, high=MAX_FRAC_BITS)


def _out_frac(out_frac_bits: int | None, frac_bits: int) -> int:
    _check_frac("frac_bits", frac_bits)
    return frac_bits if out_frac_bits is None else _check_frac("out_frac_bits", out_frac_bits)


# ---------------------------------------------------------------------------------------------------------------------
# the pieces: how many bits matter, the digit split, the tables, the product tree, the Newton steps
# ---------------------------------------------------------------------------------------------------------------------
def exp_int_bits(out_frac_bits: int) -> int:
    r"""The smallest :math:`m \ge 0` with :math:`2^m > (g + 1)\ln 2`: for :math:`|x| \ge 2^m`, :math:`e^{-|x|}`
    is below half an ulp of :math:`2^{-g}` and rounds to 0, so only :math:`m` integer bits of :math:`|x|` matter."""
    g = _check_frac("out_frac_bits", out_frac_bits)
    m = 0
    while 2.0**m <= (g + 1) * math.log(2.0):
        m += 1
    return m


def exp_digit_widths(frac_bits: int, digit_bits: int, out_frac_bits: int | None = None) -> list[int]:
    """Widths of the digits of :math:`|x|` that :func:`exp_lut` looks up, lowest first: ``n = f + m`` bits in
    ``digit_bits``-bit digits, the top digit holding what is left."""
    f = _check_frac("frac_bits", frac_bits)
    d = check_bits("digit_bits", digit_bits, low=1, high=MAX_DIGIT_BITS)
    n = f + exp_int_bits(_out_frac(out_frac_bits, f))
    if n == 0:
        return []
    return [d] * ((n - 1) // d) + [n - d * ((n - 1) // d)]


def exp_tables(frac_bits: int, digit_bits: int, out_frac_bits: int | None = None) -> list[Tensor]:
    r"""The tables :math:`T_k[v] = \operatorname{round}(e^{-v\,2^{kd-f}}\,2^g)` of :func:`exp_lut`, one int64
    tensor of :math:`2^{w_k}` entries per digit (lowest digit first)."""
    g = _out_frac(out_frac_bits, frac_bits)
    tables, shift = [], 0
    for width in exp_digit_widths(frac_bits, digit_bits, g):
        v = torch.arange(1 << width, dtype=torch.float64)
        tables.append(torch.round(torch.exp(-v * 2.0 ** (shift - frac_bits)) * 2.0**g).long())  # (2^w,)
        shift += width
    return tables


def product_tree(factors: Sequence[T], mul_all: Callable[[list[T], list[T]], list[T]]) -> T:
    """Multiply ``factors`` pairwise, level by level: ``[a, b, c, d, e] -> [ab, cd, e] -> [abcd, e] -> [abcde]``.

    ``mul_all(lefts, rights)`` multiplies the pairs of one level (all at once, so that a protocol spends one
    round per level); it is the fixed-point product with rescale. The pairing is part of the definition of
    :func:`exp_lut`, shared by its cleartext and its secret-shared version.
    """
    level = list(factors)
    if not level:
        raise ValueError("factors must not be empty")
    while len(level) > 1:
        pairs = len(level) // 2
        products = mul_all(level[0:2 * pairs:2], level[1:2 * pairs:2])
        level = list(products) + level[2 * pairs:]
    return level[0]


def _steps_until(e: float, step: Callable[[float], float], target: float) -> int:
    """How many times ``step`` must map the error bound ``e`` until it is at most ``target`` (or stops falling)."""
    steps = 0
    while e > target and step(e) < e:
        e, steps = step(e), steps + 1
    return steps


def newton_iterations(frac_bits: int) -> int:
    r"""Newton steps :func:`reciprocal_newton` takes at :math:`g` fractional bits: until the error bound is at
    most two ulps.

    With :math:`u = 2^{-g}`, the bound :math:`e_0 = 1/8` of :math:`y_0 = 3/2 - D/2` on :math:`[1, 2]` evolves
    as :math:`e_{k+1} = 2 e_k^2 + (1 + e_k)\,u`: Newton squares the error (:math:`y(2 - Dy) = 1/D - D e^2`) and
    the two floors of a step add less than :math:`(1 + e_k)` ulps.
    """
    g = _check_frac("frac_bits", frac_bits)
    u = 2.0**-g
    return _steps_until(0.125, lambda e: 2 * e * e + (1 + e) * u, 2 * u)


def rsqrt_iterations(frac_bits: int, digit_bits: int) -> int:
    r"""Newton steps :func:`rsqrt_lut` takes: until the relative error bound is at most :math:`8 \cdot 2^{-G}`
    (two ulps of the output), with :math:`G = g + 2` working bits.

    The table's bound :math:`\epsilon_0 = 2^{-d-2} + 2^{-G}` (half an interval of width :math:`2^{-d}` changes
    :math:`1/\sqrt{m}` by at most :math:`2^{-d-2}` relative; the entry is rounded) evolves as
    :math:`\epsilon_{k+1} = 1.5\,\epsilon_k^2 + 7 \cdot 2^{-G}` (the three floors of a step add at most 3.5 ulps
    to :math:`y \ge 1/2`).
    """
    G = _check_frac("frac_bits", frac_bits) + 2
    d = check_bits("digit_bits", digit_bits, low=1, high=MAX_DIGIT_BITS)
    u = 2.0**-G
    return _steps_until(2.0 ** (-d - 2) + u, lambda e: 1.5 * e * e + 7 * u, 8 * u)


# ---------------------------------------------------------------------------------------------------------------------
# SIRNN-style functions
# ---------------------------------------------------------------------------------------------------------------------
def _mul_all(g: int) -> Callable[[list[Tensor], list[Tensor]], list[Tensor]]:
    return lambda lefts, rights: [(a * b) >> g for a, b in zip(lefts, rights, strict=True)]


def exp_lut(q: Tensor, frac_bits: int, digit_bits: int = 8, out_frac_bits: int | None = None) -> Tensor:
    r""":math:`e^x` for :math:`x \le 0` by digit decomposition and table lookups (see the module docstring).

    .. math::
        a = -q, \quad e^{x} \approx \prod_{k} T_k[a_k] \ (\text{product tree, floor after each product}),
        \qquad 0 \text{ if } a \ge 2^{n}

    Args:
        q: int64 :math:`(*)`, :math:`x\,2^f` with every :math:`x \le 0`.
        frac_bits: :math:`f`, the input's fractional bits (0..30).
        digit_bits: :math:`d`, bits per digit; each table has :math:`2^d` entries (1..12). Default: 8.
        out_frac_bits: :math:`g`, the output's fractional bits (0..30); default :math:`f`.

    Outputs: e
        - **e**: int64 :math:`(*)` in :math:`[0, 2^g]`, :math:`e^x\,2^g` within :math:`(1.5K-1)` ulps,
          :math:`K` = ``len(exp_digit_widths(f, d, g))``.
    """
    q = check_int_tensor("q", q)
    g = _out_frac(out_frac_bits, frac_bits)
    widths = exp_digit_widths(frac_bits, digit_bits, g)
    if q.numel() and int(q.max()) > 0:
        raise ValueError(f"exp_lut takes x <= 0 (e^x of a positive x can leave the fixed-point range), but q holds "
                         f"{int(q.max())}; use sigmoid_lut/tanh_lut, which use the symmetry, or exp_lut(-abs(q))")
    a = -q
    if not widths:  # f = m = 0: every a >= 1 underflows
        return torch.where(a == 0, 1 << g, 0)
    factors, shift = [], 0
    for width, table in zip(widths, exp_tables(frac_bits, digit_bits, g), strict=True):
        factors.append(table[(a >> shift) & ((1 << width) - 1)])  # T_k[a_k]
        shift += width
    e = product_tree(factors, _mul_all(g))
    return torch.where(a >= (1 << shift), 0, e)  # |x| >= 2^m: below half an ulp


def reciprocal_newton(d: Tensor, frac_bits: int, iterations: int | None = None) -> Tensor:
    r""":math:`1/D` for :math:`D \in [1, 2]` by Newton–Raphson, both with :math:`g` fractional bits.

    .. math::
        y_0 = 3 \cdot 2^g - D \ (g + 1 \text{ fractional bits}), \qquad
        t = \lfloor D y / 2^{s} \rfloor, \quad y \leftarrow \lfloor y\,(2^{g+1} - t) / 2^{s} \rfloor

    with :math:`s = g + 1` in the first step (:math:`y_0` is exact with one more bit) and :math:`s = g` after;
    with no step, :math:`y = \lfloor y_0 / 2 \rfloor`.

    Args:
        d: int64 :math:`(*)` in :math:`[2^g, 2^{g+1}]`.
        frac_bits: :math:`g` (0..30).
        iterations: Newton steps; default :func:`newton_iterations` ``(g)``.
    """
    d = check_int_tensor("d", d)
    g = _check_frac("frac_bits", frac_bits)
    steps = newton_iterations(g) if iterations is None else check_bits("iterations", iterations, low=0, high=64)
    if d.numel() and (int(d.min()) < (1 << g) or int(d.max()) > (2 << g)):
        raise ValueError(f"d must hold D in [1, 2], i.e. integers in [{1 << g}, {2 << g}] at frac_bits={g}, "
                         f"but got [{int(d.min())}, {int(d.max())}]")
    y, shift = (3 << g) - d, g + 1  # y0 = (3 - D) / 2 exactly, with g + 1 fractional bits
    for _ in range(steps):
        t = (d * y) >> shift  # D y, g bits
        y = (y * ((2 << g) - t)) >> shift  # y (2 - D y), g bits
        shift = g
    return y if steps else y >> 1


def sigmoid_lut(q: Tensor, frac_bits: int, digit_bits: int = 8, out_frac_bits: int | None = None) -> Tensor:
    r"""Logistic sigmoid from the exp table and a Newton reciprocal, by symmetry for negative inputs.

    .. math::
        y = \frac{1}{1 + e^{-|x|}}, \qquad \sigma(x) = y \text{ if } x \ge 0 \text{ else } 1 - y

    Args:
        q: int64 :math:`(*)`, :math:`x\,2^f`, any sign.
        frac_bits: :math:`f` (0..30).
        digit_bits: :math:`d`, the exp tables' digit width (1..12). Default: 8.
        out_frac_bits: :math:`g`, the output's fractional bits (0..30); default :math:`f`.

    Outputs: s
        - **s**: int64 :math:`(*)` in :math:`[0, 2^g]`, :math:`\sigma(x)\,2^g`.
    """
    q = check_int_tensor("q", q)
    g = _out_frac(out_frac_bits, frac_bits)
    e = exp_lut(-q.abs(), frac_bits, digit_bits, g)  # e^{-|x|} in [0, 1]
    y = reciprocal_newton((1 << g) + e, g)  # 1 / (1 + e^{-|x|}) in [1/2, 1]
    return torch.where(q >= 0, y, (1 << g) - y)


def tanh_lut(q: Tensor, frac_bits: int, digit_bits: int = 8, out_frac_bits: int | None = None) -> Tensor:
    r"""tanh from :math:`\tanh(a) = 2\sigma(2a) - 1` for :math:`a = |x|`, odd symmetry for negative inputs.

    :math:`\sigma(2a)` is computed with :math:`g + 1` fractional bits, so that
    :math:`(2\sigma(2a) - 1)\,2^g = \sigma(2a)\,2^{g+1} - 2^g` needs no further rounding.

    Args, as :func:`sigmoid_lut`. Outputs: int64 :math:`(*)` in :math:`[-2^g, 2^g]`, :math:`\tanh(x)\,2^g`.
    """
    q = check_int_tensor("q", q)
    g = _out_frac(out_frac_bits, frac_bits)
    if g + 1 > MAX_FRAC_BITS:
        raise ValueError(f"tanh_lut works with out_frac_bits + 1 bits inside, so out_frac_bits must be at most "
                         f"{MAX_FRAC_BITS - 1}, but got {g}")
    e = exp_lut(-2 * q.abs(), frac_bits, digit_bits, g + 1)  # e^{-2|x|}
    y = reciprocal_newton((1 << (g + 1)) + e, g + 1)  # sigma(2|x|) with g + 1 fractional bits
    t = y - (1 << g)  # tanh(|x|) with g fractional bits
    return torch.where(q >= 0, t, -t)


def rsqrt_lut(q: Tensor, frac_bits: int, digit_bits: int = 8, out_frac_bits: int | None = None) -> Tensor:
    r""":math:`1/\sqrt{x}` for :math:`x > 0`: normalise, first guess from a table, Newton steps, shift back.

    With :math:`p` the position of the leading one of :math:`q` and :math:`E = p - f`, write
    :math:`x = 2^{2s} m` with :math:`2s = E` (E even, :math:`m \in [1,2)`) or :math:`2s = E - 1` (E odd,
    :math:`m \in [2, 4)`). The table, indexed by the parity of :math:`E` and the :math:`d` bits after the
    leading one, holds :math:`1/\sqrt{m}` at the middle of each interval; :func:`rsqrt_iterations` Newton steps
    :math:`y \leftarrow y (3 - m y^2)/2` follow with :math:`G = g + 2` working bits, then
    :math:`1/\sqrt{x} = 2^{-s} y`.

    Args:
        q: int64 :math:`(*)`, :math:`x\,2^f` with every :math:`x > 0`.
        frac_bits: :math:`f` (0..30). digit_bits: :math:`d` (1..12). out_frac_bits: :math:`g`, default :math:`f`.

    Outputs: r
        - **r**: int64 :math:`(*)`, :math:`x^{-1/2}\,2^g`.
    """
    q = check_int_tensor("q", q)
    f = _check_frac("frac_bits", frac_bits)
    d = check_bits("digit_bits", digit_bits, low=1, high=MAX_DIGIT_BITS)
    g = _out_frac(out_frac_bits, f)
    if q.numel() and int(q.min()) <= 0:
        raise ValueError(f"rsqrt_lut takes x > 0, but q holds {int(q.min())}")
    G = g + 2
    p = torch.floor(torch.log2(q.double())).long()  # (*) position of the leading one
    one = torch.ones_like(p)
    p = p - (q < (one << p)).long() + (q >= (one << (p + 1))).long()  # float rounding near powers of two
    odd = (p - f) & 1  # (*) 1 where E = p - f is odd
    s = (p - f - odd) >> 1  # x = 2^(2s) m
    # m with G fractional bits: q / 2^(p - odd), exactly when the shift is to the left
    shift = G - p + odd  # (*)
    m = torch.where(shift >= 0, q << shift.clamp(min=0), q >> (-shift).clamp(min=0))
    index = torch.where(p >= d, (q >> (p - d).clamp(min=0)), q << (d - p).clamp(min=0)) & ((1 << d) - 1)
    mid = 1.0 + (torch.arange(1 << d, dtype=torch.float64) + 0.5) / (1 << d)  # (2^d,) middle of each interval
    table = torch.round(torch.stack([mid, 2 * mid]).rsqrt() * 2.0**G).long()  # (2, 2^d)
    y = table[odd, index]  # (*) first guess of 1/sqrt(m)
    for _ in range(rsqrt_iterations(g, d)):
        t = (m * ((y * y) >> G)) >> G  # m y^2
        y = (y * ((3 << G) - t)) >> (G + 1)
    right = G - g + s  # 1/sqrt(x) 2^g = y 2^(g - G - s)
    return torch.where(right >= 0, y >> right.clamp(min=0), y << (-right).clamp(min=0))


# ---------------------------------------------------------------------------------------------------------------------
# generic approximations (CrypTen's recipes), for comparison
# ---------------------------------------------------------------------------------------------------------------------
def exp_generic(q: Tensor, frac_bits: int, iterations: int = 8) -> Tensor:
    r""":math:`e^x \approx (1 + x/2^n)^{2^n}`: one shift and :math:`n` = ``iterations`` squarings, all with
    :math:`f` fractional bits (floor). Good for :math:`|x|` well below :math:`2^n`; for :math:`x < -2^n` the
    base is negative and the result is wrong."""
    q = check_int_tensor("q", q)
    f = _check_frac("frac_bits", frac_bits)
    n = check_bits("iterations", iterations, low=0, high=30)
    y = (1 << f) + (q >> n)
    for _ in range(n):
        y = (y * y) >> f
    return y


def reciprocal_generic(d: Tensor, frac_bits: int, iterations: int = 3, initial: float = 0.75) -> Tensor:
    r""":math:`1/D` by Newton–Raphson from a constant, :math:`y \leftarrow 2y - D y^2` (CrypTen's sigmoid uses
    :math:`y_0 = 0.75` and 3 steps for :math:`D \in [1, 2]`)."""
    d = check_int_tensor("d", d)
    f = _check_frac("frac_bits", frac_bits)
    steps = check_bits("iterations", iterations, low=0, high=64)
    y = torch.full_like(d, round(initial * 2**f))
    for _ in range(steps):
        y = 2 * y - ((d * ((y * y) >> f)) >> f)
    return y


def sigmoid_generic(q: Tensor, frac_bits: int, exp_iterations: int = 9, recip_iterations: int = 3) -> Tensor:
    r"""CrypTen's sigmoid: :math:`y = 1/(1 + e^{-|x|})` with :func:`exp_generic` and :func:`reciprocal_generic`,
    then :math:`\sigma(x) = y` or :math:`1 - y` by the sign; :math:`f` fractional bits in and out."""
    q = check_int_tensor("q", q)
    f = _check_frac("frac_bits", frac_bits)
    e = exp_generic(-q.abs(), f, exp_iterations)
    y = reciprocal_generic((1 << f) + e, f, recip_iterations)
    return torch.where(q >= 0, y, (1 << f) - y)


def tanh_generic(q: Tensor, frac_bits: int, exp_iterations: int = 9, recip_iterations: int = 3) -> Tensor:
    r""":math:`\tanh(x) = 2\sigma(2x) - 1` with :func:`sigmoid_generic`."""
    q = check_int_tensor("q", q)
    return 2 * sigmoid_generic(2 * q, frac_bits, exp_iterations, recip_iterations) - (1 << frac_bits)


def sigmoid_poly(q: Tensor, frac_bits: int, degree: int = 7, bound: int = 8) -> Tensor:
    r"""Polynomial sigmoid: :math:`x` clipped to :math:`[-B, B]`, :math:`u = x/B`, then
    :math:`\sigma(x) \approx \sum_j c_j u^j` by Horner's rule in fixed point (floor after each product).

    The coefficients are the least-squares fit of :math:`\sigma(Bu)` at 256 Chebyshev nodes of :math:`[-1, 1]`,
    rounded to :math:`f` fractional bits. ``bound`` is a power of two, so :math:`u = x/B` is a shift.
    """
    q = check_int_tensor("q", q)
    f = _check_frac("frac_bits", frac_bits)
    deg = check_bits("degree", degree, low=1, high=15)
    if not isinstance(bound, int) or isinstance(bound, bool) or bound < 1 or bound & (bound - 1):
        raise ValueError(f"bound must be a power of two (1, 2, 4, 8, ...), but got {bound!r}")
    nodes = torch.cos(math.pi * (torch.arange(256, dtype=torch.float64) + 0.5) / 256)  # (256,) in (-1, 1)
    powers = nodes[:, None] ** torch.arange(deg + 1, dtype=torch.float64)  # (256, deg + 1)
    target = torch.sigmoid(bound * nodes)[:, None]  # (256, 1)
    coeffs = torch.linalg.lstsq(powers, target).solution[:, 0]  # (deg + 1,) c_0 .. c_deg
    c = torch.round(coeffs * 2.0**f).long()
    shift = bound.bit_length() - 1
    u = q.clamp(-(bound << f), bound << f) >> shift  # (*) u = x / B with f fractional bits
    y = torch.full_like(q, int(c[deg]))
    for j in range(deg - 1, -1, -1):
        y = ((y * u) >> f) + int(c[j])
    return y


# ---------------------------------------------------------------------------------------------------------------------
# measuring: error against float math (for the lecture's curves and the widget)
# ---------------------------------------------------------------------------------------------------------------------
METHODS = ("exp_lut", "exp_generic", "sigmoid_lut", "sigmoid_generic", "sigmoid_poly", "tanh_lut", "tanh_generic")
_EXACT = {"exp": torch.exp, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def function_error(method: str, frac_bits: int, digit_bits: int = 8, span: float = 8.0,
                   points: int = 4001) -> dict[str, Tensor]:
    r"""A method's values and error against float64 math on a grid of ``points`` inputs in :math:`[-s, s]`
    (:math:`[-s, 0]` for exp), rounded to the fixed-point grid.

    Args:
        method: one of :data:`METHODS` (``"sigmoid_lut"``, ``"sigmoid_generic"``, ...).
        frac_bits: :math:`f` of input and output. digit_bits: :math:`d` of the LUT methods.
        span: :math:`s`. points: grid size.

    Returns:
        ``{"x": (P,), "approx": (P,), "exact": (P,), "error": (P,) absolute, "max_error": ()}`` (float64).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, but got {method!r}")
    f = _check_frac("frac_bits", frac_bits)
    check_bits("digit_bits", digit_bits, low=1, high=MAX_DIGIT_BITS)
    name, kind = method.split("_")
    lo, hi = -float(span), (0.0 if name == "exp" else float(span))
    q = torch.unique(torch.round(torch.linspace(lo, hi, points, dtype=torch.float64) * 2.0**f).long())  # (P,)
    if kind == "lut":
        out = {"exp": exp_lut, "sigmoid": sigmoid_lut, "tanh": tanh_lut}[name](q, f, digit_bits)
    elif kind == "poly":
        out = sigmoid_poly(q, f)
    else:
        out = {"exp": exp_generic, "sigmoid": sigmoid_generic, "tanh": tanh_generic}[name](q, f)
    x = q.double() * 2.0**-f
    approx, exact = out.double() * 2.0**-f, _EXACT[name](x)
    error = (approx - exact).abs()
    return {"x": x, "approx": approx, "exact": exact, "error": error, "max_error": error.max()}
