r"""A trained GRU, LSTM or FastGRNN run in integer arithmetic end to end (C31).

:meth:`FixedPointRNN.from_float` quantizes a trained float model (its weights, biases and, for FastGRNN, the
scalars :math:`\zeta, \nu`) to :math:`f` fractional bits in ``bits``-bit storage; the network then runs on
int64 tensors only, with the table-based activations of :mod:`seqlib.lut`. The rules, with
:math:`T(v) = \lfloor v / 2^f \rfloor` (an arithmetic right shift):

- a product of two numbers with :math:`f` fractional bits has :math:`2f`; sums of products (``x @ W.T``) are
  accumulated exactly with :math:`2f` bits, biases are added scaled to :math:`2f` (``b << f``), and one
  :math:`T` brings the sum back to :math:`f` bits;
- the activations :math:`\sigma, \tanh` are :func:`~seqlib.lut.sigmoid_lut`, :func:`~seqlib.lut.tanh_lut`
  (digits of ``digit_bits`` bits);
- inside the network nothing saturates: the gates lie in :math:`[0, 1]`, the GRU and FastGRNN states in
  :math:`[-1, 1]`, and the accumulators have 64 bits; ``bits`` is the storage format of the parameters and
  the input (where :func:`~seqlib.fixedpoint.quantize` saturates).

GRU step (torch's gate order r, z, n; :math:`a = W_{ih} x_t` and :math:`c = W_{hh} h` with :math:`2f` bits):

.. math::
    r, z &= \sigma\big(T(a_{rz} + c_{rz} + b_{rz})\big), \qquad
    n = \tanh\big(T(a_n + b_{in} + r \cdot T(c_n + b_{hn}))\big), \qquad
    h' = n + T\big(z \cdot (h - n)\big)

LSTM step (gates i, f, g, o): :math:`p = T(a + c + b)`, :math:`c' = T(f \cdot c + i \cdot g)`,
:math:`h' = T(o \cdot \tanh(c'))` with :math:`i, f, o = \sigma(p_{i,f,o})`, :math:`g = \tanh(p_g)`.

FastGRNN step: :math:`s = T(a + c)`, :math:`z = \sigma(s + b_z)`, :math:`\tilde h = \tanh(s + b_h)`,
:math:`\gamma = T((\zeta + \nu)\,2^f - \zeta \cdot z)`, :math:`h' = T(\gamma \cdot \tilde h + z \cdot h)`.

A classifier (a module with a recurrent ``rnn`` and a linear ``head`` on the last hidden state, such as
:class:`seqlib.classifiers.RNNClassifier` with ``pool="last"``) adds :math:`\text{logits} = T(h_L W^\top + b\,2^f)`.

The step functions are written once, against a small arithmetic interface (``ops``): ``ops.linear``,
``ops.mul`` (exact products), ``ops.trunc`` (:math:`T`), ``ops.sigmoid``, ``ops.tanh``, ``ops.cat``,
``ops.stack``, ``ops.zeros``, ``ops.layer`` (a context naming the layer); values support ``+``, ``-``, slicing
and ``[t]``. :class:`IntegerOps` runs them on int64 tensors; :mod:`seqlib.secure_rnn` runs the very same
functions on secret shares, which is why the two outputs are equal bit for bit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ._checks import check_rank, check_size, check_tensor, shape_str
from .fixedpoint import MAX_BITS, check_bits, check_frac_bits, check_int_tensor, dequantize, quantize
from .lut import MAX_DIGIT_BITS, sigmoid_lut, tanh_lut

__all__ = ["FixedPointRNN", "IntegerOps", "MODES"]

MODES = ("GRU", "LSTM", "FastGRNN")


class IntegerOps:
    """The arithmetic of :class:`FixedPointRNN` on int64 tensors (its secret-shared twin: ``secure_rnn.SecureOps``)."""

    def __init__(self, frac_bits: int, digit_bits: int) -> None:
        self.frac_bits, self.digit_bits = frac_bits, digit_bits

    def linear(self, x: Tensor, weight: Tensor) -> Tensor:
        """``x @ weight.T`` exactly (:math:`2f` fractional bits); ``x`` ``(..., H_in)``, ``weight`` ``(G, H_in)``."""
        return x @ weight.T  # (..., G)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        """Exact elementwise product (:math:`2f` fractional bits), broadcasting."""
        return a * b

    def trunc(self, x: Tensor) -> Tensor:
        r""":math:`\lfloor x / 2^f \rfloor`."""
        return x >> self.frac_bits

    def sigmoid(self, x: Tensor) -> Tensor:
        return sigmoid_lut(x, self.frac_bits, self.digit_bits)

    def tanh(self, x: Tensor) -> Tensor:
        return tanh_lut(x, self.frac_bits, self.digit_bits)

    def cat(self, values: Sequence[Tensor], dim: int = -1) -> Tensor:
        return torch.cat(list(values), dim)

    def stack(self, values: Sequence[Tensor], dim: int = 0) -> Tensor:
        return torch.stack(list(values), dim)

    def zeros(self, shape: Sequence[int]) -> Tensor:
        return torch.zeros(tuple(shape), dtype=torch.long)

    def layer(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Marks the part of the program that belongs to layer ``name`` (the secure twin counts per layer)."""
        return contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------------------------------
