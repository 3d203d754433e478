"""Assignment 2 (a2_bptt): BPTT by hand, truncated BPTT, gradient clipping, gradient norms.

Each ``*_mistakes`` function returns ``{message: what the mistake computes}`` for the same inputs as the
reference; ``checks.expect_close(..., diagnoses=...)`` names the first one a wrong answer matches.
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

from collections.abc import Sequence  # noqa: E402

import torch  # noqa: E402

from .._pristine import _clip_grad_norm_, _t, seal  # noqa: E402
from ..inputs import randn  # noqa: E402
from .a1_rnn import _ref_rnn_cell  # noqa: E402
from .bug import Bug  # noqa: E402


def _rnn_forward_states(x, h0, w_ih, w_hh, b_ih, b_hh, truncate=None):
    hs = [h0]
    h = h0
    for t in range(_t.size(x, 0)):
        if truncate and t > 0 and t % truncate == 0:
            h = _t.detach(h)
        h = _ref_rnn_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)
        hs.append(h)
    return hs


def bptt_reference(x, h0, w_ih, w_hh, b_ih, b_hh, grad_hs, truncate=None):
    """(dW_ih, dW_hh, db_ih, db_hh, dh0) by autograd, for a loss whose gradient w.r.t. h_t is grad_hs[t-1].

    ``truncate=k`` detaches the hidden state every k steps (before steps k, 2k, ...), as truncated BPTT does.
    """
    leaves = [_t.requires_grad_(_t.clone(_t.detach(p))) for p in (w_ih, w_hh, b_ih, b_hh, h0)]
    with _t.enable_grad():
        hs = _rnn_forward_states(x, leaves[4], *leaves[:4], truncate=truncate)
        loss = _t.sum(_t.mul(_t.stack(hs[1:]), grad_hs))
        return tuple(_t.detach(g) for g in _t.autograd_grad(loss, leaves))


def bptt_case(seed: int, steps: int = 6, batch: int = 3, input_size: int = 2, hidden: int = 4,
              truncate: int | None = None) -> tuple[tuple, tuple, dict]:
    """A test case for ``rnn_bptt``: ``(args, expected, mistakes)`` with ``args = (x, hs, w_hh, grad_hs)``."""
    x, h0 = randn(steps, batch, input_size, seed=seed), randn(batch, hidden, seed=seed + 1)
    weights = (randn(hidden, input_size, seed=seed + 2, scale=0.6), randn(hidden, hidden, seed=seed + 3, scale=0.6),
               randn(hidden, seed=seed + 4, scale=0.3), randn(hidden, seed=seed + 5, scale=0.3))
    hs = _t.stack(_rnn_forward_states(x, h0, *weights))  # (L+1, N, H)
    grad_hs = randn(steps, batch, hidden, seed=seed + 6)
    expected = bptt_reference(x, h0, *weights, grad_hs, truncate=truncate)
    return (x, hs, weights[1], grad_hs), expected, bptt_mistakes(x, hs, weights[1], grad_hs, truncate)


def _manual_bptt(x, hs, w_hh, grad_hs, truncate=None, mistake=None):
    """Backpropagation through time written out (returns dW_ih, dW_hh, db_ih, db_hh, dh0), with a ``mistake``."""
    dw_ih = _t.zeros(_t.size(w_hh, 0), _t.size(x, 2), dtype=x.dtype)
    dw_hh = _t.zeros_like(w_hh)
    db = _t.zeros(_t.size(w_hh, 0), dtype=x.dtype)
    carry = _t.zeros_like(hs[0])  # dL/dh_t arriving from step t+1
    for t in range(_t.size(x, 0), 0, -1):
        g = _t.add(grad_hs[t - 1], carry)
        da = g if mistake == "no_tanh_derivative" else _t.mul(g, _t.sub(1.0, _t.mul(hs[t], hs[t])))
        h_prev = hs[t] if mistake == "h_t_not_h_prev" else hs[t - 1]
        dw_ih = _t.add(dw_ih, _t.matmul(_t.transpose(da, 0, 1), x[t - 1]))
        dw_hh = _t.add(dw_hh, _t.matmul(_t.transpose(da, 0, 1), h_prev))
        db = _t.add(db, _t.sum(da, 0))
        carry = _t.matmul(da, _t.transpose(w_hh, 0, 1) if mistake == "whh_transposed" else w_hh)
        if t == 1 and mistake == "dh0_without_whh":
            carry = da
        blocked = truncate and t - 1 > 0 and (t - 1) % truncate == 0
        if blocked and mistake != "no_truncation":
            carry = _t.zeros_like(carry)
    return dw_ih, dw_hh, db, db, carry


def bptt_mistakes(x, hs, w_hh, grad_hs, truncate=None) -> dict[str, tuple[torch.Tensor, ...]]:
    """What ``rnn_bptt`` returns (dW_ih, dW_hh, db_ih, db_hh, dh0) with the usual mistakes."""
    return {
        "the tanh derivative is missing: the gradient through h_t = tanh(a_t) is dL/da_t = dL/dh_t * (1 - h_t^2)":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "no_tanh_derivative"),
        "dW_hh pairs delta_t with h_t; the step t update used h_(t-1), so dW_hh += delta_t^T h_(t-1)":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "h_t_not_h_prev"),
        "W_hh is transposed in the backward step: the gradient flowing to h_(t-1) is delta_t @ W_hh":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "whh_transposed"),
        "dL/dh0 is delta_1 @ W_hh: h0 enters the first step through W_hh":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "dh0_without_whh"),
        "truncation is ignored: with truncate=k no gradient flows back across the boundaries k, 2k, ...":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "no_truncation"),
    }


def with_grads(grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
    """Leaf tensors (float64) whose ``.grad`` holds a copy of each gradient (``None`` gives a parameter without one)."""
    params = []
    for g in grads:
        p = _t.requires_grad_(_t.zeros(*(_t.size(g) if g is not None else (2,)), dtype=_t.float64))
        p.grad = None if g is None else _t.clone(g)
        params.append(p)
    return params


def clip_reference(grads: Sequence[torch.Tensor], max_norm: float, norm_type: float = 2.0
                   ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(total_norm, clipped gradients) from torch.nn.utils.clip_grad_norm_ (captured at import)."""
    params = with_grads(grads)
    total = _clip_grad_norm_(params, max_norm, norm_type)
    return total, [p.grad for p in params]


