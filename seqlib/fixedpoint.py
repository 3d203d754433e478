r"""Fixed-point numbers from first principles: reals stored as integers (C29).

A tiny device (a microcontroller on a wrist band) or a cryptographic protocol (:mod:`seqlib.mpc`) has no
floating point. It stores a real number :math:`x` as the integer

.. math::
    q = \operatorname{sat}_\ell\big(\operatorname{round}(x \cdot 2^{f})\big), \qquad
    x \approx q \cdot 2^{-f},

in an :math:`\ell`-bit two's-complement register with :math:`f` *fractional bits* ("Q-format",
``Q(ℓ-f).f``). The step between neighbouring values is :math:`2^{-f}` (one *ulp*), the range is
:math:`[-2^{\ell-1}, 2^{\ell-1}-1] \cdot 2^{-f}`, and :math:`\operatorname{sat}_\ell` clamps to it
(*saturation*) instead of letting the value wrap around (*overflow*, what the hardware does by itself:
:func:`wrap`).

Here the integers live in ``int64`` tensors and every function is vectorised:

=====================  =======================================================================================
:func:`quantize`       float -> fixed point: round to nearest (ties to even), saturate to ``bits``
:func:`dequantize`     fixed point -> float: :math:`q \cdot 2^{-f}`
:func:`saturate`       clamp to the signed ``bits``-bit range; :func:`wrap` reduces modulo :math:`2^\ell` instead
:func:`shift_right`    drop fractional bits: arithmetic right shift (floor) or round to nearest
:func:`rescale`        change the number of fractional bits (left or right shift, saturated)
:func:`mul`            fixed-point product: the exact integer product has :math:`2f` fractional bits, an
                       arithmetic right shift by :math:`f` brings it back, then saturation
:func:`to_unsigned`    a signed value as the ``bits``-bit pattern a register holds (:func:`to_signed` back)
:func:`sign_extend`    a signed ``m``-bit pattern widened to ``n`` bits (copies of the sign bit on top);
                       :func:`zero_extend` (zeros on top: the pattern read as unsigned) and
                       :func:`truncate_bits` (keep the low ``n`` bits) are the other two width changes
=====================  =======================================================================================

Patterns versus values: ``quantize``/``mul``/``saturate`` work on *values* (the int64 holds the signed number
itself). The width changes of mixed-bit-width arithmetic (SIRNN) are easiest to see on *bit patterns*, the
unsigned integer in :math:`[0, 2^\ell)` that the register holds; ``to_unsigned``/``to_signed`` convert.

Widths: storage formats have ``2 <= bits <= 32`` (so that the exact product of two values fits in int64), and
``0 <= frac_bits < bits``. Bit patterns may be up to 62 bits wide.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_choice, check_int_range, check_tensor

__all__ = [
    "MAX_BITS", "qrange", "quantize", "dequantize", "saturate", "wrap", "shift_right", "rescale", "mul",
    "to_unsigned", "to_signed", "sign_extend", "zero_extend", "truncate_bits",
]

#: widest storage format: the product of two 32-bit values needs 63 bits plus sign, which int64 holds exactly
MAX_BITS = 32
_MAX_PATTERN_BITS = 62


# ---------------------------------------------------------------------------------------------------------------------
# argument checks shared by the functions of this module (and seqlib.lut, seqlib.fixedpoint_rnn, seqlib.mpc)
# ---------------------------------------------------------------------------------------------------------------------
def check_int_tensor(name: str, value: object) -> Tensor:
    """Raise ``TypeError`` unless ``value`` is an integer tensor; return it as int64."""
    q = check_tensor(name, value)
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor holding fixed-point numbers (int64, e.g. from "
                        f"seqlib.fixedpoint.quantize), but got dtype {q.dtype}")
    return q.long()


def check_bits(name: str, value: object, low: int = 2, high: int = MAX_BITS) -> int:
    """Raise unless ``value`` is an int in ``[low, high]`` (a width in bits; :func:`seqlib._checks.check_int_range`)."""
    return check_int_range(name, value, low, high)


def check_frac_bits(frac_bits: object, bits: int, name: str = "frac_bits") -> int:
    """Raise unless ``0 <= frac_bits < bits`` (at least the sign bit must be left for the integer part)."""
    if not isinstance(frac_bits, int) or isinstance(frac_bits, bool):
        raise TypeError(f"{name} must be an int, but got {type(frac_bits).__name__}")
    if not 0 <= frac_bits < bits:
        raise ValueError(f"{name} must satisfy 0 <= {name} < bits (the sign bit needs a place), "
                         f"but got {name}={frac_bits} with bits={bits}")
    return frac_bits


def check_in_range(name: str, q: Tensor, bits: int) -> None:
    """Raise ``ValueError`` if ``q`` holds values outside the signed ``bits``-bit range."""
    lo, hi = qrange(bits)
    if q.numel() and (int(q.min()) < lo or int(q.max()) > hi):
        raise ValueError(f"{name} holds values in [{int(q.min())}, {int(q.max())}], outside the signed {bits}-bit "
                         f"range [{lo}, {hi}]; quantize it with the same bits, or pass the bits it was made with")


def qrange(bits: int) -> tuple[int, int]:
    r"""The smallest and largest signed ``bits``-bit integers, :math:`(-2^{\ell-1}, 2^{\ell-1}-1)`."""
    check_bits("bits", bits, high=_MAX_PATTERN_BITS)
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


# ---------------------------------------------------------------------------------------------------------------------
# values: quantize, dequantize, saturate, wrap, shifts, products
# ---------------------------------------------------------------------------------------------------------------------
def quantize(x: Tensor, frac_bits: int, bits: int = 32) -> Tensor:
    r"""Round real numbers to fixed point: :math:`q = \operatorname{sat}_\ell(\operatorname{round}(x\,2^f))`.

    Rounding is to the nearest integer, ties to even (as ``torch.round`` and ``numpy.around``); values outside
    the range saturate to :math:`-2^{\ell-1}` or :math:`2^{\ell-1}-1` (``±inf`` included). Inside the range the
    error is at most half an ulp: :math:`|q\,2^{-f} - x| \le 2^{-f-1}`.

    Args:
        x: a floating-point tensor of any shape :math:`(*)`.
        frac_bits: :math:`f`, the number of fractional bits, ``0 <= f < bits``.
        bits: :math:`\ell`, the width of the signed storage format, 2..32.

    Outputs: q
        - **q**: :math:`(*)` int64, the fixed-point integers.
    """
    x = check_tensor("x", x, "(*)")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor of real numbers to quantize, but got dtype {x.dtype}")
    check_bits("bits", bits)
    check_frac_bits(frac_bits, bits)
    if torch.isnan(x).any():
        raise ValueError("x contains NaN, which has no fixed-point value")
    lo, hi = qrange(bits)
    scaled = torch.round(x.double() * 2.0**frac_bits)  # exact: multiplying by a power of two
    return scaled.clamp(lo, hi).long()


def dequantize(q: Tensor, frac_bits: int, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Fixed point back to real numbers: :math:`x = q \cdot 2^{-f}`.

    Args:
        q: an integer tensor :math:`(*)`.
        frac_bits: :math:`f`, its fractional bits (non-negative).
        dtype: the floating-point dtype of the result; float64 (the default) is exact for up to 53-bit ``q``.

    Outputs: x
        - **x**: :math:`(*)` of ``dtype``.
    """
    q = check_int_tensor("q", q)
    check_frac_bits(frac_bits, _MAX_PATTERN_BITS + 1)
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, but got {dtype}")
    return (q.double() * 2.0**-frac_bits).to(dtype)


