"""Vocabulary, tokenisers and padding: from text to the index tensors an Embedding reads (concept C04).

The slide's three steps are: (1) a vocabulary, the set of tokens in a corpus; (2) indexing, a table that gives every
token an index; (3) an embedding that maps each index to a learnable vector (:class:`seqlib.Embedding`). This module
does steps (1) and (2), and pads a batch of variable-length sequences into one tensor (concept C05).

Index order (deterministic, documented so a vocabulary can be rebuilt exactly):

1. the special tokens first, in the order given (default ``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2,
   ``<eos>`` = 3);
2. then the corpus tokens seen at least ``min_freq`` times, ordered by
   ``order="frequency"`` (default): most frequent first, ties broken by first appearance in the corpus, or
   ``order="alphabetical"``: sorted by the token string (Unicode code points, so ``"B" < "a"``).

``max_size`` caps the whole vocabulary, specials included: when there are more candidates than room, the most
frequent tokens are kept (ties: first appearance), and only then is the ``order`` applied.

With ``specials=()`` and a corpus whose tokens each appear once, indices follow first appearance, which is the
slide's word -> index table (``hallo`` -> 0, ``wie`` -> 1, ...).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
from torch import Tensor

from ._checks import check_positive_int

__all__ = ["Vocab", "CharTokenizer", "WordTokenizer", "pad_sequences", "DEFAULT_SPECIALS"]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
DEFAULT_SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS)
_ORDERS = ("frequency", "alphabetical")


def _count(tokens: Iterable[str] | Mapping[str, int], name: str) -> Counter[str]:
    """Count tokens, keeping first-appearance order (a Counter remembers insertion order)."""
    if isinstance(tokens, str):
        raise TypeError(
            f"{name} must be an iterable of tokens (list[str]) or a Counter, but got a single str; "
            f"use list(text) for characters or WordTokenizer.tokenize(text) for words"
        )
    if isinstance(tokens, Mapping):
        counts: Counter[str] = Counter()
        for token, n in tokens.items():
            if not isinstance(token, str):
                raise TypeError(f"{name} must map str tokens to counts, but got key {token!r}")
            counts[token] += int(n)
        return counts
    counts = Counter()
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(f"{name} must contain str tokens, but got {type(token).__name__} ({token!r})")
        counts[token] += 1
    return counts


class Vocab:
    """A token <-> index table with special tokens, built deterministically from a corpus.

    Args:
        tokens: the corpus as an iterable of tokens (repeats are counted), or a ``Counter``/mapping
            token -> count (first appearance = the mapping's order).
        min_freq: keep only tokens seen at least this often. Default: 1.
        max_size: at most this many entries in total, specials included (``None``: no cap).
        specials: tokens placed first, at indices ``0, 1, ...``. Default ``("<pad>", "<unk>", "<bos>", "<eos>")``.
        order: ``"frequency"`` (most frequent first, ties by first appearance) or ``"alphabetical"``.

    Lookups: ``vocab[token]`` gives the index, or ``unk_index`` for a token not in the table (a ``KeyError`` if
    the vocabulary has no ``<unk>``); ``vocab.lookup_token(i)`` gives the token. ``encode``/``decode`` do the same
    for lists. ``Vocab(vocab.itos, specials=())`` rebuilds a vocabulary with the same indices.

    Examples::

        >>> v = Vocab("the cat sat on the mat".split())
        >>> v["the"], v["cat"], v["dog"] == v.unk_index
        (4, 5, True)
        >>> v.decode(v.encode(["the", "mat"]))
        ['the', 'mat']
    """

    def __init__(
        self,
        tokens: Iterable[str] | Mapping[str, int] = (),
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
        order: str = "frequency",
    ) -> None:
        check_positive_int("min_freq", min_freq)
        if order not in _ORDERS:
            raise ValueError(f"order must be one of {', '.join(map(repr, _ORDERS))}, but got {order!r}")
        if isinstance(specials, str):
            raise TypeError(f"specials must be a sequence of str such as ('<pad>', '<unk>'), but got str {specials!r}")
        specials = tuple(specials)
        if len(set(specials)) != len(specials) or not all(isinstance(s, str) for s in specials):
            raise ValueError(f"specials must be distinct str tokens, but got {specials!r}")
        if max_size is not None:
            check_positive_int("max_size", max_size)
            if max_size < len(specials):
                raise ValueError(
                    f"max_size counts the specials too, so it must be at least len(specials) = {len(specials)}, "
                    f"but got {max_size}"
                )
        counts = _count(tokens, "tokens")
        candidates = [t for t, n in counts.items() if n >= min_freq and t not in specials]
        # most frequent first; a stable sort keeps first-appearance order among equal counts
        candidates.sort(key=lambda t: -counts[t])
        if max_size is not None:
            candidates = candidates[: max_size - len(specials)]
        if order == "alphabetical":
            candidates.sort()
        self.itos: list[str] = [*specials, *candidates]
        self.stoi: dict[str, int] = {token: i for i, token in enumerate(self.itos)}
        self.specials = specials
        self.order = order
        self.counts: Counter[str] = Counter({t: counts[t] for t in self.itos if t in counts})

    @classmethod
    def build(
        cls,
        corpus_tokens: Iterable[str] | Iterable[Iterable[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
        order: str = "frequency",
    ) -> Vocab:
        """Build from a flat token list or from a corpus of token lists (one per sentence/document)."""
        if isinstance(corpus_tokens, str):
            raise TypeError(
                "corpus_tokens must be a list of tokens or a list of token lists, but got a single str; "
                "tokenise it first, e.g. WordTokenizer.tokenize(text)"
            )

        def flat() -> Iterator[str]:
            for item in corpus_tokens:
                if isinstance(item, str):
                    yield item
                else:
                    yield from item

        return cls(flat(), min_freq=min_freq, max_size=max_size, specials=specials, order=order)

    # -- lookups ---------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.itos)

    def __iter__(self) -> Iterator[str]:
        return iter(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        index = self.stoi.get(token)
        if index is not None:
            return index
        if UNK in self.stoi:
            return self.stoi[UNK]
        raise KeyError(f"token {token!r} is not in the vocabulary and the vocabulary has no {UNK!r} special")

    def lookup_token(self, index: int) -> str:
        """Index -> token (``IndexError`` naming the valid range otherwise)."""
        if isinstance(index, Tensor):
            index = int(index)
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"index must be an int, but got {type(index).__name__}")
        if not 0 <= index < len(self.itos):
            raise IndexError(f"index must be in [0, len(vocab)) = [0, {len(self.itos)}), but got {index}")
        return self.itos[index]

    def lookup_indices(self, tokens: Iterable[str]) -> list[int]:
        return [self[t] for t in tokens]

    def lookup_tokens(self, indices: Iterable[int]) -> list[str]:
        return [self.lookup_token(i) for i in indices]

    def encode(self, tokens: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Tokens -> indices; unknown tokens become ``unk_index``; optionally wrap in ``<bos>``/``<eos>``."""
        if isinstance(tokens, str):
            raise TypeError("tokens must be a list of str tokens, but got a single str; tokenise it first")
        ids = self.lookup_indices(tokens)
        if add_bos:
            ids.insert(0, self._special_index(BOS))
        if add_eos:
            ids.append(self._special_index(EOS))
        return ids

    def decode(self, indices: Iterable[int] | Tensor, skip_specials: bool = False) -> list[str]:
        """Indices (a list or 1-D tensor) -> tokens; ``skip_specials`` drops ``<pad>``, ``<bos>``, ... ."""
        if isinstance(indices, Tensor):
            if indices.dim() > 1:
                raise ValueError(f"indices must have shape (L,) (1-D), but got shape {tuple(indices.shape)}")
            indices = indices.tolist()
        tokens = self.lookup_tokens(indices)
        if skip_specials:
            tokens = [t for t in tokens if t not in self.specials]
        return tokens

    def _special_index(self, token: str) -> int:
        if token not in self.stoi:
            raise KeyError(f"the vocabulary has no {token!r} special token (specials = {self.specials!r})")
        return self.stoi[token]

    @property
    def pad_index(self) -> int | None:
        """Index of ``<pad>`` (None if the vocabulary has none)."""
        return self.stoi.get(PAD)

    @property
    def unk_index(self) -> int | None:
        return self.stoi.get(UNK)

    @property
    def bos_index(self) -> int | None:
        return self.stoi.get(BOS)

    @property
    def eos_index(self) -> int | None:
        return self.stoi.get(EOS)

    def get_itos(self) -> list[str]:
        return list(self.itos)

    def get_stoi(self) -> dict[str, int]:
        return dict(self.stoi)

    def table(self, max_rows: int | None = None) -> str:
        """The word -> index table of the slides, as Markdown."""
        rows = self.itos if max_rows is None else self.itos[:max_rows]
        width = max([len("Word"), *(len(t) for t in rows)])
        lines = [f"| {'Word':<{width}} | Index |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {t:<{width}} | {i:>5} |" for i, t in enumerate(rows)]
        if len(rows) < len(self.itos):
            lines.append(f"| {'...':<{width}} |   ... |")
        return "\n".join(lines)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.itos[:8])
        return f"Vocab(size={len(self)}, [{head}{', ...' if len(self) > 8 else ''}])"


