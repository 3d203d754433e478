r"""Attention: scaled dot-product, additive (Bahdanau) and multi-head attention, and masks (C16-C22).

An attention layer lets every *query* look at all *keys* and take a weighted average of the matching
*values*, with weights that sum to one over the keys:

.. math::
    \text{Attention}(Q, K, V) = \text{softmax}\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V

``Q`` has one row per query position (``L`` of them), ``K`` and ``V`` one row per key position (``S`` of them).
``Q K^T`` is the ``(L, S)`` score matrix, dividing by ``sqrt(d_k)`` keeps the scores from growing with the
feature size, the mask ``M`` puts ``-inf`` where a query may not look, and the softmax runs over the keys
(the last dimension), so row ``i`` of the weight matrix says how much query ``i`` takes from each value.

What is here:

* :func:`scaled_dot_product_attention` — the formula above, the twin of
  :func:`torch.nn.functional.scaled_dot_product_attention`.
* :func:`attention_weights` — the softmax matrix itself, for plots.
* :func:`causal_mask` — the "no peeking at the future" mask for language models and decoders.
* :class:`AdditiveAttention` — Bahdanau's score ``v^T tanh(W_q q + W_k k)`` for RNN encoder-decoders (C16).
* :class:`MultiheadAttention` — ``h`` heads of scaled dot-product attention on learned projections, then an
  output projection (C22), the twin of :class:`torch.nn.MultiheadAttention`.

Mask conventions
----------------
**torch uses two opposite meanings for a boolean mask, and seqlib mirrors each one where its torch twin uses
it.** Read the name of the argument before building a mask:

==========================================================  ======================  ==========================
where                                                       ``True`` in a bool mask  a float mask is
==========================================================  ======================  ==========================
``scaled_dot_product_attention(attn_mask=...)``,             **may attend** (keep)   added to the scores
``attention_weights(attn_mask=...)``, ``causal_mask()``
``MultiheadAttention(attn_mask=..., key_padding_mask=...)``  **masked out** (ignore) added to the scores
``Transformer*`` ``*_mask`` and ``*_key_padding_mask``       **masked out** (ignore) added to the scores
``AdditiveAttention(key_padding_mask=...)``                  **masked out** (padding) (bool only)
==========================================================  ======================  ==========================

So the same causal pattern is written two ways:

* for :func:`scaled_dot_product_attention`: ``causal_mask(L)`` — ``True`` on and below the diagonal (keep);
* for :class:`MultiheadAttention` and the Transformer layers: ``~causal_mask(L)`` — ``True`` above the diagonal
  (hide), or the float mask ``Transformer.generate_square_subsequent_mask(L)`` — ``-inf`` above the diagonal,
  ``0`` elsewhere. A float mask means the same thing everywhere: it is *added* to the scores, so ``0`` keeps a
  position and ``-inf`` removes it.

A *key padding mask* ``(N, S)`` marks padded key positions of each sequence in a batch (``True`` = padding,
ignore it); it is the same for every query. An *attention mask* ``(L, S)`` (or one per batch entry and head)
says which query may look at which key.

Fully masked rows. If every key of a query is masked, the softmax would divide zero by zero. Like torch 2.13's
:func:`~torch.nn.functional.scaled_dot_product_attention`, seqlib's returns **zeros** for such a row (weights
and output), and its gradient there is zero. :class:`MultiheadAttention` mirrors torch exactly: with
``need_weights=False`` it goes through scaled dot-product attention (zeros); with ``need_weights=True`` torch
computes the weights with a plain softmax and the row comes out as **NaN** (and so does the output at that
query) — seqlib does the same, so a fully masked query shows up in plots instead of hiding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_positive_int, check_probability, check_rank, check_tensor, shape_str

__all__ = [
    "scaled_dot_product_attention",
    "attention_weights",
    "causal_mask",
    "AdditiveAttention",
    "MultiheadAttention",
]

_NEG_INF = float("-inf")


# ----------------------------------------------------------------------------------------------------------------
# masks
# ----------------------------------------------------------------------------------------------------------------


def causal_mask(L: int, S: int | None = None, *, device: torch.device | str | None = None) -> Tensor:
    r"""The causal ("look only backwards") mask, ``True`` where query ``i`` **may attend** to key ``j``.

    .. math::
        \text{mask}[i, j] = (j \le i)

    It is the boolean ``attn_mask`` that :func:`scaled_dot_product_attention` expects (``True`` = may attend)
    and gives the same result as ``is_causal=True``. For :class:`MultiheadAttention` and the Transformer layers,
    where ``True`` means *masked out*, pass ``~causal_mask(L)`` instead (see "Mask conventions" in
    :mod:`seqlib.attention`).

    Alignment when ``S != L``: the mask is aligned at the **top-left**, as torch's ``is_causal=True``: query ``i``
    sees keys ``0..i`` (``torch.ones(L, S).tril()``). With ``S > L`` the keys ``L..S-1`` are seen by no query;
    with ``S < L`` the queries ``i >= S - 1`` see every key. (When the ``L``
    queries are the *last* ``L`` of ``S`` positions — decoding with a cache — the bottom-right alignment
    ``causal_mask(S)[-L:]`` is the one you want.)

    Args:
        L: number of query positions (target length).
        S: number of key positions (source length). Default: ``L``.
        device: where to create the mask.

    Returns:
        A ``torch.bool`` tensor of shape ``(L, S)``.

    Examples::

        >>> causal_mask(3).int()
        tensor([[1, 0, 0],
                [1, 1, 0],
                [1, 1, 1]], dtype=torch.int32)
    """
    check_positive_int("L", L)
    S = L if S is None else check_positive_int("S", S)
    return torch.ones(L, S, dtype=torch.bool, device=device).tril_()  # (L, S)


def _check_mask_dtype(name: str, mask: Tensor, expected: str) -> None:
    check_tensor(name, mask, expected)
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(
            f"{name} must be a bool tensor or a float tensor (added to the scores), but got dtype {mask.dtype}; "
            f"convert it, e.g. {name}.bool()"
        )


# ----------------------------------------------------------------------------------------------------------------
# scaled dot-product attention
# ----------------------------------------------------------------------------------------------------------------


def _check_sdpa_inputs(query: Tensor, key: Tensor, value: Tensor | None, attn_mask: Tensor | None,
                       is_causal: bool) -> torch.Size:
    """Validate the inputs; return the broadcast score shape ``(..., L, S)``."""
    check_tensor("query", query, "(..., L, E)")
    check_tensor("key", key, "(..., S, E)")
    for name, t, sym in (("query", query, "(..., L, E)"), ("key", key, "(..., S, E)")):
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape {sym} (at least 2-D), but got shape {shape_str(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, but got dtype {t.dtype}")
    if key.dtype != query.dtype:
        raise TypeError(f"key has dtype {key.dtype} but query has dtype {query.dtype}; they must match")
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(
            f"key must have shape (..., S, E) with E = query.size(-1) = {query.shape[-1]}, "
            f"but got shape {shape_str(key.shape)} (E = {key.shape[-1]})"
        )
    batch_shapes = [query.shape[:-2], key.shape[:-2]]
    if value is not None:
        check_tensor("value", value, "(..., S, E_v)")
        if value.dim() < 2:
            raise ValueError(f"value must have shape (..., S, E_v) (at least 2-D), but got {shape_str(value.shape)}")
        if value.dtype != query.dtype:
            raise TypeError(f"value has dtype {value.dtype} but query has dtype {query.dtype}; they must match")
        if value.shape[-2] != key.shape[-2]:
            raise ValueError(
                f"value must have shape (..., S, E_v) with S = key.size(-2) = {key.shape[-2]}, "
                f"but got shape {shape_str(value.shape)} (S = {value.shape[-2]})"
            )
        batch_shapes.append(value.shape[:-2])
    try:
        batch = torch.broadcast_shapes(*batch_shapes)
    except RuntimeError:
        raise ValueError(
            "the leading (batch, head) dimensions of query, key and value must broadcast, but got "
            + ", ".join(shape_str(s) for s in batch_shapes)
        ) from None
    score_shape = torch.Size((*batch, query.shape[-2], key.shape[-2]))
    if attn_mask is not None:
        _check_mask_dtype("attn_mask", attn_mask, "(..., L, S)")
        if is_causal:
            raise ValueError(
                "pass either attn_mask or is_causal=True, not both (as torch documents); "
                "causal_mask(L, S) & attn_mask combines the two"
            )
        try:
            ok = torch.broadcast_shapes(attn_mask.shape, score_shape) == score_shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"attn_mask must broadcast to the score shape (..., L, S) = {shape_str(score_shape)}, "
                f"but got shape {shape_str(attn_mask.shape)}"
            )
    return score_shape


def _additive(mask: Tensor, dtype: torch.dtype, hide: bool) -> Tensor:
    """A mask as numbers added to the scores: ``0`` keeps a position, ``-inf`` hides it.

    A bool mask hides where it equals ``hide`` (``False`` for scaled_dot_product_attention's keep-mask, ``True``
    for torch.nn's masked-out convention); a float mask is already additive and only takes ``dtype``.
    """
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    hidden = mask if hide else mask.logical_not()
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(hidden, _NEG_INF)


def _causal_additive(L: int, S: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``-inf`` where key ``j`` lies in the future of query ``i`` (``j > i``), ``0`` elsewhere: ``(L, S)``."""
    return torch.full((L, S), _NEG_INF, dtype=dtype, device=device).triu_(1)


def _softmax_over_keys(scores: Tensor, fully_masked: Tensor | None) -> Tensor:
    """Softmax over the last dimension; rows marked in ``fully_masked`` (``True``, shape ``(..., L, 1)``) become
    zeros instead of NaN, as torch's scaled_dot_product_attention does."""
    if fully_masked is not None and bool(fully_masked.any()):
        # exp(-inf - (-inf)) is NaN: give those rows finite scores, then zero their weights, so that the
        # backward pass (which uses the softmax output) sees zeros instead of NaNs
        scores = scores.masked_fill_(fully_masked, 0.0)
        return torch.softmax(scores, dim=-1).masked_fill(fully_masked, 0.0)
    return torch.softmax(scores, dim=-1)


def _attention_core(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float, dropout_p: float = 0.0,
                    zero_fully_masked: bool = True) -> tuple[Tensor, Tensor]:
    r"""Scaled dot-product attention on 3-D tensors, the computation shared by every attention here.

    ``q`` :math:`(B, L, E)`, ``k`` :math:`(B, S, E)`, ``v`` :math:`(B, S, E_v)`; ``mask``: ``None`` or an additive
    float mask broadcastable to :math:`(B, L, S)` with at most 3 dimensions. Returns the output
    :math:`(B, L, E_v)` and the weights :math:`(B, L, S)` that multiplied the values (after dropout, which is
    what torch's MultiheadAttention returns too).

    ``zero_fully_masked``: rows whose keys are all ``-inf`` give zeros (scaled_dot_product_attention) instead of
    NaN (a plain softmax, as torch's MultiheadAttention with ``need_weights=True``).
    """
    k_t = k.transpose(1, 2)  # (B, E, S)
    # scores = mask + scale * q k^T as one batched matrix product (baddbmm = "batch add batch matmul")
    if mask is None:
        scores = torch.baddbmm(q.new_zeros(()), q, k_t, beta=0.0, alpha=scale)  # (B, L, S)
    else:
        scores = torch.baddbmm(mask, q, k_t, alpha=scale)  # (B, L, S)
    fully_masked = None
    if zero_fully_masked and mask is not None:
        fully_masked = (mask == _NEG_INF).all(dim=-1, keepdim=True)  # (.., L|1, 1)
    weights = _softmax_over_keys(scores, fully_masked)  # (B, L, S): each row sums to 1 over the keys
    attn = F.dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights
    return attn @ v, attn  # (B, L, E_v), (B, L, S)


def _flat_attention(query: Tensor, key: Tensor, value: Tensor | None, attn_mask: Tensor | None, is_causal: bool,
                    scale: float | None, dropout_p: float, score_shape: torch.Size) -> tuple[Tensor, Tensor]:
    """Broadcast the leading dimensions, flatten them into one batch dimension and call the core."""
    *batch, L, S = score_shape
    E = query.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(E)
    q = query.expand(*batch, L, E).reshape(-1, L, E)  # (B, L, E)
    k = key.expand(*batch, S, E).reshape(-1, S, E)  # (B, S, E)
    if value is None:  # attention_weights: any value will do
        v = k.new_zeros(1, S, 1).expand(k.shape[0], S, 1)
    else:
        v = value.expand(*batch, S, value.shape[-1]).reshape(-1, S, value.shape[-1])  # (B, S, E_v)
    mask = None
    if is_causal:
        mask = _causal_additive(L, S, q.dtype, q.device)  # (L, S)
    elif attn_mask is not None:
        mask = _additive(attn_mask, q.dtype, hide=False)  # broadcastable to (*batch, L, S)
        lead = mask.shape[:-2]
        if any(d != 1 for d in lead):
            mask = mask.expand(*batch, *mask.shape[-2:]).reshape(-1, *mask.shape[-2:])  # (B, L|1, S|1)
        else:
            mask = mask.reshape(mask.shape[-2:])  # (L|1, S|1), shared by the whole batch
    out, weights = _attention_core(q, k, v, mask, scale, dropout_p)
    return out, weights


def attention_weights(query: Tensor, key: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False,
                      scale: float | None = None) -> Tensor:
    r"""The attention weight matrix :math:`\text{softmax}(Q K^\top / \sqrt{E} + M)`, for plots.

    Same arguments and mask convention as :func:`scaled_dot_product_attention` (bool ``attn_mask``:
    ``True`` = **may attend**; float: added to the scores), without the values. Each row sums to one over the
    keys, except fully masked rows, which are all zeros.

    Args:
        query: :math:`(..., L, E)`.
        key: :math:`(..., S, E)`.
        attn_mask: bool or float, broadcastable to :math:`(..., L, S)`.
        is_causal: apply :func:`causal_mask` ``(L, S)``; not together with ``attn_mask``.
        scale: the factor applied to the scores. Default: :math:`1/\sqrt{E}`.

    Returns:
        Weights of shape :math:`(..., L, S)` (leading dimensions broadcast).
    """
    score_shape = _check_sdpa_inputs(query, key, None, attn_mask, is_causal)
    _, weights = _flat_attention(query, key, None, attn_mask, is_causal, scale, 0.0, score_shape)
    return weights.view(score_shape)  # (..., L, S)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    r"""Scaled dot-product attention, the twin of :func:`torch.nn.functional.scaled_dot_product_attention`.

    .. math::
        \text{scores} = \frac{Q K^\top}{\sqrt{E}} + M, \qquad
        A = \text{softmax}_{\text{keys}}(\text{scores}), \qquad \text{out} = \text{dropout}(A)\, V

    Args:
        query: :math:`(..., L, E)` — one row per query position.
        key: :math:`(..., S, E)` — one row per key position.
        value: :math:`(..., S, E_v)` — one row per key position.
        attn_mask: optional mask broadcastable to :math:`(..., L, S)`. **Bool: ``True`` = may attend** (``False``
            positions get ``-inf`` before the softmax). Float: added to the scores (``0`` keep, ``-inf`` drop).
            This is the *opposite* bool convention of :class:`MultiheadAttention`; see "Mask conventions" in
            :mod:`seqlib.attention`.
        dropout_p: dropout probability on the weights :math:`A`. Applied whenever ``> 0`` (a function has no
            train/eval mode: pass ``0.0`` when evaluating).
        is_causal: mask out the future, as ``attn_mask=causal_mask(L, S)`` (top-left aligned). Giving both
            ``attn_mask`` and ``is_causal=True`` raises ``ValueError`` (torch documents it as an error).
        scale: factor applied to :math:`Q K^\top`. Default: :math:`1/\sqrt{E}`.

    Returns:
        Output of shape :math:`(..., L, E_v)`; the leading dimensions of query, key and value broadcast.
        A query whose keys are all masked gets a zero output row (as torch 2.13).

    Examples::

        >>> q, k, v = torch.randn(2, 4, 3, 8), torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 6)  # (N, h, ., .)
        >>> scaled_dot_product_attention(q, k, v).shape
        torch.Size([2, 4, 3, 6])
    """
    score_shape = _check_sdpa_inputs(query, key, value, attn_mask, is_causal)
    check_probability("dropout_p", dropout_p)
    out, _ = _flat_attention(query, key, value, attn_mask, is_causal, scale, dropout_p, score_shape)
    return out.view(*score_shape[:-1], value.shape[-1])  # (..., L, E_v)


# ----------------------------------------------------------------------------------------------------------------
# additive (Bahdanau) attention
# ----------------------------------------------------------------------------------------------------------------


class AdditiveAttention(nn.Module):
    r"""Additive attention (Bahdanau et al., 2015), the attention of RNN encoder-decoders (C16).

    A small feed-forward network scores every (query, key) pair; the softmax over the keys turns the scores
    into weights, and the context is the weighted average of the values:

    .. math::
        e_{ij} = v^\top \tanh(W_q\, q_i + W_k\, k_j), \qquad
        \alpha_{ij} = \frac{\exp(e_{ij})}{\sum_{j'} \exp(e_{ij'})}, \qquad
        c_i = \sum_j \alpha_{ij}\, v_j

    In a decoder, the query is the decoder state and the keys and values are the encoder outputs, so at every
    output step the decoder looks again at the whole input instead of one fixed-length summary vector.

    There is no torch.nn twin; the parameters are three bias-free linear maps.

    Args:
        query_size: features of a query, :math:`H_q`.
        key_size: features of a key, :math:`H_k`.
        hidden_size: size :math:`A` of the hidden layer inside the score.

    Attributes:
        query_proj: :math:`W_q`, an ``nn.Linear(H_q, A, bias=False)`` (weight ``(A, H_q)``).
        key_proj: :math:`W_k`, an ``nn.Linear(H_k, A, bias=False)`` (weight ``(A, H_k)``).
        v: :math:`v^\top`, an ``nn.Linear(A, 1, bias=False)`` (weight ``(1, A)``).

    Inputs: query, keys, values, key_padding_mask=None, projected_keys=None
        - **query**: :math:`(N, H_q)` (one query per sequence, e.g. the decoder state) or :math:`(N, L, H_q)`.
        - **keys**: :math:`(N, S, H_k)`.
        - **values**: :math:`(N, S, H_v)` (often the same tensor as ``keys``).
        - **key_padding_mask**: optional bool :math:`(N, S)`, **``True`` = padded key, masked out** (the
          torch.nn convention for padding masks). Every row should keep at least one key; a row with all keys
          padded gets zero weights and a zero context.
        - **projected_keys**: optional :math:`(N, S, A)`, ``key_proj(keys)`` computed once by the caller, so that a
          step-by-step decoder does not project the same keys at every step.

    Outputs: (context, weights)
        - **context**: :math:`(N, H_v)` for a 2-D query, else :math:`(N, L, H_v)`.
        - **weights**: :math:`(N, S)` for a 2-D query, else :math:`(N, L, S)`; rows sum to one.

    Examples::

        >>> attn = AdditiveAttention(query_size=16, key_size=32, hidden_size=8)
        >>> context, weights = attn(torch.randn(4, 16), torch.randn(4, 7, 32), torch.randn(4, 7, 32))
        >>> context.shape, weights.shape
        (torch.Size([4, 32]), torch.Size([4, 7]))
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.query_size = check_positive_int("query_size", query_size)
        self.key_size = check_positive_int("key_size", key_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.query_proj = nn.Linear(query_size, hidden_size, bias=False, **factory)
        self.key_proj = nn.Linear(key_size, hidden_size, bias=False, **factory)
        self.v = nn.Linear(hidden_size, 1, bias=False, **factory)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, key_padding_mask: Tensor | None = None,
                projected_keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_tensor("query", query, "(N, H_q) or (N, L, H_q)")
        check_tensor("keys", keys, "(N, S, H_k)")
        check_tensor("values", values, "(N, S, H_v)")
        check_rank("query", query, (2, 3), "(N, H_q) or (N, L, H_q)")
        check_rank("keys", keys, (3,), "(N, S, H_k)")
        check_rank("values", values, (3,), "(N, S, H_v)")
        N, S = keys.shape[0], keys.shape[1]
        if query.shape[-1] != self.query_size:
            raise ValueError(f"query must have H_q = query_size = {self.query_size} features, but got shape "
                             f"{shape_str(query.shape)}")
        if keys.shape[-1] != self.key_size:
            raise ValueError(f"keys must have shape (N, S, H_k) with H_k = key_size = {self.key_size}, but got "
                             f"{shape_str(keys.shape)}")
        if query.shape[0] != N or values.shape[:2] != keys.shape[:2]:
            raise ValueError(
                f"query (N, ...), keys (N, S, H_k) and values (N, S, H_v) must agree on N and S, but got "
                f"{shape_str(query.shape)}, {shape_str(keys.shape)} and {shape_str(values.shape)}"
            )
        single = query.dim() == 2
        if single:
            query = query.unsqueeze(1)  # (N, 1, H_q)
        if projected_keys is None:
            projected_keys = self.key_proj(keys)  # (N, S, A)
        elif projected_keys.shape != (N, S, self.hidden_size):
            raise ValueError(f"projected_keys must have shape (N, S, A) = {shape_str((N, S, self.hidden_size))}, "
                             f"but got {shape_str(projected_keys.shape)}")
        projected_query = self.query_proj(query)  # (N, L, A)
        features = torch.tanh(projected_query.unsqueeze(2) + projected_keys.unsqueeze(1))  # (N, L, S, A)
        scores = self.v(features).squeeze(-1)  # (N, L, S)
        fully_masked = None
        if key_padding_mask is not None:
            check_tensor("key_padding_mask", key_padding_mask, "(N, S)")
            if key_padding_mask.dtype != torch.bool:
                raise TypeError(f"key_padding_mask must be a bool tensor (True = padded), but got dtype "
                                f"{key_padding_mask.dtype}; build it e.g. as positions >= lengths[:, None]")
            if key_padding_mask.shape != (N, S):
                raise ValueError(f"key_padding_mask must have shape (N, S) = {shape_str((N, S))}, but got "
                                 f"{shape_str(key_padding_mask.shape)}")
            padded = key_padding_mask.unsqueeze(1)  # (N, 1, S)
            scores = scores.masked_fill(padded, _NEG_INF)
            fully_masked = padded.all(dim=-1, keepdim=True)  # (N, 1, 1)
        weights = _softmax_over_keys(scores, fully_masked)  # (N, L, S)
        context = weights @ values  # (N, L, H_v)
        if single:
            return context.squeeze(1), weights.squeeze(1)  # (N, H_v), (N, S)
        return context, weights


# ----------------------------------------------------------------------------------------------------------------
# multi-head attention
# ----------------------------------------------------------------------------------------------------------------


class MultiheadAttention(nn.Module):
    r"""Multi-head attention (Vaswani et al., 2017), the twin of :class:`torch.nn.MultiheadAttention` (C22).

    .. math::
        \text{MultiHead}(Q, K, V) = \text{Concat}(\text{head}_1, \dots, \text{head}_h)\, W^O, \qquad
        \text{head}_i = \text{Attention}(Q W_i^Q, K W_i^K, V W_i^V)

    The three input projections of all heads are stored stacked in one matrix, ``in_proj_weight`` of shape
    ``(3E, E)`` (rows ``0:E`` give the queries, ``E:2E`` the keys, ``2E:3E`` the values); the ``E`` projected
    features are then split into ``h`` heads of ``E/h`` features each. Each head runs scaled dot-product
    attention on its own slice, the heads are concatenated again and ``out_proj`` mixes them.

    Args:
        embed_dim: model size :math:`E` (features of the query and of the output).
        num_heads: number of heads :math:`h`; ``embed_dim`` must be divisible by it (head size :math:`E/h`).
        dropout: dropout probability on the attention weights (training mode only). Default: ``0.0``.
        bias: add biases to the input and output projections. Default: ``True``.
        add_bias_kv: append one learned key ``bias_k`` and value ``bias_v`` to every key/value sequence
            (``S`` grows by one). Default: ``False``.
        add_zero_attn: append one all-zero key and value per head (``S`` grows by one). Default: ``False``.
        kdim: features of the key, :math:`E_k`. Default: ``embed_dim``.
        vdim: features of the value, :math:`E_v`. Default: ``embed_dim``.
        batch_first: inputs and outputs are ``(N, L, E)`` instead of ``(L, N, E)``. Default: ``False``.

    Attributes:
        in_proj_weight: ``(3E, E)`` when ``kdim == vdim == embed_dim``; otherwise ``None`` and the separate
            ``q_proj_weight`` ``(E, E)``, ``k_proj_weight`` ``(E, E_k)``, ``v_proj_weight`` ``(E, E_v)`` are used.
        in_proj_bias: ``(3E,)`` or ``None`` when ``bias=False``.
        bias_k, bias_v: ``(1, 1, E)`` when ``add_bias_kv`` else ``None``.
        out_proj: an ``nn.Linear(E, E)``, :math:`W^O`.

        Initialisation as torch: Xavier-uniform input projections, zero ``in_proj_bias`` and ``out_proj.bias``,
        Xavier-normal ``bias_k``/``bias_v``, ``nn.Linear``'s default for ``out_proj.weight``. Created in torch's
        order, so ``torch.manual_seed(s)`` gives the same initial weights as ``torch.nn.MultiheadAttention``.

    Inputs: query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False
        - **query**: :math:`(L, N, E)`, :math:`(N, L, E)` with ``batch_first``, or unbatched :math:`(L, E)`.
        - **key**: :math:`(S, N, E_k)`, :math:`(N, S, E_k)` with ``batch_first``, or unbatched :math:`(S, E_k)`.
        - **value**: :math:`(S, N, E_v)`, :math:`(N, S, E_v)` with ``batch_first``, or unbatched :math:`(S, E_v)`.
        - **key_padding_mask**: :math:`(N, S)` (unbatched: :math:`(S)`). **Bool: ``True`` = padding, masked
          out.** Float: added to the scores.
        - **need_weights**: also return the attention weights. Default: ``True``.
        - **attn_mask**: :math:`(L, S)` or :math:`(N \cdot h, L, S)` (unbatched: :math:`(h, L, S)`), entry
          ``n * h + i`` for batch entry ``n`` and head ``i``. **Bool: ``True`` = masked out** (the opposite of
          :func:`scaled_dot_product_attention`). Float: added to the scores.
        - **average_attn_weights**: return the mean of the heads' weights instead of each head's.
        - **is_causal**: a *hint* that ``attn_mask`` is the causal mask; as in torch, ``attn_mask`` must then be
          given too. As in torch, when there is no ``key_padding_mask`` and ``need_weights=False``, the hint wins:
          ``attn_mask`` is ignored and the causal mask of :func:`causal_mask` (``(L, S)``, top-left aligned) is
          used — the same thing when the hint is right. (With ``add_bias_kv``/``add_zero_attn`` that mask hides the
          extra key from all but the last queries, as torch's does.)

        A bool and a float mask may be combined (the bool one becomes ``0``/``-inf``); both are added.

    Outputs: (attn_output, attn_output_weights)
        - **attn_output**: :math:`(L, N, E)`, :math:`(N, L, E)` with ``batch_first``, or :math:`(L, E)`.
        - **attn_output_weights**: ``None`` when ``need_weights=False``; else :math:`(N, L, S)` (unbatched
          :math:`(L, S)`) averaged over heads, or :math:`(N, h, L, S)` (unbatched :math:`(h, L, S)`) with
          ``average_attn_weights=False``. ``S`` counts the extra key of ``add_bias_kv``/``add_zero_attn``.
          In training mode with ``dropout > 0`` these are the weights after dropout (as torch), i.e. the ones
          that multiplied the values; call ``.eval()`` for plots.

    A query whose keys are all masked gives NaN weights and output with ``need_weights=True`` and zeros with
    ``need_weights=False``, exactly as torch (see "Mask conventions" in :mod:`seqlib.attention`).

    Examples::

        >>> mha = MultiheadAttention(embed_dim=16, num_heads=4, batch_first=True)
        >>> x = torch.randn(2, 5, 16)  # (N, L, E)
        >>> out, w = mha(x, x, x, attn_mask=~causal_mask(5))  # True = masked out here
        >>> out.shape, w.shape
        (torch.Size([2, 5, 16]), torch.Size([2, 5, 5]))
    """

    __constants__ = ["batch_first"]

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_positive_int("embed_dim", embed_dim)
        check_positive_int("num_heads", num_heads)
        if embed_dim % num_heads != 0:
            divisors = [h for h in range(1, embed_dim + 1) if embed_dim % h == 0]
            raise ValueError(
                f"embed_dim must be divisible by num_heads (each head gets embed_dim // num_heads features), "
                f"but got embed_dim={embed_dim} and num_heads={num_heads}; "
                f"num_heads could be one of {divisors}"
            )
        self.kdim = embed_dim if kdim is None else check_positive_int("kdim", kdim)
        self.vdim = embed_dim if vdim is None else check_positive_int("vdim", vdim)
        factory = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = check_probability("dropout", dropout)
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        # parameters registered in torch's order, so that seeded initialisation matches draw for draw
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))  # (3E, E)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **factory))  # (E, E)
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim, **factory))  # (E, E_k)
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim, **factory))  # (E, E_v)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory))  # (3E,)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, embed_dim, **factory))
            self.bias_v = nn.Parameter(torch.empty(1, 1, embed_dim, **factory))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            nn.init.xavier_uniform_(self.q_proj_weight)
            nn.init.xavier_uniform_(self.k_proj_weight)
            nn.init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.constant_(self.in_proj_bias, 0.0)
            nn.init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            nn.init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            nn.init.xavier_normal_(self.bias_v)

    # -- checks ---------------------------------------------------------------------------------------------------

    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None,
                      attn_mask: Tensor | None, is_causal: bool) -> bool:
        """Validate shapes and dtypes; return whether the input is batched."""
        seq = "(N, L, E)" if self.batch_first else "(L, N, E)"
        check_tensor("query", query, f"{seq} or (L, E)")
        check_tensor("key", key, "like query, with E_k features")
        check_tensor("value", value, "like query, with E_v features")
        check_rank("query", query, (2, 3), f"{seq} (batched) or (L, E) (unbatched)")
        is_batched = query.dim() == 3
        for name, t in (("key", key), ("value", value)):
            if t.dim() != query.dim():
                kind = "batched" if is_batched else "unbatched"
                raise ValueError(f"{name} must be {query.dim()}-D like query ({kind}), "
                                 f"but got a {t.dim()}-D tensor of shape {shape_str(t.shape)}")
            if not t.is_floating_point():
                raise TypeError(f"{name} must be a floating-point tensor, but got dtype {t.dtype}")
        if not query.is_floating_point():
            raise TypeError(f"query must be a floating-point tensor, but got dtype {query.dtype}")
        for name, t, size, sym in (("query", query, self.embed_dim, "E = embed_dim"),
                                   ("key", key, self.kdim, "E_k = kdim"), ("value", value, self.vdim, "E_v = vdim")):
            if t.shape[-1] != size:
                raise ValueError(f"{name} must have {sym} = {size} features in its last dimension, "
                                 f"but got shape {shape_str(t.shape)}")
        weight = self.in_proj_weight if self.in_proj_weight is not None else self.q_proj_weight
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.dtype != weight.dtype:
                raise TypeError(f"{name} has dtype {t.dtype} but the module's weights have dtype {weight.dtype}; "
                                f"convert one of them, e.g. {name}.to({weight.dtype}) or module.to({t.dtype})")
        if is_batched:
            b = 0 if self.batch_first else 1
            s = 1 - b
            N, L, S = query.shape[b], query.shape[s], key.shape[s]
            if key.shape[b] != N or value.shape[b] != N:
                raise ValueError(f"query, key and value must have the same batch size N, but got shapes "
                                 f"{shape_str(query.shape)}, {shape_str(key.shape)}, {shape_str(value.shape)} "
                                 f"(batch_first={self.batch_first})")
        else:
            N, L, S = 1, query.shape[0], key.shape[0]
        if value.shape[-2 if not is_batched else (1 if self.batch_first else 0)] != S:
            raise ValueError(f"key and value must have the same sequence length S, but got shapes "
                             f"{shape_str(key.shape)} and {shape_str(value.shape)}")
        if key_padding_mask is not None:
            expected = (N, S) if is_batched else (S,)
            sym = "(N, S)" if is_batched else "(S)"
            _check_mask_dtype("key_padding_mask", key_padding_mask, sym)
            if tuple(key_padding_mask.shape) != expected:
                raise ValueError(f"key_padding_mask must have shape {sym} = {shape_str(expected)} "
                                 f"(True = padded key), but got shape {shape_str(key_padding_mask.shape)}")
        if is_causal and attn_mask is None:
            raise ValueError(
                "is_causal=True is only a hint that attn_mask is causal, so attn_mask must be given too: "
                "pass attn_mask=Transformer.generate_square_subsequent_mask(L) (or ~causal_mask(L))"
            )
        if attn_mask is not None:
            h = self.num_heads
            allowed = [(L, S), (N * h, L, S)] if is_batched else [(L, S), (h, L, S)]
            sym = "(L, S) or (N*num_heads, L, S)" if is_batched else "(L, S) or (num_heads, L, S)"
            _check_mask_dtype("attn_mask", attn_mask, sym)
            if tuple(attn_mask.shape) not in allowed:
                raise ValueError(f"attn_mask must have shape {sym} = {' or '.join(shape_str(a) for a in allowed)} "
                                 f"(True = masked out), but got shape {shape_str(attn_mask.shape)}")
        return is_batched

    # -- forward --------------------------------------------------------------------------------------------------

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        is_batched = self._check_inputs(query, key, value, key_padding_mask, attn_mask, is_causal)
        same_qkv = query is key and key is value
        batch_first = self.batch_first or not is_batched
        if not is_batched:  # pretend to be a batch of one, batch first
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)  # (1, L, E)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)  # (1, S)
        E, h, hd = self.embed_dim, self.num_heads, self.head_dim
        N = query.shape[0] if batch_first else query.shape[1]

        # 1. project: q = query W_q^T + b_q, k = key W_k^T + b_k, v = value W_v^T + b_v, all heads at once,
        #    in the input's own layout ((N, L, E) or (L, N, E)), then split the E features into h heads of hd:
        #    (.., .., E) -> (N*h, L, hd), entry n*h + i being head i of batch entry n
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = self.in_proj_bias.chunk(3)  # (E,) each
        fused = same_qkv and self._qkv_same_embed_dim and self.bias_k is None
        if fused:  # self-attention: one matrix product for q, k and v, one copy into head layout
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)  # (.., .., 3E)
            q, k, v = self._heads(qkv, batch_first, parts=3).unbind(0)  # (N*h, L, hd) each
        else:
            if self._qkv_same_embed_dim:
                w_q, w_k, w_v = self.in_proj_weight.chunk(3)  # (E, E) each
            else:
                w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
            q, k, v = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
            if self.bias_k is not None and self.bias_v is not None:
                # one more learned key/value at the end of every sequence
                shape, seq_dim = ((N, 1, E), 1) if batch_first else ((1, N, E), 0)
                k = torch.cat([k, self.bias_k.expand(shape)], dim=seq_dim)  # S + 1 positions
                v = torch.cat([v, self.bias_v.expand(shape)], dim=seq_dim)
            q, k, v = (self._heads(t, batch_first)[0] for t in (q, k, v))  # (N*h, L|S, hd)
        if self.add_zero_attn:  # one more all-zero key/value per head
            zeros = k.new_zeros(N * h, 1, hd)
            k = torch.cat([k, zeros], dim=1)  # (N*h, S + 1, hd)
            v = torch.cat([v, zeros], dim=1)
        L, S = q.shape[1], k.shape[1]
        extra = S - (key.shape[1] if batch_first else key.shape[0])  # keys added by bias_kv / zero_attn

        # 2. masks, in torch.nn's convention (bool: True = masked out), as numbers added to the scores
        #    (0 keep, -inf hide), the extra keys never masked, merged into one mask broadcastable to (N*h, L, S)
        mask = None
        # torch's shortcut: with is_causal, no padding mask and no weights wanted, attn_mask is not applied but a
        # causal mask (L, S) aligned at the top left, built after bias_kv/zero_attn have lengthened S
        if is_causal and key_padding_mask is None and not need_weights:
            mask = _causal_additive(L, S, q.dtype, q.device)  # (L, S)
        elif attn_mask is not None:
            mask = F.pad(_additive(attn_mask, q.dtype, hide=True), (0, extra))  # (L, S) or (N*h, L, S)
        if key_padding_mask is not None:
            pad = F.pad(_additive(key_padding_mask, q.dtype, hide=True), (0, extra))  # (N, S)
            pad = pad.view(N, 1, 1, S).expand(N, h, 1, S).reshape(N * h, 1, S)  # the same for every head
            mask = pad if mask is None else mask + pad  # (N*h, 1 or L, S)

        # 3. scaled dot-product attention in every head (the heads are the batch dimension)
        dropout_p = self.dropout if self.training else 0.0
        # need_weights=True: a plain softmax, so a fully masked query gives NaN, as torch
        out, weights = _attention_core(q, k, v, mask, 1.0 / math.sqrt(hd), dropout_p,
                                       zero_fully_masked=not need_weights)  # (N*h, L, hd), (N*h, L, S)

        # 4. concatenate the heads and mix them: (N*h, L, hd) -> (.., .., E) -> out_proj
        if batch_first:
            out = out.view(N, h, L, hd).transpose(1, 2).reshape(N, L, E)  # (N, L, E)
        else:
            out = out.view(N, h, L, hd).permute(2, 0, 1, 3).reshape(L, N, E)  # (L, N, E)
        out = self.out_proj(out)
        if not is_batched:
            out = out.squeeze(0)  # (L, E)
        if not need_weights:
            return out, None
        weights = weights.view(N, h, L, S)  # (N, h, L, S)
        if average_attn_weights:
            weights = weights.mean(dim=1)  # (N, L, S)
        return out, (weights if is_batched else weights.squeeze(0))

    def _heads(self, t: Tensor, batch_first: bool, parts: int = 1) -> Tensor:
        """``(N, L, parts*E)`` (or ``(L, N, parts*E)``) -> ``(parts, N*h, L, hd)``, contiguous (one copy)."""
        h, hd = self.num_heads, self.head_dim
        if batch_first:
            N, L = t.shape[0], t.shape[1]
            t = t.view(N, L, parts, h, hd).permute(2, 0, 3, 1, 4)  # (parts, N, h, L, hd)
        else:
            L, N = t.shape[0], t.shape[1]
            t = t.view(L, N, parts, h, hd).permute(2, 1, 3, 0, 4)  # (parts, N, h, L, hd)
        return t.reshape(parts, N * h, L, hd)  # (parts, N*h, L, hd)
