r"""Backpropagation through time (BPTT) written out by hand, and tools that measure gradient flow.

Unfold a recurrent layer over ``T`` steps and it becomes a deep feed-forward network whose layers share
their weights. BPTT is ordinary backpropagation on that unfolded network: walk the steps in reverse,
carry the gradient of the hidden state from step ``t`` to step ``t - 1``, and add up the contributions
of every step to the shared weights (C07).

This module has three parts.

1. **Manual BPTT** for the Elman RNN (tanh or ReLU), the LSTM and the GRU: ``*_forward`` runs the layer
   and keeps a cache of what the backward needs; ``*_backward`` walks time in reverse without autograd
   and returns every gradient, including the per-step :math:`\partial L/\partial h_t` (and
   :math:`\partial L/\partial c_t` for the LSTM), optionally truncated every ``k`` steps. The
   equations are in the docstrings; the tests check every number against autograd in float64.
2. **The fast path**: :func:`rnn_sequence`, :func:`lstm_sequence` and :func:`gru_sequence` wrap the same
   forward and backward in a :class:`torch.autograd.Function`. ``seqlib.RNN``/``LSTM``/``GRU`` run
   through them. Two things make them fast: all work that does not depend on the previous step
   (input projections, weight gradients, local derivatives) is done for all steps at once with one
   large operation before or after the loop, and the loop itself only writes into preallocated buffers.
3. **Gradient-flow measurements** for the lectures on vanishing and exploding gradients (C08, C09,
   C12): :func:`gradient_norms`, :func:`cell_state_norms`, :func:`jacobian_norms`,
   :func:`spectral_radius`.

Conventions: time runs ``t = 0 .. T-1``; :math:`h_{-1}` (and :math:`c_{-1}`) is the initial state
``h0`` (``c0``); ``x`` is ``(T, N, H_in)``; weights have torch.nn's layout, ``w_ih`` ``(G*H, H_in)`` and
``w_hh`` ``(G*H, H)`` with the gates stacked in torch.nn's order (LSTM ``i, f, g, o``; GRU ``r, z, n``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

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
    "rnn_sequence",
    "lstm_sequence",
    "gru_sequence",
    "release_buffers",
    "gradient_norms",
    "cell_state_norms",
    "jacobian_norms",
    "spectral_radius",
]

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
# Shared pieces
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


def _project_inputs(x: Tensor, w_ih: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ w_ih^T + bias`` for all T steps in one matrix product: ``(T, N, H_in)`` -> ``(T, N, G*H)``."""
    T, N, I = x.shape
    x2 = x.reshape(T * N, I)  # (T*N, H_in)
    proj = x2 @ w_ih.t() if bias is None else torch.addmm(bias, x2, w_ih.t())  # (T*N, G*H)
    return proj.view(T, N, -1)  # (T, N, G*H)