# -- tokenisers ----------------------------------------------------------------------------------------------------
class _Tokenizer:
    """What both tokenisers share: text -> tokens (``tokenize``, per subclass) -> indices through ``self.vocab``."""

    vocab: Vocab

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        return self.vocab.encode(self.tokenize(text), add_bos=add_bos, add_eos=add_eos)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)


class CharTokenizer(_Tokenizer):
    """Characters <-> indices: every character is a token.

    Args:
        text_or_vocab: the training text (its characters make the vocabulary) or a ready :class:`Vocab`.
        specials: special tokens placed first. Default ``("<pad>", "<unk>", "<bos>", "<eos>")``.
        order: ``"alphabetical"`` (default: characters sorted, like ``sorted(set(text))``) or ``"frequency"``.

    ``decode(encode(s)) == s`` for every string whose characters are all in the vocabulary; unknown characters
    encode to ``<unk>``.
    """

    def __init__(
        self,
        text_or_vocab: str | Vocab,
        specials: Sequence[str] = DEFAULT_SPECIALS,
        order: str = "alphabetical",
    ) -> None:
        if isinstance(text_or_vocab, Vocab):
            self.vocab = text_or_vocab
        elif isinstance(text_or_vocab, str):
            self.vocab = Vocab(list(text_or_vocab), specials=specials, order=order)
        else:
            raise TypeError(f"text_or_vocab must be a str or a Vocab, but got {type(text_or_vocab).__name__}")

    def tokenize(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, but got {type(text).__name__}")
        return list(text)

    def decode(self, indices: Iterable[int] | Tensor, skip_specials: bool = False) -> str:
        return "".join(self.vocab.decode(indices, skip_specials=skip_specials))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={len(self.vocab)})"


