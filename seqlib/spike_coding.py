r"""Spike coding: turning numbers into spike trains and back (C33).

A spiking network exchanges events, so its inputs must become events too. Three codes, each with the decoder that
undoes it (up to the code's resolution); time is always the first dimension of a spike train, ``(T, *)``.

**Rate code** (:func:`rate_encode`, :func:`rate_decode`). A value :math:`p \in [0, 1]` becomes a train in which every
step spikes independently with probability :math:`p` (a Bernoulli, or discrete Poisson, process). The value is the
firing rate; reading it back is counting, :math:`\hat p = \frac{1}{T}\sum_t S_t`, whose error shrinks like
:math:`\sqrt{p(1-p)/T}`. Simple and robust, but slow: many spikes per number.

**Latency code** (:func:`latency_encode`, :func:`latency_decode`). A value is the *time* of a single spike: the
stronger the input, the earlier the spike,

.. math::
    t(x) = \operatorname{round}\big((T - 1)(1 - x)\big) \quad \text{for } x \ge x_{\min},
    \qquad \text{no spike for } x < x_{\min},

and decoding reads the time of the first spike, :math:`\hat x = 1 - t / (T - 1)`, exact to :math:`1/(2(T-1))`.
One spike per number: the cheapest code, and the one that makes timing matter.

**Delta code** (:func:`delta_encode`, :func:`delta_decode`). For a signal that already varies in time, ``(T, *)``,
spike only when it *changes*: an ON spike (+1) when it has risen by the threshold :math:`\delta`, an OFF spike (−1)
when it has fallen by it, as an event camera or a cochlea does. With ``mode="tracking"`` the encoder keeps a
reference :math:`r_t` that each spike moves by :math:`\pm\delta`,

.. math::
    S_t = \begin{cases} +1 & x_t - r_{t-1} \ge \delta \\ -1 & x_t - r_{t-1} \le -\delta \\ 0 & \text{otherwise}
    \end{cases}, \qquad r_t = r_{t-1} + \delta S_t,

so the decoder :math:`\hat x_t = r_{-1} + \delta \sum_{k \le t} S_k` rebuilds the reference exactly, within
:math:`\delta` of the signal while it changes by less than :math:`\delta` per step. With ``mode="difference"`` (as
snnTorch's ``spikegen.delta``) it compares each sample with the previous one; small, slow drifts then send nothing,
and there is no exact decoder.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import (
    check_bool,
    check_choice,
    check_floating,
    check_positive_float,
    check_positive_int,
    check_probability,
    check_tensor,
    shape_str,
)

__all__ = ["rate_encode", "rate_decode", "latency_encode", "latency_decode", "first_spike_times", "delta_encode",
           "delta_decode"]


def _check_values(name: str, x: object, unit_interval: bool) -> Tensor:
    x = check_tensor(name, x)
    check_floating(name, x)
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, but it holds nan or inf values")
    if unit_interval and x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(f"{name} must lie in [0, 1] (scale it first, e.g. x / x.max()), but got values in "
                         f"[{float(x.min()):.4g}, {float(x.max()):.4g}]")
    return x


def _check_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, but got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, but got {value}")
    return float(value)


def _check_spikes(name: str, spikes: object, signed: bool = False) -> Tensor:
    s = check_tensor(name, spikes, "(T, *)")
    if s.dim() < 1 or s.shape[0] == 0:
        raise ValueError(f"{name} must have shape (T, *) with T >= 1 time steps, but got shape {shape_str(s.shape)}")
    allowed = (-1, 0, 1) if signed else (0, 1)
    if s.numel() and not bool(torch.isin(s, torch.tensor(allowed, dtype=s.dtype, device=s.device)).all()):
        raise ValueError(f"{name} must hold only {allowed} (spikes), but got other values")
    return s


# ---------------------------------------------------------------------------------------------------------------------
# rate code
# ---------------------------------------------------------------------------------------------------------------------
def rate_encode(x: Tensor, num_steps: int | None = None, *, gain: float = 1.0,
                generator: torch.Generator | None = None) -> Tensor:
    r"""Rate code: every step spikes with probability :math:`\min(1, \text{gain} \cdot x)`, independently.

    Args:
        x: values in [0, 1], any shape ``(*)``; with ``num_steps=None`` a time-varying signal ``(T, *)`` whose every
            step is drawn once.
        num_steps: ``T``, the length of the train made from a static ``x``; ``None``: ``x`` is already ``(T, *)``.
        gain: scales the probabilities (then clipped to 1); lower gain, fewer spikes. Default: 1.0.
        generator: the ``torch.Generator`` to draw from (for reproducible trains); default torch's global one.

    Returns:
        ``(T, *)`` spikes (0.0/1.0) of ``x``'s dtype.
    """
    x = _check_values("x", x, unit_interval=True)
    gain = check_positive_float("gain", gain, allow_zero=True)
    if num_steps is not None:
        check_positive_int("num_steps", num_steps)
        x = x.unsqueeze(0).expand(num_steps, *x.shape)  # (T, *)
    elif x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (T, *) with T >= 1 when num_steps is None, but got shape "
                         f"{shape_str(x.shape)}")
    return torch.bernoulli((gain * x).clamp(0, 1), generator=generator)


def rate_decode(spikes: Tensor, *, gain: float = 1.0) -> Tensor:
    r"""The firing rate :math:`\frac{1}{T}\sum_t S_t / \text{gain}` of ``spikes`` ``(T, *)``; returns ``(*)``."""
    s = _check_spikes("spikes", spikes)
    gain = check_positive_float("gain", gain)
    return s.to(s.dtype if s.is_floating_point() else torch.float32).mean(0) / gain


# ---------------------------------------------------------------------------------------------------------------------
# latency code
# ---------------------------------------------------------------------------------------------------------------------
def latency_encode(x: Tensor, num_steps: int, *, threshold: float = 0.01) -> Tensor:
    r"""Latency code: one spike per value at :math:`t = \operatorname{round}((T-1)(1-x))`, none below ``threshold``.

    Args:
        x: values in [0, 1], any shape ``(*)``.
        num_steps: ``T >= 2``, the length of the train.
        threshold: :math:`x_{\min}` in [0, 1]; smaller values send no spike. Default: 0.01.

    Returns:
        ``(T, *)`` spikes of ``x``'s dtype, at most one per value. This is snnTorch's
        ``spikegen.latency(x, T, linear=True, normalize=True, clip=True, threshold=threshold)``.
    """
    x = _check_values("x", x, unit_interval=True)
    check_positive_int("num_steps", num_steps)
    if num_steps < 2:
        raise ValueError(f"num_steps must be at least 2 for a latency code (times 0 .. T-1), but got {num_steps}")
    threshold = check_probability("threshold", threshold)
    times = torch.round((num_steps - 1) * (1 - x)).long()  # (*): strong inputs spike early
    steps = torch.arange(num_steps, device=x.device).view(-1, *([1] * x.dim()))  # (T, 1, ..., 1)
    return ((steps == times) & (x >= threshold)).to(x.dtype)  # (T, *)


def first_spike_times(spikes: Tensor) -> Tensor:
    """The step of each train's first spike, ``inf`` where it never spikes: ``(T, *)`` -> ``(*)`` float."""
    s = _check_spikes("spikes", spikes, signed=True)
    fired = s != 0
    first = fired.float().argmax(0).float()  # (*): the first maximum, i.e. the first spike
    return torch.where(fired.any(0), first, torch.full_like(first, math.inf))


