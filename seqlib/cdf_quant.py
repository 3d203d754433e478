r"""Quantizing in distribution-function space: a grid that is uniform for :math:`F(X)`, not for :math:`X` (C39).

If :math:`X` has a continuous distribution function :math:`F`, then :math:`F(X)` is uniform on :math:`(0, 1)`
(ClimbQ's Theorem 3.1: :math:`P(F(X) \le u) = P(X \le F^{-1}(u)) = F(F^{-1}(u)) = u`). A uniform quantizer is the
best one for uniform data, so :func:`cdf_quantize` projects, quantizes uniformly and projects back:

.. math::
    u = F\Big(\frac{x - \mu}{\sigma}\Big), \qquad
    i = \min\big(\lfloor 2^b u \rfloor,\; 2^b - 1\big), \qquad
    \hat x = \mu + \sigma\, F^{-1}\Big(\frac{i + 1/2}{2^b}\Big)

Each of the :math:`2^b` levels then receives the same share of the values: the levels crowd where the data is dense
and thin out in the tails (the idea behind NF4's "normal float" levels). The level :math:`F^{-1}((i + 1/2)/2^b)` is
the centre of its bin in :math:`u`, so it is finite even for the outermost bins. The gradient is passed straight
through (an STE): every real number falls into some bin, so there is no clamping range to stop it.

Which :math:`F`? ``dist="normal"`` (:math:`\Phi`) or ``"laplace"``, with location :math:`\mu` and scale
:math:`\sigma` given or estimated from ``x`` (mean and standard deviation; median and mean absolute deviation for
Laplace), or any ``torch.distributions.Distribution`` with ``cdf`` and ``icdf``. The catch, for imbalanced data: one
global :math:`F` fitted to all classes together hands almost every level to the majority class; see
:mod:`seqlib.climbq`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._checks import check_floating, check_tensor, shape_str
from .quant import check_bits

__all__ = ["cdf_quantize", "cdf_levels", "fit_distribution", "CDFQuantize", "CDFWeightQuantize", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("normal", "laplace")
_TINY = 1e-12


def _cdf(z: Tensor, dist: str) -> Tensor:
    """Standard distribution function at ``z``."""
    if dist == "normal":
        return 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    return torch.where(z < 0, 0.5 * torch.exp(z), 1 - 0.5 * torch.exp(-z))  # Laplace(0, 1)


def _icdf(u: Tensor, dist: str) -> Tensor:
    """Standard quantile function at ``u`` in (0, 1)."""
    if dist == "normal":
        return math.sqrt(2) * torch.erfinv(2 * u - 1)
    return torch.where(u < 0.5, torch.log(2 * u), -torch.log(2 - 2 * u))


def fit_distribution(x: Tensor, dist: str = "normal", dim: int | None = None) -> tuple[Tensor, Tensor]:
    """Location and scale of ``dist`` fitted to ``x`` (over all of it, or along every dim but ``dim``)."""
    check_tensor("x", x, "(*)")
    check_floating("x", x)
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {', '.join(map(repr, DISTRIBUTIONS))} or a "
                         f"torch.distributions.Distribution, but got {dist!r}")
    x = x.detach()
    rows = x.reshape(1, -1) if dim is None else x.movedim(dim, 0).reshape(x.shape[dim], -1)  # (C, M)
    if rows.shape[1] < 2:
        raise ValueError(f"fitting a distribution needs at least 2 values per grid, but got x of shape "
                         f"{shape_str(x.shape)}")
    if dist == "normal":
        loc, scale = rows.mean(1), rows.std(1)
    else:
        loc = rows.quantile(0.5, dim=1)
        scale = (rows - loc[:, None]).abs().mean(1)
    return loc, scale.clamp(min=_TINY)


def _as_param(name: str, value: Tensor | float, x: Tensor, axis: int | None) -> Tensor:
    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if axis is None:
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number per tensor, but got shape {shape_str(value.shape)}")
        return value.reshape(())  # ()
    if value.numel() != x.shape[axis]:
        raise ValueError(f"{name} must have shape (C,) with C = {x.shape[axis]} = x.shape[{axis}], but got shape "
                         f"{shape_str(value.shape)}")
    shape = [1] * x.dim()
    shape[axis] = -1
    return value.reshape(shape)  # (1, .., C, .., 1)


def cdf_quantize(x: Tensor, bits: int, dist: str | torch.distributions.Distribution = "normal",
                 loc: Tensor | float | None = None, scale: Tensor | float | None = None,
                 per_channel_axis: int | None = None) -> Tensor:
    r"""Quantize ``x`` to :math:`2^b` levels uniform in distribution-function space (see the module docstring).

    Args:
        x: values to quantize, floating point.
        bits: :math:`b`, 2-16.
        dist: ``"normal"``, ``"laplace"``, or a ``torch.distributions.Distribution`` (then ``loc``/``scale``
            must be ``None``: the distribution carries them).
        loc, scale: :math:`\mu, \sigma > 0`; ``None``: fitted to ``x`` (per channel along ``per_channel_axis``).
        per_channel_axis: one :math:`(\mu, \sigma)` per slice along this axis.

    Inputs/Outputs:
        - x: :math:`(*)`; output: :math:`(*)`, same dtype, with at most :math:`2^b` distinct values per grid.
    """
    check_tensor("x", x, "(*)")
    check_floating("x", x)
    check_bits(bits)
    levels = 2**bits
    if isinstance(dist, torch.distributions.Distribution):
        if loc is not None or scale is not None or per_channel_axis is not None:
            raise ValueError("with a torch.distributions.Distribution as dist, leave loc, scale and "
                             "per_channel_axis as None (the distribution holds its parameters)")
        u = dist.cdf(x.detach())
        index = torch.clamp(torch.floor(u * levels), 0, levels - 1)
        x_hat = dist.icdf((index + 0.5) / levels).to(x.dtype)
        return x_hat + (x - x.detach())  # the value of x_hat, the gradient of x (straight through)
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {', '.join(map(repr, DISTRIBUTIONS))} or a "
                         f"torch.distributions.Distribution, but got {dist!r}")
    axis = None
    if per_channel_axis is not None:
        if not -x.dim() <= per_channel_axis < x.dim():
            raise ValueError(f"per_channel_axis must be in [{-x.dim()}, {x.dim() - 1}] for x of shape "
                             f"{shape_str(x.shape)}, but got {per_channel_axis}")
        axis = per_channel_axis % x.dim()
    if loc is None or scale is None:
        fit_loc, fit_scale = fit_distribution(x, dist, axis)
        loc = fit_loc if loc is None else loc
        scale = fit_scale if scale is None else scale
    mu, sigma = _as_param("loc", loc, x, axis), _as_param("scale", scale, x, axis)
    if not bool(torch.all(sigma > 0)) or not bool(torch.all(torch.isfinite(sigma) & torch.isfinite(mu))):
        raise ValueError(f"scale must be positive and finite (and loc finite), but got scale "
                         f"{sigma.flatten().tolist()}")
    z = (x.detach() - mu) / sigma
    index = torch.clamp(torch.floor(_cdf(z, dist) * levels), 0, levels - 1)  # bin of u = F(z)
    x_hat = mu + sigma * _icdf((index + 0.5) / levels, dist)  # centre of the bin, back in x space
    return x_hat + (x - x.detach())  # the value of x_hat, the gradient of x (straight through)


def cdf_levels(bits: int, dist: str = "normal", loc: float = 0.0, scale: float = 1.0) -> Tensor:
    r"""The :math:`2^b` levels :math:`\mu + \sigma F^{-1}((i + 1/2) / 2^b)` of :func:`cdf_quantize`, ascending."""
    check_bits(bits)
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {', '.join(map(repr, DISTRIBUTIONS))}, but got {dist!r}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, but got {scale}")
    u = (torch.arange(2**bits, dtype=torch.float64) + 0.5) / 2**bits
    return loc + scale * _icdf(u, dist)


class CDFQuantize(nn.Module):
    r"""Activation quantizer of the ``"cdf"`` scheme: :func:`cdf_quantize` with a normal :math:`(\mu, \sigma)` that it
    estimates from the values it sees (an exponential moving average with ``momentum``, the first batch sets it).

    Observes in training mode (or while ``observe`` is ``True``), frozen in eval mode, like
    :class:`seqlib.qat.FakeQuantize`.
    """

    def __init__(self, bits: int = 8, dist: str = "normal", momentum: float = 0.1):
        super().__init__()
        self.bits = check_bits(bits)
        if dist not in DISTRIBUTIONS:
            raise ValueError(f"dist must be one of {', '.join(map(repr, DISTRIBUTIONS))}, but got {dist!r}")
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], but got {momentum}")
        self.dist, self.momentum = dist, float(momentum)
        self.register_buffer("loc", torch.tensor(0.0))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("batches", torch.tensor(0))
        self.observe: bool | None = None
        self.enabled = True

    def forward(self, x: Tensor) -> Tensor:
        if (self.training if self.observe is None else self.observe):
            loc, scale = fit_distribution(x, self.dist)
            m = 1.0 if int(self.batches) == 0 else self.momentum
            self.loc = (1 - m) * self.loc + m * loc[0].to(self.loc)
            self.scale = (1 - m) * self.scale + m * scale[0].to(self.scale)
            self.batches += 1
        if not self.enabled:
            return x
        if int(self.batches) == 0:
            raise RuntimeError("CDFQuantize has not seen any data yet: calibrate the model or train it first")
        return cdf_quantize(x, self.bits, self.dist, self.loc, self.scale)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, dist={self.dist!r}, loc={float(self.loc):.4g}, scale={float(self.scale):.4g}"


class CDFWeightQuantize(nn.Module):
    """Weight quantizer of the ``"cdf"`` scheme: a normal fitted to the current weight (per tensor or per row)."""

    def __init__(self, bits: int = 8, per_channel: bool = False, dist: str = "normal"):
        super().__init__()
        self.bits, self.dist = check_bits(bits), dist
        self.ch_axis = 0 if per_channel else None
        self.enabled = True

    def forward(self, weight: Tensor) -> Tensor:
        if not self.enabled:
            return weight
        return cdf_quantize(weight, self.bits, self.dist, per_channel_axis=self.ch_axis)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, dist={self.dist!r}, ch_axis={self.ch_axis}"
