"""Batching variable-length sequences (padding and packing, concept C05) and turning text items into indices.

A ``DataLoader`` calls its ``collate_fn`` with a list of items; the functions here build the batch a sequence
model wants. Use ``functools.partial`` to change their defaults, e.g.
``DataLoader(ds, batch_size=32, collate_fn=partial(collate_padded, batch_first=False))``.

===================  ==========================================================================================
``collate_padded``   items ``(x_i (L_i, *), y_i)`` -> ``((padded, lengths), targets)``
``collate_packed``   items ``(x_i (L_i, *), y_i)`` -> ``(PackedSequence, targets)``
``collate_seq2seq``  items ``(src_i (S_i), tgt_i (U_i))`` -> ``((src, src_lengths, tgt_in), tgt_out)``
``encode_dataset``   a dataset of ``(text, label)`` / ``(source_text, target_text)`` -> a ``TokenizedDataset``
===================  ==========================================================================================

Targets: a batch of scalars (labels, regression values) or of equal-shape tensors is stacked. Sequence targets
whose lengths differ are padded with ``target_padding_value``, by default ``-100``, the ``ignore_index`` of
``torch.nn.functional.cross_entropy``, so padded positions add nothing to the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torch.utils.data import Dataset

from ..vocab import CharTokenizer, WordTokenizer, pad_sequences

__all__ = ["collate_padded", "collate_packed", "collate_seq2seq", "TokenizedDataset", "encode_dataset"]

IGNORE_INDEX = -100


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, bool):
        return torch.tensor(int(value))
    if isinstance(value, int):
        return torch.tensor(value, dtype=torch.int64)
    if isinstance(value, float):
        return torch.tensor(value, dtype=torch.float32)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return torch.as_tensor(list(value))
    raise TypeError(f"{name} must be a tensor, a number or a list of numbers, but got {type(value).__name__}")


def _split(batch: Sequence[Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    if not isinstance(batch, Sequence) or len(batch) == 0:
        raise ValueError(f"batch must be a non-empty list of (x, y) items, but got {batch!r:.80}")
    xs, ys = [], []
    for i, item in enumerate(batch):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValueError(f"batch[{i}] must be an (x, y) pair, but got {type(item).__name__} {item!r:.80}")
        x = _as_tensor(item[0], f"batch[{i}][0]")
        if x.dim() == 0:
            raise ValueError(f"batch[{i}][0] must be a sequence of shape (L_i, *), but got a 0-D tensor")
        xs.append(x)
        ys.append(_as_tensor(item[1], f"batch[{i}][1]"))
    return xs, ys


def _targets(ys: list[torch.Tensor], target_padding_value: float, batch_first: bool) -> torch.Tensor:
    if all(y.shape == ys[0].shape for y in ys):
        return torch.stack(ys, dim=0 if batch_first or ys[0].dim() == 0 else 1)  # (N, *) or (U, N, *)
    if any(y.dim() == 0 for y in ys) or any(y.shape[1:] != ys[0].shape[1:] for y in ys):
        raise ValueError(f"targets must share a shape or be sequences (U_i, *), but got {[tuple(y.shape) for y in ys]}")
    return pad_sequences(ys, padding_value=target_padding_value, batch_first=batch_first)[0]


def collate_padded(
    batch: Sequence[tuple[Any, Any]],
    padding_value: float = 0,
    target_padding_value: float = IGNORE_INDEX,
    batch_first: bool = True,
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Pad a batch of variable-length sequences; keep their lengths.

    Args:
        batch: ``N`` items ``(x_i, y_i)``; ``x_i`` a tensor of shape ``(L_i, *)`` or a list of token indices;
            ``y_i`` a label, a number, a tensor, or a sequence ``(U_i, *)``.
        padding_value: written after the end of each shorter input (the ``<pad>`` index for tokens).
        target_padding_value: written after the end of each shorter target sequence (default ``-100``).
        batch_first: ``(N, L, *)`` (default) instead of ``(L, N, *)``.

    Returns:
        ``((padded, lengths), targets)``: ``padded`` ``(N, L, *)`` with ``L = max(L_i)``; ``lengths`` ``(N)``
        int64 on the CPU (as ``pack_padded_sequence`` wants); ``targets`` ``(N, *)`` stacked, or ``(N, U, *)``
        padded (sequence targets; ``(U, N, *)`` when ``batch_first=False``).
    """
    xs, ys = _split(batch)
    padded, lengths = pad_sequences(xs, padding_value=padding_value, batch_first=batch_first)
    return (padded, lengths), _targets(ys, target_padding_value, batch_first)


