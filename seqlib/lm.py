r"""Language models and an attention encoder-decoder built from seqlib's layers (C16, C25, C28).

* :class:`TransformerLM` — a decoder-only ("GPT-style") Transformer: each position predicts the next token
  and may only look backwards (C28).
* :class:`RNNLM` — the same task with an LSTM, GRU or Elman RNN, for comparison (C08, C13).
* :class:`Seq2Seq` — an LSTM encoder and an LSTM decoder with additive (Bahdanau) attention (C16): at every
  output step the decoder looks at all encoder states, and the attention weights show where it looked.

All token tensors are **batch first**: ``idx`` is ``(B, T)`` of int64 token indices, logits are
``(B, T, V)`` with ``logits[b, t]`` the scores of the token that follows ``idx[b, :t + 1]``.

Sampling (``generate``): the last position's logits go through :func:`seqlib.sampling.sample_next_token`: divided
by ``temperature`` (below 1: sharper, above 1: flatter; ``0``: always the most likely token), optionally cut to
the ``top_k`` largest, turned into probabilities with a softmax and sampled with :func:`torch.multinomial`. Pass
a seeded :class:`torch.Generator` (on the model's device) for reproducible samples.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ._checks import (
    INT_DTYPES,
    check_choice,
    check_lengths,
    check_positive_int,
    check_probability,
    check_tensor,
    shape_str,
)
from .attention import AdditiveAttention, causal_mask
from .embedding import Embedding
from .normalization import LayerNorm
from .positional import PositionalEncoding
from .rnn import GRU, LSTM, RNN, LSTMCell
from .sampling import _check_options, sample_next_token
from .transformer import TransformerEncoderLayer

__all__ = ["TransformerLM", "RNNLM", "Seq2Seq"]


def _check_tokens(name: str, idx: object, expected: str, vocab_size: int, rank: int = 2) -> Tensor:
    """``idx`` must be an integer tensor of the given rank with values in ``[0, vocab_size)``."""
    check_tensor(name, idx, expected)
    assert isinstance(idx, Tensor)
    if idx.dtype not in INT_DTYPES:
        raise TypeError(f"{name} must hold integer token indices {expected} (dtype torch.int64), but got dtype "
                        f"{idx.dtype}; convert it with {name}.long()")
    if idx.dim() != rank:
        hint = f"; for a single sequence use {name}.unsqueeze(0)" if idx.dim() == rank - 1 else ""
        raise ValueError(f"{name} must have shape {expected}, but got a {idx.dim()}-D tensor of shape "
                         f"{shape_str(idx.shape)}{hint}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        raise ValueError(f"{name} must hold token indices in [0, {vocab_size}) (vocab_size = {vocab_size}), "
                         f"but got values from {int(idx.min())} to {int(idx.max())}")
    return idx


def _check_sampling(max_new_tokens: int, temperature: float, top_k: int | None) -> None:
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, but got {max_new_tokens!r}")
    _check_options(temperature, top_k, greedy=True)


class _EvalMode:
    """Context manager: eval mode and no gradients inside, the previous mode restored afterwards."""

    def __init__(self, module: nn.Module) -> None:
        self.module, self.was_training = module, module.training
        self.no_grad = torch.no_grad()

    def __enter__(self) -> None:
        self.module.eval()
        self.no_grad.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.no_grad.__exit__(*exc)
        self.module.train(self.was_training)


# ----------------------------------------------------------------------------------------------------------------
# decoder-only Transformer
# ----------------------------------------------------------------------------------------------------------------


class TransformerLM(nn.Module):
    r"""A decoder-only ("GPT-style") Transformer language model (C28).

    .. math::
        x_0 &= \text{token\_embedding}(idx) + PE \\
        x_{l} &= \text{Block}_l(x_{l-1}) \quad (l = 1..\text{num\_layers}) \\
        \text{logits} &= \text{head}(\text{norm}(x_L))

    Each block is a pre-norm :class:`~seqlib.transformer.TransformerEncoderLayer` (``norm_first=True``,
    GELU, as GPT-2) run with the causal mask, so position ``t`` attends only to positions ``0..t`` and its
    logits predict token ``t + 1`` from the tokens up to ``t``. (GPT calls this a decoder; without an encoder
    to attend to, it is an encoder layer with a causal mask.)

    Positions: the **sinusoidal** encoding of :class:`~seqlib.positional.PositionalEncoding` (C23), not the
    learned position embedding of GPT-1/2. It has no parameters, so a small model trained briefly on a laptop
    does not have to learn a table of ``context_length`` vectors, and it is exactly what the lecture derives.

    Args:
        vocab_size: number of tokens :math:`V`.
        d_model: width :math:`E` of the model.
        nhead: attention heads per layer (must divide ``d_model``).
        num_layers: number of blocks.
        context_length: the longest input, :math:`T_{max}`; :meth:`generate` crops its context to it.
        dim_feedforward: hidden size of each block's feed-forward network. Default: ``4 * d_model``.
        dropout: dropout after the positional encoding and inside the blocks. Default: ``0.1``.

    Submodules: ``token_embedding`` (:class:`~seqlib.embedding.Embedding` ``(V, E)``), ``pos_encoding``
    (:class:`~seqlib.positional.PositionalEncoding`, no parameters), ``layers`` (``nn.ModuleList`` of blocks),
    ``norm`` (final :class:`~seqlib.normalization.LayerNorm`), ``head`` (``nn.Linear(E, V)``). Initialisation:
    each submodule's default (embeddings :math:`\mathcal{N}(0, 1)`, torch's ``Linear`` and attention inits).

    Inputs: idx, return_attention=False
        - **idx**: int64 :math:`(B, T)` with :math:`T \le` ``context_length``.
        - **return_attention**: also return every layer's attention weights (for plots).

    Outputs: logits, or (logits, attention)
        - **logits**: :math:`(B, T, V)`.
        - **attention**: list of ``num_layers`` tensors :math:`(B, \text{nhead}, T, T)`; row ``t`` of a head
          shows how much position ``t`` took from each position ``0..t`` (zeros above the diagonal). Call
          ``.eval()`` first: in training mode these are the weights after attention dropout.

    Examples::

        >>> lm = TransformerLM(vocab_size=50, d_model=32, nhead=4, num_layers=2, context_length=16)
        >>> idx = torch.randint(0, 50, (3, 10))  # (B, T)
        >>> lm(idx).shape
        torch.Size([3, 10, 50])
        >>> lm.generate(idx, max_new_tokens=5).shape  # (B, T + 5)
        torch.Size([3, 15])
    """

    def __init__(self, vocab_size: int, d_model: int, nhead: int, num_layers: int, context_length: int,
                 dim_feedforward: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.d_model = check_positive_int("d_model", d_model)
        self.nhead = check_positive_int("nhead", nhead)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.context_length = check_positive_int("context_length", context_length)
        dim_feedforward = 4 * d_model if dim_feedforward is None else check_positive_int("dim_feedforward",
                                                                                          dim_feedforward)
        self.dim_feedforward = dim_feedforward
        self.dropout = check_probability("dropout", dropout)
        self.token_embedding = Embedding(vocab_size, d_model)
        self.pos_encoding = PositionalEncoding(d_model, max_len=context_length, dropout=dropout, batch_first=True)
        self.layers = nn.ModuleList([
            TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation="gelu", batch_first=True,
                                    norm_first=True)
            for _ in range(num_layers)
        ])
        self.norm = LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, idx: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        _check_tokens("idx", idx, "(B, T)", self.vocab_size)
        T = idx.shape[1]
        if T > self.context_length:
            raise ValueError(f"idx has T = {T} tokens but context_length = {self.context_length}; "
                             f"crop it, e.g. idx[:, -{self.context_length}:]")
        if T == 0:
            raise ValueError("idx must hold at least one token per sequence, but got shape "
                             f"{shape_str(idx.shape)}")
        x = self.pos_encoding(self.token_embedding(idx))  # (B, T, E)
        future = ~causal_mask(T, device=idx.device)  # (T, T), True = masked out (torch.nn's convention)
        attention = []
        for layer in self.layers:
            if not return_attention:
                x = layer(x, src_mask=future, is_causal=True)  # (B, T, E)
                continue
            # the same pre-norm block, written out to keep the attention weights
            h = layer.norm1(x)
            a, w = layer.self_attn(h, h, h, attn_mask=future, need_weights=True, average_attn_weights=False)
            x = x + layer.dropout1(a)
            x = x + layer._ff_block(layer.norm2(x))  # (B, T, E)
            attention.append(w)  # (B, nhead, T, T)
        logits = self.head(self.norm(x))  # (B, T, V)
        return (logits, attention) if return_attention else logits

    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        r"""Append ``max_new_tokens`` sampled tokens to each sequence of ``idx``.

        At every step only the last ``context_length`` tokens are fed to the model. Runs in eval mode without
        gradients (dropout off) and restores the previous mode afterwards.

        Args:
            idx: int64 :math:`(B, T)`, the prompts (any length :math:`T \ge 1`).
            max_new_tokens: how many tokens to add.
            temperature: divides the logits; ``0`` takes the most likely token (greedy). Default: ``1.0``.
            top_k: sample only among the ``top_k`` most likely tokens. Default: all.
            generator: a seeded :class:`torch.Generator` for reproducible samples.

        Returns:
            int64 :math:`(B, T + \text{max\_new\_tokens})`, the prompts followed by the samples.
        """
        _check_tokens("idx", idx, "(B, T)", self.vocab_size)
        _check_sampling(max_new_tokens, temperature, top_k)
        if idx.shape[1] == 0:
            raise ValueError("idx must hold at least one token per sequence to start from")
        with _EvalMode(self):
            for _ in range(max_new_tokens):
                logits = self(idx[:, -self.context_length:])[:, -1, :]  # (B, V): scores of the next token
                idx = torch.cat([idx, sample_next_token(logits, temperature, top_k, generator)], dim=1)  # (B, T + 1)
        return idx


# ----------------------------------------------------------------------------------------------------------------
# recurrent language model
# ----------------------------------------------------------------------------------------------------------------


class RNNLM(nn.Module):
    r"""A recurrent language model: embedding, a stack of RNN/LSTM/GRU layers, a linear head (C08, C13).

    .. math::
        e_t = \text{embedding}(idx_t), \qquad h_t = \text{RNN}(e_t, h_{t-1}), \qquad
        \text{logits}_t = \text{head}(h_t)

    The hidden state carries everything read so far, so there is no context limit: :meth:`generate` reads the
    prompt once and then feeds one token at a time.

    Args:
        vocab_size: number of tokens :math:`V`.
        embedding_dim: size :math:`E` of the token embeddings.
        hidden_size: size :math:`H` of the hidden state.
        num_layers: stacked recurrent layers. Default: ``1``.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` (tanh). Default: ``"lstm"``.
        dropout: dropout on the embeddings, between stacked layers and before the head. Default: ``0.0``.

    Submodules: ``embedding`` (:class:`~seqlib.embedding.Embedding`), ``rnn`` (:class:`~seqlib.rnn.LSTM`,
    :class:`~seqlib.rnn.GRU` or :class:`~seqlib.rnn.RNN`, ``batch_first=True``), ``dropout``, ``head``
    (``nn.Linear(H, V)``).

    Inputs: idx, hidden=None, return_hidden=False
        - **idx**: int64 :math:`(B, T)`.
        - **hidden**: the state to start from (as returned with ``return_hidden=True``): ``h`` of shape
          :math:`(\text{num\_layers}, B, H)`, or ``(h, c)`` for the LSTM. Default: zeros.
        - **return_hidden**: also return the final state.

    Outputs: logits, or (logits, hidden)
        - **logits**: :math:`(B, T, V)`.
        - **hidden**: the state after the last token (to continue from).

    Examples::

        >>> lm = RNNLM(vocab_size=50, embedding_dim=16, hidden_size=32, cell="gru")
        >>> lm(torch.randint(0, 50, (3, 10))).shape
        torch.Size([3, 10, 50])
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int = 1,
                 cell: str = "lstm", dropout: float = 0.0) -> None:
        super().__init__()
        check_choice("cell", cell, ("lstm", "gru", "rnn"))
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.cell = cell
        check_probability("dropout", dropout)
        layer_cls = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[cell]
        self.embedding = Embedding(vocab_size, embedding_dim)
        self.rnn = layer_cls(embedding_dim, hidden_size, num_layers, batch_first=True,
                             dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, idx: Tensor, hidden: Tensor | tuple[Tensor, Tensor] | None = None,
                return_hidden: bool = False) -> Tensor | tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        _check_tokens("idx", idx, "(B, T)", self.vocab_size)
        x = self.dropout(self.embedding(idx))  # (B, T, E)
        out, hidden = self.rnn(x, hidden)  # (B, T, H)
        logits = self.head(self.dropout(out))  # (B, T, V)
        return (logits, hidden) if return_hidden else logits

    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        r"""Append ``max_new_tokens`` sampled tokens to each sequence of ``idx`` (see :class:`TransformerLM`).

        Args:
            idx: int64 :math:`(B, T)` prompts, :math:`T \ge 1`.
            max_new_tokens, temperature, top_k, generator: as :meth:`TransformerLM.generate`.

        Returns:
            int64 :math:`(B, T + \text{max\_new\_tokens})`.
        """
        _check_tokens("idx", idx, "(B, T)", self.vocab_size)
        _check_sampling(max_new_tokens, temperature, top_k)
        if idx.shape[1] == 0:
            raise ValueError("idx must hold at least one token per sequence to start from")
        with _EvalMode(self):
            out = [idx]
            logits, hidden = self(idx, return_hidden=True)  # read the whole prompt once
            for step in range(max_new_tokens):
                token = sample_next_token(logits[:, -1, :], temperature, top_k, generator)  # (B, 1)
                out.append(token)
                if step + 1 < max_new_tokens:
                    logits, hidden = self(token, hidden, return_hidden=True)  # (B, 1, V)
        return torch.cat(out, dim=1)


# ----------------------------------------------------------------------------------------------------------------
# encoder-decoder with additive attention
# ----------------------------------------------------------------------------------------------------------------


class Seq2Seq(nn.Module):
    r"""An LSTM encoder-decoder with additive (Bahdanau) attention (C16).

    Encoder: the source tokens are embedded and read by a (bidirectional) LSTM; its outputs
    :math:`h_1..h_S` (both directions concatenated) are the keys and values of the attention.
    Decoder, for every output step :math:`t` (Bahdanau et al., 2015):

    .. math::
        c_t, \alpha_t &= \text{attention}(s_{t-1}, h_{1..S}) \qquad
            (\alpha_{tj} \propto \exp(v^\top \tanh(W_q s_{t-1} + W_k h_j)),\ c_t = \textstyle\sum_j \alpha_{tj} h_j) \\
        s_t &= \text{LSTMCell}([\text{embed}(y_{t-1}); c_t],\ s_{t-1}) \\
        \text{logits}_t &= \text{out}([s_t; c_t])

    The first decoder state is :math:`s_0 = \tanh(\text{bridge}([\overrightarrow{h}_S; \overleftarrow{h}_1]))`
    (the final states of the two directions), with a zero cell state. Instead of squeezing the source into
    :math:`s_0` alone, every step re-reads the whole source through :math:`c_t`.

    Args:
        src_vocab_size: source vocabulary size :math:`V_s`.
        tgt_vocab_size: target vocabulary size :math:`V_t`.
        embedding_dim: size of source and target embeddings.
        hidden_size: size :math:`H` of each encoder direction and of the decoder state.
        attention_size: hidden size of the additive attention. Default: ``hidden_size``.
        bidirectional: bidirectional encoder (as Bahdanau). Default: ``True``.
        dropout: dropout on embeddings and before the output layer. Default: ``0.0``.
        src_padding_idx, tgt_padding_idx: ``padding_idx`` of the embeddings (a zero, untrained row). Default:
            ``None``. Padding in ``src`` is found from ``src_lengths`` in any case.

    Submodules: ``src_embedding``, ``encoder`` (:class:`~seqlib.rnn.LSTM`, batch first), ``bridge``,
    ``tgt_embedding``, ``attention`` (:class:`~seqlib.attention.AdditiveAttention`), ``decoder_cell``
    (:class:`~seqlib.rnn.LSTMCell`), ``dropout``, ``out``.

    Inputs: src, src_lengths, tgt_in
        - **src**: int64 :math:`(N, S)` source tokens, padded after each sequence's end.
        - **src_lengths**: int64 :math:`(N,)`, the true lengths (:math:`1 \le \ell_n \le S`).
        - **tgt_in**: int64 :math:`(N, T)`, the target shifted right (``<bos> y_1 .. y_{T-1}``): teacher forcing.

    Outputs: logits :math:`(N, T, V_t)`; ``logits[:, t]`` predicts ``y_{t+1}`` (compare with ``tgt_in``
    shifted left, i.e. ``y_1 .. y_T``).

    Examples::

        >>> model = Seq2Seq(src_vocab_size=20, tgt_vocab_size=30, embedding_dim=8, hidden_size=16)
        >>> src, lengths = torch.randint(0, 20, (4, 7)), torch.tensor([7, 5, 3, 6])
        >>> model(src, lengths, torch.randint(0, 30, (4, 6))).shape
        torch.Size([4, 6, 30])
        >>> tokens, weights = model.greedy_decode(src, lengths, max_len=10, bos_index=1, eos_index=2)
        >>> weights.shape[0], weights.shape[2]  # (N, T_out, S)
        (4, 7)
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embedding_dim: int, hidden_size: int,
                 attention_size: int | None = None, bidirectional: bool = True, dropout: float = 0.0,
                 src_padding_idx: int | None = None, tgt_padding_idx: int | None = None) -> None:
        super().__init__()
        self.src_vocab_size = check_positive_int("src_vocab_size", src_vocab_size)
        self.tgt_vocab_size = check_positive_int("tgt_vocab_size", tgt_vocab_size)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        attention_size = hidden_size if attention_size is None else check_positive_int("attention_size",
                                                                                        attention_size)
        check_probability("dropout", dropout)
        self.bidirectional = bool(bidirectional)
        enc_size = hidden_size * (2 if bidirectional else 1)
        self.encoder_size = enc_size
        self.src_embedding = Embedding(src_vocab_size, embedding_dim, padding_idx=src_padding_idx)
        self.encoder = LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.bridge = nn.Linear(enc_size, hidden_size)
        self.tgt_embedding = Embedding(tgt_vocab_size, embedding_dim, padding_idx=tgt_padding_idx)
        self.attention = AdditiveAttention(query_size=hidden_size, key_size=enc_size, hidden_size=attention_size)
        self.decoder_cell = LSTMCell(embedding_dim + enc_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size + enc_size, tgt_vocab_size)

    # -- encoder --------------------------------------------------------------------------------------------------

    def _check_src(self, src: Tensor, src_lengths: Tensor) -> None:
        _check_tokens("src", src, "(N, S)", self.src_vocab_size)
        N, S = src.shape
        check_lengths("src_lengths", src_lengths, N, S, symbol="S")

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]]:
        r"""Read the source.

        Returns:
            ``(memory, padding_mask, (h0, c0))``: encoder outputs :math:`(N, S, H_{enc})` (zeros at padded
            positions), the key padding mask :math:`(N, S)` (``True`` = padding) and the decoder's first state,
            two :math:`(N, H)` tensors.
        """
        self._check_src(src, src_lengths)
        N, S = src.shape
        emb = self.dropout(self.src_embedding(src))  # (N, S, E)
        # packing makes each direction stop at the sequence's true end (the backward one starts there)
        packed = pack_padded_sequence(emb, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, (h_n, _) = self.encoder(packed)
        memory, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=S)  # (N, S, H_enc)
        final = torch.cat(list(h_n), dim=-1)  # (num_directions, N, H) -> (N, H_enc)
        h0 = torch.tanh(self.bridge(final))  # (N, H)
        padding_mask = torch.arange(S, device=src.device) >= src_lengths.to(src.device)[:, None]  # (N, S)
        return memory, padding_mask, (h0, torch.zeros_like(h0))

    # -- decoder --------------------------------------------------------------------------------------------------

    def _decode_step(self, y_prev: Tensor, state: tuple[Tensor, Tensor], memory: Tensor, projected: Tensor,
                     padding_mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
        """One Bahdanau step: y_prev ``(N,)`` -> logits ``(N, V_t)``, new state, weights ``(N, S)``."""
        h, c = state
        context, weights = self.attention(h, memory, memory, key_padding_mask=padding_mask,
                                          projected_keys=projected)  # (N, H_enc), (N, S)
        emb = self.dropout(self.tgt_embedding(y_prev))  # (N, E)
        h, c = self.decoder_cell(torch.cat([emb, context], dim=-1), (h, c))  # (N, H) each
        logits = self.out(self.dropout(torch.cat([h, context], dim=-1)))  # (N, V_t)
        return logits, (h, c), weights

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        _check_tokens("tgt_in", tgt_in, "(N, T)", self.tgt_vocab_size)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"tgt_in (N, T) and src (N, S) must have the same batch size N, but got shapes "
                             f"{shape_str(tgt_in.shape)} and {shape_str(src.shape)}")
        memory, padding_mask, state = self.encode(src, src_lengths)
        projected = self.attention.key_proj(memory)  # (N, S, A), once for all steps
        logits = []
        for t in range(tgt_in.shape[1]):  # teacher forcing: feed the true previous token
            step_logits, state, _ = self._decode_step(tgt_in[:, t], state, memory, projected, padding_mask)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)  # (N, T, V_t)

    def greedy_decode(self, src: Tensor, src_lengths: Tensor, max_len: int, bos_index: int,
                      eos_index: int) -> tuple[Tensor, Tensor]:
        r"""Translate by feeding back the most likely token, for at most ``max_len`` steps.

        Runs in eval mode without gradients and restores the previous mode. Stops early once every sequence
        has produced ``eos_index``; after its ``<eos>`` a sequence's tokens repeat ``eos_index`` and its
        attention rows are zeros.

        Returns:
            ``(tokens, weights)``: int64 :math:`(N, T_{out})` (without ``<bos>``, with ``<eos>``) and the
            attention weights :math:`(N, T_{out}, S)` (row ``t``: where the decoder looked to produce token
            ``t``), with :math:`T_{out} \le` ``max_len``.
        """
        check_positive_int("max_len", max_len)
        for name, value in (("bos_index", bos_index), ("eos_index", eos_index)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < self.tgt_vocab_size:
                raise ValueError(f"{name} must be a token index in [0, {self.tgt_vocab_size}), but got {value!r}")
        with _EvalMode(self):
            memory, padding_mask, state = self.encode(src, src_lengths)
            projected = self.attention.key_proj(memory)  # (N, S, A)
            N = src.shape[0]
            y = torch.full((N,), bos_index, dtype=torch.long, device=src.device)  # (N,)
            done = torch.zeros(N, dtype=torch.bool, device=src.device)
            tokens, weights = [], []
            for _ in range(max_len):
                logits, state, w = self._decode_step(y, state, memory, projected, padding_mask)
                y = logits.argmax(dim=-1).masked_fill(done, eos_index)  # (N,)
                tokens.append(y)
                weights.append(w.masked_fill(done[:, None], 0.0))  # (N, S)
                done = done | (y == eos_index)
                if bool(done.all()):
                    break
        return torch.stack(tokens, dim=1), torch.stack(weights, dim=1)  # (N, T_out), (N, T_out, S)