def latency_decode(spikes: Tensor) -> Tensor:
    r"""Undo :func:`latency_encode`: :math:`\hat x = 1 - t_{\text{first}} / (T - 1)`, 0 where there is no spike.

    ``spikes``: ``(T, *)``; returns ``(*)`` float values in [0, 1].
    """
    _check_spikes("spikes", spikes)
    times = first_spike_times(spikes)  # (*)
    T = spikes.shape[0]
    if T < 2:
        raise ValueError(f"spikes must have T >= 2 steps for a latency code, but got shape {shape_str(spikes.shape)}")
    return torch.where(torch.isfinite(times), 1 - times / (T - 1), torch.zeros_like(times))


# ---------------------------------------------------------------------------------------------------------------------
# delta code
# ---------------------------------------------------------------------------------------------------------------------
def delta_encode(x: Tensor, threshold: float = 0.1, *, mode: str = "tracking", off_spikes: bool = True,
                 initial: Tensor | float | None = None) -> Tensor:
    r"""Delta code: ON (+1) / OFF (−1) spikes when the signal ``x`` ``(T, *)`` has changed by ``threshold``.

    Args:
        x: a signal ``(T, *)``, time first (e.g. ``(L, N, 3)`` accelerometer windows).
        threshold: :math:`\delta > 0`, the change that makes a spike. Default: 0.1.
        mode: ``"tracking"`` compares with a reference that every spike moves by :math:`\pm\delta` (decodable with
            :func:`delta_decode`); ``"difference"`` compares each sample with the previous one (snnTorch's
            ``spikegen.delta``). Default: ``"tracking"``.
        off_spikes: if ``False``, falls send nothing and the output holds only 0/1 (with ``"tracking"`` the
            reference still follows the fall, silently). Default: ``True``.
        initial: the reference before the first sample: a number or a ``(*)`` tensor; ``None``: the first sample
            itself, so that a constant offset sends no spikes. Default: ``None``.

    Returns:
        ``(T, *)`` spikes in {−1, 0, 1} ({0, 1} without ``off_spikes``), of ``x``'s dtype.
    """
    x = _check_values("x", x, unit_interval=False)
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (T, *) with T >= 1 time steps, but got shape {shape_str(x.shape)}")
    threshold = check_positive_float("threshold", threshold)
    check_choice("mode", mode, ("tracking", "difference"))
    check_bool("off_spikes", off_spikes)
    ref = _initial_reference(initial, x)  # (*)
    if mode == "difference":
        previous = torch.cat([ref.unsqueeze(0), x[:-1]])  # (T, *): x_{t-1}, with x_{-1} = initial
        change = x - previous
        on, off = (change >= threshold).to(x.dtype), (change <= -threshold).to(x.dtype)
        return on - off if off_spikes else on
    spikes = []
    for t in range(x.shape[0]):
        s = (x[t] - ref >= threshold).to(x.dtype) - (x[t] - ref <= -threshold).to(x.dtype)  # (*) in {-1, 0, 1}
        ref = ref + threshold * s
        spikes.append(s if off_spikes else s.clamp(min=0))
    return torch.stack(spikes)  # (T, *)


