r"""Sinusoidal positional encoding (C23).

Attention treats its inputs as a *set*: shuffle the positions and every output is shuffled the same way.
To let a Transformer know where a token stands, a vector that depends only on the position is added to
each token's embedding. Vaswani et al. (2017) use sines and cosines of geometrically spaced wavelengths:

.. math::
    PE_{(pos,\, 2i)} = \sin\!\left(\frac{pos}{10000^{2i/d}}\right), \qquad
    PE_{(pos,\, 2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)

Every pair of features ``(2i, 2i+1)`` turns like a clock hand at its own speed, from one turn per ``2 pi``
positions (``i = 0``) to one per ``10000 * 2 pi`` positions, so nearby positions get similar vectors and
``PE[pos + k]`` is a fixed rotation of ``PE[pos]`` for every ``pos``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._checks import check_positive_int, check_probability, check_tensor, shape_str

__all__ = ["PositionalEncoding", "sinusoidal_table"]


def sinusoidal_table(max_len: int, d_model: int, dtype: torch.dtype | None = None,
                     device: torch.device | str | None = None) -> Tensor:
    r"""The table :math:`PE` of shape ``(max_len, d_model)`` (see the module docstring).

    Even columns ``2i`` hold :math:`\sin(pos / 10000^{2i/d})`, odd columns ``2i+1`` the cosine with the same
    frequency. An odd ``d_model`` ends on a sine column (there are ``ceil(d/2)`` sines and ``floor(d/2)``
    cosines). Computed in float64, then converted to ``dtype`` (default: torch's default dtype).
    """
    check_positive_int("max_len", max_len)
    check_positive_int("d_model", d_model)
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d/2),): 0, 2, 4, ...
    angle = position * torch.exp(-math.log(10000.0) * two_i / d_model)  # (max_len, ceil(d/2)): pos / 10000^(2i/d)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.to(dtype=dtype or torch.get_default_dtype(), device=device)


class PositionalEncoding(nn.Module):
    r"""Adds the sinusoidal positional encoding to its input, then applies dropout (C23).

    .. math::
        \text{out}[pos] = \text{dropout}(x[pos] + PE[pos])

    There is no torch.nn twin (``nn.Transformer`` leaves positions to the user); this is the module of the
    PyTorch Transformer tutorial, with ``batch_first`` added.

    The table is a **non-persistent buffer** ``pe`` of shape ``(max_len, d_model)``: it moves with
    ``.to(device)`` like a parameter, but it is not learned and not stored in the ``state_dict`` — it is
    recomputed from ``(max_len, d_model)`` at construction, so checkpoints stay small and a model built with a
    different ``max_len`` loads the same weights. The table is converted to the input's dtype when added.

    Args:
        d_model: number of features :math:`E` of the embeddings (odd values work: the last column is a sine).
        max_len: longest sequence the table covers. Default: ``5000``.
        dropout: dropout probability on the sum. Default: ``0.0``.
        batch_first: inputs are ``(N, L, E)`` instead of ``(L, N, E)``. Default: ``False``.

    Shape:
        - Input: :math:`(L, N, E)`, :math:`(N, L, E)` with ``batch_first``, or unbatched :math:`(L, E)`;
          :math:`L \le` ``max_len``.
        - Output: the same shape.

    Examples::

        >>> pos = PositionalEncoding(d_model=16, batch_first=True)
        >>> pos(torch.zeros(2, 10, 16)).shape  # (N, L, E); with zeros in, the table itself comes out
        torch.Size([2, 10, 16])
    """

    pe: Tensor

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, batch_first: bool = False) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.max_len = check_positive_int("max_len", max_len)
        self.batch_first = batch_first
        self.dropout = nn.Dropout(check_probability("dropout", dropout))
        self.register_buffer("pe", sinusoidal_table(max_len, d_model), persistent=False)  # (max_len, E)

    def forward(self, x: Tensor) -> Tensor:
        layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
        check_tensor("x", x, f"{layout} or (L, E)")
        if x.dim() not in (2, 3) or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape {layout} or (L, E) with E = d_model = {self.d_model}, "
                             f"but got shape {shape_str(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor (embeddings), but got dtype {x.dtype}; "
                            f"embed token indices first")
        seq_dim = 1 if (self.batch_first and x.dim() == 3) else 0
        L = x.shape[seq_dim]
        if L > self.max_len:
            raise ValueError(f"x has L = {L} positions but the table covers max_len = {self.max_len}; "
                             f"build PositionalEncoding with a larger max_len")
        pe = self.pe[:L].to(x.dtype)  # (L, E)
        if x.dim() == 3 and not self.batch_first:
            pe = pe.unsqueeze(1)  # (L, 1, E), broadcast over N
        return self.dropout(x + pe)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"
