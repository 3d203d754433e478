"""Assignment 1 (a1_rnn): references for the RNN cell, layer and embedding, and the usual mistakes.

Each ``*_mistakes`` function returns ``{message: what the mistake computes}`` for the same inputs as the
reference; ``checks.expect_close(..., diagnoses=...)`` names the first one a wrong answer matches.
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

from collections.abc import Callable  # noqa: E402

import torch  # noqa: E402

from .._pristine import _t, bias_or_zero, seal  # noqa: E402
from .bug import Bug  # noqa: E402


def _ref_rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); x (N, H_in) or (H_in,), h (N, H) or (H,)."""
    pre_x = _t.add(_t.linear(x, w_ih), bias_or_zero(b_ih))
    return _t.tanh(_t.add(pre_x, _t.add(_t.linear(h, w_hh), bias_or_zero(b_hh))))


def _ref_rnn_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """x (L, N, H_in), h0 (N, H) or None -> (output (L, N, H), h_n (N, H))."""
    h = h0 if h0 is not None else _t.zeros(_t.size(x, 1), _t.size(w_hh, 0), dtype=x.dtype, device=x.device)
    if (b_ih is None) == (b_hh is None):  # the fused kernel behind nn.RNN
        weights = [w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
        out, h_n = _t.vf_rnn_tanh(x, _t.unsqueeze(h, 0), weights, b_ih is not None, 1, 0.0, False, False, False)
        return out, _t.squeeze(h_n, 0)
    outs = []
    for t in range(_t.size(x, 0)):
        h = _ref_rnn_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return _t.stack(outs), h


def _ref_embedding(indices, weight):
    return _t.embedding(indices, weight)


def rnn_cell_mistakes(x, h, w_ih, w_hh, b_ih, b_hh) -> dict[str, torch.Tensor]:
    """What ``rnn_cell`` returns with the usual mistakes."""
    pre = _t.add(_t.add(_t.linear(x, w_ih), b_ih), _t.add(_t.linear(h, w_hh), b_hh))
    square_ih = _t.size(w_ih, 0) == _t.size(w_ih, 1)
    return {
        "W_ih is transposed: torch.nn computes x_t @ W_ih^T (W_ih is stored as (H, H_in))":
            _ref_rnn_cell(x, h, _t.transpose(w_ih, 0, 1), w_hh, b_ih, b_hh) if square_ih else None,
        "W_hh is transposed: torch.nn computes h_(t-1) @ W_hh^T (W_hh is stored as (H, H) = (to, from))":
            _ref_rnn_cell(x, h, w_ih, _t.transpose(w_hh, 0, 1), b_ih, b_hh),
        "you forgot the bias b_hh (nn.RNNCell has two biases, b_ih and b_hh, both added before the tanh)":
            _ref_rnn_cell(x, h, w_ih, w_hh, b_ih, None),
        "you forgot the bias b_ih (nn.RNNCell has two biases, b_ih and b_hh, both added before the tanh)":
            _ref_rnn_cell(x, h, w_ih, w_hh, None, b_hh),
        "the tanh is missing: h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)": pre,
        "you used ReLU; the lecture's RNN (and nn.RNNCell's default) uses tanh": _t.relu(pre),
        "the previous hidden state h_(t-1) is ignored: the recurrence needs the W_hh h_(t-1) term":
            _ref_rnn_cell(x, _t.zeros_like(h), w_ih, w_hh, b_ih, b_hh),
        "the tanh is applied to each term separately; add everything first, then take one tanh":
            _t.add(_t.tanh(_t.add(_t.linear(x, w_ih), b_ih)), _t.tanh(_t.add(_t.linear(h, w_hh), b_hh))),
    }


def rnn_layer_mistakes(x, h0, w_ih, w_hh, b_ih, b_hh) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``rnn_layer`` returns (output, h_n) with the usual mistakes."""
    out, h_n = _ref_rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh)
    out0, h_n0 = _ref_rnn_layer(x, None, w_ih, w_hh, b_ih, b_hh)
    stale = _t.stack([_ref_rnn_cell(x[t], h0, w_ih, w_hh, b_ih, b_hh) for t in range(_t.size(x, 0))])
    shifted = _t.cat([_t.unsqueeze(h0, 0), out[:-1]])
    return {
        "h0 is ignored: the first step must start from the h0 that is passed in (zeros only when h0 is None)":
            (out0, h_n0),
        "the hidden state is not carried from step to step: feed each step's h_t into the next step":
            (stale, stale[-1]),
        "output[t] must be the new state h_t (after step t), not the state h_(t-1) the step started from":
            (shifted, h_n),
        "the output is in reversed time order: output[t] belongs to input x[t]": (_t.flip(out, (0,)), h_n),
    }


def classifier_mistakes(logits_of_positions: Callable[[torch.Tensor], torch.Tensor], lengths: torch.Tensor,
                        total_length: int) -> dict[str, torch.Tensor]:
    """``logits_of_positions(pos)`` -> logits read from output[pos[n], n]; the usual wrong positions."""
    last = _t.full(_t.size(lengths), total_length - 1, dtype=_t.long)
    return {
        "you read the output at the last time step (output[-1]) for every sentence; for a padded batch "
        "that is a padding step for the shorter sentences: use output[length - 1] of each sentence":
            logits_of_positions(last),
        "off by one: the last real word of a sentence of length n is at position n - 1":
            logits_of_positions(_t.where(lengths < total_length, lengths, last)),
        "you read the first output (output[0]); many-to-one classification uses the state after the last word":
            logits_of_positions(_t.zeros_like(lengths)),
    }


#: correct versions of the notebook's helpers, swapped in by ``run_student(..., uses=[...])``
REFERENCES = {"rnn_cell": _ref_rnn_cell, "rnn_layer": _ref_rnn_layer, "embedding": _ref_embedding}

#: the demo class: one realistic mistake per student, and the graded cells it must lose
DEMO_BUGS = {
    "bug-whh-transposed": Bug(
        "a1_rnn", "a1_rnn_cell",
        old="pre = x @ w_ih.T + h @ w_hh.T", new="pre = x @ w_ih.T + h @ w_hh",
        breaks=("a1_rnn_cell_values",), says="W_hh is transposed"),
    "bug-detached-state": Bug(
        "a1_rnn", "a1_rnn_layer",
        old="h = rnn_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)",
        new="h = rnn_cell(x[t], h.detach(), w_ih, w_hh, b_ih, b_hh)",
        breaks=("a1_rnn_layer_gradients",), says="something cuts the graph"),
    "bug-last-step-padding": Bug(
        "a1_rnn", "a1_classifier",
        old="last = output[lengths - 1, torch.arange(text.shape[1])]", new="last = output[-1]",
        breaks=("a1_classifier_logits",), says="that is a padding step"),
}

__all__ = ["DEMO_BUGS", "REFERENCES", "rnn_cell_mistakes", "rnn_layer_mistakes", "classifier_mistakes"]


seal(__name__)
