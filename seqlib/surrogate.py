r"""The spike and its surrogate gradient: a step in the forward pass, a smooth derivative in the backward (C34).

A spiking neuron emits :math:`S = H(U - \theta)`, the Heaviside step of its membrane potential above the threshold.
The step's derivative is zero everywhere except at the threshold, where it is infinite, so backpropagation through
time would pass no gradient at all. Surrogate-gradient training keeps :math:`H` in the forward pass and uses a smooth
stand-in for its derivative in the backward pass; with :math:`z = U - \theta` and sharpness ``slope`` :math:`k`:

=====================  ===========================================================  =============
``surrogate``          :math:`\partial S / \partial z` used in the backward pass      ``slope`` k
=====================  ===========================================================  =============
``"fast_sigmoid"``     :math:`1 / (1 + k \lvert z \rvert)^2`                            25
``"arctan"``           :math:`(k/2) / (1 + (\pi k z / 2)^2)`                            2
``"sigmoid"``          :math:`k\, \sigma(k z)\, (1 - \sigma(k z))`                      25
``"straight_through"`` :math:`1` (the step is treated as the identity)                  (unused)
=====================  ===========================================================  =============

(snnTorch's ``surrogate.fast_sigmoid``, ``atan``, ``sigmoid`` and ``straight_through_estimator``, with its default
slopes.) :func:`spike` is the :class:`torch.autograd.Function`; :func:`surrogate_grad` is the table;
:func:`surrogate_primitive` is the smooth function each surrogate is the derivative of, which is how the tests check
the formulas with ``gradcheck``. :mod:`seqlib.spiking` re-exports all three.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import check_choice, check_floating, check_positive_float, check_tensor

__all__ = ["SURROGATES", "DEFAULT_SLOPES", "surrogate_grad", "surrogate_primitive", "spike"]

#: The surrogate derivatives :func:`spike` can use in its backward pass.
SURROGATES: tuple[str, ...] = ("fast_sigmoid", "arctan", "sigmoid", "straight_through")
#: The default ``slope`` of each surrogate (snnTorch's defaults).
DEFAULT_SLOPES: dict[str, float] = {"fast_sigmoid": 25.0, "arctan": 2.0, "sigmoid": 25.0, "straight_through": 1.0}


# ---------------------------------------------------------------------------------------------------------------------
# 1. the spike: a step forward, a surrogate derivative backward
# ---------------------------------------------------------------------------------------------------------------------
def _check_surrogate(surrogate: object, slope: object) -> float:
    """Validate the surrogate's name and slope; return the slope (its default when ``None``)."""
    check_choice("surrogate", surrogate, SURROGATES)
    if slope is None:
        return DEFAULT_SLOPES[surrogate]  # type: ignore[index]
    return check_positive_float("slope", slope)


def surrogate_grad(z: Tensor, surrogate: str = "fast_sigmoid", slope: float | None = None) -> Tensor:
    r"""The surrogate derivative :math:`\partial S/\partial z` of the spike at ``z = U - \theta`` (table above).

    ``z``: any shape; returns a tensor of the same shape.
    """
    k = _check_surrogate(surrogate, slope)
    if surrogate == "fast_sigmoid":
        return 1.0 / (k * z.abs() + 1.0) ** 2
    if surrogate == "arctan":
        return (k / 2) / (1 + (math.pi / 2 * k * z) ** 2)
    if surrogate == "sigmoid":
        return k * torch.sigmoid(k * z) * torch.sigmoid(-k * z)  # = k sigma (1 - sigma), accurate for large |z|
    return torch.ones_like(z)


def surrogate_primitive(z: Tensor, surrogate: str = "fast_sigmoid", slope: float | None = None) -> Tensor:
    r"""A smooth function whose derivative is exactly :func:`surrogate_grad`: the spike's backward pass is the
    gradient of this function, while its forward pass is the step.

    fast sigmoid :math:`z / (1 + k\lvert z\rvert)`; arctan :math:`\arctan(\pi k z / 2) / \pi`; sigmoid
    :math:`\sigma(k z)`; straight-through :math:`z`.
    """
    k = _check_surrogate(surrogate, slope)
    if surrogate == "fast_sigmoid":
        return z / (1.0 + k * z.abs())
    if surrogate == "arctan":
        return torch.atan(math.pi / 2 * k * z) / math.pi
    if surrogate == "sigmoid":
        return torch.sigmoid(k * z)
    return z.clone()


class _Spike(torch.autograd.Function):
    """Forward: the Heaviside step ``z > 0``. Backward: the incoming gradient times the surrogate derivative."""

    @staticmethod
    def forward(ctx, z: Tensor, surrogate: str, slope: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.surrogate, ctx.slope = surrogate, slope
        return (z > 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (z,) = ctx.saved_tensors
        return grad_spikes * surrogate_grad(z, ctx.surrogate, ctx.slope), None, None


def spike(z: Tensor, surrogate: str = "fast_sigmoid", slope: float | None = None) -> Tensor:
    r"""The spike :math:`S = H(z)`, with :math:`z = U - \theta`: 1 where ``z > 0``, else 0.

    Its backward pass multiplies the incoming gradient by the surrogate derivative named by ``surrogate``
    (:data:`SURROGATES`) with sharpness ``slope`` (``None``: :data:`DEFAULT_SLOPES`).

    Args:
        z: a floating-point tensor of any shape, the membrane potential minus the threshold.
        surrogate: ``"fast_sigmoid"``, ``"arctan"``, ``"sigmoid"`` or ``"straight_through"``.
        slope: the surrogate's sharpness ``k``; larger is closer to the true (zero-or-infinite) derivative.

    Returns:
        The spikes, 0.0 or 1.0, of ``z``'s shape and dtype.
    """
    check_tensor("z", z)
    check_floating("z", z)
    k = _check_surrogate(surrogate, slope)
    return _Spike.apply(z, surrogate, k)