def _sum_biases(b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor | None:
    """RNN and LSTM only ever use ``b_ih + b_hh``, so they are added once."""
    if b_ih is None:
        return b_hh
    return b_ih if b_hh is None else b_ih + b_hh


def _input_and_weight_grads(grads: Gradients, cache: RNNCache | LSTMCache | GRUCache, d_in: Tensor,
                            d_rec: Tensor, need: Collection[str]) -> None:
    r"""The sums over time, each one matrix product after the loop.

    ``d_in`` ``(T, N, G*H)`` is the gradient of the input projection of every step and ``d_rec`` the
    gradient of the recurrent projection (the same tensor except for the GRU):

    .. math::
        \partial L/\partial W_{ih} = \sum_t d_{in,t}^\top x_t, \quad
        \partial L/\partial W_{hh} = \sum_t d_{rec,t}^\top h_{t-1}, \quad
        \partial L/\partial x_t = d_{in,t} W_{ih}, \quad
        \partial L/\partial b = \sum_{t,n} d_t.
    """
    x, h0, out = cache.x, cache.h0, cache.out
    T, N, I = x.shape
    GH = d_in.shape[2]
    d_in2 = d_in.view(T * N, GH)  # (T*N, G*H)
    if "x" in need:
        grads.dx = (d_in2 @ cache.w_ih).view(T, N, I)  # (T, N, H_in)
    if "w_ih" in need:
        grads.dw_ih = d_in2.t() @ x.reshape(T * N, I)  # (G*H, T*N) @ (T*N, H_in)
    if "w_hh" in need:
        dw_hh = d_rec[0].t() @ h0  # step 0 sees h0
        if T > 1:  # (G*H, (T-1)*N) @ ((T-1)*N, H): steps 1..T-1 see h_0..h_{T-2}
            dw_hh = torch.addmm(dw_hh, d_rec[1:].reshape(-1, GH).t(), out[:-1].reshape(-1, out.shape[2]))
        grads.dw_hh = dw_hh
    if "b_ih" in need and cache.has_b_ih:
        grads.db_ih = d_in2.sum(0)
    if "b_hh" in need and cache.has_b_hh:
        if d_rec is d_in and grads.db_ih is not None:
            grads.db_hh = grads.db_ih.clone()
        else:
            grads.db_hh = d_rec.reshape(T * N, GH).sum(0)  # (T*N, G*H) -> (G*H,)


def _start_dh(dh: Tensor, grad_out: Tensor | None, grad_h_T: Tensor | None) -> Tensor:
    """Fill in the last step of the buffer ``dh`` for :math:`\\partial L/\\partial h_t`, ``(T, N, H)``."""
    if grad_out is None:
        dh[-1].zero_()
    else:
        dh[-1].copy_(grad_out[-1])
    if grad_h_T is not None:
        dh[-1].add_(grad_h_T)
    return dh


class _Steps:
    """Per-step views ``(N, ...)`` of ``(T, N, ...)`` buffers, made once before a loop.

    At the sizes of a course (``N*H`` in the thousands) indexing ``buffer[t]`` inside the loop costs as
    much as the arithmetic, so every loop below reads its per-step tensors from lists made by ``unbind``.
    """

    def __init__(self, **buffers: Tensor | None) -> None:
        for name, buffer in buffers.items():
            setattr(self, name, None if buffer is None else buffer.unbind(0))


class _Buffers:
    """Where a backward pass takes its large temporaries ``(T, N, ...)`` from.

    By default every call allocates new tensors. The fast path on the CPU passes a per-thread instance with
    ``reuse=True``, which keeps one buffer per name and hands (a view of) it out again on the next call.
    Otherwise the tens of megabytes a backward pass frees at its end are given back to the operating system by
    the C library and faulted in again, page by page, on the next training step, which costs more than the
    arithmetic of a small layer. Only temporaries that do not leave the backward pass may come from here.
    """

    def __init__(self, reuse: bool = False) -> None:
        self.reuse = reuse
        self.store: dict[tuple[str, torch.dtype, torch.device], Tensor] = {}

    def new(self, name: str, like: Tensor, *shape: int) -> Tensor:
        if not self.reuse:
            return like.new_empty(*shape)
        numel = math.prod(shape)
        key = (name, like.dtype, like.device)
        buffer = self.store.get(key)
        if buffer is None or buffer.numel() < numel:  # keep the largest seen: shorter sequences use a part
            buffer = self.store[key] = like.new_empty(numel)
        return buffer[:numel].view(shape)


_FRESH = _Buffers()
_REUSED = threading.local()


def release_buffers() -> None:
    """Free the scratch memory the fast path keeps between backward passes in the calling thread."""
    if hasattr(_REUSED, "buffers"):
        del _REUSED.buffers


def _fast_path_buffers(like: Tensor) -> _Buffers:
    """The calling thread's reusable buffers on the CPU; fresh tensors elsewhere (CUDA caches memory itself)."""
    if like.device.type != "cpu":
        return _FRESH
    if not hasattr(_REUSED, "buffers"):
        _REUSED.buffers = _Buffers(reuse=True)
    return _REUSED.buffers


def _pass_back(target: Tensor, direct: Tensor | None, d_rec_t: Tensor, w_hh: Tensor, cut: bool) -> None:
    r"""``target`` :math:`= \partial \ell/\partial \text{out}_{t-1} + d_{rec,t} W_{hh}`, the gradient reaching
    :math:`h_{t-1}`; only the direct term ``direct`` where the graph is cut (truncated BPTT)."""
    if cut:
        if direct is None:
            target.zero_()
        else:
            target.copy_(direct)
    elif direct is None:
        torch.mm(d_rec_t, w_hh, out=target)
    else:
        torch.addmm(direct, d_rec_t, w_hh, out=target)


def _check_backward(out: Tensor, grads: dict[str, Tensor | None], truncate: int | None) -> None:
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
        h_t = \phi(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}), \qquad \phi = \tanh
        \text{ or ReLU}

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
    out = _project_inputs(x, w_ih, _sum_biases(b_ih, b_hh))  # (T, N, H); becomes h_t in place
    w_hh_t = w_hh.t().contiguous()  # (H, H)
    h = h0
    for a_t in out.unbind(0):  # (N, H) views, one per step
        a_t.addmm_(h, w_hh_t)  # pre-activation a_t
        h = a_t.tanh_() if nonlinearity == "tanh" else a_t.relu_()
    cache = RNNCache(x, h0, w_ih, w_hh, out, nonlinearity, b_ih is not None, b_hh is not None)
    return out, out[-1].clone(), cache


