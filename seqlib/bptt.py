r"""Backpropagation through time (BPTT) written out by hand: a line per equation (C07).

Unfold a recurrent layer over ``T`` steps and it becomes a deep feed-forward network whose layers share
their weights. BPTT is ordinary backpropagation on that unfolded network: walk the steps in reverse,
carry the gradient of the hidden state from step ``t`` to step ``t - 1``, and add up the contributions
of every step to the shared weights.

For the Elman RNN (tanh or ReLU), the LSTM and the GRU, ``*_forward`` runs the layer step by step and keeps
a cache of what the backward pass needs; ``*_backward`` walks time in reverse without autograd and returns
every gradient, including the per-step :math:`\partial L/\partial h_t` (and :math:`\partial L/\partial c_t`
for the LSTM), optionally truncated every ``k`` steps. The equations are in the docstrings, and each one is a
line of the code below; ``tests/test_bptt.py`` checks every number against autograd in float64.

This is the version to read. The layers (``seqlib.RNN``, ``LSTM``, ``GRU``) train through
:mod:`seqlib.bptt_fast`, which computes the same numbers with the loops rearranged for speed; the
gradient-flow measurements of lectures 02 and 03 (:func:`~seqlib.gradflow.gradient_norms` etc.) live in
:mod:`seqlib.gradflow`.

Conventions: time runs ``t = 0 .. T-1``; :math:`h_{-1}` (and :math:`c_{-1}`) is the initial state
``h0`` (``c0``); ``x`` is ``(T, N, H_in)``; weights have torch.nn's layout, ``w_ih`` ``(G*H, H_in)`` and
``w_hh`` ``(G*H, H)`` with the gates stacked in torch.nn's order (LSTM ``i, f, g, o``; GRU ``r, z, n``).
Vectors are rows, so :math:`W x_t` is written ``x[t] @ w_ih.T``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_choice, check_floating, check_positive_int, check_rank, check_tensor, shape_str

__all__ = [
    "Gradients",
    "RNNCache",
    "LSTMCache",
    "GRUCache",
    "rnn_forward",
    "rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
]

#: Every gradient a backward pass can return (the default of ``need``).
ALL = frozenset({"x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"})


# ----------------------------------------------------------------------------------------------------------
# Results and caches
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Gradients:
    r"""Everything a manual backward pass returns.

    ``dx``, ``dh0``, ``dc0``, ``dw_ih``, ``dw_hh``, ``db_ih``, ``db_hh`` are the gradients of the loss
    with respect to the inputs, the initial state and the parameters (``None`` when not asked for, or when
    the layer has no such tensor). ``dh`` ``(T, N, H)`` holds :math:`\partial L/\partial h_t` for every
    step: the *total* gradient reaching :math:`h_t`, from the output at step ``t`` and from all later
    steps through the recurrence. ``dc`` is the same for the LSTM's cell state (``None`` otherwise).
    """

    dx: Tensor | None = None
    dh0: Tensor | None = None
    dc0: Tensor | None = None
    dw_ih: Tensor | None = None
    dw_hh: Tensor | None = None
    db_ih: Tensor | None = None
    db_hh: Tensor | None = None
    dh: Tensor | None = None
    dc: Tensor | None = None


@dataclass
class RNNCache:
    """What :func:`rnn_backward` needs from :func:`rnn_forward`."""

    x: Tensor  # (T, N, H_in)
    h0: Tensor  # (N, H)
    w_ih: Tensor  # (H, H_in)
    w_hh: Tensor  # (H, H)
    out: Tensor  # (T, N, H): h_0 .. h_{T-1}
    nonlinearity: str = "tanh"
    has_b_ih: bool = True
    has_b_hh: bool = True


@dataclass
class LSTMCache:
    """What :func:`lstm_backward` needs from :func:`lstm_forward`."""

    x: Tensor  # (T, N, H_in)
    h0: Tensor  # (N, H)
    c0: Tensor  # (N, H)
    w_ih: Tensor  # (4H, H_in)
    w_hh: Tensor  # (4H, H)
    gates: Tensor  # (T, N, 4H): i, f, g, o after their sigmoid/tanh
    c: Tensor  # (T+1, N, H): c[0] = c0, c[t+1] = c_t
    tanh_c: Tensor  # (T, N, H): tanh(c_t)
    out: Tensor  # (T, N, H): h_0 .. h_{T-1}
    has_b_ih: bool = True
    has_b_hh: bool = True


@dataclass
class GRUCache:
    """What :func:`gru_backward` needs from :func:`gru_forward`."""

    x: Tensor  # (T, N, H_in)
    h0: Tensor  # (N, H)
    w_ih: Tensor  # (3H, H_in)
    w_hh: Tensor  # (3H, H)
    gates: Tensor  # (T, N, 3H): r, z, n after their sigmoid/tanh
    hn: Tensor  # (T, N, H): W_hn h_{t-1} + b_hn, the part that r scales
    out: Tensor  # (T, N, H): h_0 .. h_{T-1}
    has_b_ih: bool = True
    has_b_hh: bool = True


# ----------------------------------------------------------------------------------------------------------
# Argument checks (shared with seqlib.bptt_fast)
# ----------------------------------------------------------------------------------------------------------


def _check_layer(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    gates: int,
    c0: Tensor | None = None,
) -> None:
    """Validate the arguments of a layer over time; ``gates`` is G (1 RNN, 3 GRU, 4 LSTM)."""
    check_tensor("x", x, "(T, N, H_in)")
    check_floating("x", x)
    check_rank("x", x, (3,), "(T, N, H_in)")
    if x.shape[0] == 0:
        raise ValueError(f"x must have shape (T, N, H_in) with T >= 1, but got shape {shape_str(x.shape)}")
    T, N, I = x.shape
    check_tensor("w_hh", w_hh, "(G*H, H)")
    check_rank("w_hh", w_hh, (2,), "(G*H, H)")
    H = w_hh.shape[1]
    if w_hh.shape[0] != gates * H:
        raise ValueError(f"w_hh must have shape (G*H, H) = {shape_str((gates * H, H))} with G = {gates}, "
                         f"but got shape {shape_str(w_hh.shape)}")
    named: list[tuple[str, Tensor | None, tuple[int, ...], str]] = [
        ("w_hh", w_hh, (gates * H, H), "(G*H, H)"),
        ("h0", h0, (N, H), "(N, H)"),
        ("c0", c0, (N, H), "(N, H)"),
        ("w_ih", w_ih, (gates * H, I), "(G*H, H_in)"),
        ("b_ih", b_ih, (gates * H,), "(G*H,)"),
        ("b_hh", b_hh, (gates * H,), "(G*H,)"),
    ]
    for name, value, shape, symbols in named:
        if value is None:
            if name in ("h0", "w_ih") or (name == "c0" and gates == 4):
                raise TypeError(f"{name} must be a torch.Tensor of shape {symbols}, but got None")
            continue
        check_tensor(name, value, symbols)
        if tuple(value.shape) != shape:
            raise ValueError(f"{name} must have shape {symbols} = {shape_str(shape)}, "
                             f"but got shape {shape_str(value.shape)}")
        if value.dtype != x.dtype:
            raise TypeError(f"{name} has dtype {value.dtype} but x has dtype {x.dtype}; they must match, "
                            f"e.g. convert with {name}.to({x.dtype})")
        if value.device != x.device:
            raise ValueError(f"{name} is on device {value.device} but x is on {x.device}; move one of them")


def _check_backward(out: Tensor, grads: dict[str, Tensor | None], truncate: int | None) -> None:
    """Validate the upstream gradients (``grad_out`` ``(T, N, H)``, the others ``(N, H)``) and ``truncate``."""
    for name, g in grads.items():
        if g is None:
            continue
        check_tensor(name, g)
        want = tuple(out.shape) if name == "grad_out" else tuple(out.shape[1:])
        if tuple(g.shape) != want:
            symbols = "(T, N, H)" if name == "grad_out" else "(N, H)"
            raise ValueError(f"{name} must have shape {symbols} = {shape_str(want)}, but got {shape_str(g.shape)}")
    if truncate is not None:
        check_positive_int("truncate", truncate)


def _or_zeros(value: Tensor | None, *shape: int, like: Tensor) -> Tensor:
    """``value``, or zeros of ``shape`` where it is ``None`` (a missing bias or upstream gradient)."""
    return like.new_zeros(shape) if value is None else value


def _is_cut(t: int, truncate: int | None) -> bool:
    """Truncated BPTT: no gradient passes from step ``t`` back to ``t - 1`` when ``t`` is a multiple of ``k``."""
    return truncate is not None and t > 0 and t % truncate == 0


def _keep(grads: Gradients, need: Collection[str], has_b_ih: bool, has_b_hh: bool) -> Gradients:
    """Set what was not asked for (``need``), and the gradients of missing biases, to ``None``."""
    for name in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"):
        if name not in need:
            setattr(grads, f"d{name}", None)
    if not has_b_ih:
        grads.db_ih = None
    if not has_b_hh:
        grads.db_hh = None
    return grads


# ----------------------------------------------------------------------------------------------------------
# Elman RNN
# ----------------------------------------------------------------------------------------------------------


@torch.no_grad()
def rnn_forward(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
    nonlinearity: str = "tanh",
) -> tuple[Tensor, Tensor, RNNCache]:
    r"""Run an Elman RNN layer over time and keep what :func:`rnn_backward` needs.

    .. math::
        a_t = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}, \qquad
        h_t = \phi(a_t), \qquad \phi = \tanh \text{ or ReLU}

    Args:
        x: inputs ``(T, N, H_in)``.
        h0: initial hidden state :math:`h_{-1}`, ``(N, H)``.
        w_ih, w_hh: weights ``(H, H_in)`` and ``(H, H)``.
        b_ih, b_hh: biases ``(H,)`` or ``None``.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Outputs: ``out, h_T, cache``
        - **out** ``(T, N, H)``: :math:`h_0 .. h_{T-1}`.
        - **h_T** ``(N, H)``: the last hidden state (a copy of ``out[-1]``).
        - **cache**: an :class:`RNNCache`.
    """
    check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
    _check_layer(x, h0, w_ih, w_hh, b_ih, b_hh, gates=1)
    H = h0.shape[1]
    phi = torch.tanh if nonlinearity == "tanh" else torch.relu
    bias_ih, bias_hh = _or_zeros(b_ih, H, like=x), _or_zeros(b_hh, H, like=x)  # (H,) each
    h = h0  # (N, H): h_{-1}
    hs = []
    for t in range(x.shape[0]):
        a = x[t] @ w_ih.T + bias_ih + h @ w_hh.T + bias_hh  # (N, H): the pre-activation a_t
        h = phi(a)  # (N, H): h_t
        hs.append(h)
    out = torch.stack(hs)  # (T, N, H)
    cache = RNNCache(x, h0, w_ih, w_hh, out, nonlinearity, b_ih is not None, b_hh is not None)
    return out, out[-1].clone(), cache


@torch.no_grad()
def rnn_backward(
    cache: RNNCache,
    grad_out: Tensor | None = None,
    grad_h_T: Tensor | None = None,
    truncate: int | None = None,
    need: Collection[str] = ALL,
) -> Gradients:
    r"""Backpropagation through time for the Elman RNN, walking from ``t = T-1`` down to ``0``.

    The gradient reaching :math:`h_t` comes from the output at step ``t`` and from step ``t + 1`` through the
    recurrence. With :math:`\delta_t = \partial L/\partial a_t` the gradient of the pre-activation:

    .. math::
        \frac{\partial L}{\partial h_t} &= \frac{\partial \ell}{\partial \text{out}_t} + \delta_{t+1} W_{hh}
            \qquad (\delta_T W_{hh} \text{ read as } \partial\ell/\partial h_T) \\
        \delta_t &= \frac{\partial L}{\partial h_t} \odot \phi'(a_t), \qquad
            \tanh'(a_t) = 1 - h_t^2, \quad \text{ReLU}'(a_t) = [h_t > 0] \\
        \frac{\partial L}{\partial W_{ih}} &= \sum_t \delta_t^\top x_t, \quad
        \frac{\partial L}{\partial W_{hh}} = \sum_t \delta_t^\top h_{t-1}, \quad
        \frac{\partial L}{\partial b_{ih}} = \frac{\partial L}{\partial b_{hh}} = \sum_t \delta_t, \quad
        \frac{\partial L}{\partial x_t} = \delta_t W_{ih}

    and :math:`\partial L/\partial h_{-1} = \delta_0 W_{hh}`.

    Args:
        cache: from :func:`rnn_forward`.
        grad_out: :math:`\partial \ell/\partial \text{out}` ``(T, N, H)``, or ``None`` (zero).
        grad_h_T: :math:`\partial \ell/\partial h_T` ``(N, H)``, or ``None`` (zero).
        truncate: truncated BPTT: the gradient is not passed from step ``t`` to step ``t-1`` when ``t`` is
            a positive multiple of ``truncate`` (the same as detaching the state every ``truncate``
            steps). ``None``: full BPTT.
        need: which of ``"x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"`` to return (``dh`` always is).

    Returns:
        :class:`Gradients` with ``dh`` ``(T, N, H)``.
    """
    _check_backward(cache.out, {"grad_out": grad_out, "grad_h_T": grad_h_T}, truncate)
    x, out, w_ih, w_hh = cache.x, cache.out, cache.w_ih, cache.w_hh
    T, N, H = out.shape
    grad_out = _or_zeros(grad_out, T, N, H, like=out)
    dh_next = _or_zeros(grad_h_T, N, H, like=out)  # the gradient reaching h_t from step t+1 (or beyond the end)
    g = Gradients(dx=torch.zeros_like(x), dw_ih=torch.zeros_like(w_ih), dw_hh=torch.zeros_like(w_hh),
                  db_ih=out.new_zeros(H), dh=torch.zeros_like(out))
    for t in reversed(range(T)):
        h = out[t]  # (N, H): h_t
        h_prev = out[t - 1] if t > 0 else cache.h0  # (N, H): h_{t-1}
        dh = grad_out[t] + dh_next  # (N, H): dL/dh_t, from the output at t and from step t+1
        if cache.nonlinearity == "tanh":
            delta = dh * (1 - h**2)  # (N, H): dL/da_t, tanh'(a_t) = 1 - h_t^2
        else:
            delta = dh * (h > 0).to(h.dtype)  # (N, H): ReLU'(a_t) = [h_t > 0]
        g.dh[t] = dh
        g.dx[t] = delta @ w_ih  # (N, H_in)
        g.dw_ih += delta.T @ x[t]  # (H, H_in): every step adds its share to the shared weights
        g.dw_hh += delta.T @ h_prev  # (H, H)
        g.db_ih += delta.sum(0)  # (H,)
        dh_next = torch.zeros_like(dh) if _is_cut(t, truncate) else delta @ w_hh  # (N, H): on to h_{t-1}
    g.dh0 = dh_next  # dL/dh_{-1}
    g.db_hh = g.db_ih.clone()  # b_ih and b_hh enter a_t the same way
    return _keep(g, need, cache.has_b_ih, cache.has_b_hh)


# ----------------------------------------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------------------------------------


@torch.no_grad()
def lstm_forward(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, LSTMCache]:
    r"""Run an LSTM layer over time and keep what :func:`lstm_backward` needs.

    .. math::
        \begin{array}{ll}
        i_t = \sigma(x_t W_{ii}^\top + b_{ii} + h_{t-1} W_{hi}^\top + b_{hi}) & \text{input gate} \\
        f_t = \sigma(x_t W_{if}^\top + b_{if} + h_{t-1} W_{hf}^\top + b_{hf}) & \text{forget gate} \\
        g_t = \tanh(x_t W_{ig}^\top + b_{ig} + h_{t-1} W_{hg}^\top + b_{hg}) & \text{candidate } \tilde C_t \\
        o_t = \sigma(x_t W_{io}^\top + b_{io} + h_{t-1} W_{ho}^\top + b_{ho}) & \text{output gate} \\
        c_t = f_t \odot c_{t-1} + i_t \odot g_t & \\
        h_t = o_t \odot \tanh(c_t) &
        \end{array}

    Args:
        x: inputs ``(T, N, H_in)``.
        h0, c0: initial states :math:`h_{-1}, c_{-1}`, ``(N, H)`` each.
        w_ih, w_hh: weights ``(4H, H_in)`` and ``(4H, H)``, gates stacked ``i, f, g, o``.
        b_ih, b_hh: biases ``(4H,)`` or ``None``.

    Outputs: ``out, h_T, c_T, cache``
        - **out** ``(T, N, H)``: :math:`h_0 .. h_{T-1}`.
        - **h_T**, **c_T** ``(N, H)``: the last states.
        - **cache**: an :class:`LSTMCache`.
    """
    _check_layer(x, h0, w_ih, w_hh, b_ih, b_hh, gates=4, c0=c0)
    H = h0.shape[1]
    bias_ih, bias_hh = _or_zeros(b_ih, 4 * H, like=x), _or_zeros(b_hh, 4 * H, like=x)  # (4H,) each
    h, c = h0, c0  # (N, H) each: h_{-1}, c_{-1}
    gates, cs, tanh_cs, hs = [], [c0], [], []
    for t in range(x.shape[0]):
        a = x[t] @ w_ih.T + bias_ih + h @ w_hh.T + bias_hh  # (N, 4H): the four pre-activations
        a_i, a_f, a_g, a_o = a.chunk(4, dim=1)  # (N, H) each, torch's order i, f, g, o
        i = torch.sigmoid(a_i)  # (N, H): input gate
        f = torch.sigmoid(a_f)  # (N, H): forget gate
        g = torch.tanh(a_g)  # (N, H): candidate
        o = torch.sigmoid(a_o)  # (N, H): output gate
        c = f * c + i * g  # (N, H): c_t, forget some of the old, store some of the new
        tanh_c = torch.tanh(c)  # (N, H)
        h = o * tanh_c  # (N, H): h_t
        gates.append(torch.cat([i, f, g, o], dim=1))  # (N, 4H)
        cs.append(c)
        tanh_cs.append(tanh_c)
        hs.append(h)
    out = torch.stack(hs)  # (T, N, H)
    cache = LSTMCache(x, h0, c0, w_ih, w_hh, torch.stack(gates), torch.stack(cs), torch.stack(tanh_cs), out,
                      b_ih is not None, b_hh is not None)  # gates (T, N, 4H), c (T+1, N, H), tanh_c (T, N, H)
    return out, out[-1].clone(), c.clone(), cache


@torch.no_grad()
def lstm_backward(
    cache: LSTMCache,
    grad_out: Tensor | None = None,
    grad_h_T: Tensor | None = None,
    grad_c_T: Tensor | None = None,
    truncate: int | None = None,
    need: Collection[str] = ALL,
) -> Gradients:
    r"""Backpropagation through time for the LSTM, walking from ``t = T-1`` down to ``0``.

    Two gradients travel back in time, :math:`\bar h_t = \partial L/\partial h_t` and :math:`\bar c_t =
    \partial L/\partial c_t`. With :math:`\delta^{x}_t` the gradient of gate :math:`x`'s pre-activation:

    .. math::
        \bar h_t &= \partial \ell/\partial \text{out}_t + \delta_{t+1} W_{hh}, \qquad
            \delta_t = [\delta^i_t, \delta^f_t, \delta^g_t, \delta^o_t] \\
        \bar c_t &= \bar c_{t+1} \odot f_{t+1} + \bar h_t \odot o_t \odot (1 - \tanh^2 c_t)
            \qquad (\bar c_{T} f_T \text{ read as } \partial\ell/\partial c_T) \\
        \delta^o_t &= \bar h_t \odot \tanh c_t \odot o_t (1 - o_t), \qquad
        \delta^i_t = \bar c_t \odot g_t \odot i_t (1 - i_t) \\
        \delta^f_t &= \bar c_t \odot c_{t-1} \odot f_t (1 - f_t), \qquad
        \delta^g_t = \bar c_t \odot i_t \odot (1 - g_t^2)

    and the sums over time as for the RNN (:math:`\partial L/\partial W_{hh} = \sum_t \delta_t^\top
    h_{t-1}` etc.). The path :math:`\bar c_{t+1} \odot f_{t+1}` is the cell state's "highway": no matrix
    product and no squashing derivative, only the forget gate (C10, C12).

    Args:
        cache: from :func:`lstm_forward`.
        grad_out: ``(T, N, H)`` or ``None``; grad_h_T, grad_c_T: ``(N, H)`` or ``None``.
        truncate: cut the gradient of both states between steps ``t-1`` and ``t`` when ``t`` is a positive
            multiple of ``truncate``; ``None``: full BPTT.
        need: which of ``"x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"`` to return.

    Returns:
        :class:`Gradients` with ``dh`` and ``dc`` ``(T, N, H)``.
    """
    _check_backward(cache.out, {"grad_out": grad_out, "grad_h_T": grad_h_T, "grad_c_T": grad_c_T}, truncate)
    x, out, w_ih, w_hh = cache.x, cache.out, cache.w_ih, cache.w_hh
    T, N, H = out.shape
    grad_out = _or_zeros(grad_out, T, N, H, like=out)
    dh_next = _or_zeros(grad_h_T, N, H, like=out)  # the gradient reaching h_t from step t+1
    dc_next = _or_zeros(grad_c_T, N, H, like=out)  # dL/dc_{t+1} (at t = T-1: dl/dc_T)
    f_next = torch.ones_like(dc_next)  # f_{t+1}: how much of c_t reaches c_{t+1} (c_T itself at t = T-1)
    g = Gradients(dx=torch.zeros_like(x), dw_ih=torch.zeros_like(w_ih), dw_hh=torch.zeros_like(w_hh),
                  db_ih=out.new_zeros(4 * H), dh=torch.zeros_like(out), dc=torch.zeros_like(out))
    for t in reversed(range(T)):
        i, f, gg, o = cache.gates[t].chunk(4, dim=1)  # (N, H) each: the activated gates of step t
        tanh_c = cache.tanh_c[t]  # (N, H)
        c_prev = cache.c[t]  # (N, H): c_{t-1} (cache.c[0] = c0)
        h_prev = out[t - 1] if t > 0 else cache.h0  # (N, H): h_{t-1}
        dh = grad_out[t] + dh_next  # (N, H): dL/dh_t
        dc = dc_next * f_next + dh * o * (1 - tanh_c**2)  # (N, H): dL/dc_t, the highway plus h_t = o tanh(c_t)
        da_o = dh * tanh_c * o * (1 - o)  # (N, H): through o's sigmoid
        da_i = dc * gg * i * (1 - i)  # (N, H)
        da_f = dc * c_prev * f * (1 - f)  # (N, H)
        da_g = dc * i * (1 - gg**2)  # (N, H): through g's tanh
        delta = torch.cat([da_i, da_f, da_g, da_o], dim=1)  # (N, 4H), the gates' order
        g.dh[t], g.dc[t] = dh, dc
        g.dx[t] = delta @ w_ih  # (N, H_in)
        g.dw_ih += delta.T @ x[t]  # (4H, H_in)
        g.dw_hh += delta.T @ h_prev  # (4H, H)
        g.db_ih += delta.sum(0)  # (4H,)
        if _is_cut(t, truncate):
            dh_next, dc_next = torch.zeros_like(dh), torch.zeros_like(dc)
        else:
            dh_next, dc_next = delta @ w_hh, dc  # (N, H) each: on to h_{t-1} and c_{t-1}
        f_next = f
    g.dh0 = dh_next  # dL/dh_{-1}
    g.dc0 = dc_next * f_next  # dL/dc_{-1} = dL/dc_0 * f_0
    g.db_hh = g.db_ih.clone()
    return _keep(g, need, cache.has_b_ih, cache.has_b_hh)


# ----------------------------------------------------------------------------------------------------------
# GRU
# ----------------------------------------------------------------------------------------------------------


@torch.no_grad()
def gru_forward(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor, GRUCache]:
    r"""Run a GRU layer over time (torch.nn's formulation) and keep what :func:`gru_backward` needs.

    .. math::
        \begin{array}{ll}
        r_t = \sigma(x_t W_{ir}^\top + b_{ir} + h_{t-1} W_{hr}^\top + b_{hr}) & \text{reset gate} \\
        z_t = \sigma(x_t W_{iz}^\top + b_{iz} + h_{t-1} W_{hz}^\top + b_{hz}) & \text{update gate} \\
        n_t = \tanh(x_t W_{in}^\top + b_{in} + r_t \odot (h_{t-1} W_{hn}^\top + b_{hn})) & \text{candidate} \\
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1} &
        \end{array}

    Args:
        x: inputs ``(T, N, H_in)``; h0: ``(N, H)``.
        w_ih, w_hh: ``(3H, H_in)``, ``(3H, H)``, gates stacked ``r, z, n``; b_ih, b_hh: ``(3H,)`` or ``None``.

    Outputs: ``out`` ``(T, N, H)``, ``h_T`` ``(N, H)``, ``cache`` (a :class:`GRUCache`).
    """
    _check_layer(x, h0, w_ih, w_hh, b_ih, b_hh, gates=3)
    H = h0.shape[1]
    bias_ih, bias_hh = _or_zeros(b_ih, 3 * H, like=x), _or_zeros(b_hh, 3 * H, like=x)  # (3H,) each
    h = h0  # (N, H): h_{-1}
    gates, hns, hs = [], [], []
    for t in range(x.shape[0]):
        gi = x[t] @ w_ih.T + bias_ih  # (N, 3H): the input side of the three gates
        gh = h @ w_hh.T + bias_hh  # (N, 3H): the recurrent side
        i_r, i_z, i_n = gi.chunk(3, dim=1)  # (N, H) each
        h_r, h_z, h_n = gh.chunk(3, dim=1)  # (N, H) each
        r = torch.sigmoid(i_r + h_r)  # (N, H): reset gate
        z = torch.sigmoid(i_z + h_z)  # (N, H): update gate
        n = torch.tanh(i_n + r * h_n)  # (N, H): candidate; r scales W_hn h + b_hn, not h itself
        h = (1 - z) * n + z * h  # (N, H): h_t
        gates.append(torch.cat([r, z, n], dim=1))  # (N, 3H)
        hns.append(h_n)
        hs.append(h)
    out = torch.stack(hs)  # (T, N, H)
    cache = GRUCache(x, h0, w_ih, w_hh, torch.stack(gates), torch.stack(hns), out, b_ih is not None,
                     b_hh is not None)  # gates (T, N, 3H), hn (T, N, H)
    return out, out[-1].clone(), cache


@torch.no_grad()
def gru_backward(
    cache: GRUCache,
    grad_out: Tensor | None = None,
    grad_h_T: Tensor | None = None,
    truncate: int | None = None,
    need: Collection[str] = ALL,
) -> Gradients:
    r"""Backpropagation through time for the GRU, walking from ``t = T-1`` down to ``0``.

    With :math:`\bar h_t = \partial L/\partial h_t`, :math:`\hat n_t = h_{t-1} W_{hn}^\top + b_{hn}` and
    :math:`\delta` for gradients of pre-activations:

    .. math::
        \delta^n_t &= \bar h_t \odot (1 - z_t) \odot (1 - n_t^2) \\
        \delta^z_t &= \bar h_t \odot (h_{t-1} - n_t) \odot z_t (1 - z_t) \\
        \delta^r_t &= \delta^n_t \odot \hat n_t \odot r_t (1 - r_t) \\
        \bar h_{t-1} &= \partial\ell/\partial\text{out}_{t-1} + \bar h_t \odot z_t +
            [\delta^r_t, \delta^z_t, \delta^n_t \odot r_t]\, W_{hh}

    The input side sees :math:`[\delta^r, \delta^z, \delta^n]` (for :math:`W_{ih}, b_{ih}, x`) and the
    recurrent side :math:`[\delta^r, \delta^z, \delta^n \odot r]` (for :math:`W_{hh}, b_{hh}`).

    Args:
        cache: from :func:`gru_forward`; grad_out ``(T, N, H)``, grad_h_T ``(N, H)``, each may be ``None``.
        truncate, need: as in :func:`rnn_backward`.

    Returns:
        :class:`Gradients` with ``dh`` ``(T, N, H)``.
    """
    _check_backward(cache.out, {"grad_out": grad_out, "grad_h_T": grad_h_T}, truncate)
    x, out, w_ih, w_hh = cache.x, cache.out, cache.w_ih, cache.w_hh
    T, N, H = out.shape
    grad_out = _or_zeros(grad_out, T, N, H, like=out)
    dh_next = _or_zeros(grad_h_T, N, H, like=out)  # the gradient reaching h_t from step t+1
    g = Gradients(dx=torch.zeros_like(x), dw_ih=torch.zeros_like(w_ih), dw_hh=torch.zeros_like(w_hh),
                  db_ih=out.new_zeros(3 * H), db_hh=out.new_zeros(3 * H), dh=torch.zeros_like(out))
    for t in reversed(range(T)):
        r, z, n = cache.gates[t].chunk(3, dim=1)  # (N, H) each: the activated gates of step t
        hn = cache.hn[t]  # (N, H): W_hn h_{t-1} + b_hn
        h_prev = out[t - 1] if t > 0 else cache.h0  # (N, H): h_{t-1}
        dh = grad_out[t] + dh_next  # (N, H): dL/dh_t
        da_n = dh * (1 - z) * (1 - n**2)  # (N, H): h_t = (1 - z) n + z h_{t-1}, n = tanh(...)
        da_z = dh * (h_prev - n) * z * (1 - z)  # (N, H)
        da_r = da_n * hn * r * (1 - r)  # (N, H): r scales hn inside n's tanh
        d_in = torch.cat([da_r, da_z, da_n], dim=1)  # (N, 3H): gradient of x_t W_ih^T + b_ih
        d_rec = torch.cat([da_r, da_z, da_n * r], dim=1)  # (N, 3H): gradient of h_{t-1} W_hh^T + b_hh
        g.dh[t] = dh
        g.dx[t] = d_in @ w_ih  # (N, H_in)
        g.dw_ih += d_in.T @ x[t]  # (3H, H_in)
        g.dw_hh += d_rec.T @ h_prev  # (3H, H)
        g.db_ih += d_in.sum(0)  # (3H,)
        g.db_hh += d_rec.sum(0)  # (3H,)
        cut = _is_cut(t, truncate)
        dh_next = torch.zeros_like(dh) if cut else dh * z + d_rec @ w_hh  # (N, H): direct path + the gates
    g.dh0 = dh_next  # dL/dh_{-1}
    return _keep(g, need, cache.has_b_ih, cache.has_b_hh)
