r"""Observers: watch the values a tensor takes and choose the scale and zero-point of its quantizer (C38).

An observer is called on every batch (``observer(x)`` records statistics and returns ``x`` unchanged) and then asked
for :meth:`~Observer.qparams`. The three kinds differ only in the range :math:`[\alpha, \beta]` they report:

=============================  ===========================================================================
``MinMaxObserver``             the smallest and largest value ever seen
``MovingAverageMinMaxObserver`` an exponential moving average of each batch's min and max (``c = 0.01``)
``PercentileObserver``         the ``p``-th lower and upper percentiles of each batch, averaged over batches:
                               a few outliers no longer stretch the grid (clipping them costs less than
                               coarse steps for everyone else)
=============================  ===========================================================================

From the range, :func:`choose_qparams` picks :math:`(s, z)`. The range is first widened to contain 0, so that the
real number 0 (padding, a ReLU's output) is exactly representable:

.. math::
    \text{affine:}\quad s = \frac{\max(\beta, 0) - \min(\alpha, 0)}{q_{\max} - q_{\min}}, \qquad
        z = q_{\min} - \operatorname{round}\!\big(\min(\alpha, 0) / s\big)

.. math::
    \text{symmetric:}\quad s = \frac{\max(|\alpha|, |\beta|)}{(q_{\max} - q_{\min}) / 2}, \qquad
        z = 0 \text{ (signed) or } 2^{b-1} \text{ (unsigned)}

with :math:`s` at least float32's machine epsilon. These are the formulas of torch's ``MinMaxObserver`` and
``MovingAverageMinMaxObserver`` (the tests check them against torch), written out. ``ch_axis`` gives one range, and
so one :math:`(s, z)`, per slice along that axis (per-channel quantization of weights).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import check_bool, check_floating, check_tensor, shape_str
from .quant import quant_range

__all__ = ["choose_qparams", "Observer", "MinMaxObserver", "MovingAverageMinMaxObserver", "PercentileObserver",
           "make_observer", "OBSERVERS"]

_EPS = torch.finfo(torch.float32).eps


def choose_qparams(min_val: Tensor | float, max_val: Tensor | float, bits: int = 8, signed: bool = True,
                   symmetric: bool = False) -> tuple[Tensor, Tensor]:
    r"""Scale and zero-point that cover ``[min_val, max_val]`` (widened to contain 0); see the module docstring.

    Args:
        min_val, max_val: the range, numbers or ``(C,)`` tensors (one range per channel).
        bits, signed: the integer range, as in :func:`seqlib.quant.quant_range`.
        symmetric: a grid symmetric about 0 (zero-point fixed) instead of one fitted to the range.

    Returns:
        ``(scale, zero_point)``: float32 and int64 tensors of shape ``(1,)`` or ``(C,)``.
    """
    qmin, qmax = quant_range(bits, signed)
    check_bool("symmetric", symmetric)
    lo = torch.as_tensor(min_val, dtype=torch.float32).reshape(-1)  # (C,)
    hi = torch.as_tensor(max_val, dtype=torch.float32).reshape(-1)  # (C,)
    if lo.shape != hi.shape:
        raise ValueError(f"min_val and max_val must have the same shape, but got {shape_str(lo.shape)} and "
                         f"{shape_str(hi.shape)}")
    if not bool(torch.all(torch.isfinite(lo) & torch.isfinite(hi))):
        raise ValueError("min_val and max_val must be finite (has the observer seen any data?)")
    if bool(torch.any(lo > hi)):
        raise ValueError(f"min_val must not exceed max_val, but got {lo.tolist()} > {hi.tolist()}")
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)  # the range always holds 0
    if symmetric:
        scale = torch.max(-lo, hi) / (float(qmax - qmin) / 2)
        scale = torch.clamp(scale, min=_EPS)
        zero_point = torch.full_like(scale, 0 if signed else 2 ** (bits - 1), dtype=torch.int64)
    else:
        scale = torch.clamp((hi - lo) / float(qmax - qmin), min=_EPS)
        zero_point = (qmin - torch.round(lo / scale)).long().clamp(qmin, qmax)
    return scale, zero_point


class Observer(nn.Module):
    """Base class: records a range ``[min_val, max_val]`` in :meth:`forward` and turns it into ``(scale, zero_point)``.

    Args:
        bits, signed: the integer range (2-16 bits).
        symmetric: a symmetric grid about 0 (see :func:`choose_qparams`).
        ch_axis: ``None`` for one range per tensor, else the axis holding the channels.

    Buffers ``min_val`` / ``max_val`` (``(1,)`` or ``(C,)``, ``+inf`` / ``-inf`` before any data) travel with the
    ``state_dict``.
    """

    def __init__(self, bits: int = 8, signed: bool = True, symmetric: bool = False, ch_axis: int | None = None):
        super().__init__()
        quant_range(bits, signed)  # validates both
        check_bool("symmetric", symmetric)
        if ch_axis is not None and (not isinstance(ch_axis, int) or isinstance(ch_axis, bool)):
            raise TypeError(f"ch_axis must be an int or None, but got {type(ch_axis).__name__}")
        self.bits, self.signed, self.symmetric, self.ch_axis = bits, signed, symmetric, ch_axis
        self.register_buffer("min_val", torch.tensor([float("inf")]))
        self.register_buffer("max_val", torch.tensor([float("-inf")]))

    def _batch_values(self, x: Tensor) -> Tensor:
        """``x`` as ``(C, M)``: one row per channel (``(1, numel)`` per tensor)."""
        check_tensor("x", x, "(*)")
        check_floating("x", x)
        if x.numel() == 0:
            raise ValueError(f"an observer needs at least one value, but got an empty tensor of shape "
                             f"{shape_str(x.shape)}")
        x = x.detach().float()
        if self.ch_axis is None:
            return x.reshape(1, -1)  # (1, numel)
        if not -x.dim() <= self.ch_axis < x.dim():
            raise ValueError(f"ch_axis = {self.ch_axis} is out of range for an input of shape {shape_str(x.shape)}")
        return x.movedim(self.ch_axis, 0).reshape(x.shape[self.ch_axis], -1)  # (C, M)

    def _batch_range(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        return rows.amin(1), rows.amax(1)  # (C,), (C,)

    def _update(self, lo: Tensor, hi: Tensor) -> None:
        """Fold one batch's range ``lo, hi`` (``(C,)``) into the buffers."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        lo, hi = self._batch_range(self._batch_values(x))
        if self.min_val.shape != lo.shape:
            if torch.isfinite(self.min_val).any():
                raise ValueError(f"this observer has seen {self.min_val.numel()} channel(s), but the input has "
                                 f"{lo.numel()} along ch_axis = {self.ch_axis}")
            self.min_val = torch.full_like(lo, float("inf"))
            self.max_val = torch.full_like(hi, float("-inf"))
        self._update(lo, hi)
        return x

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("min_val", "max_val"):  # per-channel buffers change shape after the first batch
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.min_val = torch.full_like(self.min_val, float("inf"))
        self.max_val = torch.full_like(self.max_val, float("-inf"))
        if hasattr(self, "batches"):
            self.batches.zero_()

    @property
    def has_data(self) -> bool:
        return bool(torch.isfinite(self.min_val).all())

    def qparams(self) -> tuple[Tensor, Tensor]:
        """``(scale, zero_point)`` for the range seen so far (``(1,)`` or ``(C,)``)."""
        if not self.has_data:
            raise RuntimeError(f"{type(self).__name__} has not seen any data yet: call it on a batch first")
        return choose_qparams(self.min_val, self.max_val, self.bits, self.signed, self.symmetric)

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, signed={self.signed}, symmetric={self.symmetric}, ch_axis={self.ch_axis}, "
                f"min_val={self.min_val.tolist()}, max_val={self.max_val.tolist()}")