# the integer programs: one step of each cell, a layer, the network
# ---------------------------------------------------------------------------------------------------------------------
def gru_step(ops: Any, a: Any, h: Any, p: dict[str, Any], H: int) -> Any:
    """GRU step; ``a`` = :math:`W_{ih} x_t` ``(N, 3H)`` with :math:`2f` bits, ``h`` ``(N, H)``; see the module."""
    c = ops.linear(h, p["weight_hh"])  # (N, 3H), 2f bits
    rz = ops.sigmoid(ops.trunc(a[:, :2 * H] + c[:, :2 * H] + p["bias_rz"]))  # (N, 2H): r and z together
    r, z = rz[:, :H], rz[:, H:]
    c_n = ops.trunc(c[:, 2 * H:] + p["bias_hn"])  # (N, H), f bits
    n = ops.tanh(ops.trunc(a[:, 2 * H:] + p["bias_in"] + ops.mul(r, c_n)))  # the reset gate scales W_hn h + b_hn
    return n + ops.trunc(ops.mul(z, h - n))  # (1 - z) n + z h


def lstm_step(ops: Any, a: Any, h: Any, c: Any, p: dict[str, Any], H: int) -> tuple[Any, Any]:
    """LSTM step; ``a`` ``(N, 4H)`` with :math:`2f` bits, ``h``, ``c`` ``(N, H)``; see the module."""
    pre = ops.trunc(a + ops.linear(h, p["weight_hh"]) + p["bias"])  # (N, 4H): gates i, f, g, o
    sig = ops.sigmoid(ops.cat([pre[:, :2 * H], pre[:, 3 * H:]]))  # (N, 3H): i, f, o in one call
    i, f, o = sig[:, :H], sig[:, H:2 * H], sig[:, 2 * H:]
    g = ops.tanh(pre[:, 2 * H:3 * H])
    prod = ops.mul(ops.cat([f, i]), ops.cat([c, g]))  # (N, 2H): f c and i g in one go
    c = ops.trunc(prod[:, :H] + prod[:, H:])
    h = ops.trunc(ops.mul(o, ops.tanh(c)))
    return h, c


def fastgrnn_step(ops: Any, a: Any, h: Any, p: dict[str, Any], H: int) -> Any:
    """FastGRNN step; ``a`` = :math:`W x_t` ``(N, H)`` with :math:`2f` bits, ``h`` ``(N, H)``; see the module."""
    s = ops.trunc(a + ops.linear(h, p["weight_hh"]))  # (N, H), shared by gate and candidate
    z = ops.sigmoid(s + p["bias_gate"])
    h_tilde = ops.tanh(s + p["bias_update"])
    gamma = ops.trunc(p["zeta_nu"] - ops.mul(p["zeta"], z))  # zeta (1 - z) + nu
    prod = ops.mul(ops.cat([gamma, z]), ops.cat([h_tilde, h]))  # (N, 2H)
    return ops.trunc(prod[:, :H] + prod[:, H:])


def run_program(ops: Any, mode: str, layers: Sequence[dict[str, Any]], head: dict[str, Any] | None, x: Any,
                hidden_size: int, frac_bits: int) -> Any:
    """The network on ``x`` ``(L, N, H_in)``: every layer over time, then the head on the last state (if any).

    Returns the logits ``(N, C)`` with a head, else the last layer's states ``(L, N, H)``.
    """
    H = hidden_size
    L, N = x.shape[0], x.shape[1]
    for k, p in enumerate(layers):
        with ops.layer(f"rnn.l{k}"):
            a = ops.linear(x, p["weight_ih"])  # (L, N, G*H): every step's input projection at once, 2f bits
            h = ops.zeros((N, H))
            c = ops.zeros((N, H))
            outs = []
            for t in range(L):
                if mode == "GRU":
                    h = gru_step(ops, a[t], h, p, H)
                elif mode == "LSTM":
                    h, c = lstm_step(ops, a[t], h, c, p, H)
                else:
                    h = fastgrnn_step(ops, a[t], h, p, H)
                outs.append(h)
            x = ops.stack(outs)  # (L, N, H)
    if head is None:
        return x
    with ops.layer("head"):
        return ops.trunc(ops.linear(x[L - 1], head["weight"]) + head["bias"])  # (N, C)