def saturate(q: Tensor, bits: int) -> Tensor:
    r"""Clamp to the signed ``bits``-bit range :math:`[-2^{\ell-1}, 2^{\ell-1}-1]`."""
    q = check_int_tensor("q", q)
    lo, hi = qrange(bits)
    return q.clamp(lo, hi)


def wrap(q: Tensor, bits: int) -> Tensor:
    r"""What a ``bits``-bit register does on overflow: keep the value modulo :math:`2^\ell`, read it as signed.

    ``wrap(127 + 1, 8) == -128``. Compare :func:`saturate`, which would give 127.
    """
    return to_signed(to_unsigned(q, bits), bits)


def shift_right(q: Tensor, shift: int, rounding: str = "floor") -> Tensor:
    r"""Drop ``shift`` fractional bits: :math:`\lfloor q / 2^s \rfloor` (``"floor"``, the arithmetic right shift
    ``q >> s`` of two's complement, what hardware and the protocols do) or :math:`\lfloor q/2^s + 1/2 \rfloor`
    (``"nearest"``, ties up). Floor is biased by half an ulp on average; nearest is not, and costs one addition.
    """
    q = check_int_tensor("q", q)
    check_bits("shift", shift, low=0, high=_MAX_PATTERN_BITS)
    check_choice("rounding", rounding, ("floor", "nearest"))
    if shift == 0:
        return q.clone()
    if rounding == "nearest":
        q = q + (1 << (shift - 1))
    return q >> shift  # torch's >> on int64 is the arithmetic (sign-filling) shift


def rescale(q: Tensor, from_frac_bits: int, to_frac_bits: int, bits: int = 32, rounding: str = "floor") -> Tensor:
    r"""The same real number with another number of fractional bits, saturated to ``bits``:
    a left shift (exact) when ``to_frac_bits > from_frac_bits``, else :func:`shift_right`."""
    check_bits("bits", bits)
    check_frac_bits(from_frac_bits, bits, "from_frac_bits")
    check_frac_bits(to_frac_bits, bits, "to_frac_bits")
    q = check_int_tensor("q", q)
    if to_frac_bits >= from_frac_bits:
        out = q * (1 << (to_frac_bits - from_frac_bits))
    else:
        out = shift_right(q, from_frac_bits - to_frac_bits, rounding)
    return saturate(out, bits)