@torch.no_grad()
def rnn_backward(
    cache: RNNCache,
    grad_out: Tensor | None = None,
    grad_h_T: Tensor | None = None,
    truncate: int | None = None,
    need: Collection[str] = ALL,
    buffers: _Buffers = _FRESH,
) -> Gradients:
    r"""Backpropagation through time for the Elman RNN, walking from ``t = T-1`` down to ``0``.

    With :math:`a_t` the pre-activation and :math:`\delta_t = \partial L/\partial a_t`:

    .. math::
        \frac{\partial L}{\partial h_{T-1}} &= \frac{\partial \ell}{\partial \text{out}_{T-1}} +
            \frac{\partial \ell}{\partial h_T} \\
        \delta_t &= \frac{\partial L}{\partial h_t} \odot \phi'(a_t), \qquad
            \tanh'(a_t) = 1 - h_t^2, \quad \text{ReLU}'(a_t) = [h_t > 0] \\
        \frac{\partial L}{\partial h_{t-1}} &= \frac{\partial \ell}{\partial \text{out}_{t-1}} +
            \delta_t W_{hh} \\
        \frac{\partial L}{\partial W_{hh}} &= \sum_t \delta_t^\top h_{t-1}, \quad
        \frac{\partial L}{\partial W_{ih}} = \sum_t \delta_t^\top x_t, \quad
        \frac{\partial L}{\partial b_{ih}} = \frac{\partial L}{\partial b_{hh}} = \sum_t \delta_t, \quad
        \frac{\partial L}{\partial x_t} = \delta_t W_{ih}

    The factor :math:`\phi'(a_t)` does not depend on the incoming gradient, so it is computed for all
    steps at once before the loop; so are the sums over time, after it.

    Args:
        cache: from :func:`rnn_forward`.
        grad_out: :math:`\partial \ell/\partial \text{out}` ``(T, N, H)``, or ``None`` (zero).
        grad_h_T: :math:`\partial \ell/\partial h_T` ``(N, H)``, or ``None`` (zero).
        truncate: truncated BPTT: the gradient is not passed from step ``t`` to step ``t-1`` when ``t`` is
            a positive multiple of ``truncate`` (the same as detaching the state every ``truncate``
            steps). ``None``: full BPTT.
        need: which of ``"x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"`` to compute (``dh`` always is).
        buffers: where the large temporaries come from (the fast path reuses them between calls; then the
            returned ``dh`` is only valid until the next call).

    Returns:
        :class:`Gradients` with ``dh`` ``(T, N, H)``.
    """
    _check_backward(cache.out, {"grad_out": grad_out, "grad_h_T": grad_h_T}, truncate)
    out, w_hh = cache.out, cache.w_hh
    T, N, H = out.shape
    # phi'(a_t) for all steps at once
    dphi = buffers.new("dphi", out, T, N, H)
    if cache.nonlinearity == "tanh":
        torch.mul(out, out, out=dphi).neg_().add_(1)  # 1 - h_t^2
    else:
        torch.gt(out, 0, out=dphi)  # [h_t > 0]
    dh = _start_dh(buffers.new("dh", out, T, N, H), grad_out, grad_h_T)  # dL/dh_t
    dh0 = torch.empty_like(cache.h0)
    delta = buffers.new("delta", out, T, N, H)  # dL/da_t
    s = _Steps(dh=dh, dphi=dphi, delta=delta, grad_out=grad_out)
    for t in range(T - 1, -1, -1):
        torch.mul(s.dh[t], s.dphi[t], out=s.delta[t])
        cut = truncate is not None and t > 0 and t % truncate == 0
        if t == 0 and "h0" not in need:
            break  # nobody asked for dL/dh0: skip its matrix product
        direct = s.grad_out[t - 1] if (t > 0 and grad_out is not None) else None
        _pass_back(s.dh[t - 1] if t > 0 else dh0, direct, s.delta[t], w_hh, cut)
    grads = Gradients(dh=dh, dh0=dh0 if "h0" in need else None)
    _input_and_weight_grads(grads, cache, delta, delta, need)
    return grads


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

    The loop activates all four gates with one sigmoid call: :math:`\tanh(a) = 2\sigma(2a) - 1`, so the rows of
    :math:`g` in (copies of) the weights and biases are doubled, and :math:`g_t = 2\sigma(2a_g) - 1` is
    recovered for all steps at once after the loop.

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
    T, N, _ = x.shape
    H = h0.shape[1]
    # tanh(a) = 2 sigmoid(2a) - 1: double g's rows (in copies) and one sigmoid call activates all four gates
    g_rows = slice(2 * H, 3 * H)
    w_ih2 = w_ih.clone()  # (4H, H_in)
    w_ih2[g_rows] *= 2
    bias2 = _sum_biases(b_ih, b_hh)
    if bias2 is not None:
        bias2 = bias2.clone()  # (4H,)
        bias2[g_rows] *= 2
    w_hh2_t = w_hh.t().clone(memory_format=torch.contiguous_format)  # (H, 4H), row-major
    w_hh2_t[:, g_rows] *= 2
    gates = _project_inputs(x, w_ih2, bias2)  # (T, N, 4H); becomes i, f, g, o in place
    c = x.new_empty(T + 1, N, H)  # c[t+1] = c_t
    c[0] = c0
    tanh_c = x.new_empty(T, N, H)
    out = x.new_empty(T, N, H)
    i, f, g, o = gates.chunk(4, dim=2)  # (T, N, H) views into the gates
    s = _Steps(z=gates, i=i, f=f, g=g, o=o, c_prev=c[:-1], c=c[1:], tanh_c=tanh_c, h=out)
    h = h0
    for t in range(T):
        s.z[t].addmm_(h, w_hh2_t).sigmoid_()  # i_t, f_t, sigmoid(2 a_g), o_t
        # c_t = f*c_{t-1} + i*g = f*c_{t-1} + 2 i sigmoid(2 a_g) - i
        torch.mul(s.f[t], s.c_prev[t], out=s.c[t]).addcmul_(s.i[t], s.g[t], value=2).sub_(s.i[t])
        h = torch.mul(s.o[t], torch.tanh(s.c[t], out=s.tanh_c[t]), out=s.h[t])  # h_t = o*tanh(c_t)
    g.mul_(2).sub_(1)  # g_t = 2 sigmoid(2 a_g) - 1 = tanh(a_g), for all steps at once
    cache = LSTMCache(x, h0, c0, w_ih, w_hh, gates, c, tanh_c, out, b_ih is not None, b_hh is not None)
    return out, out[-1].clone(), c[-1].clone(), cache


