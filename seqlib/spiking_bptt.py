r"""Backpropagation through time for the LIF layer, written out by hand: the fast path of :class:`seqlib.spiking.LIF`.

:func:`seqlib.spiking.lif_sequence` is the plain version: the update of :func:`~seqlib.spiking.lif_step` in a loop,
differentiated by autograd, which records a dozen small operations per step and replays them backwards.
:func:`lif_sequence_bptt` computes the same numbers (tested equal, outputs and gradients) with a
:class:`torch.autograd.Function`: the forward loop writes into preallocated buffers without building a graph, and the
backward pass walks time in reverse with the gradient of the membrane,

.. math::
    \frac{\partial L}{\partial S_t} &= g^S_t + \delta_{t+1} W_{hh}
        \;\big[-\, \theta\, \delta_{t+1} \ \text{(subtract)} \ \text{or} \ -\beta U_t\, \delta_{t+1} \ \text{(zero)},
        \text{ only without } \texttt{detach\_reset}\big] \\
    \delta_t = \frac{\partial L}{\partial U_t} &= g^U_t + \frac{\partial L}{\partial S_t}\, H'(U_t - \theta)
        + \beta\, \delta_{t+1} \ \text{(subtract)} \quad \text{or} \quad + \beta (1 - S_t)\, \delta_{t+1}
        \ \text{(zero)}

where :math:`g^S_t, g^U_t` are the gradients arriving at the outputs and :math:`H'` is the surrogate derivative. Every
weight gradient is then one matrix product over all steps at once: :math:`\nabla W_{ih} = \sum_t \delta_t^\top x_t`,
:math:`\nabla W_{hh} = \sum_t \delta_t^\top S_{t-1}`, :math:`\nabla \beta = \sum_t \delta_t U_{t-1}` (times
:math:`1 - S_{t-1}` for the zero reset).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .surrogate import surrogate_grad

__all__ = ["lif_sequence_bptt"]


class _LIFFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, s0: Tensor, u0: Tensor, w_ih: Tensor, w_hh: Tensor | None, b_ih: Tensor | None,
                b_hh: Tensor | None, beta: Tensor, threshold: float, subtract: bool, surrogate: str, slope: float,
                detach_reset: bool) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        L, N, _ = x.shape
        H = w_ih.shape[0]
        bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
        currents = F.linear(x, w_ih, bias)  # (L, N, H): W x_t + b (+ b_V) for every step at once
        U = x.new_empty(L, N, H)
        S = x.new_empty(L, N, H)
        u, s = u0, s0
        w_hh_t = w_hh.t() if w_hh is not None else None  # (H, H) transposed once
        for t in range(L):
            c = torch.addmm(currents[t], s, w_hh_t) if w_hh_t is not None else currents[t]  # (N, H)
            u_t = U[t]
            if subtract:
                torch.mul(u, beta, out=u_t)  # beta U_{t-1}
                u_t.add_(c).sub_(s, alpha=threshold)  # + I_t - S_{t-1} theta
            else:
                torch.mul(u, beta, out=u_t)
                u_t.addcmul_(u_t, s, value=-1.0).add_(c)  # beta (1 - S_{t-1}) U_{t-1} + I_t
            S[t] = u_t > threshold  # the spike: H(U_t - theta), stored as 0.0 / 1.0
            u, s = u_t, S[t]
        ctx.save_for_backward(x, s0, u0, w_ih, w_hh, beta, U, S)
        ctx.settings = (threshold, subtract, surrogate, slope, detach_reset, b_ih is not None, b_hh is not None)
        return S, U

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s: Tensor | None, g_u: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, s0, u0, w_ih, w_hh, beta, U, S = ctx.saved_tensors
        threshold, subtract, surrogate, slope, detach_reset, has_b_ih, has_b_hh = ctx.settings
        L, N, H = U.shape
        g_s = torch.zeros_like(U) if g_s is None else g_s
        g_u = torch.zeros_like(U) if g_u is None else g_u
        sigma = surrogate_grad(U - threshold, surrogate, slope)  # (L, N, H): H'(U_t - theta), all steps at once
        S_prev = torch.cat([s0.unsqueeze(0), S[:-1]])  # (L, N, H): S_{t-1}
        U_prev = torch.cat([u0.unsqueeze(0), U[:-1]])  # (L, N, H): U_{t-1}
        keep = beta * (1 - S) if not subtract else None  # (L, N, H): d U_{t+1} / d U_t for the zero reset
        D = torch.empty_like(U)  # delta_t = dL/dU_t
        delta = U.new_zeros(N, H)  # delta_{t+1}, zero after the last step
        for t in range(L - 1, -1, -1):
            g = g_s[t] if t == L - 1 else _spike_grad(g_s[t], delta, w_hh, U[t], beta, threshold, subtract,
                                                      detach_reset)
            d = D[t]
            torch.mul(g, sigma[t], out=d)
            d.add_(g_u[t])
            if t < L - 1:
                d.add_(delta * (beta if subtract else keep[t]))
            delta = d
        flat_d = D.reshape(L * N, H)  # (L*N, H)
        need = ctx.needs_input_grad
        grad_x = (D @ w_ih) if need[0] else None  # (L, N, H_in)
        grad_u0 = delta * (beta if subtract else beta * (1 - s0)) if need[2] else None
        grad_s0 = None
        if need[1]:
            grad_s0 = _spike_grad(torch.zeros_like(s0), delta, w_hh, u0, beta, threshold, subtract, detach_reset)
        grad_w_ih = flat_d.t() @ x.reshape(L * N, -1) if need[3] else None  # (H, H_in)
        grad_w_hh = flat_d.t() @ S_prev.reshape(L * N, H) if w_hh is not None and need[4] else None  # (H, H)
        grad_bias = flat_d.sum(0)  # (H,)
        grad_b_ih = grad_bias if has_b_ih and need[5] else None
        grad_b_hh = grad_bias if has_b_hh and need[6] else None
        grad_beta = None
        if need[7]:
            per_step = D * U_prev if subtract else D * U_prev * (1 - S_prev)  # (L, N, H)
            grad_beta = per_step.sum() if beta.dim() == 0 else per_step.sum((0, 1))
        return (grad_x, grad_s0, grad_u0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, grad_beta,
                None, None, None, None, None)


def _spike_grad(g_s: Tensor, delta: Tensor, w_hh: Tensor | None, u: Tensor, beta: Tensor, threshold: float,
                subtract: bool, detach_reset: bool) -> Tensor:
    """dL/dS_t: the gradient at the output plus what S_t feeds into step t + 1 (recurrence, and the reset if kept)."""
    g = g_s + delta @ w_hh if w_hh is not None else g_s.clone()  # (N, H)
    if not detach_reset:
        g.sub_(delta * threshold if subtract else delta * beta * u)
    return g


def lif_sequence_bptt(x: Tensor, s: Tensor, u: Tensor, w_ih: Tensor, w_hh: Tensor | None, b_ih: Tensor | None,
                      b_hh: Tensor | None, beta: Tensor | float, threshold: float, reset: str = "subtract",
                      surrogate: str = "fast_sigmoid", slope: float = 25.0,
                      detach_reset: bool = True) -> tuple[Tensor, Tensor]:
    """:func:`seqlib.spiking.lif_sequence` with the hand-written backward pass: the same arguments and results.

    ``slope`` must be a number here (the layer resolves ``None`` to the surrogate's default).
    """
    beta_t = beta if isinstance(beta, Tensor) else torch.tensor(float(beta), dtype=x.dtype, device=x.device)
    return _LIFFunction.apply(x, s, u, w_ih, w_hh, b_ih, b_hh, beta_t, threshold, reset == "subtract", surrogate,
                              slope, detach_reset)

