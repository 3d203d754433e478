r"""The Transformer: encoder and decoder layers, their stacks, and the full encoder-decoder (C24-C26).

An **encoder layer** (C24) lets every position look at every other one, then transforms each position on its
own, each step wrapped in a residual connection ("add") and a layer norm ("norm"):

.. math::
    x &\leftarrow \text{LayerNorm}(x + \text{MultiHeadSelfAttention}(x)) \\
    x &\leftarrow \text{LayerNorm}(x + W_2\, \text{activation}(W_1 x + b_1) + b_2)

A **decoder layer** (C25) has three such steps: masked self-attention over the output produced so far (the
causal mask stops position ``t`` from seeing ``t+1, t+2, ...``), attention over the encoder's output
("memory": the queries come from the decoder, keys and values from the encoder), and the feed-forward network.

``norm_first=True`` gives the "pre-norm" variant used by GPT-2 and most modern models:
``x <- x + Sublayer(LayerNorm(x))``, which trains more stably in deep stacks.

Everything has torch.nn's signatures, defaults and submodule names (``self_attn``, ``multihead_attn``,
``linear1``, ``dropout``, ``linear2``, ``norm1..3``, ``dropout1..3``, ``layers.N``, ``norm``, ``encoder``,
``decoder``), so a ``state_dict`` moves between a seqlib model and its torch.nn twin both ways.

Masks follow torch.nn's convention here — **a bool mask is True where attention is NOT allowed** (the opposite
of :func:`seqlib.attention.scaled_dot_product_attention`); a float mask is added to the scores. The usual
causal mask is :meth:`Transformer.generate_square_subsequent_mask` (``-inf`` above the diagonal). See "Mask
conventions" in :mod:`seqlib.attention`.

**Padding and torch's "fast path".** In evaluation mode under ``torch.no_grad()`` with ``batch_first=True``
and a ``src_key_padding_mask``, ``torch.nn.TransformerEncoder`` (``enable_nested_tensor=True``, the default)
converts its input to a nested tensor and returns **zeros at padded positions** (before its final ``norm``).
seqlib never takes that shortcut: a padded position's output is computed like any other (it attends to the
non-padded keys), in training and evaluation alike. Outputs at *non-padded* positions agree; nothing
downstream should read padded positions anyway. ``enable_nested_tensor`` is accepted and ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_positive_int, check_probability, check_tensor, shape_str
from .attention import MultiheadAttention
from .normalization import LayerNorm

__all__ = [
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
    "Transformer",
]


def _get_activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise ValueError(f"activation must be 'relu', 'gelu' or a callable, but got {activation!r}")
    if not callable(activation):
        raise TypeError(f"activation must be 'relu', 'gelu' or a callable, but got {type(activation).__name__}")
    return activation


def _check_sequence(name: str, x: Tensor, d_model: int, batch_first: bool) -> None:
    layout = "(N, L, E)" if batch_first else "(L, N, E)"
    check_tensor(name, x, f"{layout} or (L, E)")
    if x.dim() not in (2, 3) or x.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape {layout} (batch_first={batch_first}) or unbatched (L, E), "
                         f"with E = d_model = {d_model}, but got shape {shape_str(x.shape)}")


def _generate_square_subsequent_mask(sz: int, device: torch.device | str | None = None,
                                     dtype: torch.dtype | None = None) -> Tensor:
    check_positive_int("sz", sz)
    return torch.full((sz, sz), float("-inf"), dtype=dtype, device=device).triu_(diagonal=1)  # (sz, sz)


def _detect_is_causal_mask(mask: Tensor | None, is_causal: bool | None, size: int) -> bool:
    """torch's rule: an explicit ``is_causal`` wins; with ``None``, check whether ``mask`` is the causal mask."""
    if is_causal is not None or mask is None:
        return bool(is_causal)
    if tuple(mask.shape) != (size, size):
        return False
    future = torch.ones(size, size, dtype=torch.bool, device=mask.device).triu_(1)  # (L, L), True above diagonal
    if mask.dtype == torch.bool:
        return bool((mask == future).all())
    return bool((mask == _generate_square_subsequent_mask(size, mask.device, mask.dtype)).all())


def _seq_len(x: Tensor, batch_first: bool) -> int:
    return x.shape[1] if (x.dim() == 3 and batch_first) else x.shape[0]