@torch.no_grad()
def lstm_backward(
    cache: LSTMCache,
    grad_out: Tensor | None = None,
    grad_h_T: Tensor | None = None,
    grad_c_T: Tensor | None = None,
    truncate: int | None = None,
    need: Collection[str] = ALL,
    buffers: _Buffers = _FRESH,
) -> Gradients:
    r"""Backpropagation through time for the LSTM, walking from ``t = T-1`` down to ``0``.

    Two gradients travel back in time, :math:`\partial L/\partial h_t` and :math:`\partial L/\partial
    c_t`. Writing :math:`\bar h_t = \partial L/\partial h_t`, :math:`\bar c_t = \partial L/\partial c_t`
    and :math:`\delta^{x}_t` for the gradient of gate :math:`x`'s pre-activation:

    .. math::
        \bar c_t &= \bar c_{t+1} \odot f_{t+1} + \bar h_t \odot o_t \odot (1 - \tanh^2 c_t)
            \qquad (\bar c_{T} f_T \text{ read as } \partial\ell/\partial c_T) \\
        \delta^o_t &= \bar h_t \odot \tanh c_t \odot o_t (1 - o_t) \\
        \delta^i_t &= \bar c_t \odot g_t \odot i_t (1 - i_t), \quad
        \delta^f_t = \bar c_t \odot c_{t-1} \odot f_t (1 - f_t), \quad
        \delta^g_t = \bar c_t \odot i_t \odot (1 - g_t^2) \\
        \bar h_{t-1} &= \partial \ell/\partial \text{out}_{t-1} + \delta_t W_{hh}, \qquad
            \delta_t = [\delta^i_t, \delta^f_t, \delta^g_t, \delta^o_t]

    and the sums over time as for the RNN (:math:`\partial L/\partial W_{hh} = \sum_t \delta_t^\top
    h_{t-1}` etc.). The path :math:`\bar c_{t+1} \odot f_{t+1}` is the cell state's "highway": no matrix
    product and no squashing derivative, only the forget gate (C10, C12).

    The factors that multiply :math:`\bar h_t` and :math:`\bar c_t` depend only on the forward pass,
    so they are computed for all steps at once before the loop.

    Args:
        cache: from :func:`lstm_forward`.
        grad_out: ``(T, N, H)`` or ``None``; grad_h_T, grad_c_T: ``(N, H)`` or ``None``.
        truncate: cut the gradient of both states between steps ``t-1`` and ``t`` when ``t`` is a positive
            multiple of ``truncate``; ``None``: full BPTT.
        need: which of ``"x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"`` to compute.
        buffers: as in :func:`rnn_backward`.

    Returns:
        :class:`Gradients` with ``dh`` and ``dc`` ``(T, N, H)``.
    """
    _check_backward(cache.out, {"grad_out": grad_out, "grad_h_T": grad_h_T, "grad_c_T": grad_c_T}, truncate)
    out, w_hh, gates, tanh_c = cache.out, cache.w_hh, cache.gates, cache.tanh_c
    T, N, H = out.shape
    i, f, g, o = gates.chunk(4, dim=2)  # (T, N, H) each
    # local derivatives for all steps at once
    to_o = torch.mul(o, tanh_c, out=buffers.new("to_o", out, T, N, H))
    to_c = buffers.new("to_c", out, T, N, H)
    torch.addcmul(o, to_o, tanh_c, value=-1, out=to_c)  # dh_t -> dc_t: o (1 - tanh^2 c)
    to_o.addcmul_(to_o, o, value=-1)  # dh_t -> delta^o_t: tanh c * o (1 - o)
    to_ifg = buffers.new("to_ifg", out, T, N, 3, H)  # dc_t -> delta^i_t, delta^f_t, delta^g_t
    to_i, to_f, to_g = to_ifg.unbind(2)  # (T, N, H) views
    torch.addcmul(i, torch.mul(g, i, out=to_i), g, value=-1, out=to_g)  # i (1 - g^2)
    to_i.addcmul_(to_i, i, value=-1)  # g i (1 - i)
    torch.mul(cache.c[:-1], f, out=to_f).addcmul_(to_f, f, value=-1)  # c_{t-1} f (1 - f)

    dh = _start_dh(buffers.new("dh", out, T, N, H), grad_out, grad_h_T)  # dL/dh_t
    dc = buffers.new("dc", out, T, N, H)  # dL/dc_t
    dh0 = torch.empty_like(cache.h0)
    carry = torch.zeros_like(cache.h0) if grad_c_T is None else grad_c_T.clone()  # dc_{t+1} * f_{t+1}
    delta = buffers.new("delta", out, T, N, 4 * H)  # gradients of the gate pre-activations
    s = _Steps(dh=dh, dc=dc, dc_=dc.unsqueeze(2), to_c=to_c, to_o=to_o, to_ifg=to_ifg, f=f, delta=delta,
               delta_ifg=delta.view(T, N, 4, H)[:, :, :3], delta_o=delta[:, :, 3 * H :], grad_out=grad_out)
    for t in range(T - 1, -1, -1):
        torch.addcmul(carry, s.dh[t], s.to_c[t], out=s.dc[t])
        torch.mul(s.dc_[t], s.to_ifg[t], out=s.delta_ifg[t])  # (N, 1, H) * (N, 3, H)
        torch.mul(s.dh[t], s.to_o[t], out=s.delta_o[t])
        cut = truncate is not None and t > 0 and t % truncate == 0
        if cut:
            carry.zero_()
        else:
            torch.mul(s.dc[t], s.f[t], out=carry)
        if t == 0 and "h0" not in need:
            break  # nobody asked for dL/dh0: skip its matrix product
        direct = s.grad_out[t - 1] if (t > 0 and grad_out is not None) else None
        _pass_back(s.dh[t - 1] if t > 0 else dh0, direct, s.delta[t], w_hh, cut)
    grads = Gradients(dh=dh, dc=dc, dh0=dh0 if "h0" in need else None, dc0=carry if "c0" in need else None)
    _input_and_weight_grads(grads, cache, delta, delta, need)
    return grads


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
    T, N, _ = x.shape
    H = h0.shape[1]
    gates = _project_inputs(x, w_ih, b_ih)  # (T, N, 3H); becomes r, z, n in place
    rec = x.new_empty(T, N, 3 * H)  # h_{t-1} W_hh^T + b_hh
    out = x.new_empty(T, N, H)
    diff = x.new_empty(N, H)
    s = _Steps(rec=rec, rec_rz=rec[:, :, : 2 * H], rec_n=rec[:, :, 2 * H :], rz=gates[:, :, : 2 * H],
               z=gates[:, :, H : 2 * H], r=gates[:, :, :H], n=gates[:, :, 2 * H :], h=out)
    w_hh_t = w_hh.t().contiguous()  # (H, 3H)
    h = h0
    for t in range(T):
        if b_hh is None:
            torch.mm(h, w_hh_t, out=s.rec[t])
        else:
            torch.addmm(b_hh, h, w_hh_t, out=s.rec[t])
        s.rz[t].add_(s.rec_rz[t]).sigmoid_()  # r_t, z_t
        n = s.n[t].addcmul_(s.r[t], s.rec_n[t]).tanh_()  # n_t
        h = torch.addcmul(n, s.z[t], torch.sub(h, n, out=diff), out=s.h[t])  # h_t = n + z*(h_{t-1} - n)
    cache = GRUCache(x, h0, w_ih, w_hh, gates, rec[:, :, 2 * H :], out, b_ih is not None, b_hh is not None)
    return out, out[-1].clone(), cache


