r"""8-bit dynamic quantization of an LSTM, written out: int8 weights, activations quantized on the fly (C38).

*Dynamic* quantization stores the weights as 8-bit integers once, and quantizes every activation just before it
enters a matrix multiply, with a scale read off that very tensor (no calibration). For one linear map
:math:`y = W x + b`:

1. weights, once: :math:`W_q = \operatorname{clamp}(\operatorname{round}(W / s_W), -128, 127)` with the symmetric
   scale :math:`s_W = \max|W| / 127.5` (zero-point 0);
2. the input, every call: :math:`[\alpha, \beta] = [\min(\min x, 0), \max(\max x, 0)]`,
   :math:`s_x = (\beta - \alpha) / 127`, :math:`z_x = \operatorname{round}(-\alpha / s_x)`,
   :math:`x_q = \operatorname{clamp}(\operatorname{round}(x / s_x) + z_x, 0, 127)` — unsigned 7-bit, the "reduced
   range" x86 kernels use so that a pair of int8 x uint8 products fits a 16-bit accumulator;
3. an integer matrix multiply-accumulate and one rescale: :math:`y = s_x s_W\, (x_q - z_x) W_q^\top + b`.

An LSTM layer applies 2 to its whole input sequence at once (one :math:`s_x` for all time steps: the input
projection does not depend on :math:`h`) and to :math:`h_{t-1}` at every step; the gates stay in floating point.
That is what ``torch.ao.quantization.quantize_dynamic`` runs for ``nn.LSTM`` and ``nn.Linear`` on a CPU, so
:class:`DynamicQuantLSTM` / :class:`DynamicQuantLinear` give the same outputs up to float rounding; see
``tests/test_dynamic_quant.py`` for the tolerance and why.

Here the integer products are computed exactly in float64 (a sum of products of 8-bit integers is an integer far
below :math:`2^{53}`), which is slower than an int8 kernel but shows every number. Sizes: a quantized weight takes
1 byte instead of 4.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import check_floating, check_rank, check_size, check_tensor, shape_str
from .observers import choose_qparams
from .quant import dequantize, quantize

__all__ = ["QuantizedWeight", "dynamic_linear", "DynamicQuantLinear", "DynamicQuantLSTM", "quantize_dynamic"]


class QuantizedWeight(nn.Module):
    """An int8 weight matrix :math:`W_q` ``(out, in)`` with its scale :math:`s_W` (symmetric, zero-point 0)."""

    def __init__(self, weight: Tensor):
        super().__init__()
        weight = weight.detach().float()
        scale, zero_point = choose_qparams(weight.min(), weight.max(), bits=8, signed=True, symmetric=True)
        self.register_buffer("scale", scale[0])
        self.register_buffer("qweight", quantize(weight, scale[0], zero_point[0], bits=8, signed=True))

    def dequantize(self) -> Tensor:
        return dequantize(self.qweight, self.scale, 0)

    def size_bytes(self) -> int:
        """One byte a weight and a float32 scale."""
        return self.qweight.numel() + 4

    def extra_repr(self) -> str:
        return f"shape={tuple(self.qweight.shape)}, scale={float(self.scale):.4g}"


def _activation_qparams(x: Tensor) -> tuple[Tensor, Tensor]:
    """Scale and zero-point of an activation for the reduced unsigned range [0, 127] (7 bits).

    The formula of :func:`seqlib.observers.choose_qparams`, evaluated the way x86 kernels do: the scale in float64,
    then stored as float32, so that both round every activation to the same level.
    """
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / 127.0
    if float(torch.tensor(scale, dtype=torch.float32)) == 0.0:
        scale = 0.1  # an all-zero tensor: any scale will do
    zero_point = min(max(round(-lo / scale), 0), 127)
    return torch.tensor([scale], dtype=torch.float32), torch.tensor([zero_point])


def dynamic_linear(x: Tensor, weight: QuantizedWeight, bias: Tensor | None) -> Tensor:
    r""":math:`y = s_x s_W (x_q - z_x) W_q^\top + b` with :math:`x` quantized on the fly; ``x`` :math:`(*, H_{in})`.

    Two details follow the x86 kernels, so that the integers agree with torch's to the last one: the zero-point is
    added before rounding, :math:`x_q = \operatorname{round}(x / s_x + z_x)`, and both :math:`x \cdot (1/s_x) + z_x`
    and the rescale :math:`(s_x s_W) \cdot \text{sum} + b` are fused multiply-adds (one rounding each, which float64
    arithmetic reproduces). They matter only for values within a rounding error of the middle between two levels.
    """
    scale_x, zp_x = _activation_qparams(x)
    inv_scale = (1.0 / scale_x[0]).double()  # the float32 reciprocal, as the kernels use
    x_q = torch.clamp(torch.round((x.double() * inv_scale + float(zp_x[0])).float()), 0, 127)  # (*, H_in) 0..127
    centred = x_q.double() - float(zp_x[0])  # (*, H_in) integers in [-127, 127]
    accumulator = centred @ weight.qweight.double().T  # (*, H_out) exact integer sums
    rescale = (scale_x[0] * weight.scale.float()).double()  # s_x * s_W, rounded to float32 first
    y = accumulator * rescale + (0.0 if bias is None else bias.double())  # exact product, one rounding below
    return y.float().to(x.dtype)


class DynamicQuantLinear(nn.Module):
    """``nn.Linear`` with an int8 weight and dynamically quantized input; build it with :meth:`from_float`."""

    def __init__(self, weight: Tensor, bias: Tensor | None):
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.weight = QuantizedWeight(weight)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    def size_bytes(self) -> int:
        return self.weight.size_bytes() + (0 if self.bias is None else 4 * self.bias.numel())

    @classmethod
    def from_float(cls, linear: nn.Linear) -> DynamicQuantLinear:
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, but got {type(linear).__name__}")
        return cls(linear.weight, linear.bias)

    def forward(self, input: Tensor) -> Tensor:
        check_tensor("input", input, "(*, H_in)")
        check_floating("input", input)
        check_size("input", input, -1, self.in_features, "H_in", "(*, H_in)")
        return dynamic_linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype=int8 (dynamic)"


def _is_lstm(module: object) -> bool:
    """A ``seqlib.LSTM`` or its ``torch.nn`` twin (both keep torch's parameter layout and ``mode == "LSTM"``)."""
    return isinstance(module, nn.Module) and getattr(module, "mode", None) == "LSTM" and hasattr(module,
                                                                                            "weight_ih_l0")


class DynamicQuantLSTM(nn.Module):
    r"""An LSTM with int8 weights and dynamically quantized input and hidden state, from a float LSTM.

    Built by :meth:`from_float` from a ``seqlib.LSTM`` or ``torch.nn.LSTM`` (any ``num_layers``, ``batch_first``,
    ``bidirectional``; no ``proj_size``); the gate equations are those of :func:`seqlib.rnn.lstm_step`.

    Inputs: input :math:`(L, N, H_{in})` (or :math:`(N, L, H_{in})` with ``batch_first``, or unbatched
    :math:`(L, H_{in})`), optional ``(h_0, c_0)`` each :math:`(D \cdot \text{num\_layers}, N, H)`.
    Outputs: output :math:`(L, N, D \cdot H)`, ``(h_n, c_n)``, as ``nn.LSTM``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bias: bool, batch_first: bool,
                 bidirectional: bool, weights: list[tuple[Tensor, Tensor, Tensor | None, Tensor | None]]):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.cells = nn.ModuleList()
        for w_ih, w_hh, b_ih, b_hh in weights:
            cell = nn.Module()
            cell.w_ih, cell.w_hh = QuantizedWeight(w_ih), QuantizedWeight(w_hh)
            cell.register_buffer("b_ih", None if b_ih is None else b_ih.detach().float().clone())
            cell.register_buffer("b_hh", None if b_hh is None else b_hh.detach().float().clone())
            self.cells.append(cell)

    def size_bytes(self) -> int:
        """int8 weights, their scales and the float32 biases."""
        total = 0
        for cell in self.cells:
            total += cell.w_ih.size_bytes() + cell.w_hh.size_bytes()
            total += sum(4 * b.numel() for b in (cell.b_ih, cell.b_hh) if b is not None)
        return total

    @classmethod
    def from_float(cls, lstm: nn.Module) -> DynamicQuantLSTM:
        if not _is_lstm(lstm):
            raise TypeError(f"lstm must be a seqlib.LSTM or torch.nn.LSTM, but got {type(lstm).__name__}")
        if getattr(lstm, "proj_size", 0):
            raise ValueError("LSTMs with proj_size > 0 are not supported")
        weights = []
        for layer in range(lstm.num_layers):
            for direction in range(2 if lstm.bidirectional else 1):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                weights.append((getattr(lstm, f"weight_ih{sfx}"), getattr(lstm, f"weight_hh{sfx}"),
                                getattr(lstm, f"bias_ih{sfx}") if lstm.bias else None,
                                getattr(lstm, f"bias_hh{sfx}") if lstm.bias else None))
        return cls(lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bias, lstm.batch_first,
                   lstm.bidirectional, weights)

    def _direction(self, x: Tensor, h: Tensor, c: Tensor, cell: nn.Module, reverse: bool) -> tuple[Tensor, Tensor,
                                                                                                      Tensor]:
        from .rnn import lstm_step

        gi = dynamic_linear(x, cell.w_ih, cell.b_ih)  # (L, N, 4H): one activation scale for the whole sequence
        outputs = []
        no_weight = gi.new_zeros(gi.shape[-1], 0)  # (4H, 0): the recurrent term is already in gi + gh
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        for t in steps:
            gh = dynamic_linear(h, cell.w_hh, cell.b_hh)  # (N, 4H): h_{t-1} quantized at every step
            h, c = lstm_step(gi[t] + gh, h[:, :0], c, no_weight, None)  # the gate equations of seqlib.rnn
            outputs.append(h)
        if reverse:
            outputs.reverse()
        return torch.stack(outputs), h, c  # (L, N, H), (N, H), (N, H)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        check_tensor("input", input, "(L, N, H_in)")
        check_floating("input", input)
        check_rank("input", input, (2, 3), "(L, N, H_in) or (L, H_in)")
        check_size("input", input, -1, self.input_size, "H_in", "(L, N, H_in)")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)  # (L, N, H_in)
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # (L, N, H_in)
        directions = 2 if self.bidirectional else 1
        shape = (self.num_layers * directions, x.shape[1], self.hidden_size)
        if hx is None:
            h0 = c0 = x.new_zeros(shape)
        else:
            h0, c0 = (s if batched else s.unsqueeze(1) for s in hx)  # (D*num_layers, N, H)
            if tuple(h0.shape) != shape or tuple(c0.shape) != shape:
                raise ValueError(f"hx must be (h_0, c_0), each of shape (D * num_layers, N, H) = {shape_str(shape)}, "
                                 f"but got {shape_str(h0.shape)} and {shape_str(c0.shape)}")
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(directions):
                i = layer * directions + d
                out, h, c = self._direction(x, h0[i], c0[i], self.cells[i], reverse=d == 1)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = torch.cat(outs, dim=-1)  # (L, N, D*H)
        out = x.transpose(0, 1) if batched and self.batch_first else x  # (N, L, D*H) or (L, N, D*H)
        h_n_t, c_n_t = torch.stack(h_n), torch.stack(c_n)  # (D*num_layers, N, H)
        if not batched:
            out, h_n_t, c_n_t = out.squeeze(1), h_n_t.squeeze(1), c_n_t.squeeze(1)  # (L, D*H), (D*layers, H)
        return out, (h_n_t, c_n_t)


def quantize_dynamic(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every LSTM (``seqlib.LSTM`` or ``nn.LSTM``) and ``nn.Linear`` submodule replaced by
    its 8-bit dynamic version (the model itself may be one of them)."""
    import copy

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, but got {type(model).__name__}")

    def convert(module: nn.Module) -> nn.Module:
        if _is_lstm(module):
            return DynamicQuantLSTM.from_float(module)
        if isinstance(module, nn.Linear):
            return DynamicQuantLinear.from_float(module)
        for name, child in module.named_children():
            setattr(module, name, convert(child))
        return module

    return convert(copy.deepcopy(model))