def clip_norm_mistakes(grads: Sequence[torch.Tensor], max_norm: float, norm_type: float = 2.0
                       ) -> dict[str, torch.Tensor]:
    """What ``clip_grad_norm_`` returns as total norm with the usual mistakes."""
    p = float(norm_type)
    norms = _t.stack([_t.linalg_vector_norm(g, p) for g in grads])
    total = _t.linalg_vector_norm(norms, p)
    coef = min(1.0, max_norm / (float(total) + 1e-6))
    return {
        "return the total norm measured before clipping (what torch.nn.utils.clip_grad_norm_ returns)":
            _t.mul(total, coef),
        "the total norm is the norm of all gradients together (the norm of the per-parameter norms), "
        "not the sum of the per-parameter norms": _t.sum(norms),
        "the total norm is ||g||, not ||g||^2: take the square root": _t.pow(total, 2),
        "the total norm covers all parameters together, not just the last one": norms[-1],
    }


def clip_scaling_mistakes(grads: Sequence[torch.Tensor], max_norm: float, norm_type: float = 2.0
                          ) -> dict[str, list[torch.Tensor]]:
    """What the clipped gradients look like with the usual mistakes."""
    p = float(norm_type)
    norms = [_t.linalg_vector_norm(g, p) for g in grads]
    total = float(_t.linalg_vector_norm(_t.stack(norms), p))
    raw = max_norm / (total + 1e-6)
    return {
        "the clipping coefficient max_norm / (total_norm + 1e-6) must be capped at 1: gradients whose norm is "
        "already below max_norm are left unchanged, never scaled up": [_t.mul(g, raw) for g in grads],
        "clip by the global norm: one coefficient for all parameters, from the norm of all gradients together, "
        "not one per parameter": [_t.mul(g, min(1.0, max_norm / (float(n) + 1e-6)))
                                  for g, n in zip(grads, norms, strict=True)],
        "scale the gradients by max_norm / total_norm (so that the new norm is max_norm), not by "
        "total_norm / max_norm": [_t.mul(g, max(1.0, total / max_norm)) for g in grads],
        "clipping means rescaling the gradient vector, not clamping each entry (that is clip_grad_value_)":
            [g.clamp(-max_norm, max_norm) for g in grads],
    }


def grad_norms_reference(x, h0, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:
    """||d(sum h_L)/d h_t|| for t = 0..L (float64), by autograd."""
    with _t.enable_grad():
        h0 = _t.requires_grad_(_t.clone(_t.detach(h0)))
        hs = _rnn_forward_states(x, h0, w_ih, w_hh, b_ih, b_hh)
        for h in hs[1:]:
            h.retain_grad()
        _t.sum(hs[-1]).backward()
    return _t.stack([_t.linalg_vector_norm(h.grad) for h in hs])


def grad_norms_mistakes(x, h0, w_ih, w_hh, b_ih, b_hh) -> dict[str, torch.Tensor]:
    ref = grad_norms_reference(x, h0, w_ih, w_hh, b_ih, b_hh)
    return {
        "the norms are in reversed order: entry t is the gradient reaching h_t, so entry L (the last state) is "
        "the largest and the early entries vanish": _t.flip(ref, (0,)),
        "measure the gradient norm (the square root of the sum of squares), not the squared norm":
            _t.pow(ref, 2),
    }


#: correct versions of the notebook's helpers, swapped in by ``run_student(..., uses=[...])``
REFERENCES: dict = {}

#: the demo class: one realistic mistake per student, and the graded cells it must lose
DEMO_BUGS = {
    "bug-h0-grad": Bug(
        "a2_bptt", "a2_bptt",
        old="carry = delta @ w_hh  #", new="carry = delta @ w_hh if t > 1 else delta  #",
        breaks=("a2_bptt_h0_grad",), says="h0 enters the first step through W_hh"),
    "bug-no-clip-coef-cap": Bug(
        "a2_bptt", "a2_clip",
        old="    if clip_coef < 1:\n        for g in grads:\n            g.mul_(clip_coef)",
        new="    for g in grads:\n        g.mul_(clip_coef)",
        breaks=("a2_clip_scaling",), says="must be capped at 1"),
    "bug-norms-reversed": Bug(
        "a2_bptt", "a2_vanishing",
        old="for state in hs])", new="for state in reversed(hs)])",
        breaks=("a2_vanishing_norms",), says="reversed order"),
}

__all__ = [
    "DEMO_BUGS", "REFERENCES", "bptt_case", "bptt_mistakes", "bptt_reference", "clip_norm_mistakes", "clip_reference",
    "clip_scaling_mistakes", "grad_norms_mistakes", "grad_norms_reference", "with_grads",
]


seal(__name__)