@torch.no_grad()
def gru_backward(
    cache: GRUCache,
    grad_out: Tensor | None = None,
    grad_h_T: Tensor | None = None,
    truncate: int | None = None,
    need: Collection[str] = ALL,
    buffers: _Buffers = _FRESH,
) -> Gradients:
    r"""Backpropagation through time for the GRU, walking from ``t = T-1`` down to ``0``.

    With :math:`\bar h_t = \partial L/\partial h_t`, :math:`\hat n_t = W_{hn} h_{t-1} + b_{hn}` and
    :math:`\delta` for gradients of pre-activations:

    .. math::
        \delta^n_t &= \bar h_t \odot (1 - z_t) \odot (1 - n_t^2) \\
        \delta^z_t &= \bar h_t \odot (h_{t-1} - n_t) \odot z_t (1 - z_t) \\
        \delta^r_t &= \delta^n_t \odot \hat n_t \odot r_t (1 - r_t) \\
        \bar h_{t-1} &= \partial\ell/\partial\text{out}_{t-1} + \bar h_t \odot z_t +
            [\delta^r_t, \delta^z_t, \delta^n_t \odot r_t]\, W_{hh}

    The input side sees :math:`[\delta^r, \delta^z, \delta^n]` (for :math:`W_{ih}, b_{ih}, x`) and the
    recurrent side :math:`[\delta^r, \delta^z, \delta^n \odot r]` (for :math:`W_{hh}, b_{hh}`). Every
    factor multiplying :math:`\bar h_t` is computed for all steps before the loop.

    Args:
        cache: from :func:`gru_forward`; grad_out ``(T, N, H)``, grad_h_T ``(N, H)``, each may be ``None``.
        truncate, need, buffers: as in :func:`rnn_backward`.

    Returns:
        :class:`Gradients` with ``dh`` ``(T, N, H)``.
    """
    _check_backward(cache.out, {"grad_out": grad_out, "grad_h_T": grad_h_T}, truncate)
    out, w_hh, gates, hn = cache.out, cache.w_hh, cache.gates, cache.hn
    T, N, H = out.shape
    r, z, n = gates.chunk(3, dim=2)  # (T, N, H) each
    # local derivatives for all steps at once
    one_minus_z = torch.neg(z, out=buffers.new("one_minus_z", out, T, N, H)).add_(1)
    to_n = torch.mul(one_minus_z, n, out=buffers.new("to_n", out, T, N, H))
    to_n.mul_(n).neg_().add_(one_minus_z)  # dh_t -> delta^n_t: (1 - z)(1 - n^2)
    to_rec = buffers.new("to_rec", out, T, N, 3, H)  # dh_t -> [delta^r, delta^z, delta^n * r]
    to_r, to_z, to_nr = to_rec.unbind(2)  # (T, N, H) views
    torch.mul(to_n, r, out=to_nr)
    torch.mul(to_nr, hn, out=to_r).addcmul_(to_r, r, value=-1)  # (1 - z)(1 - n^2) hn r (1 - r)
    torch.sub(out[:-1], n[1:], out=to_z[1:])  # h_{t-1} - n_t
    torch.sub(cache.h0, n[0], out=to_z[0])
    to_z.mul_(z).mul_(one_minus_z)  # (h_{t-1} - n) z (1 - z)

    dh = _start_dh(buffers.new("dh", out, T, N, H), grad_out, grad_h_T)
    dh0 = torch.empty_like(cache.h0)
    d_rec = buffers.new("d_rec", out, T, N, 3 * H)
    s = _Steps(dh=dh, dh_=dh.unsqueeze(2), to_rec=to_rec, z=z, d_rec=d_rec, d_rec_=d_rec.view(T, N, 3, H),
               grad_out=grad_out)
    for t in range(T - 1, -1, -1):
        torch.mul(s.dh_[t], s.to_rec[t], out=s.d_rec_[t])  # (N, 1, H) * (N, 3, H)
        cut = truncate is not None and t > 0 and t % truncate == 0
        if t == 0 and "h0" not in need:
            break  # nobody asked for dL/dh0: skip its matrix product
        direct = s.grad_out[t - 1] if (t > 0 and grad_out is not None) else None
        target = s.dh[t - 1] if t > 0 else dh0
        _pass_back(target, direct, s.d_rec[t], w_hh, cut)
        if not cut:
            target.addcmul_(s.dh[t], s.z[t])  # the direct path h_{t-1} -> z_t * h_{t-1}
    d_in = buffers.new("d_in", out, T, N, 3 * H)
    d_in[:, :, : 2 * H] = d_rec[:, :, : 2 * H]
    torch.mul(dh, to_n, out=d_in[:, :, 2 * H :])  # delta^n without the factor r
    grads = Gradients(dh=dh, dh0=dh0 if "h0" in need else None)
    _input_and_weight_grads(grads, cache, d_in, d_rec, need)
    return grads


# ----------------------------------------------------------------------------------------------------------
# The fast path: the manual BPTT as autograd Functions
# ----------------------------------------------------------------------------------------------------------


def _need(ctx: torch.autograd.function.FunctionCtx, names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name for name, flag in zip(names, ctx.needs_input_grad, strict=True) if flag)