class TransformerEncoderLayer(nn.Module):
    r"""One encoder block: self-attention and a feed-forward network, each with add & norm (C24).

    The twin of :class:`torch.nn.TransformerEncoderLayer`. With ``norm_first=False`` (the original, "post-norm"):

    .. math::
        x &\leftarrow \text{norm1}(x + \text{dropout1}(\text{self\_attn}(x, x, x))) \\
        x &\leftarrow \text{norm2}(x + \text{dropout2}(\text{linear2}(\text{dropout}(
            \text{activation}(\text{linear1}(x))))))

    With ``norm_first=True`` ("pre-norm"): :math:`x \leftarrow x + \text{dropout1}(\text{self\_attn}(
    \text{norm1}(x)))`, then :math:`x \leftarrow x + \text{FF}(\text{norm2}(x))`.

    Args:
        d_model: features :math:`E` of the input.
        nhead: number of attention heads (must divide ``d_model``).
        dim_feedforward: hidden size of the feed-forward network. Default: ``2048``.
        dropout: dropout probability (attention weights and the three dropouts). Default: ``0.1``.
        activation: ``"relu"``, ``"gelu"`` or a callable. Default: :func:`torch.nn.functional.relu`.
        layer_norm_eps: ``eps`` of the layer norms. Default: ``1e-5``.
        batch_first: inputs are ``(N, L, E)`` instead of ``(L, N, E)``. Default: ``False``.
        norm_first: pre-norm instead of post-norm. Default: ``False``.
        bias: biases in the linear layers and the layer norms. Default: ``True``.

    Submodules: ``self_attn`` (:class:`~seqlib.attention.MultiheadAttention`), ``linear1`` ``(E -> F)``,
    ``dropout``, ``linear2`` ``(F -> E)``, ``norm1``, ``norm2`` (:class:`~seqlib.normalization.LayerNorm`),
    ``dropout1``, ``dropout2``.

    Inputs: src, src_mask=None, src_key_padding_mask=None, is_causal=False
        - **src**: :math:`(L, N, E)`, :math:`(N, L, E)` with ``batch_first``, or unbatched :math:`(L, E)`.
        - **src_mask**: :math:`(L, L)` or :math:`(N \cdot \text{nhead}, L, L)`; bool ``True`` = **not allowed**,
          or float (added).
        - **src_key_padding_mask**: :math:`(N, L)` (unbatched :math:`(L)`); bool ``True`` = **padding**, or float.
        - **is_causal**: hint that ``src_mask`` is the causal mask (``src_mask`` must then be given).

    Outputs: same shape as ``src``.
    """

    __constants__ = ["norm_first"]

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable[[Tensor], Tensor] = F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        check_positive_int("d_model", d_model)
        check_positive_int("dim_feedforward", dim_feedforward)
        check_probability("dropout", dropout)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            **factory)
        # position-wise feed-forward network
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = _get_activation(activation)

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        _check_sequence("src", src, self.self_attn.embed_dim, self.self_attn.batch_first)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None,
                  is_causal: bool = False) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerDecoderLayer(nn.Module):
    r"""One decoder block: masked self-attention, attention over the encoder output, feed-forward (C25).

    The twin of :class:`torch.nn.TransformerDecoderLayer`. With ``norm_first=False``:

    .. math::
        x &\leftarrow \text{norm1}(x + \text{dropout1}(\text{self\_attn}(x, x, x, \text{tgt\_mask}))) \\
        x &\leftarrow \text{norm2}(x + \text{dropout2}(\text{multihead\_attn}(x, m, m, \text{memory\_mask}))) \\
        x &\leftarrow \text{norm3}(x + \text{dropout3}(\text{linear2}(\text{dropout}(
            \text{activation}(\text{linear1}(x))))))

    where :math:`m` is the encoder output ("memory"). ``norm_first=True`` applies each norm to the sublayer's
    input instead (:math:`x \leftarrow x + \text{Sublayer}(\text{norm}(x))`).

    Args: as :class:`TransformerEncoderLayer`.

    Submodules: ``self_attn``, ``multihead_attn``, ``linear1``, ``dropout``, ``linear2``, ``norm1``, ``norm2``,
    ``norm3``, ``dropout1``, ``dropout2``, ``dropout3``.

    Inputs: tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False
        - **tgt**: :math:`(T, N, E)`, :math:`(N, T, E)` with ``batch_first``, or unbatched :math:`(T, E)`.
        - **memory**: :math:`(S, N, E)`, :math:`(N, S, E)` with ``batch_first``, or unbatched :math:`(S, E)`.
        - **tgt_mask**: :math:`(T, T)` or :math:`(N \cdot \text{nhead}, T, T)`, usually
          ``Transformer.generate_square_subsequent_mask(T)``; bool ``True`` = **not allowed**, or float (added).
        - **memory_mask**: :math:`(T, S)` or :math:`(N \cdot \text{nhead}, T, S)`.
        - **tgt_key_padding_mask**: :math:`(N, T)`; **memory_key_padding_mask**: :math:`(N, S)`; bool ``True`` =
          **padding**.
        - **tgt_is_causal**, **memory_is_causal**: hints that the corresponding mask is causal.

    Outputs: same shape as ``tgt``.
    """

    __constants__ = ["norm_first"]

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable[[Tensor], Tensor] = F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        check_positive_int("d_model", d_model)
        check_positive_int("dim_feedforward", dim_feedforward)
        check_probability("dropout", dropout)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias,
                                            **factory)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                                 bias=bias, **factory)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = _get_activation(activation)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None, memory_key_padding_mask: Tensor | None = None,
                tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Tensor:
        d_model, batch_first = self.self_attn.embed_dim, self.self_attn.batch_first
        _check_sequence("tgt", tgt, d_model, batch_first)
        _check_sequence("memory", memory, d_model, batch_first)
        if memory.dim() != tgt.dim():
            raise ValueError(f"memory must be {tgt.dim()}-D like tgt, but got shapes tgt {shape_str(tgt.shape)} "
                             f"and memory {shape_str(memory.shape)}")
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None,
                  is_causal: bool = False) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, is_causal=is_causal,
                           need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x: Tensor, mem: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None,
                   is_causal: bool = False) -> Tensor:
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                is_causal=is_causal, need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


