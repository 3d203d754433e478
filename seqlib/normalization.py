r"""Layer normalisation, the "norm" of a Transformer's "add & norm" (C24).

Each position's feature vector is shifted to mean 0 and scaled to variance 1 on its own (not over the
batch, unlike batch norm), then a learned per-feature scale and shift give the network its range back:

.. math::
    \mu = \frac{1}{H}\sum_{k=1}^{H} x_k, \qquad
    \sigma^2 = \frac{1}{H}\sum_{k=1}^{H} (x_k - \mu)^2, \qquad
    y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \odot \gamma + \beta

Because it works on one position at a time, it behaves the same in training and evaluation and for any
batch size or sequence length, which is why Transformers use it.

The backward pass is written out too (:class:`LayerNormFunction`). With :math:`\hat x = (x - \mu) / \sigma`,
:math:`r = 1 / \sqrt{\sigma^2 + \epsilon}`, upstream gradient :math:`g` and :math:`\hat g = g \odot \gamma`:

.. math::
    \frac{\partial L}{\partial x} = r \left(\hat g - \overline{\hat g}
        - \hat x \, \overline{\hat g \odot \hat x}\right), \qquad
    \frac{\partial L}{\partial \gamma} = \sum_{\text{positions}} g \odot \hat x, \qquad
    \frac{\partial L}{\partial \beta} = \sum_{\text{positions}} g

where a bar is the mean over the normalised features: the gradient loses its mean and its component along
:math:`\hat x`, exactly the two directions the normalisation removes.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ._checks import check_tensor, shape_str

__all__ = ["LayerNorm", "LayerNormFunction"]


class LayerNormFunction(torch.autograd.Function):
    r"""Layer norm over the last dimension with the backward pass written out (see the module docstring).

    ``LayerNormFunction.apply(x, weight, bias, eps)`` with ``x`` of shape ``(*, H)`` and ``weight``/``bias`` of
    shape ``(H,)`` or ``None``. Compared with letting autograd differentiate the forward formula, it keeps one
    ``(*, H)`` tensor for backward and allocates few temporaries. Second derivatives are not supported.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
        mean = x.mean(dim=-1, keepdim=True)  # (*, 1)
        x_hat = x - mean  # (*, H), centred
        var = torch.linalg.vector_norm(x_hat, dim=-1, keepdim=True).square_().div_(x.shape[-1])  # (*, 1), biased
        rstd = var.add_(eps).rsqrt_()  # (*, 1): 1 / sqrt(var + eps)
        x_hat.mul_(rstd)  # (*, H): mean 0, variance 1
        ctx.save_for_backward(x_hat, rstd, weight)
        ctx.has_bias = bias is not None
        if weight is None:
            return x_hat.clone()
        if bias is None:
            return x_hat * weight
        return torch.addcmul(bias, x_hat, weight)  # gamma * x_hat + beta

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        x_hat, rstd, weight = ctx.saved_tensors
        H = x_hat.shape[-1]
        batch_dims = tuple(range(grad.dim() - 1))
        grad_bias = grad.sum(batch_dims) if ctx.has_bias and ctx.needs_input_grad[2] else None
        # one (*, H) buffer serves first as g * x_hat, then becomes dL/dx (few allocations: fewer page faults)
        buf = grad * x_hat  # (*, H)
        grad_weight = buf.sum(batch_dims) if weight is not None and ctx.needs_input_grad[1] else None
        if not ctx.needs_input_grad[0]:
            return None, grad_weight, grad_bias, None
        if weight is None:
            mean_g_xhat = buf.mean(dim=-1, keepdim=True)  # (*, 1): mean(g^ x^)
            mean_g = grad.mean(dim=-1, keepdim=True)  # (*, 1): mean(g^)
            grad_x = buf.copy_(grad)  # g^ = g
        else:
            # means over H of g*gamma*x_hat and g*gamma as matrix-vector products (no (*, H) temporaries)
            mean_g_xhat = (buf @ weight).unsqueeze(-1).div_(H)  # (*, 1)
            mean_g = (grad @ weight).unsqueeze(-1).div_(H)  # (*, 1)
            grad_x = buf.copy_(grad).mul_(weight)  # g^ = g * gamma
        grad_x.sub_(mean_g).addcmul_(x_hat, mean_g_xhat, value=-1.0).mul_(rstd)  # r (g^ - mean(g^) - x^ mean(g^ x^))
        return grad_x, grad_weight, grad_bias, None


class LayerNorm(nn.Module):
    r"""Layer normalisation over the last dimensions, the twin of :class:`torch.nn.LayerNorm`.

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \odot \gamma + \beta

    The mean and the (biased, divide-by-``H``) variance are taken over the last ``len(normalized_shape)``
    dimensions of each input.

    Args:
        normalized_shape: the trailing shape to normalise over, e.g. ``d_model`` or ``(L, d_model)``.
        eps: added to the variance so that a constant input does not divide by zero. Default: ``1e-5``.
        elementwise_affine: learn :math:`\gamma` (``weight``, initialised to ones) and :math:`\beta`
            (``bias``, initialised to zeros). Default: ``True``.
        bias: learn :math:`\beta` too (only with ``elementwise_affine``). Default: ``True``.

    Attributes:
        weight: :math:`\gamma` of shape ``normalized_shape``, or ``None``.
        bias: :math:`\beta` of shape ``normalized_shape``, or ``None``.

    Shape:
        - Input: :math:`(*, \text{normalized\_shape})`, e.g. ``(N, L, H)`` with ``normalized_shape = H``.
        - Output: same shape as the input.

    Examples::

        >>> norm = LayerNorm(8)
        >>> y = norm(torch.randn(2, 5, 8) * 3 + 1)  # (N, L, H)
        >>> y.mean(-1).abs().max() < 1e-5, y.shape
        (tensor(True), torch.Size([2, 5, 8]))
    """

    __constants__ = ["normalized_shape", "eps", "elementwise_affine"]

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        if (not isinstance(normalized_shape, Sequence | torch.Size)
                or not all(isinstance(s, numbers.Integral) and s > 0 for s in normalized_shape)
                or len(normalized_shape) == 0):
            raise TypeError(f"normalized_shape must be a positive int or a non-empty sequence of positive ints, "
                            f"but got {normalized_shape!r}")
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = float(eps)
        self.elementwise_affine = elementwise_affine
        factory = {"device": device, "dtype": dtype}
        if elementwise_affine:
            self.weight = nn.Parameter(torch.empty(self.normalized_shape, **factory))
            if bias:
                self.bias = nn.Parameter(torch.empty(self.normalized_shape, **factory))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """gamma = 1, beta = 0: the layer starts as a pure normalisation."""
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        expected = "(*, " + ", ".join(str(s) for s in self.normalized_shape) + ")"
        check_tensor("input", input, expected)
        k = len(self.normalized_shape)
        if input.dim() < k or tuple(input.shape[-k:]) != self.normalized_shape:
            raise ValueError(f"input must have shape {expected} (its last {k} dimension(s) equal to "
                             f"normalized_shape), but got shape {shape_str(input.shape)}")
        if not input.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, but got dtype {input.dtype}")
        # flatten the normalised dimensions into one of size H = prod(normalized_shape)
        lead = input.shape[: input.dim() - k]
        x = input.reshape(*lead, -1)  # (*, H)
        weight = None if self.weight is None else self.weight.reshape(-1)  # (H,)
        bias = None if self.bias is None else self.bias.reshape(-1)  # (H,)
        out = LayerNormFunction.apply(x, weight, bias, self.eps)  # (*, H)
        return out.view(input.shape)  # (*, normalized_shape)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