class MinMaxObserver(Observer):
    """The smallest and largest value seen in all batches (torch's ``MinMaxObserver``, ``PerChannelMinMaxObserver``)."""

    def _update(self, lo: Tensor, hi: Tensor) -> None:
        self.min_val = torch.min(self.min_val, lo)
        self.max_val = torch.max(self.max_val, hi)


class MovingAverageMinMaxObserver(Observer):
    r"""An exponential moving average of the batches' ranges, :math:`\alpha \leftarrow \alpha + c\,(\alpha_t - \alpha)`
    (the first batch sets it); torch's ``MovingAverageMinMaxObserver``. Extra argument: ``averaging_constant`` c."""

    def __init__(self, bits: int = 8, signed: bool = True, symmetric: bool = False, ch_axis: int | None = None,
                 averaging_constant: float = 0.01):
        super().__init__(bits, signed, symmetric, ch_axis)
        if not isinstance(averaging_constant, int | float) or not 0 < averaging_constant <= 1:
            raise ValueError(f"averaging_constant must be in (0, 1], but got {averaging_constant!r}")
        self.averaging_constant = float(averaging_constant)

    def _update(self, lo: Tensor, hi: Tensor) -> None:
        if not self.has_data:
            self.min_val, self.max_val = lo, hi
            return
        c = self.averaging_constant
        self.min_val = self.min_val + c * (lo - self.min_val)
        self.max_val = self.max_val + c * (hi - self.max_val)


class PercentileObserver(Observer):
    r"""The ``(100 - p)``-th and ``p``-th percentiles of each batch, averaged over the batches seen.

    Extra argument: ``percentile`` p in (50, 100] (``100`` is the batch min/max). The average weighs batches
    equally, so calibrate with batches of similar size.
    """

    def __init__(self, bits: int = 8, signed: bool = True, symmetric: bool = False, ch_axis: int | None = None,
                 percentile: float = 99.9):
        super().__init__(bits, signed, symmetric, ch_axis)
        if not isinstance(percentile, int | float) or not 50 < percentile <= 100:
            raise ValueError(f"percentile must be in (50, 100], but got {percentile!r}")
        self.percentile = float(percentile)
        self.register_buffer("batches", torch.tensor(0))

    def _batch_range(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        p = self.percentile / 100
        qs = torch.quantile(rows, torch.tensor([1 - p, p]), dim=1)  # (2, C), linear interpolation
        return qs[0], qs[1]

    def _update(self, lo: Tensor, hi: Tensor) -> None:
        n = int(self.batches)
        if n == 0:
            self.min_val, self.max_val = lo, hi
        else:  # running mean over batches
            self.min_val = self.min_val + (lo - self.min_val) / (n + 1)
            self.max_val = self.max_val + (hi - self.max_val) / (n + 1)
        self.batches += 1


OBSERVERS: dict[str, type[Observer]] = {
    "minmax": MinMaxObserver,
    "moving_average": MovingAverageMinMaxObserver,
    "percentile": PercentileObserver,
}


def make_observer(kind: str, **kwargs) -> Observer:
    """``make_observer("minmax" | "moving_average" | "percentile", bits=..., ...)``."""
    if kind not in OBSERVERS:
        raise ValueError(f"observer must be one of {', '.join(map(repr, OBSERVERS))}, but got {kind!r}")
    return OBSERVERS[kind](**kwargs)