def _get_clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


class TransformerEncoder(nn.Module):
    r"""A stack of ``num_layers`` encoder layers, optionally followed by a final norm (C24).

    The twin of :class:`torch.nn.TransformerEncoder`: ``encoder_layer`` is **deep-copied** ``num_layers``
    times (``layers.0``, ``layers.1``, ...), so all layers start with the *same* weights, as in torch;
    re-initialise them if you want them to differ.

    Args:
        encoder_layer: a :class:`TransformerEncoderLayer` to copy.
        num_layers: how many copies to stack.
        norm: optional module applied to the output (e.g. ``LayerNorm(d_model)``; needed with pre-norm layers).
        enable_nested_tensor: accepted for compatibility; seqlib never uses nested tensors (see the module
            docstring for what that changes at padded positions).
        mask_check: accepted for compatibility.

    Inputs: src, mask=None, src_key_padding_mask=None, is_causal=None
        - **src**: :math:`(S, N, E)`, :math:`(N, S, E)` with ``batch_first``, or :math:`(S, E)`.
        - **mask**: :math:`(S, S)` or :math:`(N \cdot \text{nhead}, S, S)`; bool ``True`` = **not allowed**.
        - **src_key_padding_mask**: :math:`(N, S)` (unbatched :math:`(S)`); bool ``True`` = **padding**.
        - **is_causal**: hint that ``mask`` is causal; ``None`` (default) detects it by comparing ``mask`` with
          :meth:`Transformer.generate_square_subsequent_mask`, as torch does.

    Outputs: same shape as ``src``.
    """

    __constants__ = ["norm"]

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: nn.Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        if not isinstance(encoder_layer, nn.Module):
            raise TypeError(f"encoder_layer must be a TransformerEncoderLayer, but got {type(encoder_layer).__name__}")
        check_positive_int("num_layers", num_layers)
        self.layers = _get_clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = False  # seqlib computes padded positions like any other
        self.mask_check = mask_check

    def forward(self, src: Tensor, mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        batch_first = self.layers[0].self_attn.batch_first
        check_tensor("src", src, "(S, N, E), (N, S, E) or (S, E)")
        is_causal = _detect_is_causal_mask(mask, is_causal, _seq_len(src, batch_first))
        output = src
        for mod in self.layers:
            output = mod(output, src_mask=mask, is_causal=is_causal, src_key_padding_mask=src_key_padding_mask)
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(nn.Module):
    r"""A stack of ``num_layers`` decoder layers, optionally followed by a final norm (C25).

    The twin of :class:`torch.nn.TransformerDecoder`; ``decoder_layer`` is deep-copied like in
    :class:`TransformerEncoder`.

    Args:
        decoder_layer: a :class:`TransformerDecoderLayer` to copy.
        num_layers: how many copies to stack.
        norm: optional module applied to the output.

    Inputs: tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False
        As :class:`TransformerDecoderLayer`; ``tgt_is_causal=None`` detects a causal ``tgt_mask`` as torch does.

    Outputs: same shape as ``tgt``.
    """

    __constants__ = ["norm"]

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        if not isinstance(decoder_layer, nn.Module):
            raise TypeError(f"decoder_layer must be a TransformerDecoderLayer, but got {type(decoder_layer).__name__}")
        check_positive_int("num_layers", num_layers)
        self.layers = _get_clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None, memory_key_padding_mask: Tensor | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        check_tensor("tgt", tgt, "(T, N, E), (N, T, E) or (T, E)")
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal,
                                               _seq_len(tgt, self.layers[0].self_attn.batch_first))
        output = tgt
        for mod in self.layers:
            output = mod(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                         tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                         tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(nn.Module):
    r"""The encoder-decoder Transformer of "Attention Is All You Need", the twin of :class:`torch.nn.Transformer`.

    ``src`` goes through the encoder (``encoder``: a :class:`TransformerEncoder` with a final
    :class:`~seqlib.normalization.LayerNorm`); its output, the *memory*, feeds the attention over the source in
    every decoder layer (``decoder``: a :class:`TransformerDecoder` with a final norm), which turns ``tgt``
    (the target so far, shifted right) into one output vector per target position. Embeddings, positional
    encodings and the final projection to the vocabulary are left to the user, as in torch. All weight matrices
    are re-initialised Xavier-uniform.

    Args:
        d_model: features of encoder and decoder inputs. Default: ``512``.
        nhead: attention heads. Default: ``8``.
        num_encoder_layers: Default: ``6``.
        num_decoder_layers: Default: ``6``.
        dim_feedforward: Default: ``2048``.
        dropout: Default: ``0.1``.
        activation: ``"relu"``, ``"gelu"`` or a callable. Default: relu.
        custom_encoder, custom_decoder: modules to use instead of the default stacks.
        layer_norm_eps: Default: ``1e-5``.
        batch_first: ``(N, L, E)`` instead of ``(L, N, E)``. Default: ``False``.
        norm_first: pre-norm layers. Default: ``False``.
        bias: biases in linear layers and layer norms. Default: ``True``.

    Inputs: src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
    tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
    memory_is_causal=False
        - **src**: :math:`(S, N, E)`, :math:`(N, S, E)` with ``batch_first``, or :math:`(S, E)`.
        - **tgt**: :math:`(T, N, E)`, :math:`(N, T, E)` with ``batch_first``, or :math:`(T, E)`.
        - **src_mask** :math:`(S, S)`, **tgt_mask** :math:`(T, T)`, **memory_mask** :math:`(T, S)` (or one per
          batch entry and head, :math:`(N \cdot \text{nhead}, \cdot, \cdot)`): bool ``True`` = **not allowed**
          (the opposite of ``scaled_dot_product_attention``), or float (added).
        - **src_key_padding_mask** :math:`(N, S)`, **tgt_key_padding_mask** :math:`(N, T)`,
          **memory_key_padding_mask** :math:`(N, S)`: bool ``True`` = **padding**.

    Outputs: :math:`(T, N, E)`, :math:`(N, T, E)` with ``batch_first``, or :math:`(T, E)`.

    Examples::

        >>> model = Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
        ...                     dim_feedforward=32, batch_first=True)
        >>> src, tgt = torch.randn(3, 7, 16), torch.randn(3, 5, 16)  # (N, S, E), (N, T, E)
        >>> model(src, tgt, tgt_mask=Transformer.generate_square_subsequent_mask(5)).shape
        torch.Size([3, 5, 16])
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable[[Tensor], Tensor] = F.relu, custom_encoder: nn.Module | None = None,
                 custom_decoder: nn.Module | None = None, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            encoder_layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                                    layer_norm_eps, batch_first, norm_first, bias, **factory)
            encoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
            self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            decoder_layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                                    layer_norm_eps, batch_first, norm_first, bias, **factory)
            decoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
            self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, decoder_norm)
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Tensor | None = None, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None, memory_key_padding_mask: Tensor | None = None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        _check_sequence("src", src, self.d_model, self.batch_first)
        _check_sequence("tgt", tgt, self.d_model, self.batch_first)
        if src.dim() != tgt.dim():
            raise ValueError(f"src and tgt must both be batched (3-D) or both unbatched (2-D), but got shapes "
                             f"{shape_str(src.shape)} and {shape_str(tgt.shape)}")
        b = 0 if self.batch_first else 1
        if src.dim() == 3 and src.shape[b] != tgt.shape[b]:
            raise ValueError(f"src and tgt must have the same batch size N (dimension {b} with "
                             f"batch_first={self.batch_first}), but got shapes {shape_str(src.shape)} and "
                             f"{shape_str(tgt.shape)}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: torch.device | str | None = None,
                                        dtype: torch.dtype | None = None) -> Tensor:
        r"""The float causal mask ``(sz, sz)``: ``-inf`` above the diagonal (the future), ``0.0`` elsewhere.

        In torch.nn's convention for ``tgt_mask``/``attn_mask`` (a float mask is added to the scores). Its bool
        equivalent there is ``~causal_mask(sz)``; for ``scaled_dot_product_attention`` use ``causal_mask(sz)``.
        """
        return _generate_square_subsequent_mask(sz, device=device, dtype=dtype)

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
