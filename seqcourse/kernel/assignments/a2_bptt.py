"""Assignment 2 (a2_bptt): BPTT by hand, truncated BPTT, gradient clipping, gradient norms.

The references (autograd and torch.nn.utils.clip_grad_norm_) and ``CATALOGUES``: the graded functions written out
with mutation sites (:mod:`seqcourse.kernel.mutations`), for the diagnosis engine (:mod:`seqcourse.kernel.diagnose`).
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

from collections.abc import Sequence  # noqa: E402

import torch  # noqa: E402

from .._pristine import _clip_grad_norm_, _t, seal  # noqa: E402
from ..catalogue import Catalogue  # noqa: E402
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
              truncate: int | None = None) -> tuple[tuple, tuple]:
    """A test case for ``rnn_bptt``: ``(args, expected)`` with ``args = (x, hs, w_hh, grad_hs)`` and the five
    gradients by autograd."""
    x, h0 = randn(steps, batch, input_size, seed=seed), randn(batch, hidden, seed=seed + 1)
    weights = (randn(hidden, input_size, seed=seed + 2, scale=0.6), randn(hidden, hidden, seed=seed + 3, scale=0.6),
               randn(hidden, seed=seed + 4, scale=0.3), randn(hidden, seed=seed + 5, scale=0.3))
    hs = _t.stack(_rnn_forward_states(x, h0, *weights))  # (L+1, N, H)
    grad_hs = randn(steps, batch, hidden, seed=seed + 6)
    expected = bptt_reference(x, h0, *weights, grad_hs, truncate=truncate)
    return (x, hs, weights[1], grad_hs), expected


def _bptt(m, x, hs, w_hh, grad_hs, truncate=None):
    """rnn_bptt written out, with mutation sites: (dW_ih, dW_hh, db_ih, db_hh, dh0)."""
    dw_ih = _t.zeros(_t.size(w_hh, 0), _t.size(x, 2), dtype=x.dtype)  # (H, H_in)
    dw_hh = _t.zeros_like(w_hh)  # (H, H)
    db = _t.zeros(_t.size(w_hh, 0), dtype=x.dtype)  # (H,)
    carry = _t.zeros_like(hs[0])  # dL/dh_t arriving from step t+1, (N, H)
    derivative = m.option("the tanh derivative", "1 - h_t^2", ("1 - h_(t-1)^2", "1 - tanh(h_t)^2", "1 - h_t",
                                                                "missing"))
    paired = m.option("the state paired with delta_t in dW_hh", "h_(t-1)", ("h_t",))
    for t in range(_t.size(x, 0), 0, -1):
        g = _t.add(m.term("the direct gradient grad_hs[t-1]", grad_hs[t - 1]),
                   m.term("the gradient from the later steps, delta_(t+1) W_hh", carry))  # (N, H)
        h = {"1 - h_t^2": hs[t], "1 - h_(t-1)^2": hs[t - 1], "1 - tanh(h_t)^2": _t.tanh(hs[t])}.get(derivative)
        local = _t.ones_like(g) if derivative == "missing" else \
            _t.sub(1.0, hs[t]) if derivative == "1 - h_t" else _t.sub(1.0, _t.mul(h, h))
        delta = _t.mul(g, local)  # (N, H)
        x_t = m.at("the input paired with delta_t in dW_ih", x, t - 1)  # (N, H_in)
        h_prev = hs[t] if paired == "h_t" else hs[t - 1]  # (N, H)
        dw_ih = _t.add(m.carry("the sum over the steps of dW_ih", dw_ih, _t.zeros_like(dw_ih)),
                       m.transpose("dW_ih", _t.matmul(_t.transpose(delta, 0, 1), x_t)))
        dw_hh = _t.add(m.carry("the sum over the steps of dW_hh", dw_hh, _t.zeros_like(dw_hh)),
                       m.transpose("dW_hh", _t.matmul(_t.transpose(delta, 0, 1), h_prev)))
        db = _t.add(m.carry("the sum over the steps of db", db, _t.zeros_like(db)),
                    m.reduce("the bias gradient", delta, 0, "sum"))
        carry = _t.matmul(delta, m.transpose("W_hh in the backward step", w_hh))  # reaches h_(t-1)
        if t == 1 and m.option("dL/dh0", "delta_1 W_hh", ("delta_1",)) == "delta_1":
            carry = delta
        boundary = m.offset("the truncation boundary", t - 1)
        at_h0 = m.option("truncation at h0", "h0 is not detached", ("h0 is detached too",)) == "h0 is detached too"
        if truncate and (t - 1 > 0 or at_h0) and boundary % truncate == 0 and m.step("truncation"):
            carry = _t.zeros_like(carry)  # h_(t-1) was detached: nothing flows further back
    return dw_ih, dw_hh, db, _t.clone(db), carry


RNN_BPTT = Catalogue(
    "rnn_bptt", _bptt, cells=("a2_bptt_weight_grads", "a2_bptt_bias_grads", "a2_bptt_h0_grad", "a2_bptt_truncated"),
    about={"the direct gradient grad_hs[t-1]": "the direct gradient grad_hs[t-1] in g_t",
           "the gradient from the later steps, delta_(t+1) W_hh": "the gradient from the later steps, "
                                                                    "delta_(t+1) W_hh, in g_t",
           "the input paired with delta_t in dW_ih": "the input paired with delta_t in dW_ih (x_t = x[t-1])",
           "the sum over the steps of dW_ih": "dW_ih", "the sum over the steps of dW_hh": "dW_hh",
           "the sum over the steps of db": "the bias gradient", "dW_ih": "the step's dW_ih, delta_t^T x_t",
           "dW_hh": "the step's dW_hh, delta_t^T h_(t-1)", "the bias gradient": "the bias gradient",
           "W_hh in the backward step": "W_hh in the backward step", "dL/dh0": "dL/dh0",
           "the truncation boundary": "the truncation boundary", "truncation": "the truncation",
           "truncation at h0": "the truncation", "the tanh derivative": "the tanh derivative",
           "the state paired with delta_t in dW_hh": "dW_hh"},
    say={"the tanh derivative:missing": "the tanh derivative is missing: the gradient through h_t = tanh(a_t) is "
                                        "dL/da_t = dL/dh_t * (1 - h_t^2)",
         "the tanh derivative:1 - h_(t-1)^2": "the tanh derivative is taken at the previous state: dL/da_t = dL/dh_t "
                                              "* (1 - h_t^2), with h_t the output of this step's tanh",
         "the tanh derivative:1 - tanh(h_t)^2": "h_t is already tanh(a_t): the derivative is 1 - h_t^2, not "
                                                "1 - tanh(h_t)^2",
         "the tanh derivative:1 - h_t": "tanh' = 1 - tanh^2: the factor is (1 - h_t^2), not (1 - h_t)",
         "the state paired with delta_t in dW_hh:h_t": "dW_hh pairs delta_t with h_t; the step t update used "
                                                       "h_(t-1), so dW_hh += delta_t^T h_(t-1)",
         "W_hh in the backward step:transposed": "W_hh is transposed in the backward step: the gradient flowing to "
                                                 "h_(t-1) is delta_t @ W_hh",
         "dL/dh0:delta_1": "dL/dh0 is delta_1 @ W_hh: h0 enters the first step through W_hh",
         "truncation:missing": "truncation is ignored: with truncate=k no gradient flows back across the boundaries "
                               "k, 2k, ...",
         "truncation at h0:h0 is detached too": "with truncate=k the states h_k, h_2k, ... are detached, not h0: "
                                                "dL/dh0 = delta_1 W_hh still flows from the first k steps",
         "the truncation boundary:*": "off by one in truncated BPTT: the gradient stops between steps k and k+1 "
                                      "(no delta_(k+1) W_hh in g_k), for k = truncate, 2*truncate, ...",
         "the direct gradient grad_hs[t-1]:missing": "g_t is missing the direct gradient grad_hs[t-1]: the loss also "
                                                     "depends on h_t directly",
         "the gradient from the later steps, delta_(t+1) W_hh:missing": "g_t is missing delta_(t+1) W_hh: h_t also "
                                                                        "influences the loss through the later "
                                                                        "states",
         "the sum over the steps of dW_ih:not carried": "dW_ih is overwritten at every step: the weights are shared "
                                                        "across the steps, so their gradient sums every step's "
                                                        "contribution (+=)",
         "the sum over the steps of dW_hh:not carried": "dW_hh is overwritten at every step: the weights are shared "
                                                        "across the steps, so their gradient sums every step's "
                                                        "contribution (+=)",
         "the sum over the steps of db:not carried": "the bias gradient is overwritten at every step: it sums every "
                                                     "step's delta_t (+=)",
         "dW_hh:transposed": "the weight gradient is transposed: dW_hh += delta_t^T h_(t-1) has W_hh's shape "
                             "(to, from)",
         "dW_ih:transposed": "the weight gradient is transposed: dW_ih += delta_t^T x_t has W_ih's shape (H, H_in)",
         "the bias gradient:mean": "the bias gradient sums delta_t over the batch (dL/db = sum_n delta_t[n]), it is "
                                   "not a mean",
         "the input paired with delta_t in dW_ih:*": "dW_ih pairs delta_t with the input of the same step, "
                                                     "x_t = x[t-1] (hs[t] was computed from x[t-1])"})


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


def _clip(m, parameters, max_norm, norm_type=2.0):
    """clip_grad_norm_ written out, with mutation sites (changes each .grad in place, returns the total norm)."""
    if isinstance(parameters, _t.Tensor) and m.step("a single tensor wrapped in a list"):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return _t.zeros((), dtype=_t.float64)
    p = float(norm_type) if m.option("the norm type", "norm_type", ("always 2",)) == "norm_type" else 2.0
    norms = _t.stack([_t.linalg_vector_norm(g, p) for g in grads])  # (P,)
    total = m.option("the total norm", "the norm of the per-parameter norms",
                     ("their sum", "the largest one", "the last parameter's", "the squared norm"))
    total_norm = {"their sum": lambda: _t.sum(norms), "the largest one": lambda: _t.amax(norms),
                  "the last parameter's": lambda: norms[-1], "the squared norm": lambda: _t.pow(
                      _t.linalg_vector_norm(norms, p), 2)}.get(total, lambda: _t.linalg_vector_norm(norms, p))()
    coef = _t.div(max_norm, _t.add(total_norm, 1e-6))
    if m.option("the clipping coefficient", "max_norm / total_norm", ("total_norm / max_norm",)) != "max_norm / " \
            "total_norm":
        coef = _t.div(total_norm, max_norm)
    when = m.option("when to clip", "only when clip_coef < 1", ("always", "only when clip_coef > 1"))
    clip = {"only when clip_coef < 1": bool(coef < 1), "always": True, "only when clip_coef > 1": bool(coef > 1)}[when]
    how = m.option("how the gradients change", "one coefficient for all, in place",
                   ("one coefficient per parameter", "each entry clamped to +-max_norm", "not in place"))
    if clip and how == "one coefficient for all, in place":
        for g in grads:
            g.mul_(coef)
    elif clip and how == "one coefficient per parameter":
        for g, n in zip(grads, norms, strict=True):
            g.mul_(min(1.0, max_norm / (float(n) + 1e-6)))
    elif clip and how == "each entry clamped to +-max_norm":
        for g in grads:
            g.clamp_(-max_norm, max_norm)
    if m.option("the returned norm", "before clipping", ("after clipping",)) == "after clipping":
        return _t.mul(total_norm, min(1.0, float(coef))) if clip else total_norm
    return total_norm


def _observe_clip(fn, grads, max_norm, norm_type=2.0, single=False):
    """(total_norm, the .grad of every parameter after the call) for parameters whose .grad are ``grads``."""
    params = with_grads(grads)
    total = fn(params[0] if single else params, max_norm, norm_type)
    return total, [p.grad for p in params]


CLIP = Catalogue(
    "clip_grad_norm_", _clip, observe=_observe_clip,
    cells=("a2_clip_total_norm", "a2_clip_scaling", "a2_clip_edge_cases"),
    about={"a single tensor wrapped in a list": "wrapping a single tensor in a list", "the norm type": "the norm",
           "the total norm": "the total norm", "the clipping coefficient": "the clipping coefficient",
           "when to clip": "the clipping", "how the gradients change": "the clipping",
           "the returned norm": "the returned total_norm"},
    say={"a single tensor wrapped in a list:missing": "like torch, accept a single tensor as well as a list: wrap it "
                                                      "as [parameters] (iterating over a tensor gives its rows, "
                                                      "which have no .grad)",
         "the norm type:always 2": "norm_type is ignored: the total norm uses the norm_type that is passed in (for "
                                   "norm_type=inf, the largest absolute entry)",
         "the total norm:their sum": "the total norm is the norm of all gradients together (the norm of the "
                                     "per-parameter norms), not the sum of the per-parameter norms",
         "the total norm:the largest one": "the total norm is the norm of all gradients together (the norm of the "
                                           "per-parameter norms), not the largest per-parameter norm",
         "the total norm:the last parameter's": "the total norm covers all parameters together, not just the last "
                                                "one",
         "the total norm:the squared norm": "the total norm is ||g||, not ||g||^2: take the square root",
         "the clipping coefficient:total_norm / max_norm": "scale the gradients by max_norm / total_norm (so that "
                                                           "the new norm is max_norm), not by total_norm / max_norm",
         "when to clip:always": "the clipping coefficient max_norm / (total_norm + 1e-6) must be capped at 1: "
                                "gradients whose norm is already below max_norm are left unchanged, never scaled up",
         "when to clip:only when clip_coef > 1": "the condition is the wrong way round: clip when the total norm is "
                                                 "above max_norm (clip_coef < 1) and leave smaller gradients "
                                                 "unchanged",
         "how the gradients change:one coefficient per parameter": "clip by the global norm: one coefficient for all "
                                                                   "parameters, from the norm of all gradients "
                                                                   "together, not one per parameter",
         "how the gradients change:each entry clamped to +-max_norm": "clipping means rescaling the gradient vector, "
                                                                      "not clamping each entry (that is "
                                                                      "clip_grad_value_)",
         "how the gradients change:not in place": "the .grad of the parameters is unchanged: scale each p.grad in "
                                                  "place (p.grad.mul_(clip_coef))",
         "the returned norm:after clipping": "return the total norm measured before clipping (what "
                                             "torch.nn.utils.clip_grad_norm_ returns)"})


def _grad_norms(m, x, h0, w_ih, w_hh, b_ih, b_hh):
    """hidden_grad_norms with mutation sites: ||d(sum h_L)/d h_t|| for t = 0..L."""
    with _t.enable_grad():
        h = _t.requires_grad_(_t.clone(_t.detach(h0)))
        hs = [h]
        w = m.transpose("W_hh in the forward pass", w_hh)
        for t in range(_t.size(x, 0)):
            h = _ref_rnn_cell(x[t], h, w_ih, w, b_ih, b_hh)
            h.retain_grad()
            hs.append(h)
        loss = m.option("the loss", "the sum of h_L", ("the mean of h_L", "the sum of every state h_1..h_L"))
        total = {"the mean of h_L": lambda: _t.mean(hs[-1]), "the sum of every state h_1..h_L": lambda: _t.sum(
            _t.stack(hs[1:]))}.get(loss, lambda: _t.sum(hs[-1]))()
        total.backward()
    measured = m.option("what is measured", "the gradient reaching h_t", ("the state h_t itself",))
    norms = [_t.linalg_vector_norm(_t.detach(state) if measured != "the gradient reaching h_t" else state.grad)
             for state in hs]
    if m.option("the norm", "||dL/dh_t||", ("||dL/dh_t||^2",)) != "||dL/dh_t||":
        norms = [_t.pow(n, 2) for n in norms]
    out = _t.stack(norms)  # (L+1,)
    return _t.flip(out, (0,)) if m.option("the order", "t = 0..L", ("reversed",)) == "reversed" else out


GRAD_NORMS = Catalogue(
    "hidden_grad_norms", _grad_norms, cells=("a2_vanishing_norms",),
    about={"the loss": "the loss", "what is measured": "the norms", "the norm": "the norm", "the order": "the norms",
           "W_hh in the forward pass": "W_hh in the forward pass"},
    say={"the order:reversed": "the norms are in reversed order: entry t is the gradient reaching h_t, so entry L "
                               "(the last state) is the largest and the early entries vanish",
         "W_hh in the forward pass:transposed": "W_hh is transposed in the forward pass: h_t = tanh(x_t W_ih^T + "
                                                "b_ih + h_(t-1) W_hh^T + b_hh)",
         "the norm:||dL/dh_t||^2": "measure the gradient norm (the square root of the sum of squares), not the "
                                   "squared norm",
         "the loss:the mean of h_L": "the loss is the sum of the entries of h_L, not their mean",
         "the loss:the sum of every state h_1..h_L": "the loss is the sum of the last state h_L only, not of every "
                                                     "state",
         "what is measured:the state h_t itself": "measure the norm of the gradient reaching h_t (h_t.grad after "
                                                  "the backward pass), not of the state h_t itself"})


CATALOGUES = {c.name: c for c in (RNN_BPTT, CLIP, GRAD_NORMS)}


def grad_norms_reference(x, h0, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:
    """||d(sum h_L)/d h_t|| for t = 0..L (float64), by autograd."""
    return GRAD_NORMS.correct(x, h0, w_ih, w_hh, b_ih, b_hh)


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
    "CATALOGUES", "DEMO_BUGS", "REFERENCES", "bptt_case", "bptt_reference", "clip_reference", "grad_norms_reference",
    "with_grads",
]


seal(__name__)