def collate_packed(
    batch: Sequence[tuple[Any, Any]], target_padding_value: float = IGNORE_INDEX
) -> tuple[PackedSequence, torch.Tensor | PackedSequence]:
    """Pack a batch of variable-length sequences into a ``PackedSequence`` (items keep their batch order).

    The batch is packed with ``enforce_sorted=False``: the ``PackedSequence`` remembers how it sorted the
    items (``sorted_indices``) and a recurrent layer returns its final states in the original order, so the
    targets stay in the order of ``batch``.

    Args:
        batch: ``N`` items ``(x_i (L_i, *), y_i)`` (see :func:`collate_padded`). Token indices must be
            embedded before a recurrent layer reads them: ``PackedSequence(embedding(p.data), p.batch_sizes,
            p.sorted_indices, p.unsorted_indices)``.
        target_padding_value: padding for sequence targets that are not packed (see below).

    Returns:
        ``(packed, targets)``. If every target is a sequence with the same length as its input, ``targets`` is
        packed the same way, so ``loss_fn(output.data, targets.data)`` lines the two up; otherwise targets are
        stacked (or padded, batch first) as in :func:`collate_padded`.
    """
    xs, ys = _split(batch)
    padded, lengths = pad_sequences(xs, batch_first=True)  # (N, L, *)
    packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
    if all(y.dim() >= 1 and y.shape[0] == x.shape[0] for x, y in zip(xs, ys, strict=True)) and all(
        y.shape[1:] == ys[0].shape[1:] for y in ys
    ):
        padded_y, _ = pad_sequences(ys, padding_value=target_padding_value, batch_first=True)  # (N, L, *)
        return packed, pack_padded_sequence(padded_y, lengths, batch_first=True, enforce_sorted=False)
    return packed, _targets(ys, target_padding_value, True)


