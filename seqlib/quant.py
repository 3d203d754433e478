r"""Uniform affine quantization written out: integer levels, fake quantization and its straight-through gradient (C38).

A ``b``-bit quantizer keeps :math:`2^b` evenly spaced levels. It is fixed by two numbers, the **scale** :math:`s > 0`
(the step between levels) and the **zero-point** :math:`z` (the integer that stands for the real number 0):

.. math::
    q = \operatorname{clamp}\big(\operatorname{round}(x / s) + z,\; q_{\min},\; q_{\max}\big), \qquad
    \hat x = (q - z)\, s

with :math:`[q_{\min}, q_{\max}] = [-2^{b-1}, 2^{b-1} - 1]` for signed and :math:`[0, 2^b - 1]` for unsigned integers
(:func:`quant_range`). ``round`` goes to the nearest integer, ties to the even one. :func:`quantize` returns the
integers :math:`q` (what a device stores: ``b`` bits a number instead of 32), :func:`dequantize` maps them back, and
:func:`fake_quantize` does both at once in floating point, so that a float model can *feel* the rounding while it
trains.

The rounding has zero gradient almost everywhere. Quantization-aware training therefore uses the
**straight-through estimator** (STE): pretend the rounding is the identity inside the clamping range and pass the
gradient through there, zero outside:

.. math::
    \frac{\partial \hat x}{\partial x} \approx
    \begin{cases} 1 & q_{\min} \le \operatorname{round}(x / s) + z \le q_{\max} \\ 0 & \text{otherwise} \end{cases}

**Per tensor or per channel.** One :math:`(s, z)` for the whole tensor, or one per slice along ``per_channel_axis``
(e.g. one per output row of a weight matrix, whose rows can have very different ranges).

**Bit for bit like torch.** :func:`fake_quantize` gives the same values and gradients as
``torch.fake_quantize_per_tensor_affine`` / ``torch.fake_quantize_per_channel_affine`` for every input dtype they
accept (float32, float64, float16, bfloat16). To get there it computes in the same order as torch's kernel: it
multiplies by the float32 reciprocal :math:`1/s` instead of dividing (the two can round a value lying exactly
between two levels differently), rounds before adding an integer zero-point, and multiplies back in the precision
torch uses (float32 per tensor, float64 per channel). A floating-point zero-point (torch's per-channel flavour used
for embedding tables) is added *before* rounding, as torch does.

Choosing :math:`(s, z)` from data is the job of the observers in :mod:`seqlib.observers`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_bool, check_floating, check_int_range, check_tensor, shape_str

__all__ = ["quant_range", "check_bits", "fake_quantize", "quantize", "dequantize", "uniform_levels", "QParams"]

QParams = tuple[Tensor, Tensor]  # (scale, zero_point)


def check_bits(bits: object, name: str = "bits") -> int:
    """Raise unless ``bits`` is an ``int`` from 2 to 16 (``bool`` excluded); return it."""
    return check_int_range(name, bits, 2, 16)


def quant_range(bits: int = 8, signed: bool = True) -> tuple[int, int]:
    """``(q_min, q_max)`` of ``bits``-bit integers: ``(-2**(b-1), 2**(b-1) - 1)`` signed, ``(0, 2**b - 1)`` unsigned."""
    check_bits(bits)
    check_bool("signed", signed)
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


# ---------------------------------------------------------------------------------------------------------------------
# checking scale and zero-point
# ---------------------------------------------------------------------------------------------------------------------
def _check_qparams(x: Tensor, scale: object, zero_point: object, qmin: int, qmax: int,
                   axis: int | None) -> tuple[Tensor, Tensor, int | None]:
    """Validate ``scale`` / ``zero_point``; return them as float32 / (int64 or float32) tensors and the axis."""
    if axis is not None:
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(f"per_channel_axis must be an int or None, but got {type(axis).__name__}")
        if not -x.dim() <= axis < x.dim():
            raise ValueError(f"per_channel_axis must be in [{-x.dim()}, {x.dim() - 1}] for an input of shape "
                             f"{shape_str(x.shape)}, but got {axis}")
        axis = axis % x.dim()
    expected = "(C,)" if axis is not None else "a number or a one-element tensor"
    if isinstance(scale, int | float) and not isinstance(scale, bool):
        scale = torch.tensor([float(scale)])
    scale = check_tensor("scale", scale, expected)
    if isinstance(zero_point, int) and not isinstance(zero_point, bool):
        zero_point = torch.tensor([zero_point])
    zero_point = check_tensor("zero_point", zero_point, expected)
    if not scale.is_floating_point():
        raise TypeError(f"scale must be a floating-point tensor, but got dtype {scale.dtype}")
    if zero_point.dtype == torch.bool or zero_point.is_complex():
        raise TypeError(f"zero_point must be an integer (or float) tensor, but got dtype {zero_point.dtype}")
    channels = x.shape[axis] if axis is not None else 1
    for name, value in (("scale", scale), ("zero_point", zero_point)):
        if axis is None and value.numel() != 1:
            raise ValueError(f"{name} must be a number or a one-element tensor for per-tensor quantization, but got "
                             f"shape {shape_str(value.shape)}; pass per_channel_axis for one value per channel")
        if axis is not None and (value.dim() != 1 or value.numel() != channels):
            raise ValueError(f"{name} must have shape (C,) with C = {channels} = input.shape[{axis}], but got shape "
                             f"{shape_str(value.shape)}")
    scale = scale.detach().reshape(-1).float()  # (1,) or (C,)
    if not bool(torch.all(torch.isfinite(scale) & (scale > 0))):
        shown = scale.tolist() if axis is not None else float(scale)
        raise ValueError(f"scale must be positive and finite, but got {shown}")
    zp = zero_point.detach().reshape(-1)  # (1,) or (C,)
    if zp.is_floating_point():
        if axis is None and not bool(torch.all(zp == zp.round())):
            raise ValueError(f"zero_point must be an integer for per-tensor quantization, but got {float(zp)}")
        zp = (zp if zp.dtype == torch.float16 else zp.float()) if axis is not None else zp.long()
    else:
        zp = zp.long()
    if not bool(torch.all((zp >= qmin) & (zp <= qmax))):
        shown = zp.tolist() if axis is not None else zp.item()
        raise ValueError(f"zero_point must lie in the integer range [{qmin}, {qmax}] of the quantizer, but got {shown}")
    return scale, zp, axis


def _broadcast(values: Tensor, x: Tensor, axis: int | None) -> Tensor:
    """``(C,)`` -> a shape that broadcasts along ``axis`` of ``x`` (``(1, C, 1, ...)``); per tensor: a 0-d tensor."""
    if axis is None:
        return values.reshape(())  # (): one number for the whole tensor
    shape = [1] * x.dim()
    shape[axis] = -1
    return values.reshape(shape)  # (1, .., C, .., 1)


# ---------------------------------------------------------------------------------------------------------------------
# the levels: round(x / s) + z, computed in the order torch's kernels use
# ---------------------------------------------------------------------------------------------------------------------
def _levels(x: Tensor, scale: Tensor, zp: Tensor, axis: int | None) -> Tensor:
    """Unclamped levels ``round(x * (1/s)) + z`` (float tensor, NaN stays NaN), in the precision torch uses."""
    inv_scale = _broadcast(1.0 / scale, x, axis)  # float32, as torch's `float inv_scale = 1.0f / scale`
    z = _broadcast(zp, x, axis)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32  # half/bfloat16 are computed in float32
    scaled = x.to(work) * inv_scale.to(work)
    if z.is_floating_point():  # float zero-point: added before rounding, to a float32 value
        if z.dtype == torch.float32 and work == torch.float32:
            # with a float32 zero-point torch's compiled kernel fuses x * (1/s) + z into one multiply-add: one
            # rounding, which float64 arithmetic reproduces (a float16 zero-point goes through a separate add)
            return (x.double() * inv_scale.double() + z.double()).float().round()
        return (scaled + z.to(work)).float().round()
    return torch.round(scaled) + z.to(work)


def _dequantize_levels(q: Tensor, scale: Tensor, zp: Tensor, axis: int | None, dtype: torch.dtype) -> Tensor:
    """``(q - z) * s`` in torch's precision: float32 per tensor, float64 per channel, then cast to ``dtype``."""
    work = torch.float32 if axis is None else torch.float64
    s = _broadcast(scale, q, axis).to(work)
    z = _broadcast(zp, q, axis).to(work)
    return ((q.to(work) - z) * s).to(dtype)


