"""Assignment 3 (a3_lstm): references for the LSTM cell and layer, and the usual mistakes.

Each ``*_mistakes`` function returns ``{message: what the mistake computes}`` for the same inputs as the
reference; ``checks.expect_close(..., diagnoses=...)`` names the first one a wrong answer matches.
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import itertools  # noqa: E402

import torch  # noqa: E402

from .._pristine import _t, bias_or_zero, seal  # noqa: E402
from .bug import Bug  # noqa: E402


def _ref_lstm_cell(x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """(h', c') = nn.LSTMCell's update (gates stacked i, f, g, o); x (N, H_in) or (H_in,)."""
    h, c = state
    single = _t.dim(x) == 1
    if single:
        x, h, c = _t.unsqueeze(x, 0), _t.unsqueeze(h, 0), _t.unsqueeze(c, 0)
    h_new, c_new = _t.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    if single:
        h_new, c_new = _t.squeeze(h_new, 0), _t.squeeze(c_new, 0)
    return h_new, c_new


def _ref_lstm_layer(x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """x (L, N, H_in), state (h0, c0) each (N, H) or None -> (output (L, N, H), (h_n, c_n))."""
    hidden = _t.size(w_hh, 1)
    if state is None:
        zeros = _t.zeros(_t.size(x, 1), hidden, dtype=x.dtype, device=x.device)
        state = (zeros, zeros)
    h0, c0 = state
    weights = [w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
    out, h_n, c_n = _t.vf_lstm(x, (_t.unsqueeze(h0, 0), _t.unsqueeze(c0, 0)), weights, b_ih is not None, 1, 0.0,
                               False, False, False)
    return out, (_t.squeeze(h_n, 0), _t.squeeze(c_n, 0))


def _permute_gates(w, order: str):
    """Rows of an (4H, ...) LSTM weight re-stacked so that a cell reading them as i,f,g,o sees ``order``."""
    if w is None:
        return None
    blocks = dict(zip("ifgo", _t.chunk(w, 4, 0), strict=True))
    return _t.cat([blocks[g] for g in order], 0)


def _lstm_cell_variant(x, h, c, w_ih, w_hh, b_ih, b_hh, variant):
    gates = _t.add(_t.add(_t.linear(x, w_ih), bias_or_zero(b_ih)), _t.add(_t.linear(h, w_hh), bias_or_zero(b_hh)))
    i, f, g, o = _t.chunk(gates, 4, -1)
    i, f, o = _t.sigmoid(i), _t.sigmoid(f), _t.sigmoid(o)
    g = _t.sigmoid(g) if variant == "sigmoid_candidate" else _t.tanh(g)
    if variant == "no_input_gate":
        c_new = _t.add(_t.mul(f, c), g)
    elif variant == "no_forget_gate":
        c_new = _t.add(c, _t.mul(i, g))
    else:
        c_new = _t.add(_t.mul(f, c), _t.mul(i, g))
    h_new = _t.mul(o, c_new) if variant == "no_tanh_on_c" else _t.mul(o, _t.tanh(c_new))
    return h_new, c_new


def lstm_cell_mistakes(x, state, w_ih, w_hh, b_ih, b_hh) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``lstm_cell`` returns (h', c') with the usual mistakes (the first 23 are the wrong gate orders)."""
    h, c = state
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for order in itertools.permutations("ifgo"):
        order = "".join(order)
        if order == "ifgo":
            continue
        # a student who reads the rows as ``order`` computes the cell with the rows re-stacked
        inverse = "".join("ifgo"[order.index(g)] for g in "ifgo")
        wrong = _ref_lstm_cell(x, (h, c), *(_permute_gates(w, inverse) for w in (w_ih, w_hh, b_ih, b_hh)))
        out[f"gate order: torch.nn stacks the LSTM gates as i, f, g, o (input, forget, cell candidate, output) "
            f"in the rows of W_ih, W_hh and the biases; you read them as {', '.join(order)}"] = wrong
    ref = _ref_lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    out["you return (c_t, h_t); return (h_t, c_t) like nn.LSTMCell"] = (ref[1], ref[0])
    for variant, message in (
        ("no_tanh_on_c", "h_t = o_t * tanh(C_t): the tanh on the cell state is missing"),
        ("sigmoid_candidate", "the candidate C~_t uses tanh (values in -1..1), not a sigmoid"),
        ("no_input_gate", "C_t = f_t * C_(t-1) + i_t * C~_t: the input gate i_t must scale the candidate"),
        ("no_forget_gate", "C_t = f_t * C_(t-1) + i_t * C~_t: the forget gate f_t must scale the old cell state"),
    ):
        out[message] = _lstm_cell_variant(x, h, c, w_ih, w_hh, b_ih, b_hh, variant)
    out["you forgot the bias b_hh (nn.LSTMCell adds both b_ih and b_hh to the gate pre-activations)"] = \
        _ref_lstm_cell(x, (h, c), w_ih, w_hh, b_ih, None)
    out["you forgot the bias b_ih (nn.LSTMCell adds both b_ih and b_hh to the gate pre-activations)"] = \
        _ref_lstm_cell(x, (h, c), w_ih, w_hh, None, b_hh)
    return out


def lstm_layer_mistakes(x, state, w_ih, w_hh, b_ih, b_hh) -> dict[str, tuple[torch.Tensor, torch.Tensor,
                                                                                torch.Tensor]]:
    """What ``lstm_layer`` returns, flattened to (output, h_n, c_n), with the usual mistakes."""
    h0, c0 = state
    steps = _t.size(x, 0)
    out: dict[str, tuple] = {}
    h, outs = h0, []
    for t in range(steps):  # the cell state is not carried
        h, c = _ref_lstm_cell(x[t], (h, c0), w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    out["the cell state C_t is not carried from step to step (the highway!): feed each step's c_t into the next"] = \
        (_t.stack(outs), h, c)
    ref_out, (h_n, c_n) = _ref_lstm_layer(x, state, w_ih, w_hh, b_ih, b_hh)
    out["return (output, (h_n, c_n)): you swapped h_n and c_n"] = (ref_out, c_n, h_n)
    z_out, (z_h, z_c) = _ref_lstm_layer(x, None, w_ih, w_hh, b_ih, b_hh)
    out["the initial state (h0, c0) is ignored: start from the state that is passed in"] = (z_out, z_h, z_c)
    sw_out, (sw_h, sw_c) = _ref_lstm_layer(x, (c0, h0), w_ih, w_hh, b_ih, b_hh)
    out["state is (h0, c0) in this order, like nn.LSTM's (h_0, c_0); you used them the other way round"] = \
        (sw_out, sw_h, sw_c)
    return out


#: correct versions of the notebook's helpers, swapped in by ``run_student(..., uses=[...])``
REFERENCES = {"lstm_cell": _ref_lstm_cell, "lstm_layer": _ref_lstm_layer}

#: the demo class: one realistic mistake per student, and the graded cells it must lose
DEMO_BUGS = {
    "bug-gate-order": Bug(
        "a3_lstm", "a3_lstm_cell",
        old="i, f, g, o = gates.chunk(4, dim=-1)", new="i, f, o, g = gates.chunk(4, dim=-1)",
        breaks=("a3_lstm_cell_values",), says="gate order: torch.nn stacks the LSTM gates as i, f, g, o"),
    "bug-cell-state-not-carried": Bug(
        "a3_lstm", "a3_lstm_layer",
        old="h, c = lstm_cell(x[t], (h, c), w_ih, w_hh, b_ih, b_hh)",
        new="h, c = lstm_cell(x[t], (h, state[1]), w_ih, w_hh, b_ih, b_hh)",
        breaks=("a3_lstm_layer_values",), says="the cell state C_t is not carried"),
    "bug-classify-first-output": Bug(
        "a3_lstm", "a3_long_range",
        old="return self.fc(h_n)", new="return self.fc(output[0])",
        breaks=("a3_long_range_model",), says="classify from the last hidden state h_n"),
}

__all__ = ["DEMO_BUGS", "REFERENCES", "lstm_cell_mistakes", "lstm_layer_mistakes"]


seal(__name__)
