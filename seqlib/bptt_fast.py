r"""The fast path the recurrent layers train through: BPTT by hand, tuned for speed, as ``autograd.Function``\ s.

:func:`rnn_sequence`, :func:`lstm_sequence` and :func:`gru_sequence` run one layer over a whole sequence and are
differentiable: their backward pass is backpropagation through time written out by hand, not autograd's graph of
the time loop. ``seqlib.RNN``, ``LSTM`` and ``GRU`` run through them.

The maths is that of :mod:`seqlib.bptt`, which writes every equation on a line of its own; read that module
first. This one computes the same numbers (``tests/test_bptt_fast.py`` checks every output and gradient against
it) with three kinds of tuning:

1. Work that does not depend on the previous step is done for all steps at once, with one large operation
   before or after the loop: the input projections :math:`x_t W_{ih}^\top` of every step, the local
   derivatives (:math:`1 - h_t^2`, :math:`o_t(1 - o_t)`, ...) and the sums over time of the weight gradients.
2. The loops only write into preallocated ``(T, N, ...)`` tensors (``out=`` arguments and in-place operations),
   through per-step views made once before the loop.
3. The LSTM activates its four gates with a single sigmoid (:math:`\tanh(a) = 2\sigma(2a) - 1`), and on the CPU
   the backward pass takes its large temporaries from per-thread buffers that are kept between calls
   (:func:`release_buffers` frees them).

``rnn_forward``/``rnn_backward`` etc. have the signatures of their :mod:`seqlib.bptt` twins (plus ``buffers=``
on the backward) and take and return the same cache and :class:`~seqlib.bptt.Gradients` objects.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._checks import check_choice
from .bptt import ALL, Gradients, GRUCache, LSTMCache, RNNCache, _check_backward, _check_layer

__all__ = [
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
]


# ----------------------------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------------------------

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
    r"""The Elman RNN layer over time, as :func:`seqlib.bptt.rnn_forward` (same arguments, outputs and cache).

    Tuned: the input projections of all steps (and both biases) in one matrix product, which the loop then turns
    into :math:`h_t` in place, one ``addmm_`` and one activation per step.
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
    r"""BPTT for the Elman RNN, as :func:`seqlib.bptt.rnn_backward` (same arguments and result, plus ``buffers``).

    Tuned: :math:`\phi'(a_t)` for all steps before the loop, the sums over time of the weight gradients after it
    (one matrix product each); the loop is one multiply and one ``addmm`` per step; the matrix product that
    only feeds :math:`\partial L/\partial h_{-1}` is skipped when ``"h0"`` is not in ``need``.

    Args:
        buffers: where the large temporaries come from. The layers pass the calling thread's reusable buffers
            (:func:`release_buffers`); then the returned ``dh`` is only valid until the next call.
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
    r"""The LSTM layer over time, as :func:`seqlib.bptt.lstm_forward` (same arguments, outputs and cache).

    Tuned: one sigmoid call activates all four gates, using :math:`\tanh(a) = 2\sigma(2a) - 1`: the rows of
    :math:`g` in (copies of) the weights and biases are doubled, and :math:`g_t = 2\sigma(2a_g) - 1` is recovered
    for all steps at once after the loop. The loop writes the gates, :math:`c_t`, :math:`\tanh c_t` and
    :math:`h_t` into preallocated ``(T, N, ...)`` tensors.
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
    r"""BPTT for the LSTM, as :func:`seqlib.bptt.lstm_backward` (same arguments and result, plus ``buffers``).

    Tuned: the factors that multiply :math:`\partial L/\partial h_t` and :math:`\partial L/\partial c_t`
    (:math:`o_t(1 - \tanh^2 c_t)`, :math:`\tanh c_t\, o_t(1 - o_t)`, :math:`g_t i_t (1 - i_t)`, ...) depend only
    on the forward pass, so they are computed for all steps before the loop; the three gates fed by
    :math:`\partial L/\partial c_t` take one broadcast multiply per step.

    Args:
        buffers: as in :func:`rnn_backward`.
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
    r"""The GRU layer over time, as :func:`seqlib.bptt.gru_forward` (same arguments, outputs and cache).

    Tuned: the input projections of all steps in one matrix product; per step one ``addmm`` for the recurrent
    projection and in-place gate updates, :math:`h_t = n_t + z_t (h_{t-1} - n_t)`.
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
    r"""BPTT for the GRU, as :func:`seqlib.bptt.gru_backward` (same arguments and result, plus ``buffers``).

    Tuned: every factor that multiplies :math:`\partial L/\partial h_t` is computed for all steps before the
    loop, so a step is one broadcast multiply, one ``addmm`` and the direct path :math:`z_t \odot h_{t-1}`.

    Args:
        buffers: as in :func:`rnn_backward`.
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
# The manual BPTT as autograd Functions: what seqlib.RNN, LSTM and GRU call
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

    :math:`h_t = \phi(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh})`; the maths of the forward and
    backward pass is written out in :func:`seqlib.bptt.rnn_forward` and :func:`seqlib.bptt.rnn_backward`.

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

    The maths is written out in :func:`seqlib.bptt.lstm_forward` and :func:`seqlib.bptt.lstm_backward`.

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

    The maths is written out in :func:`seqlib.bptt.gru_forward` and :func:`seqlib.bptt.gru_backward`.

    Inputs: ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H)``, ``w_ih`` ``(3H, H_in)``, ``w_hh`` ``(3H, H)``
    (gates ``r, z, n``), ``b_ih``/``b_hh`` ``(3H,)`` or ``None``.

    Outputs: ``out`` ``(T, N, H)`` and ``h_T`` ``(N, H)``.
    """
    return _GRUFunction.apply(x, h0, w_ih, w_hh, b_ih, b_hh)
