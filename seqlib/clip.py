r"""Gradient clipping (C09): keep one exploding step from throwing the parameters off a cliff.

Pascanu, Mikolov and Bengio (2013) show that the loss surface of a recurrent network has steep walls:
where the gradient explodes, a plain gradient step jumps far away and undoes what training had learned.
Clipping keeps the step's *direction* and bounds its *size*:

.. math::
    \text{if } \lVert g \rVert > \tau: \quad g \leftarrow \frac{\tau}{\lVert g \rVert}\, g

:func:`clip_grad_norm_` does this with the norm of all parameters' gradients taken together;
:func:`clip_grad_value_` clips every element to :math:`[-v, v]`, which can change the direction.
Both are twins of :mod:`torch.nn.utils`' functions (same arguments, in-place, same return values).
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _as_list(parameters: Tensor | Iterable[Tensor], name: str = "parameters") -> list[Tensor]:
    """A single tensor or an iterable (a generator is consumed once) as a list."""
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        return list(parameters)
    except TypeError:
        raise TypeError(f"{name} must be a tensor or an iterable of tensors (e.g. model.parameters()), "
                        f"but got {type(parameters).__name__}") from None


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Tensor):
        raise TypeError(f"{name} must be a number, but got {type(value).__name__}")
    return float(value)


@torch.no_grad()
def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    r"""Scale all gradients together so that their total norm is at most ``max_norm``.

    The total norm is the norm of every gradient's norm, as if all gradients were one long vector:

    .. math::
        \lVert g \rVert_p = \Big( \sum_k \lVert g_k \rVert_p^{\,p} \Big)^{1/p}
        \quad (\max_k \lVert g_k \rVert_\infty \text{ for } p = \infty), \qquad
        g_k \leftarrow g_k \cdot \min\!\Big(1, \frac{\text{max\_norm}}{\lVert g \rVert_p + 10^{-6}}\Big)

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` is clipped in place; tensors whose
            ``.grad`` is ``None`` are skipped.
        max_norm: the largest allowed total norm.
        norm_type: :math:`p`, any positive number or ``float('inf')``. Default: 2.0.
        error_if_nonfinite: raise ``RuntimeError`` if the total norm is ``nan`` or ``inf`` (otherwise
            the gradients are scaled by it anyway, as torch does). Default: ``False``.

    Returns:
        The total norm *before* clipping, a 0-dim tensor (``tensor(0.)`` when there are no gradients).
    """
    params = _as_list(parameters)
    if isinstance(parameters, types.GeneratorType) and not params:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=3)
    max_norm = _number("max_norm", max_norm)
    norm_type = _number("norm_type", norm_type)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    device = grads[0].device
    # the norm of each gradient, then the norm of those norms
    norms = [torch.linalg.vector_norm(g, norm_type).to(device) for g in grads]
    total_norm = torch.linalg.vector_norm(torch.stack(norms), norm_type)
    if error_if_nonfinite and not bool(torch.isfinite(total_norm)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    # min(1, max_norm / (total + 1e-6)), kept as a tensor so no value leaves the device
    clip_coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(clip_coef.to(g.device))
    return total_norm


@torch.no_grad()
def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    r"""Clip every gradient element to :math:`[-\text{clip\_value}, \text{clip\_value}]`, in place.

    Unlike :func:`clip_grad_norm_` this can change the gradient's direction: large components are cut
    while small ones stay.

    Args:
        parameters: a tensor or an iterable of tensors; tensors whose ``.grad`` is ``None`` are skipped.
        clip_value: the largest allowed absolute value of a gradient element.

    Returns:
        ``None``.
    """
    params = _as_list(parameters)
    clip_value = _number("clip_value", clip_value)
    for p in params:
        if p.grad is not None:
            p.grad.clamp_(min=-clip_value, max=clip_value)