def mul(a: Tensor, b: Tensor, frac_bits: int, bits: int = 32, rounding: str = "floor") -> Tensor:
    r"""Fixed-point product: :math:`\operatorname{sat}_\ell\big(\lfloor a\,b / 2^{f} \rfloor\big)`.

    :math:`a = x\,2^f` and :math:`b = y\,2^f`, so the exact integer product :math:`a b = x y\, 2^{2f}` has
    :math:`2f` fractional bits; shifting it right by :math:`f` (floor, or round to nearest) brings it back to
    :math:`f`, and saturation keeps it in ``bits`` bits. The product of two 32-bit values needs 63 bits and
    is exact in int64. Shapes broadcast as in ``a * b``.

    Args:
        a, b: integer tensors :math:`(*)`, both in the signed ``bits``-bit range (both with ``frac_bits``
            fractional bits).
        frac_bits: :math:`f`.
        bits: :math:`\ell`, 2..32.
        rounding: ``"floor"`` (arithmetic shift, the default) or ``"nearest"``.

    Outputs: c
        - **c**: :math:`(*)` int64 with ``frac_bits`` fractional bits.
    """
    a = check_int_tensor("a", a)
    b = check_int_tensor("b", b)
    check_bits("bits", bits)
    check_frac_bits(frac_bits, bits)
    check_in_range("a", a, bits)
    check_in_range("b", b, bits)
    return saturate(shift_right(a * b, frac_bits, rounding), bits)


# ---------------------------------------------------------------------------------------------------------------------
# bit patterns: the width changes of mixed-bit-width arithmetic
# ---------------------------------------------------------------------------------------------------------------------
def to_unsigned(q: Tensor, bits: int) -> Tensor:
    r"""The ``bits``-bit two's-complement pattern of ``q`` as an unsigned integer: :math:`q \bmod 2^\ell`."""
    q = check_int_tensor("q", q)
    check_bits("bits", bits, high=_MAX_PATTERN_BITS)
    return q & ((1 << bits) - 1)


def to_signed(u: Tensor, bits: int) -> Tensor:
    r"""Read a ``bits``-bit pattern :math:`u \in [0, 2^\ell)` as two's complement: :math:`u - 2^\ell` if the top
    bit is set, else :math:`u`."""
    u = _check_pattern("u", u, bits)
    return torch.where(u >= (1 << (bits - 1)), u - (1 << bits), u)


def sign_extend(u: Tensor, from_bits: int, to_bits: int) -> Tensor:
    r"""Widen a signed ``from_bits`` pattern to ``to_bits`` bits, the value unchanged: the new high bits are
    copies of the sign bit, :math:`u + (2^{n} - 2^{m})\,[u \ge 2^{m-1}]`."""
    check_bits("to_bits", to_bits, high=_MAX_PATTERN_BITS)
    check_bits("from_bits", from_bits, high=to_bits)
    return to_unsigned(to_signed(u, from_bits), to_bits)


def zero_extend(u: Tensor, from_bits: int, to_bits: int) -> Tensor:
    r"""Widen a ``from_bits`` pattern to ``to_bits`` bits with zeros on top: the pattern is unchanged, and its
    value as a signed ``to_bits`` number is the unsigned reading of the old pattern."""
    check_bits("to_bits", to_bits, high=_MAX_PATTERN_BITS)
    check_bits("from_bits", from_bits, high=to_bits)
    return _check_pattern("u", u, from_bits).clone()


def truncate_bits(u: Tensor, from_bits: int, to_bits: int) -> Tensor:
    r"""Narrow a ``from_bits`` pattern to its low ``to_bits`` bits, :math:`u \bmod 2^n` (the value survives iff
    it fits in ``to_bits`` bits; otherwise this is :func:`wrap`)."""
    check_bits("from_bits", from_bits, high=_MAX_PATTERN_BITS)
    check_bits("to_bits", to_bits, high=from_bits)
    return _check_pattern("u", u, from_bits) & ((1 << to_bits) - 1)


def _check_pattern(name: str, u: object, bits: int) -> Tensor:
    u = check_int_tensor(name, u)
    check_bits("bits", bits, high=_MAX_PATTERN_BITS)
    if u.numel() and (int(u.min()) < 0 or int(u.max()) >= (1 << bits)):
        raise ValueError(f"{name} must hold {bits}-bit patterns in [0, 2**{bits}), but got values in "
                         f"[{int(u.min())}, {int(u.max())}]; convert signed values with to_unsigned(q, {bits})")
    return u