class _RNNFunction(torch.autograd.Function):
    NAMES = ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh", "nonlinearity")

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity):  # type: ignore[override]
        out, h_T, cache = rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(cache.x, cache.h0, cache.w_ih, cache.w_hh, cache.out)
        ctx.flags = (nonlinearity, cache.has_b_ih, cache.has_b_hh)
        return out, h_T

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_T):  # type: ignore[override]
        cache = RNNCache(*ctx.saved_tensors, *ctx.flags)
        g = rnn_backward(cache, grad_out, grad_h_T, need=_need(ctx, _RNNFunction.NAMES),
                         buffers=_fast_path_buffers(cache.out))
        return g.dx, g.dh0, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh, None


class _LSTMFunction(torch.autograd.Function):
    NAMES = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh):  # type: ignore[override]
        out, h_T, c_T, cache = lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(cache.x, cache.h0, cache.c0, cache.w_ih, cache.w_hh, cache.gates, cache.c,
                              cache.tanh_c, cache.out)
        ctx.flags = (cache.has_b_ih, cache.has_b_hh)
        return out, h_T, c_T

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_T, grad_c_T):  # type: ignore[override]
        cache = LSTMCache(*ctx.saved_tensors, *ctx.flags)
        g = lstm_backward(cache, grad_out, grad_h_T, grad_c_T, need=_need(ctx, _LSTMFunction.NAMES),
                          buffers=_fast_path_buffers(cache.out))
        return g.dx, g.dh0, g.dc0, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh


class _GRUFunction(torch.autograd.Function):
    NAMES = ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh")

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):  # type: ignore[override]
        out, h_T, cache = gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(cache.x, cache.h0, cache.w_ih, cache.w_hh, cache.gates, cache.hn, cache.out)
        ctx.flags = (cache.has_b_ih, cache.has_b_hh)
        return out, h_T

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_T):  # type: ignore[override]
        cache = GRUCache(*ctx.saved_tensors, *ctx.flags)
        g = gru_backward(cache, grad_out, grad_h_T, need=_need(ctx, _GRUFunction.NAMES),
                         buffers=_fast_path_buffers(cache.out))
        return g.dx, g.dh0, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh


def rnn_sequence(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    nonlinearity: str = "tanh",
) -> tuple[Tensor, Tensor]:
    r"""One Elman RNN layer over a whole sequence, differentiable, with the manual BPTT as its backward.

    :math:`h_t = \phi(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh})`; see :func:`rnn_forward`
    and :func:`rnn_backward` for the maths.

    Inputs: ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H)``, ``w_ih`` ``(H, H_in)``, ``w_hh`` ``(H, H)``,
    ``b_ih``/``b_hh`` ``(H,)`` or ``None``, ``nonlinearity`` ``"tanh"`` or ``"relu"``.

    Outputs: ``out`` ``(T, N, H)`` and ``h_T`` ``(N, H)``.
    """
    return _RNNFunction.apply(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)


