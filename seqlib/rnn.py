r"""Recurrent networks written out: RNN, LSTM and GRU cells and multi-layer, bidirectional layers (C03, C05-C14).

Every class is a twin of its torch.nn counterpart (same constructor, defaults, parameter names and shapes, inputs
and outputs), so ``ours.load_state_dict(theirs.state_dict(), strict=True)`` works both ways and both compute the
same numbers. What torch runs in a fused C++ kernel is spelled out here in three layers:

1. **One step** of each cell (``rnn_step``, ``lstm_step``, ``gru_step``): the gate equations, given the input
   projection ``W_ih x_t + b_ih`` already computed. Cells and layers share these functions.
2. **A whole sequence** for one layer and one direction (``rnn_sequence``, ``lstm_sequence``, ``gru_sequence``,
   from :mod:`seqlib.bptt_fast`): the input projection of *all* time steps in one matrix multiply (it does not
   depend on ``h``), then a loop over time with the same equations; the backward pass is backpropagation through
   time written out by hand (read it in :mod:`seqlib.bptt`; :mod:`seqlib.bptt_fast` is the same maths tuned for
   speed), which is also what makes these layers fast.
3. **Layers** (``RNN``, ``LSTM``, ``GRU``): stacks ``num_layers`` of those sequences, runs the reverse direction
   on the time-flipped input when ``bidirectional``, applies dropout between layers, handles ``batch_first``,
   unbatched input and :class:`~torch.nn.utils.rnn.PackedSequence` (variable-length batches).

Every layer/direction on a padded (non-packed) input goes through ``_run_sequence``, the single dispatch point
that looks its sequence function up in ``_SEQUENCE_FNS``. Packed input runs a step loop over ``batch_sizes``
(``_packed_direction``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from ._checks import (
    check_bool,
    check_choice,
    check_dtype_match,
    check_floating,
    check_positive_int,
    check_probability,
    check_rank,
    check_same_device,
    check_shape,
    check_size,
    check_tensor,
    shape_str,
)
from .bptt_fast import gru_sequence, lstm_sequence, rnn_sequence

__all__ = [
    "RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU",
    "rnn_step", "lstm_step", "gru_step", "rnn_sequence", "lstm_sequence", "gru_sequence",
]

State = tuple[Tensor, ...]  # (h,) for RNN/GRU, (h, c) for LSTM


# ---------------------------------------------------------------------------------------------------------------------
# 1. one time step, from the precomputed input projection gi = W_ih x_t + b_ih
# ---------------------------------------------------------------------------------------------------------------------
def rnn_step(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None, nonlinearity: str = "tanh") -> Tensor:
    r"""Elman RNN step :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})` (or ReLU).

    ``gi``: ``(N, H)`` = :math:`W_{ih} x_t + b_{ih}`; ``h``: ``(N, H)``; returns :math:`h_t` ``(N, H)``.
    """
    pre = gi + F.linear(h, w_hh, b_hh)  # (N, H)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_step(gi: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    r"""LSTM step, gates in torch's order (input, forget, cell candidate, output).

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t)

    ``gi``: ``(N, 4H)``; ``h``, ``c``: ``(N, H)``; returns :math:`(h_t, c_t)`.
    """
    gates = gi + F.linear(h, w_hh, b_hh)  # (N, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # 4 x (N, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g  # the cell state: forget some of the old, store some of the new
    h = o * torch.tanh(c)
    return h, c


def gru_step(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    r"""GRU step, gates in torch's order (reset, update, new).

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    ``gi``: ``(N, 3H)``; ``h``: ``(N, H)``; returns :math:`h_t` ``(N, H)``.
    """
    gh = F.linear(h, w_hh, b_hh)  # (N, 3H)
    i_r, i_z, i_n = gi.chunk(3, dim=-1)  # 3 x (N, H)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)  # 3 x (N, H)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)  # the reset gate scales W_hn h + b_hn, not h itself
    return (1 - z) * n + z * h


# ---------------------------------------------------------------------------------------------------------------------
# 2. a whole sequence, one layer and one direction: x (T, N, H_in) -> out (T, N, H)
# ---------------------------------------------------------------------------------------------------------------------
# rnn_sequence, lstm_sequence and gru_sequence come from seqlib.bptt_fast: the input projection of all steps in one
# matrix multiply, a loop over time with the step equations above, and a backward pass written out by hand
# (backpropagation through time, as in seqlib.bptt) instead of autograd's unrolled graph. They are imported at the
# top of this module.


# The dispatch point: every layer/direction of RNN/LSTM/GRU on a non-packed input runs through _run_sequence,
# which calls the function registered here for the module's mode.
_SEQUENCE_FNS: dict[str, Callable[..., tuple[Tensor, ...]]] = {
    "RNN_TANH": rnn_sequence,
    "RNN_RELU": rnn_sequence,
    "LSTM": lstm_sequence,
    "GRU": gru_sequence,
}
_NONLINEARITY = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}


def _run_sequence(mode: str, x: Tensor, state: State, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
                  b_hh: Tensor | None) -> tuple[Tensor, State]:
    """Run one layer in one direction over ``x`` ``(T, N, H_in)``: the only caller of the sequence functions."""
    fn = _SEQUENCE_FNS[mode]
    if mode == "LSTM":
        out, h, c = fn(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh)
        return out, (h, c)
    if mode == "GRU":
        out, h = fn(x, state[0], w_ih, w_hh, b_ih, b_hh)
    else:
        out, h = fn(x, state[0], w_ih, w_hh, b_ih, b_hh, nonlinearity=_NONLINEARITY[mode])
    return out, (h,)


def _step_fn(mode: str, w_hh: Tensor, b_hh: Tensor | None) -> Callable[[Tensor, State], State]:
    """One step as ``state_t = step(gi_t, state_{t-1})`` for the packed loop."""
    if mode == "LSTM":
        return lambda gi, s: lstm_step(gi, s[0], s[1], w_hh, b_hh)
    if mode == "GRU":
        return lambda gi, s: (gru_step(gi, s[0], w_hh, b_hh),)
    return lambda gi, s: (rnn_step(gi, s[0], w_hh, b_hh, _NONLINEARITY[mode]),)


def _packed_direction(step: Callable[[Tensor, State], State], gi: Tensor, batch_sizes: list[int], state: State,
                      reverse: bool) -> tuple[Tensor, State]:
    """Run one direction over packed data.

    ``gi`` is ``(sum(batch_sizes), G)``, the input projections in packed order: time step ``t`` holds rows
    ``start_t : start_t + batch_sizes[t]`` for the ``batch_sizes[t]`` sequences (longest first) still running.
    ``state`` tensors are ``(N, H)`` with ``N = batch_sizes[0]``. Returns ``(out (sum(batch_sizes), H), state_T)``
    where ``state_T`` holds each sequence's state after its own last step.
    """
    starts = [0]
    for b in batch_sizes[:-1]:
        starts.append(starts[-1] + b)
    outs: list[Tensor] = [gi] * len(batch_sizes)  # placeholders, each replaced by an (batch_sizes[t], H) output
    if not reverse:
        # rows are sorted longest first, so the sequences that end are always the last rows of the state
        done: list[State] = []  # final states of the sequences that have ended, the shortest (last rows) first
        for t, b in enumerate(batch_sizes):
            if b < state[0].shape[0]:  # rows b.. ended at step t - 1: keep their state
                done.append(tuple(s[b:] for s in state))
                state = tuple(s[:b] for s in state)
            state = step(gi[starts[t]: starts[t] + b], state)
            outs[t] = state[0]
        done.append(state)
        final = tuple(torch.cat([d[k] for d in reversed(done)]) for k in range(len(state)))  # (N, H) each
    else:
        initial, n = state, batch_sizes[-1]
        state = tuple(s[:n] for s in initial)
        for t in reversed(range(len(batch_sizes))):
            b = batch_sizes[t]
            if b > n:  # rows n..b start here (at their last element): bring in their initial state
                state = tuple(torch.cat([s, s0[n:b]]) for s, s0 in zip(state, initial, strict=True))
                n = b
            state = step(gi[starts[t]: starts[t] + b], state)
            outs[t] = state[0]
        final = state
    return torch.cat(outs), final  # (sum(batch_sizes), H)


# ---------------------------------------------------------------------------------------------------------------------
# 3. modules
# ---------------------------------------------------------------------------------------------------------------------
class _CellBase(nn.Module):
    """Parameters and checks shared by RNNCell, LSTMCell and GRUCell (torch.nn.RNNCellBase's layout)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_bool("bias", bias)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        kw = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(num_chunks * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(num_chunks * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(num_chunks * hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(num_chunks * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter from U(-1/sqrt(H), 1/sqrt(H)), as torch.nn."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check_input(self, input: object) -> tuple[Tensor, bool]:
        """Validate ``input`` ``(N, H_in)`` or ``(H_in)``; return it as ``(N, H_in)`` and whether it was batched."""
        expected = "(N, H_in) or (H_in,)"
        x = check_tensor("input", input, expected)
        check_floating("input", x)
        check_rank("input", x, (1, 2), expected)
        check_size("input", x, -1, self.input_size, "H_in", "(N, H_in)" if x.dim() == 2 else "(H_in,)")
        check_dtype_match("input", x, expected, self.weight_ih, "weight_ih")
        check_same_device("input", x, expected, self.weight_ih, "weight_ih")
        batched = x.dim() == 2
        return (x if batched else x.unsqueeze(0)), batched  # (N, H_in)

    def _check_state(self, name: str, value: object, x: Tensor, batched: bool) -> Tensor:
        """Validate one state tensor ``(N, H_out)`` (``(H_out,)`` unbatched); return it as ``(N, H_out)``."""
        expected = "(N, H_out)" if batched else "(H_out,)"
        h = check_tensor(name, value, expected)
        check_dtype_match(name, h, expected, x, "input")
        check_same_device(name, h, expected, x, "input")
        shape = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        check_shape(name, h, shape, expected)
        return h if batched else h.unsqueeze(0)  # (N, H_out)

    def _gi(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)  # (N, G): W_ih x + b_ih

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(_CellBase):
    r"""One step of an Elman RNN, the twin of :class:`torch.nn.RNNCell`.

    .. math::
        h' = \tanh(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})

    With ``nonlinearity='relu'``, ReLU is used instead of tanh.

    Args:
        input_size: the number of features ``H_in`` of the input ``x``.
        hidden_size: the number of features ``H_out`` of the hidden state ``h``.
        bias: if ``False``, the layer has no ``bias_ih``, ``bias_hh``. Default: ``True``.
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``.

    Inputs: input, hidden
        - **input**: ``(N, H_in)`` or ``(H_in,)``.
        - **hidden**: ``(N, H_out)`` or ``(H_out,)``, the initial hidden state; zeros if not given.

    Outputs: h'
        - **h'**: ``(N, H_out)`` or ``(H_out,)``, the next hidden state.

    Attributes:
        weight_ih: ``(H_out, H_in)``; weight_hh: ``(H_out, H_out)``; bias_ih, bias_hh: ``(H_out,)``.
        All initialised from :math:`\mathcal{U}(-k, k)` with :math:`k = 1/\sqrt{H_{out}}`.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._check_input(input)  # (N, H_in)
        if hx is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)  # (N, H_out)
        else:
            h = self._check_state("hx", hx, x, batched)
        h = rnn_step(self._gi(x), h, self.weight_hh, self.bias_hh, self.nonlinearity)
        return h if batched else h.squeeze(0)


class LSTMCell(_CellBase):
    r"""One step of an LSTM, the twin of :class:`torch.nn.LSTMCell`.

    .. math::
        i &= \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \qquad
        f = \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g &= \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \qquad
        o = \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' &= f \odot c + i \odot g \qquad h' = o \odot \tanh(c')

    Args:
        input_size: the number of features ``H_in`` of the input.
        hidden_size: the number of features ``H_out`` of the hidden and cell states.
        bias: if ``False``, no ``bias_ih``, ``bias_hh``. Default: ``True``.

    Inputs: input, (h_0, c_0)
        - **input**: ``(N, H_in)`` or ``(H_in,)``.
        - **h_0**, **c_0**: ``(N, H_out)`` or ``(H_out,)`` each; both zeros if the tuple is not given.

    Outputs: (h_1, c_1)
        - **h_1**, **c_1**: ``(N, H_out)`` or ``(H_out,)``, the next hidden and cell states.

    Attributes:
        weight_ih: ``(4*H_out, H_in)``, the rows of ``W_ii|W_if|W_ig|W_io``; weight_hh: ``(4*H_out, H_out)``;
        bias_ih, bias_hh: ``(4*H_out,)``. All from :math:`\mathcal{U}(-k, k)`, :math:`k = 1/\sqrt{H_{out}}`.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        x, batched = self._check_input(input)  # (N, H_in)
        if hx is None:
            h = c = x.new_zeros(x.shape[0], self.hidden_size)  # (N, H_out)
        else:
            h_raw, c_raw = _unpack_lstm_state(hx, "(N, H_out)" if batched else "(H_out,)")
            h = self._check_state("hx[0] (h_0)", h_raw, x, batched)
            c = self._check_state("hx[1] (c_0)", c_raw, x, batched)
        h, c = lstm_step(self._gi(x), h, c, self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    r"""One step of a gated recurrent unit, the twin of :class:`torch.nn.GRUCell`.

    .. math::
        r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \qquad
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \qquad
        h' = (1 - z) \odot n + z \odot h

    Args:
        input_size: the number of features ``H_in`` of the input.
        hidden_size: the number of features ``H_out`` of the hidden state.
        bias: if ``False``, no ``bias_ih``, ``bias_hh``. Default: ``True``.

    Inputs: input, hidden
        - **input**: ``(N, H_in)`` or ``(H_in,)``.
        - **hidden**: ``(N, H_out)`` or ``(H_out,)``; zeros if not given.

    Outputs: h'
        - **h'**: ``(N, H_out)`` or ``(H_out,)``.

    Attributes:
        weight_ih: ``(3*H_out, H_in)``, the rows of ``W_ir|W_iz|W_in``; weight_hh: ``(3*H_out, H_out)``;
        bias_ih, bias_hh: ``(3*H_out,)``. All from :math:`\mathcal{U}(-k, k)`, :math:`k = 1/\sqrt{H_{out}}`.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._check_input(input)  # (N, H_in)
        if hx is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)  # (N, H_out)
        else:
            h = self._check_state("hx", hx, x, batched)
        h = gru_step(self._gi(x), h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)


def _unpack_lstm_state(hx: object, expected: str) -> tuple[object, object]:
    """LSTM state must be a pair ``(h_0, c_0)``; a bare tensor is the common mistake."""
    if isinstance(hx, Tensor):
        raise TypeError(
            f"hx must be a tuple (h_0, c_0) of two tensors of shape {expected} for an LSTM, but got a single "
            f"Tensor of shape {shape_str(hx.shape)}; pass (h_0, c_0), e.g. (h_0, torch.zeros_like(h_0))"
        )
    if not isinstance(hx, tuple | list) or len(hx) != 2:
        what = f"a {type(hx).__name__} of length {len(hx)}" if isinstance(hx, tuple | list) else type(hx).__name__
        raise TypeError(f"hx must be a tuple (h_0, c_0) of two tensors of shape {expected}, but got {what}")
    return hx[0], hx[1]


class _RNNBase(nn.Module):
    """Parameters, checks and the layer loop shared by RNN, LSTM and GRU (torch.nn.RNNBase's layout)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_bool("bias", bias)
        check_bool("batch_first", batch_first)
        check_bool("bidirectional", bidirectional)
        dropout = check_probability("dropout", dropout)
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout is applied between stacked layers (after all but the last), so dropout={dropout} has "
                f"no effect with num_layers=1", stacklevel=3,
            )
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.proj_size = 0
        gate_size = {"LSTM": 4, "GRU": 3}.get(mode, 1) * hidden_size
        num_directions = 2 if bidirectional else 1
        kw = {"device": device, "dtype": dtype}
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            layer_input_size = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
                setattr(self, names[0], nn.Parameter(torch.empty(gate_size, layer_input_size, **kw)))
                setattr(self, names[1], nn.Parameter(torch.empty(gate_size, hidden_size, **kw)))
                if bias:
                    names += [f"bias_ih{suffix}", f"bias_hh{suffix}"]
                    setattr(self, names[2], nn.Parameter(torch.empty(gate_size, **kw)))
                    setattr(self, names[3], nn.Parameter(torch.empty(gate_size, **kw)))
                self._all_weights.append(names)
        self._flat_weights_names = [n for names in self._all_weights for n in names]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter from U(-1/sqrt(H), 1/sqrt(H)), as torch.nn."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Nothing to do: kept so code written for torch.nn (which calls it for cuDNN) runs unchanged."""

    def _weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        b_ih = getattr(self, f"bias_ih{suffix}") if self.bias else None
        b_hh = getattr(self, f"bias_hh{suffix}") if self.bias else None
        return getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}"), b_ih, b_hh

    # -- checks --------------------------------------------------------------------------------------------------
    def _input_shape(self, batched: bool = True) -> str:
        if not batched:
            return "(L, H_in)"
        return "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"

    def _check_input(self, input: object) -> Tensor:
        batched_shape = self._input_shape()
        expected = f"{batched_shape} or unbatched (L, H_in)"
        if not isinstance(input, Tensor):
            raise TypeError(
                f"input must be a torch.Tensor of shape {expected} or a PackedSequence, "
                f"but got {type(input).__name__}"
            )
        if not input.is_floating_point():
            raise TypeError(
                f"input must be a floating-point tensor of shape {expected}, but got dtype {input.dtype}; "
                f"token indices must go through an Embedding first (input = embedding(tokens))"
            )
        check_rank("input", input, (2, 3), expected)
        shape = self._input_shape(input.dim() == 3)
        check_size("input", input, -1, self.input_size, "H_in", shape)
        if input.shape[0 if input.dim() == 2 or not self.batch_first else 1] == 0:
            raise ValueError(f"input must have shape {shape} with L >= 1 time steps, but got shape "
                             f"{shape_str(input.shape)}")
        weight = self.weight_ih_l0
        check_dtype_match("input", input, shape, weight, "weight_ih_l0")
        check_same_device("input", input, shape, weight, "weight_ih_l0")
        return input

    def _check_packed(self, data: Tensor) -> None:
        check_floating("input.data", data)
        check_rank("input.data", data, (2,), "(sum(batch_sizes), H_in)")
        check_size("input.data", data, -1, self.input_size, "H_in", "(sum(batch_sizes), H_in)")
        check_dtype_match("input.data", data, "(sum(batch_sizes), H_in)", self.weight_ih_l0, "weight_ih_l0")
        check_same_device("input.data", data, "(sum(batch_sizes), H_in)", self.weight_ih_l0, "weight_ih_l0")

    def _initial_state(self, hx: object, x: Tensor, n: int, batched: bool) -> State:
        """Validate ``hx`` and return the state as a tuple of ``(D*num_layers, N, H_out)`` tensors."""
        d_layers = self.num_layers * (2 if self.bidirectional else 1)
        expected = "(D*num_layers, N, H_out)" if batched else "(D*num_layers, H_out)"
        shape = (d_layers, n, self.hidden_size) if batched else (d_layers, self.hidden_size)
        n_states = 2 if self.mode == "LSTM" else 1
        if hx is None:
            zeros = x.new_zeros(d_layers, n, self.hidden_size)  # (D*num_layers, N, H_out)
            return (zeros,) * n_states
        if self.mode == "LSTM":
            items = _unpack_lstm_state(hx, expected)
            names = ("hx[0] (h_0)", "hx[1] (c_0)")
        else:
            if isinstance(hx, tuple | list):
                raise TypeError(
                    f"hx must be a single torch.Tensor h_0 of shape {expected} for {type(self).__name__}, but got "
                    f"a {type(hx).__name__}; only LSTM takes a tuple (h_0, c_0)"
                )
            items, names = (hx,), ("hx",)
        state = []
        for name, value in zip(names, items, strict=True):
            h = check_tensor(name, value, expected)
            check_dtype_match(name, h, expected, x, "input")
            check_same_device(name, h, expected, x, "input")
            check_shape(name, h, shape, expected)
            state.append(h if batched else h.unsqueeze(1))  # (D*num_layers, N, H_out)
        return tuple(state)

    def _unpack_state(self, state: State) -> Tensor | tuple[Tensor, Tensor]:
        return state if self.mode == "LSTM" else state[0]  # type: ignore[return-value]

    # -- the layer loop --------------------------------------------------------------------------------------------
    def _run_layers(self, x: Tensor, state: State,
                    run_direction: Callable[..., tuple[Tensor, State]]) -> tuple[Tensor, State]:
        """Stack the layers: ``run_direction(x, state_k, weights, reverse)`` runs layer/direction ``k``."""
        num_directions = 2 if self.bidirectional else 1
        finals: list[list[Tensor]] = [[] for _ in state]
        for layer in range(self.num_layers):
            outs = []
            for direction in range(num_directions):
                k = layer * num_directions + direction
                out, s_T = run_direction(x, tuple(s[k] for s in state), self._weights(layer, direction),
                                         direction == 1)
                outs.append(out)
                for f, s in zip(finals, s_T, strict=True):
                    f.append(s)
            x = torch.cat(outs, dim=-1) if num_directions == 2 else outs[0]  # (..., D*H_out)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, tuple(torch.stack(f) for f in finals)  # (D*num_layers, N, H_out) each

    def _dense_direction(self, x: Tensor, state: State, weights: tuple, reverse: bool) -> tuple[Tensor, State]:
        """One layer/direction on a padded ``(L, N, H)`` input: the reverse direction reads time backwards."""
        if reverse:
            out, s_T = _run_sequence(self.mode, x.flip(0), state, *weights)
            return out.flip(0), s_T
        return _run_sequence(self.mode, x, state, *weights)

    def _packed_runner(self, batch_sizes: list[int]) -> Callable[..., tuple[Tensor, State]]:
        def run(data: Tensor, state: State, weights: tuple, reverse: bool) -> tuple[Tensor, State]:
            w_ih, w_hh, b_ih, b_hh = weights
            gi = F.linear(data, w_ih, b_ih)  # (sum(batch_sizes), G): all steps' input projections at once
            return _packed_direction(_step_fn(self.mode, w_hh, b_hh), gi, batch_sizes, state, reverse)

        return run

    def forward(self, input: Tensor | PackedSequence, hx: Tensor | tuple[Tensor, Tensor] | None = None):
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            self._check_packed(data)
            sizes = [int(b) for b in batch_sizes]
            state = self._initial_state(hx, data, sizes[0], batched=True)
            if sorted_indices is not None:  # hx is given in the caller's batch order; the data is sorted
                state = tuple(s.index_select(1, sorted_indices) for s in state)
            out, state = self._run_layers(data, state, self._packed_runner(sizes))
            if unsorted_indices is not None:
                state = tuple(s.index_select(1, unsorted_indices) for s in state)
            return PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices), self._unpack_state(state)

        x = self._check_input(input)
        batched = x.dim() == 3
        if not batched:
            x = x.unsqueeze(1)  # (L, 1, H_in)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (L, N, H_in)
        state = self._initial_state(hx, x, x.shape[1], batched)
        out, state = self._run_layers(x, state, self._dense_direction)  # (L, N, D*H_out)
        if not batched:
            out = out.squeeze(1)  # (L, D*H_out)
            state = tuple(s.squeeze(1) for s in state)  # (D*num_layers, H_out)
        elif self.batch_first:
            out = out.transpose(0, 1)  # (N, L, D*H_out)
        return out, self._unpack_state(state)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RNNBase):
    r"""A multi-layer Elman RNN, the twin of :class:`torch.nn.RNN`.

    For each layer and each step :math:`t`,

    .. math::
        h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    where :math:`x_t` is the input (or the previous layer's :math:`h_t`). ``nonlinearity='relu'`` uses ReLU.
    The same weights are used at every step.

    Args:
        input_size: the number of features :math:`H_{in}` of each input step.
        hidden_size: the number of features :math:`H_{out}` of the hidden state.
        num_layers: number of stacked layers; layer ``k > 0`` reads the outputs of layer ``k - 1``. Default: ``1``.
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``.
        bias: if ``False``, the layer has no ``bias_ih_l[k]``, ``bias_hh_l[k]``. Default: ``True``.
        batch_first: if ``True``, ``input`` and ``output`` are :math:`(N, L, \cdot)` instead of
            :math:`(L, N, \cdot)` (the states are not affected). Default: ``False``.
        dropout: probability of dropout on the outputs of every layer except the last, in training mode.
            Default: ``0``.
        bidirectional: if ``True``, each layer also runs over the reversed sequence and the two outputs are
            concatenated (:math:`D = 2`). Default: ``False``.

    Inputs: input, hx
        - **input**: :math:`(L, N, H_{in})` (:math:`(N, L, H_{in})` if ``batch_first``), :math:`(L, H_{in})` for
          one unbatched sequence, or a :class:`~torch.nn.utils.rnn.PackedSequence` for a batch of
          variable-length sequences.
        - **hx**: :math:`(D \cdot \text{num\_layers}, N, H_{out})` (:math:`(D \cdot \text{num\_layers},
          H_{out})` unbatched), the initial hidden state of every layer and direction. Zeros if not given.

    Outputs: output, h_n
        - **output**: :math:`(L, N, D \cdot H_{out})` (:math:`(N, L, D \cdot H_{out})` if ``batch_first``,
          :math:`(L, D \cdot H_{out})` unbatched, packed if the input was): the last layer's :math:`h_t` for
          every ``t``.
        - **h_n**: :math:`(D \cdot \text{num\_layers}, N, H_{out})`, the final hidden state of every layer and
          direction.

    where :math:`L` is the sequence length, :math:`N` the batch size, :math:`D = 2` if ``bidirectional`` else
    :math:`1`, :math:`H_{in}` = ``input_size`` and :math:`H_{out}` = ``hidden_size``.

    Attributes:
        weight_ih_l[k]: :math:`(H_{out}, H_{in})` for ``k = 0``, else :math:`(H_{out}, D \cdot H_{out})`.
        weight_hh_l[k]: :math:`(H_{out}, H_{out})`.
        bias_ih_l[k], bias_hh_l[k]: :math:`(H_{out},)`.
        The reverse direction's parameters carry the suffix ``_reverse``. All parameters are initialised from
        :math:`\mathcal{U}(-k, k)` with :math:`k = 1/\sqrt{H_{out}}`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor | PackedSequence, hx: Tensor | None = None
                ) -> tuple[Tensor | PackedSequence, Tensor]:
        return super().forward(input, hx)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity}" if self.nonlinearity != "tanh" else "")


class LSTM(_RNNBase):
    r"""A multi-layer long short-term memory network, the twin of :class:`torch.nn.LSTM`.

    For each layer and each step :math:`t` (gates stacked in the order i, f, g, o):

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t)

    Args:
        input_size: the number of features :math:`H_{in}` of each input step.
        hidden_size: the number of features :math:`H_{out}` of the hidden and cell states.
        num_layers: number of stacked layers; layer ``k > 0`` reads the outputs of layer ``k - 1``. Default: ``1``.
        bias: if ``False``, the layer has no ``bias_ih_l[k]``, ``bias_hh_l[k]``. Default: ``True``.
        batch_first: if ``True``, ``input`` and ``output`` are :math:`(N, L, \cdot)` instead of
            :math:`(L, N, \cdot)` (the states are not affected). Default: ``False``.
        dropout: probability of dropout on the outputs of every layer except the last, in training mode.
            Default: ``0``.
        bidirectional: if ``True``, each layer also runs over the reversed sequence and the two outputs are
            concatenated (:math:`D = 2`). Default: ``False``.
        proj_size: accepted for signature compatibility; only ``0`` (no projection) is supported. Default: ``0``.

    Inputs: input, (h_0, c_0)
        - **input**: :math:`(L, N, H_{in})` (:math:`(N, L, H_{in})` if ``batch_first``), :math:`(L, H_{in})` for
          one unbatched sequence, or a :class:`~torch.nn.utils.rnn.PackedSequence` for a batch of
          variable-length sequences.
        - **h_0**, **c_0**: two :math:`(D \cdot \text{num\_layers}, N, H_{out})` tensors
          (:math:`(D \cdot \text{num\_layers}, H_{out})` unbatched), the initial hidden and cell states of every
          layer and direction. Both zeros if the tuple is not given.

    Outputs: output, (h_n, c_n)
        - **output**: :math:`(L, N, D \cdot H_{out})` (:math:`(N, L, D \cdot H_{out})` if ``batch_first``,
          :math:`(L, D \cdot H_{out})` unbatched, packed if the input was): the last layer's :math:`h_t` for
          every ``t``.
        - **h_n**, **c_n**: :math:`(D \cdot \text{num\_layers}, N, H_{out})` each, the final hidden and cell
          states of every layer and direction.

    where :math:`L` is the sequence length, :math:`N` the batch size, :math:`D = 2` if ``bidirectional`` else
    :math:`1`, :math:`H_{in}` = ``input_size`` and :math:`H_{out}` = ``hidden_size``.

    Attributes:
        weight_ih_l[k]: :math:`(4 \cdot H_{out}, H_{in})` for ``k = 0``, else
            :math:`(4 \cdot H_{out}, D \cdot H_{out})`; the gates' rows stacked :math:`W_i | W_f | W_g | W_o`.
        weight_hh_l[k]: :math:`(4 \cdot H_{out}, H_{out})`, stacked the same way.
        bias_ih_l[k], bias_hh_l[k]: :math:`(4 \cdot H_{out},)`.
        The reverse direction's parameters carry the suffix ``_reverse``. All parameters are initialised from
        :math:`\mathcal{U}(-k, k)` with :math:`k = 1/\sqrt{H_{out}}`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        if proj_size != 0:
            raise ValueError(f"proj_size must be 0 (LSTM projections are not supported by seqlib), got {proj_size}")
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)

    def forward(self, input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        return super().forward(input, hx)


class GRU(_RNNBase):
    r"""A multi-layer gated recurrent unit network, the twin of :class:`torch.nn.GRU`.

    For each layer and each step :math:`t` (gates stacked in the order r, z, n):

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Args:
        input_size: the number of features :math:`H_{in}` of each input step.
        hidden_size: the number of features :math:`H_{out}` of the hidden state.
        num_layers: number of stacked layers; layer ``k > 0`` reads the outputs of layer ``k - 1``. Default: ``1``.
        bias: if ``False``, the layer has no ``bias_ih_l[k]``, ``bias_hh_l[k]``. Default: ``True``.
        batch_first: if ``True``, ``input`` and ``output`` are :math:`(N, L, \cdot)` instead of
            :math:`(L, N, \cdot)` (the states are not affected). Default: ``False``.
        dropout: probability of dropout on the outputs of every layer except the last, in training mode.
            Default: ``0``.
        bidirectional: if ``True``, each layer also runs over the reversed sequence and the two outputs are
            concatenated (:math:`D = 2`). Default: ``False``.

    Inputs: input, hx
        - **input**: :math:`(L, N, H_{in})` (:math:`(N, L, H_{in})` if ``batch_first``), :math:`(L, H_{in})` for
          one unbatched sequence, or a :class:`~torch.nn.utils.rnn.PackedSequence` for a batch of
          variable-length sequences.
        - **hx**: :math:`(D \cdot \text{num\_layers}, N, H_{out})` (:math:`(D \cdot \text{num\_layers},
          H_{out})` unbatched), the initial hidden state of every layer and direction. Zeros if not given.

    Outputs: output, h_n
        - **output**: :math:`(L, N, D \cdot H_{out})` (:math:`(N, L, D \cdot H_{out})` if ``batch_first``,
          :math:`(L, D \cdot H_{out})` unbatched, packed if the input was): the last layer's :math:`h_t` for
          every ``t``.
        - **h_n**: :math:`(D \cdot \text{num\_layers}, N, H_{out})`, the final hidden state of every layer and
          direction.

    where :math:`L` is the sequence length, :math:`N` the batch size, :math:`D = 2` if ``bidirectional`` else
    :math:`1`, :math:`H_{in}` = ``input_size`` and :math:`H_{out}` = ``hidden_size``.

    Attributes:
        weight_ih_l[k]: :math:`(3 \cdot H_{out}, H_{in})` for ``k = 0``, else
            :math:`(3 \cdot H_{out}, D \cdot H_{out})`; the gates' rows stacked :math:`W_r | W_z | W_n`.
        weight_hh_l[k]: :math:`(3 \cdot H_{out}, H_{out})`, stacked the same way.
        bias_ih_l[k], bias_hh_l[k]: :math:`(3 \cdot H_{out},)`.
        The reverse direction's parameters carry the suffix ``_reverse``. All parameters are initialised from
        :math:`\mathcal{U}(-k, k)` with :math:`k = 1/\sqrt{H_{out}}`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)

    def forward(self, input: Tensor | PackedSequence, hx: Tensor | None = None
                ) -> tuple[Tensor | PackedSequence, Tensor]:
        return super().forward(input, hx)
