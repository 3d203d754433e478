r"""FastGRNN: a gated recurrent cell small enough for a microcontroller (the model SIRNN runs securely).

A GRU has three weight pairs (reset, update, candidate). FastGRNN (Kusupati et al., NeurIPS 2018) keeps one
pair :math:`W, U` shared by the gate and the candidate, and two trainable scalars :math:`\zeta, \nu`:

.. math::
    z_t &= \sigma(W x_t + U h_{t-1} + b_z) \\
    \tilde h_t &= \tanh(W x_t + U h_{t-1} + b_h) \\
    h_t &= \big(\zeta (1 - z_t) + \nu\big) \odot \tilde h_t + z_t \odot h_{t-1},
    \qquad \zeta = \sigma(\hat\zeta),\ \nu = \sigma(\hat\nu)

With :math:`\zeta = 1, \nu = 0` this is a GRU without a reset gate whose gate and candidate share their
weights: a third of the GRU's parameters. The scalars let training shrink the update (:math:`\nu` starts near
0, :math:`\zeta` near 0.73: ``zeta_init=1``, ``nu_init=-4`` are the reference code's defaults).

The layout follows :mod:`seqlib.rnn`: :class:`FastGRNNCell` (one step, parameters ``weight_ih`` = :math:`W`
``(H_out, H_in)``, ``weight_hh`` = :math:`U` ``(H_out, H_out)``, ``bias_gate``, ``bias_update`` ``(H_out,)``,
``zeta``, ``nu`` ``(1,)``) and :class:`FastGRNN` (a whole sequence, one layer; the same names with the suffix
``_l0``, inputs and outputs as :class:`seqlib.GRU`). There is no torch.nn twin; the tests check the layer
against the cell unrolled by hand.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (
    check_bool,
    check_dtype_match,
    check_floating,
    check_positive_int,
    check_rank,
    check_shape,
    check_size,
    check_tensor,
    shape_str,
)

__all__ = ["FastGRNNCell", "FastGRNN", "fastgrnn_step"]


def fastgrnn_step(wx: Tensor, h: Tensor, w_hh: Tensor, b_gate: Tensor | None, b_update: Tensor | None,
                  zeta: Tensor, nu: Tensor) -> Tensor:
    r"""One FastGRNN step from the precomputed input projection ``wx`` = :math:`W x_t` ``(N, H)``.

    .. math::
        s = W x_t + U h_{t-1}, \quad z = \sigma(s + b_z), \quad \tilde h = \tanh(s + b_h), \quad
        h_t = (\sigma(\hat\zeta)(1 - z) + \sigma(\hat\nu)) \odot \tilde h + z \odot h_{t-1}

    ``h``: ``(N, H)``; ``zeta``, ``nu``: the raw parameters :math:`\hat\zeta, \hat\nu` ``(1,)``.
    """
    s = wx + F.linear(h, w_hh)  # (N, H), shared by the gate and the candidate
    z = torch.sigmoid(s if b_gate is None else s + b_gate)
    h_tilde = torch.tanh(s if b_update is None else s + b_update)
    return (torch.sigmoid(zeta) * (1 - z) + torch.sigmoid(nu)) * h_tilde + z * h


class FastGRNNCell(nn.Module):
    r"""One FastGRNN step (see the module docstring for the equations).

    Args:
        input_size: ``H_in``, features of the input.
        hidden_size: ``H_out``, features of the hidden state.
        bias: if ``False``, no ``bias_gate``/``bias_update``. Default: ``True``.
        zeta_init, nu_init: initial :math:`\hat\zeta, \hat\nu` (:math:`\zeta = \sigma(\hat\zeta)`). Defaults 1, -4.

    Inputs: input, hx
        - **input**: ``(N, H_in)`` or ``(H_in,)``.
        - **hx**: ``(N, H_out)`` or ``(H_out,)``; zeros if not given.

    Outputs: h'
        - **h'**: ``(N, H_out)`` or ``(H_out,)``.

    Attributes:
        weight_ih: :math:`W` ``(H_out, H_in)``; weight_hh: :math:`U` ``(H_out, H_out)``; bias_gate, bias_update:
        ``(H_out,)``, all from :math:`\mathcal{U}(-k, k)`, :math:`k = 1/\sqrt{H_{out}}` (as torch's RNNs);
        zeta, nu: ``(1,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, zeta_init: float = 1.0,
                 nu_init: float = -4.0, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        _init_params(self, "", input_size, hidden_size, bias, zeta_init, nu_init, {"device": device, "dtype": dtype})

    def reset_parameters(self) -> None:
        _reset(self, "")

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        expected = "(N, H_in) or (H_in,)"
        x = check_tensor("input", input, expected)
        check_floating("input", x)
        check_rank("input", x, (1, 2), expected)
        check_size("input", x, -1, self.input_size, "H_in", expected)
        check_dtype_match("input", x, expected, self.weight_ih, "weight_ih")
        batched = x.dim() == 2
        x = x if batched else x.unsqueeze(0)  # (N, H_in)
        shape = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        h = _check_hidden("hx", hx, x, shape, "(N, H_out)" if batched else "(H_out,)", batched)
        h = fastgrnn_step(F.linear(x, self.weight_ih), h, self.weight_hh, self.bias_gate, self.bias_update,
                          self.zeta, self.nu)
        return h if batched else h.squeeze(0)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class FastGRNN(nn.Module):
    r"""A FastGRNN layer over a whole sequence, with the interface of :class:`seqlib.GRU` (one layer).

    Args:
        input_size, hidden_size, bias, zeta_init, nu_init: as :class:`FastGRNNCell`.
        batch_first: if ``True``, input and output are ``(N, L, H)``. Default: ``False``.

    Inputs: input, hx
        - **input**: ``(L, N, H_in)``, ``(N, L, H_in)`` with ``batch_first``, or unbatched ``(L, H_in)``.
        - **hx**: ``(1, N, H_out)`` or ``(1, H_out)``; zeros if not given.

    Outputs: output, h_n
        - **output**: ``(L, N, H_out)`` (``(N, L, H_out)`` with ``batch_first``; ``(L, H_out)`` unbatched),
          :math:`h_t` for every step.
        - **h_n**: ``(1, N, H_out)`` or ``(1, H_out)``, the last hidden state.

    Attributes:
        weight_ih_l0, weight_hh_l0, bias_gate_l0, bias_update_l0, zeta_l0, nu_l0: as :class:`FastGRNNCell`'s.
    """

    mode = "FastGRNN"
    num_layers = 1
    bidirectional = False
    proj_size = 0

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, batch_first: bool = False,
                 zeta_init: float = 1.0, nu_init: float = -4.0, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_bool("batch_first", batch_first)
        self.batch_first = batch_first
        _init_params(self, "_l0", input_size, hidden_size, bias, zeta_init, nu_init,
                     {"device": device, "dtype": dtype})

    def reset_parameters(self) -> None:
        _reset(self, "_l0")

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shape = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
        expected = f"{shape} or unbatched (L, H_in)"
        x = check_tensor("input", input, expected)
        check_floating("input", x)
        check_rank("input", x, (2, 3), expected)
        check_size("input", x, -1, self.input_size, "H_in", expected)
        check_dtype_match("input", x, expected, self.weight_ih_l0, "weight_ih_l0")
        batched = x.dim() == 3
        if not batched:
            x = x.unsqueeze(1)  # (L, 1, H_in)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (L, N, H_in)
        if x.shape[0] == 0:
            raise ValueError(f"input must have L >= 1 time steps, but got shape {shape_str(input.shape)}")
        n = x.shape[1]
        h_shape, h_expected = ((1, n, self.hidden_size), "(1, N, H_out)") if batched else \
            ((1, self.hidden_size), "(1, H_out)")
        h = _check_hidden("hx", hx, x, h_shape, h_expected, True)
        h = h.reshape(n, self.hidden_size)  # (N, H_out)
        wx = F.linear(x, self.weight_ih_l0)  # (L, N, H_out): every step's W x_t at once
        outs = []
        for t in range(x.shape[0]):
            h = fastgrnn_step(wx[t], h, self.weight_hh_l0, self.bias_gate_l0, self.bias_update_l0, self.zeta_l0,
                              self.nu_l0)
            outs.append(h)
        out = torch.stack(outs)  # (L, N, H_out)
        h_n = h.unsqueeze(0)  # (1, N, H_out)
        if not batched:
            return out.squeeze(1), h_n.squeeze(1)  # (L, H_out), (1, H_out)
        return (out.transpose(0, 1) if self.batch_first else out), h_n

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s + (", batch_first=True" if self.batch_first else "")


def _init_params(module: nn.Module, suffix: str, input_size: int, hidden_size: int, bias: bool, zeta_init: float,
                 nu_init: float, kw: dict) -> None:
    check_positive_int("input_size", input_size)
    check_positive_int("hidden_size", hidden_size)
    check_bool("bias", bias)
    for name, value in (("zeta_init", zeta_init), ("nu_init", nu_init)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise TypeError(f"{name} must be a finite float, but got {value!r}")
    module.input_size, module.hidden_size, module.bias = input_size, hidden_size, bias
    module.zeta_init, module.nu_init = float(zeta_init), float(nu_init)
    module.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(hidden_size, input_size, **kw)))
    module.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(hidden_size, hidden_size, **kw)))
    for name in ("bias_gate", "bias_update"):
        module.register_parameter(f"{name}{suffix}", nn.Parameter(torch.empty(hidden_size, **kw)) if bias else None)
    module.register_parameter(f"zeta{suffix}", nn.Parameter(torch.empty(1, **kw)))
    module.register_parameter(f"nu{suffix}", nn.Parameter(torch.empty(1, **kw)))
    _reset(module, suffix)


def _reset(module: nn.Module, suffix: str) -> None:
    bound = 1.0 / math.sqrt(module.hidden_size)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_gate", "bias_update"):
            p = getattr(module, name + suffix)
            if p is not None:
                nn.init.uniform_(p, -bound, bound)
        getattr(module, "zeta" + suffix).fill_(module.zeta_init)
        getattr(module, "nu" + suffix).fill_(module.nu_init)


def _check_hidden(name: str, hx: object, x: Tensor, shape: tuple[int, ...], expected: str, batched: bool) -> Tensor:
    if hx is None:
        return x.new_zeros(shape)
    h = check_tensor(name, hx, expected)
    check_dtype_match(name, h, expected, x, "input")
    check_shape(name, h, shape, expected)
    return h if batched else h.unsqueeze(0)