def lstm_sequence(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""One LSTM layer over a whole sequence, differentiable, with the manual BPTT as its backward.

    See :func:`lstm_forward` and :func:`lstm_backward` for the maths.

    Inputs: ``x`` ``(T, N, H_in)``, ``h0``/``c0`` ``(N, H)``, ``w_ih`` ``(4H, H_in)``, ``w_hh`` ``(4H, H)``
    (gates ``i, f, g, o``), ``b_ih``/``b_hh`` ``(4H,)`` or ``None``.

    Outputs: ``out`` ``(T, N, H)``, ``h_T`` and ``c_T`` ``(N, H)``.
    """
    return _LSTMFunction.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh)


def gru_sequence(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
) -> tuple[Tensor, Tensor]:
    r"""One GRU layer over a whole sequence, differentiable, with the manual BPTT as its backward.

    See :func:`gru_forward` and :func:`gru_backward` for the maths.

    Inputs: ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H)``, ``w_ih`` ``(3H, H_in)``, ``w_hh`` ``(3H, H)``
    (gates ``r, z, n``), ``b_ih``/``b_hh`` ``(3H,)`` or ``None``.

    Outputs: ``out`` ``(T, N, H)`` and ``h_T`` ``(N, H)``.
    """
    return _GRUFunction.apply(x, h0, w_ih, w_hh, b_ih, b_hh)


# ----------------------------------------------------------------------------------------------------------
# Gradient flow
# ----------------------------------------------------------------------------------------------------------

_MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
Weights = tuple[Tensor, Tensor, Tensor | None, Tensor | None]


def _class_names(obj: object) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


def _layer_spec(model: object) -> tuple[str, list[Weights], bool]:
    """``(mode, [(w_ih, w_hh, b_ih, b_hh) per layer], batch_first)`` of a recurrent model or cell."""
    mode = getattr(model, "mode", None)
    if mode in _MODES and hasattr(model, "num_layers"):  # seqlib or torch.nn RNN/LSTM/GRU
        if getattr(model, "bidirectional", False):
            raise ValueError("model must be unidirectional (bidirectional=False): the gradient flowing into h_t is "
                             "defined here for one direction of time")
        if getattr(model, "proj_size", 0):
            raise ValueError(f"model must have proj_size=0, but got proj_size={model.proj_size}")  # type: ignore
        layers = []
        for k in range(model.num_layers):  # type: ignore[attr-defined]
            layers.append((getattr(model, f"weight_ih_l{k}"), getattr(model, f"weight_hh_l{k}"),
                           getattr(model, f"bias_ih_l{k}", None), getattr(model, f"bias_hh_l{k}", None)))
        return str(mode), layers, bool(getattr(model, "batch_first", False))
    names = _class_names(model)
    if "LSTMCell" in names:
        mode = "LSTM"
    elif "GRUCell" in names:
        mode = "GRU"
    elif "RNNCell" in names:
        mode = "RNN_RELU" if getattr(model, "nonlinearity", "tanh") == "relu" else "RNN_TANH"
    else:
        raise TypeError("model must be an RNN, LSTM or GRU (seqlib or torch.nn) or an RNNCell, LSTMCell or GRUCell, "
                        f"but got {type(model).__name__}")
    weights = (model.weight_ih, model.weight_hh, getattr(model, "bias_ih", None),  # type: ignore[attr-defined]
               getattr(model, "bias_hh", None))
    return mode, [weights], False


@torch.no_grad()
def _top_layer_gradients(model: object, inputs: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> Gradients:
    """Run ``model`` with the manual forward, then the manual BPTT of its top layer from ``loss_fn``'s gradient."""
    mode, layers, batch_first = _layer_spec(model)
    expected = "(N, T, H_in) or (T, H_in)" if batch_first else "(T, N, H_in) or (T, H_in)"
    check_tensor("inputs", inputs, expected)
    check_floating("inputs", inputs)
    check_rank("inputs", inputs, (2, 3), expected)
    batched = inputs.dim() == 3
    x = inputs.detach()
    x = (x.transpose(0, 1) if batch_first else x) if batched else x.unsqueeze(1)  # (T, N, H_in)
    w0 = layers[0][0]
    if x.shape[-1] != w0.shape[1]:
        raise ValueError(f"inputs must have shape {expected} with H_in = {w0.shape[1]}, "
                         f"but got shape {shape_str(inputs.shape)}")
    if x.dtype != w0.dtype:
        raise TypeError(f"inputs has dtype {x.dtype} but the model's weights have dtype {w0.dtype}; they must match")
    T, N, _ = x.shape
    for w_ih, w_hh, b_ih, b_hh in layers:
        w_ih, w_hh = w_ih.detach(), w_hh.detach()
        b_ih = None if b_ih is None else b_ih.detach()
        b_hh = None if b_hh is None else b_hh.detach()
        zeros = x.new_zeros(N, w_hh.shape[1])  # (N, H)
        if mode == "LSTM":
            x, _, _, cache = lstm_forward(x, zeros, zeros, w_ih, w_hh, b_ih, b_hh)
        elif mode == "GRU":
            x, _, cache = gru_forward(x, zeros, w_ih, w_hh, b_ih, b_hh)
        else:
            x, _, cache = rnn_forward(x, zeros, w_ih, w_hh, b_ih, b_hh, "relu" if mode == "RNN_RELU" else "tanh")
    out = (x.transpose(0, 1) if batch_first else x) if batched else x.squeeze(1)  # the model's layout
    out = out.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(out)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor (one element), but got "
                             f"{type(loss).__name__ if not isinstance(loss, Tensor) else shape_str(loss.shape)}")
        (grad,) = torch.autograd.grad(loss.reshape(()), out, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(out)
    grad = (grad.transpose(0, 1) if batch_first else grad) if batched else grad.unsqueeze(1)  # (T, N, H)
    if mode == "LSTM":
        return lstm_backward(cache, grad, need=())  # type: ignore[arg-type]
    if mode == "GRU":
        return gru_backward(cache, grad, need=())  # type: ignore[arg-type]
    return rnn_backward(cache, grad, need=())  # type: ignore[arg-type]


def gradient_norms(model: torch.nn.Module, inputs: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> Tensor:
    r"""How much gradient reaches each time step: :math:`\lVert \partial L/\partial h_t \rVert` for ``t = 0..T-1``.

    :math:`\partial L/\partial h_t` is the *total* gradient flowing into the top layer's hidden state at step
    ``t``, through the output at ``t`` and through all later steps: the per-step ``dh`` of the manual
    backward (:func:`lstm_backward` etc.), which is what this function returns the norms of. With a loss on
    the last output only, the curve shows how the gradient shrinks (vanishes) or grows (explodes) as it
    travels back in time (C08).

    Args:
        model: a unidirectional ``RNN``, ``LSTM`` or ``GRU`` from seqlib or torch.nn (any ``num_layers``,
            ``batch_first``, with or without bias; no ``proj_size``), or an ``RNNCell``, ``LSTMCell`` or
            ``GRUCell`` (seqlib or torch.nn), which is run over time like a one-layer model. The initial
            state is zero; dropout between layers is not applied (measure the deterministic network).
        inputs: ``(T, N, H_in)`` (``(N, T, H_in)`` if ``batch_first``) or unbatched ``(T, H_in)``.
        loss_fn: receives the model's output sequence, in the model's layout (``(T, N, H)`` etc.), and
            returns a scalar tensor.

    Returns:
        ``(T,)``: the norm over batch and hidden units of :math:`\partial L/\partial h_t`, in the dtype of the
        model.
    """
    dh = _top_layer_gradients(model, inputs, loss_fn).dh
    assert dh is not None
    return torch.linalg.vector_norm(dh.flatten(1), dim=1)  # (T,)


def cell_state_norms(model: torch.nn.Module, inputs: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> Tensor:
    r""":math:`\lVert \partial L/\partial c_t \rVert` of an LSTM's top layer for ``t = 0..T-1`` (C12).

    The same measurement as :func:`gradient_norms`, for the cell state: the total gradient reaching
    :math:`c_t`, through :math:`h_t` and through :math:`c_{t+1} = f_{t+1} \odot c_t + \dots`. ``model`` must be
    an ``LSTM`` or ``LSTMCell`` (seqlib or torch.nn); the other arguments are as in :func:`gradient_norms`.

    Returns:
        ``(T,)``: the norm over batch and hidden units of :math:`\partial L/\partial c_t`.
    """
    mode, _, _ = _layer_spec(model)
    if mode != "LSTM":
        raise TypeError(f"model must be an LSTM or LSTMCell (only they have a cell state), but got "
                        f"{type(model).__name__}")
    dc = _top_layer_gradients(model, inputs, loss_fn).dc
    assert dc is not None
    return torch.linalg.vector_norm(dc.flatten(1), dim=1)  # (T,)


def jacobian_norms(
    cell: Callable[..., object],
    inputs: Tensor,
    h0: Tensor | None = None,
    norm: str = "spectral",
) -> Tensor:
    r"""How strongly the last state depends on each earlier one: :math:`\lVert \partial h_T/\partial h_t \rVert`.

    With :math:`h_{t+1} = \text{cell}(x_t, h_t)` for ``t = 0..T-1`` (so :math:`h_0` is the initial state and
    :math:`h_T` the state after the last input), entry ``t`` is the norm of the :math:`H \times H` Jacobian

    .. math::
        \frac{\partial h_T}{\partial h_t} = \prod_{k=t+1}^{T} \frac{\partial h_k}{\partial h_{k-1}},
        \qquad \text{for the RNN } \frac{\partial h_k}{\partial h_{k-1}} = \operatorname{diag}(\phi'(a_k)) W_{hh},

    a product of ``T - t`` step Jacobians (C08): it shrinks geometrically when they are contractions and
    grows when they expand. For an LSTM cell it is the Jacobian with respect to :math:`h_t` with
    :math:`c_t` held fixed (the path through later cell states is included).

    All ``H`` rows come from one backward pass: the sequence is copied ``H`` times along the batch and copy
    ``j`` sends back the unit vector :math:`e_j`. So ``cell`` must treat batch rows independently (every
    recurrent cell does).

    Args:
        cell: an ``RNNCell``, ``GRUCell`` or ``LSTMCell`` (seqlib or torch.nn), or any callable
            ``h_next = cell(x_t, h)`` with ``x_t`` ``(N, H_in)`` and ``h`` ``(N, H)``.
        inputs: ``(T, H_in)`` for one sequence, or ``(T, N, H_in)`` for ``N`` of them.
        h0: initial state ``(H,)`` / ``(N, H)``; default zeros (needs ``cell.hidden_size``).
        norm: ``"spectral"`` (largest singular value, the factor by which the Jacobian can stretch a
            vector) or ``"fro"`` (Frobenius).

    Returns:
        ``(T,)`` for ``(T, H_in)`` inputs, ``(T, N)`` for ``(T, N, H_in)``; entry ``t`` is
        :math:`\lVert \partial h_T/\partial h_t \rVert`.
    """
    check_choice("norm", norm, ("spectral", "fro"))
    check_tensor("inputs", inputs, "(T, H_in) or (T, N, H_in)")
    check_floating("inputs", inputs)
    check_rank("inputs", inputs, (2, 3), "(T, H_in) or (T, N, H_in)")
    if not callable(cell):
        raise TypeError(f"cell must be a recurrent cell or a callable cell(x_t, h), but got {type(cell).__name__}")
    batched = inputs.dim() == 3
    x = inputs.detach() if batched else inputs.detach().unsqueeze(1)  # (T, N, H_in)
    T, N, I = x.shape
    if h0 is None:
        H = getattr(cell, "hidden_size", None)
        if not isinstance(H, int):
            raise ValueError("h0 is needed when cell has no integer attribute hidden_size")
        h = x.new_zeros(N, H)
    else:
        check_tensor("h0", h0, "(N, H) or (H,)")
        h = h0.detach() if batched else h0.detach().reshape(1, -1)  # (N, H)
        if h.dim() != 2 or h.shape[0] != N:
            raise ValueError(f"h0 must have shape {'(N, H)' if batched else '(H,)'} with N = {N}, "
                             f"but got shape {shape_str(h0.shape)}")
        H = h.shape[1]
    is_lstm = "LSTMCell" in _class_names(cell)
    xr = x.unsqueeze(2).expand(T, N, H, I).reshape(T, N * H, I)  # (T, N*H, H_in): each sequence H times
    h = h.repeat_interleave(H, dim=0).requires_grad_(True)  # (N*H, H)
    c = torch.zeros_like(h)
    states = []
    with torch.enable_grad():
        for t in range(T):
            states.append(h)
            if is_lstm:
                h, c = cell(xr[t], (h, c))  # type: ignore[misc]
            else:
                h = cell(xr[t], h)  # type: ignore[assignment]
        if not isinstance(h, Tensor) or tuple(h.shape) != (N * H, H):
            raise ValueError(f"cell must return the next state of shape (N, H) = {shape_str((N * H, H))}")
        eye = torch.eye(H, dtype=h.dtype, device=h.device).repeat(N, 1)  # (N*H, H): copy j sends back e_j
        grads = torch.autograd.grad(h, states, grad_outputs=eye, allow_unused=True)
    jac = torch.stack([torch.zeros_like(s) if g is None else g for g, s in zip(grads, states, strict=True)])
    jac = jac.view(T, N, H, H)  # jac[t, n, j] = row j of dh_T/dh_t for sequence n
    norms = torch.linalg.matrix_norm(jac, ord=2 if norm == "spectral" else "fro")  # (T, N)
    return norms if batched else norms[:, 0]


def spectral_radius(W: Tensor) -> float:
    r"""The largest absolute eigenvalue :math:`\rho(W) = \max_k |\lambda_k(W)|` of a square matrix.

    For a linear recurrence :math:`h_t = W h_{t-1}`, :math:`h_t` shrinks to zero when :math:`\rho(W) < 1`
    and blows up (along the top eigenvector) when :math:`\rho(W) > 1`; the gradients of an RNN travel
    through :math:`W_{hh}^\top` in the same way (C08).

    Args:
        W: ``(H, H)``, e.g. an RNN's ``weight_hh`` (for an LSTM/GRU pass one gate's block, ``weight_hh[:H]``).
    """
    check_tensor("W", W, "(H, H)")
    check_floating("W", W)
    check_rank("W", W, (2,), "(H, H)")
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square, shape (H, H), but got shape {shape_str(W.shape)}")
    return float(torch.linalg.eigvals(W.detach()).abs().max())
