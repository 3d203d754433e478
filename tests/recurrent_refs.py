"""torch.nn references for the BPTT and gradient-flow tests: layers, cells with a layer's weights, autograd loops.

Shared by ``test_bptt.py``, ``test_bptt_fast.py`` and ``test_gradflow.py`` (imported by them, not collected as tests).
"""

from __future__ import annotations

import torch
from torch import nn

F64 = torch.float64
TIGHT = {"rtol": 1e-10, "atol": 1e-10}
KINDS = ["tanh", "relu", "lstm", "gru"]
GATES = {"tanh": 1, "relu": 1, "lstm": 4, "gru": 3}


def make_layer(kind: str, input_size: int, hidden_size: int, bias: bool = True, dtype=F64, **kw) -> nn.Module:
    """A torch.nn layer: ``kind`` is ``"tanh"``/``"relu"`` (RNN), ``"lstm"`` or ``"gru"``."""
    if kind == "lstm":
        return nn.LSTM(input_size, hidden_size, bias=bias, dtype=dtype, **kw)
    if kind == "gru":
        return nn.GRU(input_size, hidden_size, bias=bias, dtype=dtype, **kw)
    return nn.RNN(input_size, hidden_size, nonlinearity=kind, bias=bias, dtype=dtype, **kw)


def make_cell(kind: str, layer: nn.Module, k: int = 0) -> nn.Module:
    """A torch.nn cell holding layer ``k``'s weights (copied)."""
    I, H = getattr(layer, f"weight_ih_l{k}").shape[1], layer.hidden_size
    dtype = layer.weight_ih_l0.dtype
    if kind == "lstm":
        cell = nn.LSTMCell(I, H, bias=layer.bias, dtype=dtype)
    elif kind == "gru":
        cell = nn.GRUCell(I, H, bias=layer.bias, dtype=dtype)
    else:
        cell = nn.RNNCell(I, H, bias=layer.bias, nonlinearity=kind, dtype=dtype)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if getattr(cell, name) is not None:
                getattr(cell, name).copy_(getattr(layer, f"{name}_l{k}"))
    return cell


def layer_weights(layer: nn.Module, k: int = 0) -> list:
    """``[w_ih, w_hh, b_ih, b_hh]`` of layer ``k`` (``None`` for missing biases)."""
    return [getattr(layer, f"{n}_l{k}", None) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def cell_loop(kind, cell, x, h0, c0=None, truncate=None):
    """Autograd reference: run ``cell`` over time, keeping every state (retain_grad) and detaching every k."""
    h, c, hs, cs = h0, c0, [], []
    for t in range(x.shape[0]):
        if truncate is not None and t > 0 and t % truncate == 0:
            h = h.detach()
            c = None if c is None else c.detach()
        if kind == "lstm":
            h, c = cell(x[t], (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = cell(x[t], h)
        h.retain_grad()
        hs.append(h)
    return hs, cs


def run_forward(impl, kind, x, h0, c0, w):
    """``impl.*_forward`` of ``seqlib.bptt`` or ``seqlib.bptt_fast``: ``(out, h_T, c_T or None, cache)``."""
    if kind == "lstm":
        return impl.lstm_forward(x, h0, c0, *w)
    if kind == "gru":
        out, h_T, cache = impl.gru_forward(x, h0, *w)
    else:
        out, h_T, cache = impl.rnn_forward(x, h0, *w, nonlinearity=kind)
    return out, h_T, None, cache


def run_backward(impl, kind, cache, grad_out, grad_h_T, grad_c_T=None, **kw):
    """``impl.*_backward`` with the upstream gradients (``truncate=``, ``need=`` pass through)."""
    if kind == "lstm":
        return impl.lstm_backward(cache, grad_out, grad_h_T, grad_c_T, **kw)
    if kind == "gru":
        return impl.gru_backward(cache, grad_out, grad_h_T, **kw)
    return impl.rnn_backward(cache, grad_out, grad_h_T, **kw)