class _FakeQuantize(torch.autograd.Function):
    """Forward: quantize and dequantize. Backward: the straight-through estimator (gradient times the in-range mask)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor, zp: Tensor, qmin: int, qmax: int, axis: int | None) -> Tensor:
        q = _levels(x, scale, zp, axis)
        inside = (q >= qmin) & (q <= qmax)  # NaN compares False: no gradient, as in torch
        clamped = torch.fmin(torch.fmax(q, torch.tensor(float(qmin))), torch.tensor(float(qmax)))  # NaN -> q_min
        ctx.save_for_backward(inside)
        return _dequantize_levels(clamped, scale, zp, axis, x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (inside,) = ctx.saved_tensors
        return grad_output * inside, None, None, None, None, None


def fake_quantize(x: Tensor, scale: float | Tensor, zero_point: int | Tensor, bits: int = 8, signed: bool = True,
                  per_channel_axis: int | None = None) -> Tensor:
    r"""Quantize to ``bits``-bit integers and back, with the straight-through gradient.

    .. math::
        \hat x = \big(\operatorname{clamp}(\operatorname{round}(x / s) + z, q_{\min}, q_{\max}) - z\big)\, s,
        \qquad \frac{\partial \hat x}{\partial x} = \mathbb 1[q_{\min} \le \operatorname{round}(x / s) + z \le q_{\max}]

    Equal in values and gradients to ``torch.fake_quantize_per_tensor_affine(x, s, z, q_min, q_max)`` (per tensor) and
    ``torch.fake_quantize_per_channel_affine(x, s, z, axis, q_min, q_max)`` (per channel) with
    ``(q_min, q_max) = quant_range(bits, signed)``.

    Args:
        x: the tensor to quantize (float32, float64, float16 or bfloat16).
        scale: :math:`s > 0`; a number or one-element tensor, or a ``(C,)`` tensor with ``per_channel_axis``.
        zero_point: :math:`z`, an integer in ``[q_min, q_max]`` (or ``(C,)`` integers); per channel, a
            floating-point ``(C,)`` tensor selects torch's float-zero-point variant (added before rounding).
        bits: bit-width from 2 to 16.
        signed: signed (``[-2^{b-1}, 2^{b-1}-1]``) or unsigned (``[0, 2^b - 1]``) integers.
        per_channel_axis: ``None`` for one ``(s, z)`` for the whole tensor, else the axis of the channels
            (negative values count from the end).

    Inputs/Outputs:
        - x: :math:`(*)`; output: :math:`(*)`, same shape and dtype.

    Raises:
        ValueError: ``bits`` outside 2..16, ``scale <= 0`` (or not finite), ``zero_point`` outside the integer range,
            qparams of the wrong shape, an axis out of range.
        TypeError: a non-tensor or non-floating ``x``, non-int ``bits``.
    """
    check_tensor("x", x, "(*)")
    check_floating("x", x)
    qmin, qmax = quant_range(bits, signed)
    scale_t, zp_t, axis = _check_qparams(x, scale, zero_point, qmin, qmax, per_channel_axis)
    return _FakeQuantize.apply(x, scale_t, zp_t, qmin, qmax, axis)


def quantize(x: Tensor, scale: float | Tensor, zero_point: int | Tensor, bits: int = 8, signed: bool = True,
             per_channel_axis: int | None = None) -> Tensor:
    r"""The integers :math:`q = \operatorname{clamp}(\operatorname{round}(x / s) + z, q_{\min}, q_{\max})`.

    Same arguments as :func:`fake_quantize` (integer zero-points only). Returns the smallest integer dtype that
    holds ``quant_range(bits, signed)``: ``int8``/``uint8`` up to 8 bits, ``int16``/``int32`` above. No gradient.
    """
    check_tensor("x", x, "(*)")
    check_floating("x", x)
    qmin, qmax = quant_range(bits, signed)
    scale_t, zp_t, axis = _check_qparams(x, scale, zero_point, qmin, qmax, per_channel_axis)
    if zp_t.is_floating_point():
        raise TypeError("quantize needs integer zero-points; float zero-points exist only inside fake_quantize")
    q = _levels(x.detach(), scale_t, zp_t, axis).clamp(qmin, qmax)  # NaN stays NaN here: reject it
    if torch.isnan(q).any():
        raise ValueError("x contains NaN, which has no integer level")
    return q.to(_int_dtype(bits, signed))


def dequantize(q: Tensor, scale: float | Tensor, zero_point: int | Tensor, per_channel_axis: int | None = None,
               dtype: torch.dtype = torch.float32) -> Tensor:
    r""":math:`\hat x = (q - z)\, s` for integers ``q`` from :func:`quantize` (any integer dtype), as ``dtype``."""
    check_tensor("q", q, "(*)")
    if q.is_floating_point() or q.dtype == torch.bool:
        raise TypeError(f"q must be an integer tensor (the output of quantize), but got dtype {q.dtype}")
    scale_t, zp_t, axis = _check_qparams(q.float(), scale, zero_point, -(2**31), 2**31 - 1, per_channel_axis)
    return _dequantize_levels(q, scale_t, zp_t, axis, dtype)


def _int_dtype(bits: int, signed: bool) -> torch.dtype:
    if bits <= 8:
        return torch.int8 if signed else torch.uint8
    return torch.int16 if signed else torch.int32


def uniform_levels(scale: float, zero_point: int, bits: int = 8, signed: bool = True) -> Tensor:
    r"""All :math:`2^b` values :math:`(q - z)\, s`, :math:`q = q_{\min} .. q_{\max}`, that :func:`fake_quantize`
    can output for one ``(scale, zero_point)`` (float64, ascending): the grid a figure draws."""
    qmin, qmax = quant_range(bits, signed)
    if not (isinstance(scale, int | float) and scale > 0 and scale < float("inf")):
        raise ValueError(f"scale must be positive and finite, but got {scale!r}")
    if not qmin <= int(zero_point) <= qmax:
        raise ValueError(f"zero_point must lie in the integer range [{qmin}, {qmax}] of the quantizer, but got "
                         f"{zero_point}")
    return (torch.arange(qmin, qmax + 1, dtype=torch.float64) - int(zero_point)) * float(scale)
