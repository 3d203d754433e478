"""Embedding: a learnable lookup table from token index to a fixed-size vector (concept C04).

A vocabulary gives every token an index (``"hallo" -> 0``, ``"wie" -> 1``, ...). A neural network needs numbers it
can learn, so each index selects one row of a weight matrix ``W`` of shape ``(num_embeddings, embedding_dim)``:
``embed(i) = W[i]``. Looking a row up is the same as multiplying a one-hot vector by ``W``, without building the
one-hot vector. The rows are ordinary parameters, trained by backpropagation like any other weight.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import check_positive_int, check_tensor

__all__ = ["Embedding"]


class Embedding(nn.Module):
    r"""A lookup table that maps each index to a learnable vector, the twin of :class:`torch.nn.Embedding`.

    .. math::
        \text{out}[\dots, :] = W[\text{input}[\dots], :]

    Args:
        num_embeddings: size of the vocabulary ``V`` (number of rows of ``weight``).
        embedding_dim: size ``E`` of each embedding vector.
        padding_idx: if given, row ``padding_idx`` is initialised to zeros and receives no gradient, so the
            ``<pad>`` token stays a zero vector during training. Negative values count from the end, as in torch
            (``-1`` is the last row).
        max_norm: if given, every row that is looked up and whose ``norm_type``-norm exceeds ``max_norm`` is
            rescaled in place to norm ``max_norm`` before the lookup.
        norm_type: the ``p`` of the p-norm used with ``max_norm``. Default: ``2.0``.
        scale_grad_by_freq: if ``True``, each row's gradient is divided by how often its index occurs in the
            mini-batch.
        sparse: must be ``False`` (sparse gradients are not part of this course).
        _weight: an initial ``(V, E)`` weight to use instead of a random draw (see :meth:`from_pretrained`).
        _freeze: with ``_weight``, whether the weight is frozen (``requires_grad=False``).

    Attributes:
        weight: the learnable table of shape ``(num_embeddings, embedding_dim)``, initialised from
            :math:`\mathcal{N}(0, 1)` (with a zero row at ``padding_idx``).

    Inputs: input
        - **input**: integer tensor of indices of any shape ``(*)``, each in ``[0, num_embeddings)``.

    Outputs: output
        - **output**: tensor of shape ``(*, E)``.

    Examples::

        >>> emb = Embedding(10, 3, padding_idx=0)
        >>> emb(torch.tensor([[1, 2, 0], [4, 3, 9]])).shape
        torch.Size([2, 3, 3])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Tensor | None = None,
        _freeze: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("num_embeddings", num_embeddings)
        check_positive_int("embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not isinstance(padding_idx, int) or isinstance(padding_idx, bool):
                raise TypeError(f"padding_idx must be an int or None, but got {type(padding_idx).__name__}")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"padding_idx must be in [-num_embeddings, num_embeddings) = [{-num_embeddings}, "
                    f"{num_embeddings}), but got {padding_idx}"
                )
            if padding_idx < 0:
                padding_idx = num_embeddings + padding_idx  # -1 is the last row, as in torch
        if max_norm is not None and (not isinstance(max_norm, int | float) or max_norm <= 0):
            raise ValueError(f"max_norm must be a positive number or None, but got {max_norm!r}")
        if sparse:
            raise ValueError("sparse=True is not supported: seqlib.Embedding produces dense gradients only")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = bool(scale_grad_by_freq)
        self.sparse = False
        if _weight is None:
            self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim, device=device, dtype=dtype))
            self.reset_parameters()
        else:
            check_tensor("_weight", _weight, "(num_embeddings, embedding_dim)")
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"_weight must have shape (num_embeddings, embedding_dim) = ({num_embeddings}, {embedding_dim}), "
                    f"but got shape {tuple(_weight.shape)}"
                )
            self.weight = nn.Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        """Draw every row from N(0, 1), then zero the padding row."""
        nn.init.normal_(self.weight)
        if self.padding_idx is not None:
            with torch.no_grad():
                self.weight[self.padding_idx].fill_(0)

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """Build an Embedding from a given ``(V, E)`` weight, frozen by default (as ``torch.nn.Embedding``)."""
        check_tensor("embeddings", embeddings, "(V, E)")
        if embeddings.dim() != 2:
            raise ValueError(
                f"embeddings must have shape (V, E) (2-D), but got a {embeddings.dim()}-D tensor "
                f"of shape {tuple(embeddings.shape)}"
            )
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=embeddings, _freeze=freeze)

    def _check_indices(self, input: Tensor) -> None:
        check_tensor("input", input, "(*) of integer indices")
        if input.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(
                f"input must be an integer tensor of indices of shape (*) (e.g. dtype torch.int64), but got dtype "
                f"{input.dtype}; token indices come from a Vocab, e.g. torch.tensor(vocab.encode(tokens))"
            )
        if input.numel() == 0:
            return
        lo, hi = int(input.min()), int(input.max())
        if lo < 0 or hi >= self.num_embeddings:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"input of shape (*) = {tuple(input.shape)} contains index {bad}, but every index must be in "
                f"[0, num_embeddings) = [0, {self.num_embeddings})"
            )

    def forward(self, input: Tensor) -> Tensor:
        self._check_indices(input)
        if self.max_norm is not None:
            self._renormalise_rows(input)
        out = self.weight[input]  # (*, E): one row per index
        grad_scale = None
        if self.padding_idx is not None:
            # the <pad> row is looked up but must not learn: its positions pass no gradient back
            grad_scale = (input != self.padding_idx).to(out.dtype)  # (*)
        if self.scale_grad_by_freq:
            counts = torch.bincount(input.reshape(-1).long(), minlength=self.num_embeddings)  # (V,)
            inv_freq = 1.0 / counts.to(out.dtype)[input.long()]  # (*)
            grad_scale = inv_freq if grad_scale is None else grad_scale * inv_freq
        if grad_scale is not None:
            # same values as out, gradient multiplied by grad_scale at every position
            scale = grad_scale.unsqueeze(-1)  # (*, 1)
            out = out.detach() + (out - out.detach()) * scale
        return out

    @torch.no_grad()
    def _renormalise_rows(self, input: Tensor) -> None:
        """Rescale (in place) each looked-up row whose norm exceeds ``max_norm``, as torch's ``max_norm`` does."""
        rows = torch.unique(input.reshape(-1).long())  # (U,)
        norms = self.weight[rows].norm(p=self.norm_type, dim=1)  # (U,)
        scale = torch.where(norms > self.max_norm, self.max_norm / (norms + 1e-7), torch.ones_like(norms))
        self.weight[rows] *= scale.unsqueeze(1)  # (U, 1) broadcast over E

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2.0:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        return s