def _initial_reference(initial: Tensor | float | None, x: Tensor) -> Tensor:
    if initial is None:
        return x[0].clone()
    if isinstance(initial, Tensor):
        check_floating("initial", initial)
        if initial.dim() and tuple(initial.shape) != tuple(x.shape[1:]):
            raise ValueError(f"initial must be a number or have shape (*) = {shape_str(x.shape[1:])} (one value per "
                             f"signal), but got shape {shape_str(initial.shape)}")
        return initial.to(x.dtype).expand(x.shape[1:]).clone()
    return torch.full(x.shape[1:], _check_finite("initial", initial), dtype=x.dtype, device=x.device)


def delta_decode(spikes: Tensor, threshold: float = 0.1, initial: Tensor | float = 0.0) -> Tensor:
    r"""Undo a ``mode="tracking"`` delta code: :math:`\hat x_t = r_{-1} + \delta \sum_{k \le t} S_k`.

    ``spikes``: ``(T, *)`` in {−1, 0, 1}; ``initial``: :math:`r_{-1}`, a number or ``(*)`` (the first sample when the
    encoder's ``initial`` was ``None``). Returns ``(T, *)``.
    """
    s = _check_spikes("spikes", spikes, signed=True)
    threshold = check_positive_float("threshold", threshold)
    s = s if s.is_floating_point() else s.float()
    ref = _initial_reference(initial, s) if isinstance(initial, Tensor) else \
        torch.full(s.shape[1:], _check_finite("initial", initial), dtype=s.dtype, device=s.device)
    return ref + threshold * torch.cumsum(s, dim=0)  # (T, *)
