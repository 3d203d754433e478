r"""Layer normalisation, the "norm" of a Transformer's "add & norm" (C24).

Each position's feature vector is shifted to mean 0 and scaled to variance 1 on its own (not over the
batch, unlike batch norm), then a learned per-feature scale and shift give the network its range back:

.. math::
    \mu = \frac{1}{H}\sum_{k=1}^{H} x_k, \qquad
    \sigma^2 = \frac{1}{H}\sum_{k=1}^{H} (x_k - \mu)^2, \qquad
    y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \odot \gamma + \beta

Because it works on one position at a time, it behaves the same in training and evaluation and for any
batch size or sequence length, which is why Transformers use it.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._checks import check_tensor, shape_str

__all__ = ["LayerNorm"]


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
        dims = tuple(range(-k, 0))
        var, mean = torch.var_mean(input, dim=dims, correction=0, keepdim=True)  # (*, 1, ..., 1) each
        x_hat = (input - mean) * torch.rsqrt(var + self.eps)  # mean 0, variance 1 over dims
        if self.weight is None:
            return x_hat
        if self.bias is None:
            return x_hat * self.weight
        return torch.addcmul(self.bias, x_hat, self.weight)  # gamma * x_hat + beta

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