def collate_seq2seq(
    batch: Sequence[tuple[Any, Any]], pad_index: int = 0, batch_first: bool = True
) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Batch source/target index sequences for an encoder-decoder trained with teacher forcing.

    Each target must start with ``<bos>`` and end with ``<eos>`` (``TokenizedDataset`` adds them). The decoder
    reads ``tgt_in = tgt[:-1]`` and is trained to predict ``tgt_out = tgt[1:]``.

    Args:
        batch: ``N`` items ``(src_i (S_i), tgt_i (U_i + 1))`` of int64 indices.
        pad_index: padding for ``src`` and ``tgt_in``; ``tgt_out`` is padded with ``-100`` (ignored by the loss).
        batch_first: ``(N, S)`` (default) instead of ``(S, N)``.

    Returns:
        ``((src, src_lengths, tgt_in), tgt_out)``: ``src`` ``(N, S)``, ``src_lengths`` ``(N)`` int64 (CPU),
        ``tgt_in`` ``(N, U)``, ``tgt_out`` ``(N, U)`` (transposed when ``batch_first=False``).
    """
    xs, ys = _split(batch)
    for i, y in enumerate(ys):
        if y.dim() != 1 or y.shape[0] < 2:
            raise ValueError(
                f"batch[{i}][1] must be a target sequence (U_i + 1,) with U_i >= 1, but got shape {tuple(y.shape)}"
            )
    src, src_lengths = pad_sequences(xs, padding_value=pad_index, batch_first=batch_first)
    tgt_in, _ = pad_sequences([y[:-1] for y in ys], padding_value=pad_index, batch_first=batch_first)
    tgt_out, _ = pad_sequences([y[1:] for y in ys], padding_value=IGNORE_INDEX, batch_first=batch_first)
    return (src, src_lengths, tgt_in), tgt_out


class TokenizedDataset(Dataset):
    """A text dataset with its items turned into index tensors, encoded once up front.

    Items ``(text, label)`` become ``(x (L_i) int64, label)`` with ``x = tokenizer.encode(text)`` and the label a
    0-D tensor (int64 for ints, float32 for floats). With a ``target_tokenizer``, items ``(source, target)``
    become ``(x (S_i), y (U_i + 2))`` with ``y = target_tokenizer.encode(target, add_bos=True, add_eos=True)``:
    the form :func:`collate_seq2seq` wants.

    Args:
        dataset: a dataset of ``(str, label)`` or ``(str, str)`` items.
        tokenizer: encodes the first element (``encode(str) -> list[int]``, ``.vocab``).
        target_tokenizer: encodes the second element when it is text.

    Attributes:
        items: the encoded items. ``tokenizer``, ``target_tokenizer``: as given (reuse them for a validation set).
        pad_index: the source vocabulary's ``<pad>`` index (0 when it has none).
    """

    def __init__(self, dataset: Any, tokenizer: Any, target_tokenizer: Any = None) -> None:
        for name, tok in (("tokenizer", tokenizer), ("target_tokenizer", target_tokenizer)):
            if tok is not None and not callable(getattr(tok, "encode", None)):
                raise TypeError(f"{name} must have an encode(str) -> list[int] method, but got {type(tok).__name__}")
        if tokenizer is None:
            raise TypeError("tokenizer must have an encode(str) -> list[int] method, but got None")
        self.tokenizer, self.target_tokenizer = tokenizer, target_tokenizer
        self.items: list[tuple[torch.Tensor, torch.Tensor]] = []
        for i in range(len(dataset)):
            text, target = dataset[i]
            if not isinstance(text, str):
                raise TypeError(f"dataset[{i}][0] must be a str, but got {type(text).__name__}")
            x = torch.tensor(tokenizer.encode(text), dtype=torch.int64)  # (L_i,)
            if target_tokenizer is not None:
                if not isinstance(target, str):
                    raise TypeError(f"dataset[{i}][1] must be a str when target_tokenizer is given, "
                                    f"but got {type(target).__name__}")
                y = torch.tensor(target_tokenizer.encode(target, add_bos=True, add_eos=True), dtype=torch.int64)
            else:
                y = _as_tensor(target, f"dataset[{i}][1]")
            self.items.append((x, y))

    @property
    def pad_index(self) -> int:
        pad = getattr(getattr(self.tokenizer, "vocab", None), "pad_index", None)
        return 0 if pad is None else int(pad)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[index]


def encode_dataset(dataset: Any, tokenizer: Any = None, target_tokenizer: Any = None) -> TokenizedDataset:
    """Encode a text dataset, building the tokenizers from it when none are given.

    Defaults: for ``(text, label)`` items a lower-casing ``seqlib.WordTokenizer`` over all texts; for
    ``(source_text, target_text)`` items (e.g. ``date_translation``) a ``seqlib.CharTokenizer`` for each side.
    Build the training set first and pass its tokenizers when encoding the validation set::

        train = encode_dataset(negation_sentiment(4000, seed=0))
        val = encode_dataset(negation_sentiment(1000, seed=1), tokenizer=train.tokenizer)

    Returns:
        A :class:`TokenizedDataset`.
    """
    if len(dataset) == 0:
        raise ValueError("dataset must have at least one item, but it is empty")
    first = dataset[0]
    if not isinstance(first, tuple | list) or len(first) != 2 or not isinstance(first[0], str):
        raise TypeError(f"dataset items must be (text, label) or (source_text, target_text), but got {first!r:.80}")
    seq2seq = isinstance(first[1], str)
    if tokenizer is None or (seq2seq and target_tokenizer is None):
        firsts = [dataset[i][0] for i in range(len(dataset))]
        if tokenizer is None:
            tokenizer = CharTokenizer("".join(firsts)) if seq2seq else WordTokenizer(firsts, lowercase=True)
        if seq2seq and target_tokenizer is None:
            target_tokenizer = CharTokenizer("".join(dataset[i][1] for i in range(len(dataset))))
    return TokenizedDataset(dataset, tokenizer, target_tokenizer if seq2seq else None)