# ---------------------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------------------
class FixedPointRNN:
    r"""Integer-only inference of a trained GRU, LSTM or FastGRNN (optionally with a linear classifier head).

    Build it with :meth:`from_float`. Calling it on a float input quantizes the input, runs
    :meth:`forward_int` and dequantizes: ``fx(x)`` is close to ``model(x)`` (the logits, or the output states).

    Attributes:
        mode: ``"GRU"``, ``"LSTM"`` or ``"FastGRNN"``.
        frac_bits, bits, digit_bits: :math:`f`, the storage width and the activation tables' digit width.
        layers: one dict of int64 parameters per layer (see the module docstring for the names' meaning);
            head: the head's ``weight`` ``(C, H)`` and ``bias`` (scaled to :math:`2f`), or ``None``.
        input_size, hidden_size, batch_first: as the float model's.
    """

    def __init__(self, mode: str, layers: list[dict[str, Tensor]], head: dict[str, Tensor] | None, *,
                 input_size: int, hidden_size: int, frac_bits: int, bits: int, digit_bits: int,
                 batch_first: bool) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, but got {mode!r}")
        self.mode, self.layers, self.head = mode, layers, head
        self.input_size, self.hidden_size, self.batch_first = input_size, hidden_size, batch_first
        self.frac_bits, self.bits, self.digit_bits = frac_bits, bits, digit_bits

    # -- conversion ----------------------------------------------------------------------------------------------------
    @classmethod
    def from_float(cls, model: nn.Module, frac_bits: int = 12, bits: int = 16, digit_bits: int = 8) -> FixedPointRNN:
        r"""Quantize a trained recurrent model.

        Args:
            model: a one-direction ``GRU`` or ``LSTM`` (seqlib's or torch.nn's, any ``num_layers``, no
                ``proj_size``), a :class:`~seqlib.fastgrnn.FastGRNN`, or a classifier with attributes ``rnn`` (one
                of those) and ``head`` (an ``nn.Linear(H, C)`` applied to the last hidden state).
            frac_bits: :math:`f`, fractional bits of every number (``0 <= f < bits``, at most 30).
            bits: storage width of the parameters and the input, 2..32; they saturate to it.
            digit_bits: digit width of the activation tables (1..12).
        """
        check_bits("bits", bits, high=MAX_BITS)
        check_frac_bits(frac_bits, bits)
        check_bits("frac_bits", frac_bits, low=0, high=30)
        check_bits("digit_bits", digit_bits, low=1, high=MAX_DIGIT_BITS)
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a trained nn.Module (GRU, LSTM, FastGRNN or a classifier with .rnn and "
                            f".head), but got {type(model).__name__}")
        rnn, head = (model.rnn, model.head) if hasattr(model, "rnn") and hasattr(model, "head") else (model, None)
        if head is not None and (getattr(model, "pool", "last") != "last" or hasattr(model, "embedding")):
            raise ValueError("FixedPointRNN runs classifiers whose head reads the last hidden state of feature "
                             f"inputs, but model has pool={getattr(model, 'pool', 'last')!r}"
                             + (" and a token embedding" if hasattr(model, "embedding") else ""))
        mode = getattr(rnn, "mode", None)
        if mode not in MODES:
            raise TypeError(f"model must be a GRU, LSTM or FastGRNN (or hold one as .rnn), but got "
                            f"{type(rnn).__name__}" + (f" with mode {mode!r}" if mode else ""))
        if getattr(rnn, "bidirectional", False) or getattr(rnn, "proj_size", 0):
            raise ValueError("FixedPointRNN runs one-direction layers without proj_size; got bidirectional="
                             f"{rnn.bidirectional}, proj_size={getattr(rnn, 'proj_size', 0)}")
        H = rnn.hidden_size

        def q(t: Tensor | None, shape: Sequence[int], wide: bool = False) -> Tensor:
            if t is None:
                return torch.zeros(tuple(shape), dtype=torch.long)
            v = quantize(t.detach().double().cpu(), frac_bits, bits)
            return v << frac_bits if wide else v

        layers = []
        for k in range(rnn.num_layers):
            get = lambda name, k=k: getattr(rnn, f"{name}_l{k}", None)  # noqa: E731
            w_ih, w_hh = get("weight_ih"), get("weight_hh")
            G = w_ih.shape[0]
            p = {"weight_ih": q(w_ih, w_ih.shape), "weight_hh": q(w_hh, w_hh.shape)}
            if mode == "FastGRNN":
                zeta, nu = torch.sigmoid(get("zeta").detach()), torch.sigmoid(get("nu").detach())
                p["bias_gate"], p["bias_update"] = q(get("bias_gate"), (H,)), q(get("bias_update"), (H,))
                p["zeta"] = q(zeta, (1,))
                p["zeta_nu"] = (p["zeta"] + q(nu, (1,))) << frac_bits
            else:
                b_ih, b_hh = q(get("bias_ih"), (G,), True), q(get("bias_hh"), (G,), True)
                if mode == "LSTM":
                    p["bias"] = b_ih + b_hh
                else:
                    p["bias_rz"], p["bias_in"], p["bias_hn"] = (b_ih + b_hh)[:2 * H], b_ih[2 * H:], b_hh[2 * H:]
            layers.append(p)
        head_p = None
        if head is not None:
            if not isinstance(getattr(head, "weight", None), Tensor) or head.weight.dim() != 2 \
                    or head.weight.shape[1] != H:
                raise TypeError(f"model.head must be a linear layer with weight (C, {H}), but got "
                                f"{type(head).__name__}")
            head_p = {"weight": q(head.weight, head.weight.shape),
                      "bias": q(getattr(head, "bias", None), (head.weight.shape[0],), True)}
        return cls(mode, layers, head_p, input_size=rnn.input_size, hidden_size=H, frac_bits=frac_bits, bits=bits,
                   digit_bits=digit_bits, batch_first=bool(getattr(rnn, "batch_first", False)))

    # -- running ------------------------------------------------------------------------------------------------------
    def _layout(self, batched: bool) -> str:
        if not batched:
            return "(L, H_in)"
        return "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"

    def quantize_input(self, x: Tensor) -> Tensor:
        """Quantize a float input (the model's layout) with the model's ``frac_bits`` and ``bits``."""
        x = check_tensor("x", x, self._layout(True))
        return quantize(x, self.frac_bits, self.bits)

    def to_time_major(self, q: Tensor) -> tuple[Tensor, bool]:
        """Check an integer input and return it as ``(L, N, H_in)``, and whether it was batched."""
        expected = f"{self._layout(True)} or unbatched (L, H_in)"
        q = check_int_tensor("input", q)
        check_rank("input", q, (2, 3), expected)
        check_size("input", q, -1, self.input_size, "H_in", expected)
        if q.shape[0 if q.dim() == 2 or not self.batch_first else 1] == 0:
            raise ValueError(f"input must have L >= 1 time steps, but got shape {shape_str(q.shape)}")
        batched = q.dim() == 3
        if not batched:
            return q.unsqueeze(1), False  # (L, 1, H_in)
        return (q.transpose(0, 1) if self.batch_first else q), True  # (L, N, H_in)

    def from_time_major(self, out: Tensor, batched: bool) -> Tensor:
        """The program's output back in the model's layout (logits ``(N, C)``, or states)."""
        if self.head is not None:
            return out if batched else out.squeeze(0)  # (N, C) or (C,)
        if not batched:
            return out.squeeze(1)  # (L, H)
        return out.transpose(0, 1) if self.batch_first else out  # (N, L, H) or (L, N, H)

    def forward_int(self, q: Tensor) -> Tensor:
        """Integer in, integer out (:math:`f` fractional bits): logits ``(N, C)`` with a head, else the last
        layer's hidden states in the model's layout."""
        x, batched = self.to_time_major(q)
        ops = IntegerOps(self.frac_bits, self.digit_bits)
        out = run_program(ops, self.mode, self.layers, self.head, x, self.hidden_size, self.frac_bits)
        return self.from_time_major(out, batched)

    def __call__(self, x: Tensor) -> Tensor:
        """Float in, float64 out: ``dequantize(forward_int(quantize_input(x)))``."""
        return dequantize(self.forward_int(self.quantize_input(x)), self.frac_bits)

    def predict(self, x: Tensor) -> Tensor:
        """Class labels ``(N,)`` (argmax of the integer logits); needs a head."""
        if self.head is None:
            raise ValueError("predict needs a classifier: build the FixedPointRNN from a model with .rnn and .head")
        return self.forward_int(self.quantize_input(x)).argmax(-1)

    def __repr__(self) -> str:
        head = "" if self.head is None else f", head={tuple(self.head['weight'].shape)}"
        return (f"FixedPointRNN({self.mode}, {self.input_size}, {self.hidden_size}, num_layers={len(self.layers)}"
                f"{head}, frac_bits={self.frac_bits}, bits={self.bits}, digit_bits={self.digit_bits})")
