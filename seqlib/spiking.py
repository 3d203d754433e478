r"""Spiking neurons as recurrent cells: the LIF cell and layer, a leaky readout, a spiking classifier (C33, C34).

A leaky integrate-and-fire (LIF) neuron keeps one number, its membrane potential :math:`U`. Every step the
potential leaks by a factor :math:`\beta`, adds the input current, and when it crosses the threshold
:math:`\theta` the neuron emits a spike :math:`S = 1` and is reset. Written as a recurrent cell, beside the RNN's
:math:`h_t = \tanh(W x_t + V h_{t-1} + b)`:

.. math::
    U_t &= \beta\, U_{t-1} + W x_t + b + V S_{t-1} + b_V - S_{t-1}\, \theta
        \qquad \text{(reset by subtraction)} \\
    U_t &= \beta\, (1 - S_{t-1})\, U_{t-1} + W x_t + b + V S_{t-1} + b_V
        \qquad \text{(reset to zero)} \\
    S_t &= H(U_t - \theta), \qquad H(z) = 1 \text{ if } z > 0 \text{ else } 0

The state is the pair :math:`(S_{t-1}, U_{t-1})`, as an LSTM's is :math:`(h, c)`: the spikes are the output that
other neurons see, the membrane the memory. Without the recurrent weights :math:`V` (``recurrent=False``) each
neuron only sees its own past through the leak and the reset.

The step :math:`H` has derivative zero almost everywhere, so these neurons train by surrogate gradients: the
forward pass fires with the step, the backward pass uses a smooth stand-in for its derivative (:func:`spike`, with the
surrogates of :mod:`seqlib.surrogate`, re-exported here).

Like snnTorch, the reset term uses the spike *without* its gradient (``detach_reset=True``): the reset is a
bookkeeping step, and letting the surrogate flow through it as well tends to cancel the useful gradient.

Modules: :class:`LIFCell` (one step), :class:`LIF` (a whole sequence, ``(L, N, H_in)`` or ``batch_first``),
:class:`LeakyReadout` (a non-spiking leaky integrator that turns spike trains into class scores) and
:class:`SpikingClassifier` (LIF layer + readout). :func:`lif_step` is the update above, shared by the cell and the
layer; :func:`lif_sequence` runs it over time; :func:`lif_response` drives weightless neurons with a given current.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (
    check_bool,
    check_choice,
    check_dtype_match,
    check_floating,
    check_positive_float,
    check_positive_int,
    check_rank,
    check_same_device,
    check_shape,
    check_size,
    check_tensor,
    shape_str,
)
from .spiking_bptt import lif_sequence_bptt
from .surrogate import DEFAULT_SLOPES, SURROGATES, _check_surrogate, spike, surrogate_grad, surrogate_primitive

__all__ = [
    "SURROGATES", "DEFAULT_SLOPES", "surrogate_grad", "surrogate_primitive", "spike", "lif_step", "lif_sequence",
    "lif_response", "LIFCell", "LIF", "LeakyReadout", "SpikingClassifier",
]

RESETS: tuple[str, ...] = ("subtract", "zero")


# ---------------------------------------------------------------------------------------------------------------------
# 1. the membrane update, one step and a whole sequence
# ---------------------------------------------------------------------------------------------------------------------
def lif_step(current: Tensor, s: Tensor, u: Tensor, beta: Tensor | float, threshold: float, reset: str = "subtract",
             surrogate: str = "fast_sigmoid", slope: float | None = None,
             detach_reset: bool = True) -> tuple[Tensor, Tensor]:
    r"""One LIF step: leak, integrate, reset, fire.

    .. math::
        U_t = \beta U_{t-1} + I_t - S_{t-1}\theta \ \text{(subtract)} \quad\text{or}\quad
        U_t = \beta (1 - S_{t-1}) U_{t-1} + I_t \ \text{(zero)}, \qquad S_t = H(U_t - \theta)

    ``current``: ``(N, H)`` = :math:`I_t = W x_t + b + V S_{t-1} + b_V`; ``s``, ``u``: ``(N, H)`` the previous
    spikes and membrane; ``beta``: a number or ``(H,)``. Returns :math:`(S_t, U_t)`, ``(N, H)`` each.
    """
    r = s.detach() if detach_reset else s  # the reset carries no gradient (as in snnTorch) unless asked
    if reset == "subtract":
        u = beta * u + current - r * threshold
    else:
        u = beta * (1 - r) * u + current
    return spike(u - threshold, surrogate, slope), u


def lif_sequence(x: Tensor, s: Tensor, u: Tensor, w_ih: Tensor, w_hh: Tensor | None, b_ih: Tensor | None,
                 b_hh: Tensor | None, beta: Tensor | float, threshold: float, reset: str = "subtract",
                 surrogate: str = "fast_sigmoid", slope: float | None = None,
                 detach_reset: bool = True) -> tuple[Tensor, Tensor]:
    r"""Run :func:`lif_step` over ``x`` ``(L, N, H_in)`` from the state ``(s, u)`` ``(N, H)``.

    The input currents :math:`W x_t + b` of all steps do not depend on the state, so they are one matrix multiply
    before the loop; the recurrent current :math:`V S_{t-1} + b_V` (skipped when ``w_hh`` is ``None``) is added
    step by step. Returns ``(spikes, membranes)``, ``(L, N, H)`` each; autograd differentiates the loop.
    """
    currents = F.linear(x, w_ih, b_ih)  # (L, N, H): W x_t + b for every step at once
    spikes, membranes = [], []
    for t in range(x.shape[0]):
        current = currents[t] if w_hh is None else currents[t] + F.linear(s, w_hh, b_hh)  # (N, H)
        s, u = lif_step(current, s, u, beta, threshold, reset, surrogate, slope, detach_reset)
        spikes.append(s)
        membranes.append(u)
    return torch.stack(spikes), torch.stack(membranes)  # (L, N, H) each


def lif_response(current: Tensor, beta: float = 0.9, threshold: float = 1.0,
                 reset: str = "subtract") -> tuple[Tensor, Tensor]:
    r"""Neurons without weights driven by a given input current: :func:`lif_step` with :math:`I_t` = ``current[t]``.

    ``current``: ``(T,)`` for one neuron or ``(T, K)`` for ``K`` neurons; returns ``(spikes, membranes)`` of the same
    shape. Cheap enough to run on every move of a slider (no gradient is recorded).
    """
    check_tensor("current", current, "(T,) or (T, K)")
    check_floating("current", current)
    check_rank("current", current, (1, 2), "(T,) or (T, K)")
    check_choice("reset", reset, RESETS)
    beta_t, threshold = _check_beta(beta, 1), check_positive_float("threshold", threshold)
    c = current if current.dim() == 2 else current.unsqueeze(1)  # (T, K)
    s = u = c.new_zeros(c.shape[1:])  # (K,)
    spikes, membranes = [], []
    with torch.no_grad():
        for t in range(c.shape[0]):
            s, u = lif_step(c[t], s, u, float(beta_t), threshold, reset)
            spikes.append(s)
            membranes.append(u)
    out = torch.stack(spikes), torch.stack(membranes)  # (T, K) each
    return out if current.dim() == 2 else (out[0].squeeze(1), out[1].squeeze(1))


# ---------------------------------------------------------------------------------------------------------------------
# 2. modules
# ---------------------------------------------------------------------------------------------------------------------
def _check_beta(beta: object, size: int, name: str = "beta") -> Tensor:
    """``beta`` as a float tensor: a number in [0, 1] (shape ``()``) or ``(H,)`` values in [0, 1]."""
    if isinstance(beta, bool) or not isinstance(beta, int | float | Tensor):
        raise TypeError(f"{name} must be a float in [0, 1] or a tensor of shape (H,) = ({size},), "
                        f"but got {type(beta).__name__}")
    if isinstance(beta, Tensor):
        check_floating(name, beta)
        if beta.dim() > 1 or (beta.dim() == 1 and beta.shape[0] != size):
            raise ValueError(f"{name} must be a number or have shape (H,) = ({size},), "
                             f"but got shape {shape_str(beta.shape)}")
        value = beta.detach().clone()
    else:
        value = torch.tensor(float(beta))
    if not bool(((value >= 0) & (value <= 1)).all()):
        raise ValueError(f"{name} (the membrane's decay per step) must lie in [0, 1], but got {beta}")
    return value


class _LIFBase(nn.Module):
    """Parameters, checks and the step shared by LIFCell and LIF (one state_dict layout for both)."""

    def __init__(self, input_size: int, hidden_size: int, beta: float | Tensor = 0.9, threshold: float = 1.0,
                 reset: str = "subtract", recurrent: bool = True, learn_beta: bool = False,
                 surrogate: str = "fast_sigmoid", slope: float | None = None, bias: bool = True,
                 detach_reset: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_choice("reset", reset, RESETS)
        for name, flag in (("recurrent", recurrent), ("learn_beta", learn_beta), ("bias", bias),
                           ("detach_reset", detach_reset)):
            check_bool(name, flag)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.threshold = check_positive_float("threshold", threshold)
        self.slope = _check_surrogate(surrogate, slope)
        self.surrogate, self.reset, self.recurrent, self.bias = surrogate, reset, recurrent, bias
        self.detach_reset, self.learn_beta = detach_reset, learn_beta
        kw = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size, **kw))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size, **kw)) if bias else None
        if recurrent:
            self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(hidden_size, **kw)) if bias else None
        else:
            self.weight_hh = self.bias_hh = None
        beta_t = _check_beta(beta, hidden_size).to(device=self.weight_ih.device, dtype=self.weight_ih.dtype)
        if learn_beta:
            self.beta = nn.Parameter(beta_t)
        else:
            self.register_buffer("beta", beta_t)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Linear's distribution."""
        for w, b in ((self.weight_ih, self.bias_ih), (self.weight_hh, self.bias_hh)):
            if w is None:
                continue
            bound = 1.0 / math.sqrt(w.shape[1])
            nn.init.uniform_(w, -bound, bound)
            if b is not None:
                nn.init.uniform_(b, -bound, bound)

    def _beta(self) -> Tensor:
        return self.beta.clamp(0, 1)  # a learned beta may step outside [0, 1]; the neuron uses it clipped

    def _step(self, current: Tensor, s: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """One step from the input current ``W x_t + b`` ``(N, H)``: adds ``V S_{t-1} + b_V``, then :func:`lif_step`."""
        if self.weight_hh is not None:
            current = current + F.linear(s, self.weight_hh, self.bias_hh)  # (N, H)
        return lif_step(current, s, u, self._beta(), self.threshold, self.reset, self.surrogate, self.slope,
                        self.detach_reset)

    def _check_state(self, hx: object, n: int, x: Tensor, batched: bool) -> tuple[Tensor, Tensor]:
        """``hx = (s_0, u_0)``, each ``(N, H)`` (``(H,)`` unbatched), or zeros when ``None``."""
        expected = "(N, H)" if batched else "(H,)"
        if hx is None:
            zeros = x.new_zeros(n, self.hidden_size)  # (N, H)
            return zeros, zeros
        if not isinstance(hx, tuple | list) or len(hx) != 2:
            what = f"a single Tensor of shape {shape_str(hx.shape)}" if isinstance(hx, Tensor) else type(hx).__name__
            raise TypeError(f"hx must be a tuple (s_0, u_0) of spikes and membrane potentials, each of shape "
                            f"{expected}, but got {what}")
        shape = (n, self.hidden_size) if batched else (self.hidden_size,)
        out = []
        for name, value in zip(("hx[0] (s_0)", "hx[1] (u_0)"), hx, strict=True):
            t = check_tensor(name, value, expected)
            check_dtype_match(name, t, expected, x, "input")
            check_same_device(name, t, expected, x, "input")
            check_shape(name, t, shape, expected)
            out.append(t if batched else t.unsqueeze(0))  # (N, H)
        return out[0], out[1]

    def _check_features(self, x: object, expected: str, ranks: tuple[int, ...], shape: str) -> Tensor:
        x = check_tensor("input", x, expected)
        check_floating("input", x)
        check_rank("input", x, ranks, expected)
        check_size("input", x, -1, self.input_size, "H_in", shape)
        check_dtype_match("input", x, shape, self.weight_ih, "weight_ih")
        check_same_device("input", x, shape, self.weight_ih, "weight_ih")
        return x

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, threshold={self.threshold}, reset={self.reset!r}"
        s += f", recurrent={self.recurrent}, surrogate={self.surrogate!r}, slope={self.slope}"
        if self.learn_beta:
            s += ", learn_beta=True"
        if not self.bias:
            s += ", bias=False"
        if not self.detach_reset:
            s += ", detach_reset=False"
        return s


class LIFCell(_LIFBase):
    r"""One step of a layer of leaky integrate-and-fire neurons, written like :class:`torch.nn.RNNCell`.

    .. math::
        U' &= \beta U + W_{ih} x + b_{ih} + W_{hh} S + b_{hh} - S\,\theta \quad \text{(reset="subtract")} \\
        U' &= \beta (1 - S) U + W_{ih} x + b_{ih} + W_{hh} S + b_{hh} \quad \text{(reset="zero")} \\
        S' &= H(U' - \theta)

    The :math:`W_{hh} S + b_{hh}` term is there only with ``recurrent=True``. With the same weights and settings the
    cell computes what snnTorch's ``snn.RLeaky`` (``recurrent=True``, ``reset="subtract"``) or ``snn.Leaky``
    (``recurrent=False``) computes after an ``nn.Linear``, outputs and gradients.

    Args:
        input_size: the number of input features ``H_in``.
        hidden_size: the number of neurons ``H``.
        beta: the decay of the membrane per step, in [0, 1]: a number, or ``(H,)`` for one per neuron.
            Default: 0.9.
        threshold: the potential above which a neuron fires, > 0. Default: 1.0.
        reset: ``"subtract"`` (subtract the threshold after a spike) or ``"zero"`` (set the potential to 0).
            Default: ``"subtract"``.
        recurrent: if ``True``, spikes feed back through ``weight_hh``. Default: ``True``.
        learn_beta: if ``True``, ``beta`` is a parameter (clipped to [0, 1] when used). Default: ``False``.
        surrogate: the surrogate derivative of the spike (:data:`SURROGATES`). Default: ``"fast_sigmoid"``.
        slope: the surrogate's sharpness; ``None``: :data:`DEFAULT_SLOPES`. Default: ``None``.
        bias: if ``False``, no ``bias_ih``, ``bias_hh``. Default: ``True``.
        detach_reset: if ``True``, no gradient flows through the reset term. Default: ``True``.

    Inputs: input, (s_0, u_0)
        - **input**: ``(N, H_in)`` or ``(H_in,)``.
        - **s_0**, **u_0**: ``(N, H)`` or ``(H,)``, the previous spikes and membrane potentials; zeros if the
          tuple is not given.

    Outputs: (s_1, u_1)
        - **s_1**: ``(N, H)`` or ``(H,)``, the spikes (0.0 or 1.0) of this step.
        - **u_1**: ``(N, H)`` or ``(H,)``, the membrane potentials of this step (before the reset that the
          next step applies).

    Attributes:
        weight_ih: ``(H, H_in)``; bias_ih: ``(H,)``; weight_hh: ``(H, H)``; bias_hh: ``(H,)`` (``None``
        without ``recurrent``/``bias``), each from :math:`\mathcal{U}(-k, k)`, :math:`k = 1/\sqrt{\text{fan-in}}`.
        beta: ``()`` or ``(H,)``, a buffer (a parameter with ``learn_beta``).
    """

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        expected = "(N, H_in) or (H_in,)"
        x = check_tensor("input", input, expected)
        x = self._check_features(x, expected, (1, 2), "(N, H_in)" if x.dim() == 2 else "(H_in,)")
        batched = x.dim() == 2
        x = x if batched else x.unsqueeze(0)  # (N, H_in)
        s, u = self._check_state(hx, x.shape[0], x, batched)
        s, u = self._step(F.linear(x, self.weight_ih, self.bias_ih), s, u)  # (N, H) each
        return (s, u) if batched else (s.squeeze(0), u.squeeze(0))


class LIF(_LIFBase):
    r"""A layer of leaky integrate-and-fire neurons run over a sequence, written like :class:`torch.nn.RNN`.

    Every step applies the update of :class:`LIFCell`; the input currents :math:`W_{ih} x_t + b_{ih}` of all steps
    are computed at once (they do not depend on the state). The constructor takes :class:`LIFCell`'s arguments and
    ``batch_first``; the state_dicts of the two load into each other.

    Args:
        input_size, hidden_size, beta, threshold, reset, recurrent, learn_beta, surrogate, slope, bias,
        detach_reset: as :class:`LIFCell`.
        batch_first: if ``True``, input and outputs are ``(N, L, ...)``. Default: ``False``.
        fast: if ``True``, run :func:`seqlib.spiking_bptt.lif_sequence_bptt` (backpropagation through time written
            out by hand; the same numbers, faster); if ``False``, the plain loop :func:`lif_sequence` differentiated
            by autograd. Default: ``True``.

    Inputs: input, (s_0, u_0)
        - **input**: ``(L, N, H_in)``, ``(N, L, H_in)`` with ``batch_first``, or unbatched ``(L, H_in)``.
        - **s_0**, **u_0**: ``(N, H)`` or ``(H,)``, the initial spikes and membrane; zeros if not given.

    Outputs: spikes, membranes
        - **spikes**: ``(L, N, H)`` (``(N, L, H)`` with ``batch_first``, ``(L, H)`` unbatched), 0.0 or 1.0.
        - **membranes**: the same shape, :math:`U_t` at every step. The final state is
          ``(spikes[-1], membranes[-1])`` (along the time dimension).
    """

    def __init__(self, input_size: int, hidden_size: int, beta: float | Tensor = 0.9, threshold: float = 1.0,
                 reset: str = "subtract", recurrent: bool = True, learn_beta: bool = False,
                 surrogate: str = "fast_sigmoid", slope: float | None = None, bias: bool = True,
                 batch_first: bool = False, detach_reset: bool = True, fast: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(input_size, hidden_size, beta, threshold, reset, recurrent, learn_beta, surrogate, slope,
                         bias, detach_reset, device, dtype)
        self.batch_first = check_bool("batch_first", batch_first)
        self.fast = check_bool("fast", fast)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        batched_shape = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
        expected = f"{batched_shape} or unbatched (L, H_in)"
        shape = batched_shape if isinstance(input, Tensor) and input.dim() == 3 else "(L, H_in)"
        x = self._check_features(input, expected, (2, 3), shape)
        batched = x.dim() == 3
        if not batched:
            x = x.unsqueeze(1)  # (L, 1, H_in)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (N, L, H_in) -> (L, N, H_in)
        if x.shape[0] == 0:
            raise ValueError(f"input must have shape {shape} with L >= 1 time steps, "
                             f"but got shape {shape_str(input.shape)}")
        s, u = self._check_state(hx, x.shape[1], x, batched)
        run = lif_sequence_bptt if self.fast else lif_sequence
        spikes, membranes = run(x, s, u, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self._beta(),
                                self.threshold, self.reset, self.surrogate, self.slope,
                                self.detach_reset)  # (L, N, H) each
        if not batched:
            return spikes.squeeze(1), membranes.squeeze(1)  # (L, H)
        if self.batch_first:
            return spikes.transpose(0, 1), membranes.transpose(0, 1)  # (N, L, H)
        return spikes, membranes

    def extra_repr(self) -> str:
        return super().extra_repr() + (", batch_first=True" if self.batch_first else "") + \
            ("" if self.fast else ", fast=False")


class LeakyReadout(nn.Module):
    r"""A leaky integrator without spikes: turns spike trains into a potential per output, every step.

    .. math::
        V_t = \beta V_{t-1} + W S_t + b

    It is a LIF neuron whose threshold is never reached (snnTorch: ``snn.Leaky(beta, reset_mechanism="none")``
    after an ``nn.Linear``). Its potentials are the scores of a spiking classifier.

    Args:
        input_size: the number of input spike trains ``H``.
        output_size: the number of outputs ``C``.
        beta: the decay per step, in [0, 1] (a number or ``(C,)``). Default: 0.9.
        learn_beta: if ``True``, ``beta`` is a parameter. Default: ``False``.
        bias: if ``False``, no ``bias``. Default: ``True``.
        batch_first: if ``True``, input and output are ``(N, L, ...)``. Default: ``False``.

    Inputs: input, v_0
        - **input**: ``(L, N, H)``, ``(N, L, H)`` with ``batch_first``, or unbatched ``(L, H)``.
        - **v_0**: ``(N, C)`` or ``(C,)``, the initial potentials; zeros if not given.

    Outputs: potentials
        - **potentials**: ``(L, N, C)`` (``(N, L, C)`` with ``batch_first``, ``(L, C)`` unbatched).

    Attributes:
        weight: ``(C, H)``; bias: ``(C,)``, from :math:`\mathcal{U}(-k, k)`, :math:`k = 1/\sqrt{H}`;
        beta: ``()`` or ``(C,)``.
    """

    def __init__(self, input_size: int, output_size: int, beta: float | Tensor = 0.9, learn_beta: bool = False,
                 bias: bool = True, batch_first: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.output_size = check_positive_int("output_size", output_size)
        self.learn_beta = check_bool("learn_beta", learn_beta)
        self.batch_first = check_bool("batch_first", batch_first)
        check_bool("bias", bias)
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(output_size, input_size, **kw))
        self.bias = nn.Parameter(torch.empty(output_size, **kw)) if bias else None
        beta_t = _check_beta(beta, output_size).to(device=self.weight.device, dtype=self.weight.dtype)
        if learn_beta:
            self.beta = nn.Parameter(beta_t)
        else:
            self.register_buffer("beta", beta_t)
        bound = 1.0 / math.sqrt(input_size)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor, v0: Tensor | None = None) -> Tensor:
        batched_shape = "(N, L, H)" if self.batch_first else "(L, N, H)"
        expected = f"{batched_shape} or unbatched (L, H)"
        x = check_tensor("input", input, expected)
        check_floating("input", x)
        check_rank("input", x, (2, 3), expected)
        shape = batched_shape if x.dim() == 3 else "(L, H)"
        check_size("input", x, -1, self.input_size, "H", shape)
        check_dtype_match("input", x, shape, self.weight, "weight")
        batched = x.dim() == 3
        if not batched:
            x = x.unsqueeze(1)  # (L, 1, H)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (N, L, H) -> (L, N, H)
        currents = F.linear(x, self.weight, self.bias)  # (L, N, C)
        if v0 is None:
            v = currents.new_zeros(currents.shape[1:])  # (N, C)
        else:
            v_shape = "(N, C)" if batched else "(C,)"
            v = check_tensor("v0", v0, v_shape)
            check_dtype_match("v0", v, v_shape, x, "input")
            check_shape("v0", v, currents.shape[1:] if batched else (self.output_size,), v_shape)
            v = v if batched else v.unsqueeze(0)  # (N, C)
        beta = self.beta.clamp(0, 1)
        potentials = []
        for t in range(currents.shape[0]):
            v = beta * v + currents[t]  # leak and integrate; no threshold, no reset
            potentials.append(v)
        out = torch.stack(potentials)  # (L, N, C)
        if not batched:
            return out.squeeze(1)
        return out.transpose(0, 1) if self.batch_first else out

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.output_size}" + (", bias=False" if self.bias is None else "")