# a word (letters/digits/underscore, with an inner apostrophe as in "don't") or any single other non-space character
WORD_PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = set(".,!?;:%)]}'\"")
_NO_SPACE_AFTER = set("([{")


class WordTokenizer(_Tokenizer):
    """Words and punctuation <-> indices, split with a simple regular expression.

    ``tokenize`` keeps punctuation as separate tokens: ``"The food was good, not bad."`` ->
    ``['The', 'food', 'was', 'good', ',', 'not', 'bad', '.']`` (pattern ``WORD_PATTERN``).

    Args:
        text_or_vocab: training text (a str or a list of str documents) or a ready :class:`Vocab`.
        lowercase: lowercase text before splitting. Default: ``False``.
        min_freq, max_size, specials, order: as for :class:`Vocab`.

    ``decode`` joins tokens with single spaces and attaches punctuation to the previous word, so
    ``decode(encode(s)) == s`` for text written that way (one space between words, none before punctuation) whose
    words are all in the vocabulary; ``tokenize(decode(encode(s))) == tokenize(s)`` always holds for such words.
    """

    def __init__(
        self,
        text_or_vocab: str | Sequence[str] | Vocab,
        lowercase: bool = False,
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
        order: str = "frequency",
    ) -> None:
        self.lowercase = bool(lowercase)
        if isinstance(text_or_vocab, Vocab):
            self.vocab = text_or_vocab
        elif isinstance(text_or_vocab, str):
            self.vocab = Vocab(self.tokenize(text_or_vocab), min_freq, max_size, specials, order)
        elif isinstance(text_or_vocab, Sequence) and all(isinstance(d, str) for d in text_or_vocab):
            tokens = [t for doc in text_or_vocab for t in self.tokenize(doc)]
            self.vocab = Vocab(tokens, min_freq, max_size, specials, order)
        else:
            raise TypeError(
                f"text_or_vocab must be a str, a list of str or a Vocab, but got {type(text_or_vocab).__name__}"
            )

    def tokenize(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, but got {type(text).__name__}")
        if self.lowercase:
            text = text.lower()
        return WORD_PATTERN.findall(text)

    def decode(self, indices: Iterable[int] | Tensor, skip_specials: bool = False) -> str:
        out = ""
        for token in self.vocab.decode(indices, skip_specials=skip_specials):
            if out and token not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
                out += " "
            out += token
        return out

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={len(self.vocab)}, lowercase={self.lowercase})"


# -- padding -------------------------------------------------------------------------------------------------------
def pad_sequences(
    seqs: Sequence[Tensor | Sequence[int]],
    padding_value: float = 0,
    batch_first: bool = False,
) -> tuple[Tensor, Tensor]:
    """Pad variable-length sequences into one tensor and return it with the lengths.

    The result is exactly what :func:`torch.nn.utils.rnn.pack_padded_sequence` takes::

        padded, lengths = pad_sequences(batch, padding_value=vocab.pad_index)
        packed = pack_padded_sequence(embedding(padded), lengths, enforce_sorted=False)

    Args:
        seqs: ``N`` sequences, each a tensor of shape ``(L_i, *)`` or a list of ints (token indices -> int64).
        padding_value: value written after the end of each shorter sequence. Default: 0.
        batch_first: output ``(N, L, *)`` instead of ``(L, N, *)``.

    Returns:
        ``(padded, lengths)``: ``padded`` of shape ``(L, N, *)`` (or ``(N, L, *)``) where ``L = max(L_i)``, with the
        dtype and device of the inputs; ``lengths`` an int64 CPU tensor of shape ``(N,)``.
    """
    if isinstance(seqs, Tensor | str) or not isinstance(seqs, Sequence):
        raise TypeError(
            f"seqs must be a list of N sequences (tensors of shape (L_i, *) or lists of int), "
            f"but got {type(seqs).__name__}"
        )
    if len(seqs) == 0:
        raise ValueError("seqs must contain at least one sequence (N >= 1), but got an empty list")
    tensors = []
    for i, s in enumerate(seqs):
        if isinstance(s, Tensor):
            t = s
        elif isinstance(s, Sequence) and not isinstance(s, str):
            t = torch.tensor(list(s), dtype=torch.int64)
        else:
            raise TypeError(
                f"seqs[{i}] must be a tensor of shape (L_i, *) or a list of int, but got {type(s).__name__}"
            )
        if t.dim() == 0:
            raise ValueError(f"seqs[{i}] must have shape (L_i, *) (at least 1-D), but got a 0-D tensor")
        tensors.append(t)
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.shape[1:] != first.shape[1:]:
            raise ValueError(
                f"seqs[{i}] must have shape (L_i, *) with * = {tuple(first.shape[1:])} like seqs[0], "
                f"but got shape {tuple(t.shape)}"
            )
        if t.dtype != first.dtype:
            raise TypeError(f"seqs[{i}] has dtype {t.dtype} but seqs[0] has dtype {first.dtype}; use one dtype")
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.int64)  # (N,), on the CPU
    max_len = int(lengths.max())
    padded = torch.full((len(tensors), max_len, *first.shape[1:]), padding_value, dtype=first.dtype,
                        device=first.device)  # (N, L, *)
    for i, t in enumerate(tensors):
        padded[i, : t.shape[0]] = t.to(first.device)
    if not batch_first:
        padded = padded.transpose(0, 1).contiguous()  # (L, N, *)
    return padded, lengths