class SpikingClassifier(nn.Module):
    r"""A recurrent spiking network for sequence classification: a :class:`LIF` layer, then a :class:`LeakyReadout`.

    The class scores are the readout's potentials averaged over time,
    :math:`\text{logits} = \frac{1}{L} \sum_t V_t`, so every step's spikes count, and a cross-entropy loss
    on them trains the whole network by surrogate-gradient BPTT.

    Args:
        input_size: features per step ``H_in`` (analog currents or input spikes).
        hidden_size: LIF neurons ``H``.
        num_classes: classes ``C``.
        beta, threshold, reset, recurrent, learn_beta, surrogate, slope: the LIF layer's (:class:`LIFCell`).
        readout_beta: the readout's decay. Default: 0.9.
        batch_first: if ``True``, the input is ``(N, L, H_in)``. Default: ``True``.

    Inputs: input
        - **input**: ``(N, L, H_in)`` (``(L, N, H_in)`` with ``batch_first=False``).

    Outputs: logits
        - **logits**: ``(N, C)``. After a call, ``last_spikes`` holds the hidden spikes ``(L, N, H)`` (detached),
          for counting events.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, beta: float | Tensor = 0.9,
                 threshold: float = 1.0, reset: str = "subtract", recurrent: bool = True, learn_beta: bool = False,
                 surrogate: str = "fast_sigmoid", slope: float | None = None, readout_beta: float = 0.9,
                 batch_first: bool = True) -> None:
        super().__init__()
        self.batch_first = check_bool("batch_first", batch_first)
        self.lif = LIF(input_size, hidden_size, beta, threshold, reset, recurrent, learn_beta, surrogate, slope)
        self.readout = LeakyReadout(hidden_size, num_classes, readout_beta)
        self.last_spikes: Tensor | None = None

    def forward(self, input: Tensor) -> Tensor:
        x = check_tensor("input", input, "(N, L, H_in)" if self.batch_first else "(L, N, H_in)")
        check_rank("input", x, (3,), "(N, L, H_in)" if self.batch_first else "(L, N, H_in)")
        if self.batch_first:
            x = x.transpose(0, 1)  # (N, L, H_in) -> (L, N, H_in)
        spikes, _ = self.lif(x)  # (L, N, H)
        self.last_spikes = spikes.detach()
        return self.readout(spikes).mean(0)  # (L, N, C) -> (N, C)
