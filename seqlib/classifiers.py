r"""Sequence classifiers built from seqlib's layers, and the one recipe that trains them (C37).

A sequence classifier reads a whole sequence and returns one vector of class scores (logits). Two of them, the
teacher and the student of the distillation lecture:

* :class:`TransformerClassifier` — embed each step, add the sinusoidal positional encoding, run pre-norm encoder
  layers, average the outputs over the (unpadded) steps, a linear head;
* :class:`LSTMClassifier` — embed each step, run an LSTM (one or both directions), a linear head on the last
  hidden state of each direction.

Both read integer tokens ``(N, L)`` (``vocab_size=``) or float features ``(N, L, F)`` (``input_size=``), e.g. the
accelerometer windows of :func:`seqlib.data.sensor_activity`, and take optional ``lengths`` ``(N,)`` for
right-padded batches.

:func:`train_classifier` is the training recipe shared by the teacher, the label-only student and the distilled
student (:func:`seqlib.distill.distill`): Adam, a cosine learning-rate decay over the epochs, shuffled
mini-batches, :func:`seqlib.train.fit` for the loop, seeded by :func:`seqlib.train.seed_everything`. Only the loss
and the data change between them, so their accuracies can be compared. :func:`accuracy`, :func:`predict_logits`,
:func:`count_parameters` and :func:`cpu_latency` measure what the lecture's table shows.
"""

from __future__ import annotations

import copy
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, Dataset

from ._checks import check_positive_int, check_probability, check_tensor, shape_str
from .embedding import Embedding
from .normalization import LayerNorm
from .positional import PositionalEncoding
from .rnn import LSTM
from .threads import torch_threads
from .train import History, fit, seed_everything
from .transformer import TransformerEncoderLayer

__all__ = ["TransformerClassifier", "LSTMClassifier", "as_dataset", "train_classifier", "predict_logits", "accuracy",
           "count_parameters", "cpu_latency"]

_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


# --------------------------------------------------------------------------------------------- inputs


def _input_kind(vocab_size: int | None, input_size: int | None) -> tuple[int | None, int | None]:
    """Check that exactly one of ``vocab_size`` (tokens) and ``input_size`` (features) is given."""
    if (vocab_size is None) == (input_size is None):
        raise ValueError(f"give exactly one of vocab_size (token inputs (N, L)) and input_size (feature inputs "
                         f"(N, L, F)), but got vocab_size={vocab_size!r} and input_size={input_size!r}")
    if vocab_size is not None:
        return check_positive_int("vocab_size", vocab_size), None
    return None, check_positive_int("input_size", input_size)


def _check_inputs(x: object, lengths: object, vocab_size: int | None, input_size: int | None) -> Tensor | None:
    """Check ``x`` (tokens ``(N, L)`` or features ``(N, L, F)``) and ``lengths``; the bool ``(N, L)`` valid steps."""
    check_tensor("x", x, "(N, L) tokens" if vocab_size else "(N, L, F) features")
    assert isinstance(x, Tensor)
    if vocab_size is not None:
        if x.dtype not in _INT_DTYPES or x.dim() != 2:
            raise ValueError(f"x must be int64 tokens of shape (N, L), but got dtype {x.dtype} and shape "
                             f"{shape_str(x.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
            raise ValueError(f"x must hold token ids in [0, vocab_size) = [0, {vocab_size}), but got values from "
                             f"{int(x.min())} to {int(x.max())}: the model was built for another vocabulary")
    elif not x.is_floating_point() or x.dim() != 3 or x.shape[-1] != input_size:
        raise ValueError(f"x must be float features of shape (N, L, F) with F = {input_size}, but got dtype "
                         f"{x.dtype} and shape {shape_str(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"x must hold at least one step per sequence, but got shape {shape_str(x.shape)}")
    if lengths is None:
        return None
    check_tensor("lengths", lengths, "(N,)")
    assert isinstance(lengths, Tensor)
    N, L = x.shape[:2]
    if lengths.dtype not in _INT_DTYPES or lengths.shape != (N,):
        raise ValueError(f"lengths must be an int64 tensor of shape (N,) = ({N},), but got dtype {lengths.dtype} "
                         f"and shape {shape_str(lengths.shape)}")
    if N and (int(lengths.min()) < 1 or int(lengths.max()) > L):
        raise ValueError(f"lengths must be in [1, L] = [1, {L}], but got values from {int(lengths.min())} to "
                         f"{int(lengths.max())}")
    return torch.arange(L, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (N, L)


# --------------------------------------------------------------------------------------------- the two models


class TransformerClassifier(nn.Module):
    r"""A Transformer encoder that classifies whole sequences (the distillation lecture's teacher).

    .. math::
        x_0 = \text{embed}(x) + PE, \qquad x_l = \text{Block}_l(x_{l-1}), \qquad
        \text{logits} = \text{head}\Big(\frac{1}{L_n}\sum_{t < L_n} \text{norm}(x_{\text{num\_layers}})_t\Big)

    Each block is a pre-norm :class:`~seqlib.transformer.TransformerEncoderLayer` (GELU); padded steps are hidden
    from attention by a key padding mask and left out of the average.

    Args:
        num_classes: :math:`C`.
        d_model: width :math:`E`. Default: ``32``.
        nhead: attention heads (must divide ``d_model``). Default: ``4``.
        num_layers: encoder blocks. Default: ``2``.
        dim_feedforward: hidden size of each block's feed-forward network. Default: ``2 * d_model``.
        dropout: dropout after the positional encoding and inside the blocks. Default: ``0.1``.
        vocab_size: for token inputs, the vocabulary :math:`V` (an ``embedding`` ``(V, E)``).
        input_size: for feature inputs, :math:`F` (an ``input_proj`` ``nn.Linear(F, E)``).
        max_len: the longest sequence. Default: ``512``.
        padding_idx: the padding token, kept at a zero embedding (token inputs only).

    Submodules: ``embedding`` or ``input_proj``, ``pos_encoding``, ``layers``, ``norm``, ``head``.

    Inputs: x, lengths=None
        - **x**: int64 :math:`(N, L)` or float :math:`(N, L, F)`.
        - **lengths**: int64 :math:`(N)`, the valid steps of each right-padded sequence. Default: all :math:`L`.

    Outputs: logits :math:`(N, C)`.
    """

    def __init__(self, num_classes: int, d_model: int = 32, nhead: int = 4, num_layers: int = 2,
                 dim_feedforward: int | None = None, dropout: float = 0.1, *, vocab_size: int | None = None,
                 input_size: int | None = None, max_len: int = 512, padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.d_model = check_positive_int("d_model", d_model)
        check_positive_int("num_layers", num_layers)
        dim_feedforward = 2 * d_model if dim_feedforward is None else check_positive_int("dim_feedforward",
                                                                                          dim_feedforward)
        check_probability("dropout", dropout)
        self.max_len = check_positive_int("max_len", max_len)
        self.vocab_size, self.input_size = _input_kind(vocab_size, input_size)
        if self.vocab_size is not None:
            self.embedding = Embedding(self.vocab_size, d_model, padding_idx=padding_idx)
        else:
            self.input_proj = nn.Linear(self.input_size, d_model)  # type: ignore[arg-type]
        self.pos_encoding = PositionalEncoding(d_model, max_len=max_len, dropout=dropout, batch_first=True)
        self.layers = nn.ModuleList([
            TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation="gelu", batch_first=True,
                                    norm_first=True)
            for _ in range(num_layers)
        ])
        self.norm = LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        valid = _check_inputs(x, lengths, self.vocab_size, self.input_size)  # (N, L) or None: all valid
        if x.shape[1] > self.max_len:
            raise ValueError(f"x has L = {x.shape[1]} steps but max_len = {self.max_len}")
        h = self.embedding(x) if self.vocab_size is not None else self.input_proj(x)  # (N, L, E)
        h = self.pos_encoding(h)  # (N, L, E)
        padding = None if valid is None else ~valid  # (N, L), True = hidden from attention (torch's convention)
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=padding)  # (N, L, E)
        h = self.norm(h)
        if valid is None:
            pooled = h.mean(1)  # (N, E)
        else:
            w = valid.unsqueeze(-1).to(h.dtype)  # (N, L, 1)
            pooled = (h * w).sum(1) / w.sum(1)  # (N, E) mean over the valid steps
        return self.head(pooled)  # (N, C)


class LSTMClassifier(nn.Module):
    r"""An LSTM that classifies whole sequences from its last hidden state (the distillation lecture's student).

    .. math::
        e_t = \text{embed}(x_t), \qquad h_t = \text{LSTM}(e_t, h_{t-1}), \qquad \text{logits} = \text{head}(h_{L_n})

    With ``bidirectional=True`` (the BiLSTM of Tang et al., 2019) the head reads the last state of both directions,
    :math:`[\overrightarrow{h}_{L_n}; \overleftarrow{h}_1]`. Right-padded batches with ``lengths`` are packed, so
    each sequence ends at its own last step.

    Args:
        num_classes: :math:`C`.
        hidden_size: :math:`H`. Default: ``16``.
        num_layers: stacked LSTM layers. Default: ``1``.
        bidirectional: also read backwards. Default: ``False``.
        vocab_size: for token inputs, :math:`V`, with an ``embedding`` ``(V, embedding_dim)``.
        embedding_dim: size of the token embeddings. Default: ``hidden_size``.
        input_size: for feature inputs, :math:`F`, read by the LSTM as they are.
        padding_idx: the padding token (token inputs only).

    Submodules: ``embedding`` (token inputs), ``rnn`` (:class:`~seqlib.rnn.LSTM`, ``batch_first=True``), ``head``.

    Inputs: x, lengths=None (as :class:`TransformerClassifier`).

    Outputs: logits :math:`(N, C)`.
    """

    def __init__(self, num_classes: int, hidden_size: int = 16, num_layers: int = 1, bidirectional: bool = False,
                 *, vocab_size: int | None = None, embedding_dim: int | None = None, input_size: int | None = None,
                 padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.vocab_size, self.input_size = _input_kind(vocab_size, input_size)
        if self.vocab_size is not None:
            width = hidden_size if embedding_dim is None else check_positive_int("embedding_dim", embedding_dim)
            self.embedding = Embedding(self.vocab_size, width, padding_idx=padding_idx)
        else:
            width = self.input_size  # type: ignore[assignment]
        self.rnn = LSTM(width, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        valid = _check_inputs(x, lengths, self.vocab_size, self.input_size)  # (N, L) or None: all valid
        h = self.embedding(x) if self.vocab_size is not None else x  # (N, L, E_in)
        if valid is not None:
            h = pack_padded_sequence(h, valid.sum(1).cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.rnn(h)  # h_n: (num_layers * D, N, H)
        last = h_n[-2:] if self.rnn.bidirectional else h_n[-1:]  # (D, N, H) the top layer's directions
        return self.head(torch.cat(list(last), dim=-1))  # (N, C)


# --------------------------------------------------------------------------------------------- training and measuring


def as_dataset(name: str, data: object) -> Dataset:
    """``data`` as a ``Dataset`` of ``(x, y)`` items: a ``Dataset`` as it is, a pair of tensors ``(inputs, targets)``
    as a ``TensorDataset``."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(d, Tensor) for d in data):
        if len(data[0]) != len(data[1]):
            raise ValueError(f"{name} = (inputs, targets) must hold as many inputs as targets, but got "
                             f"{len(data[0])} and {len(data[1])}")
        return torch.utils.data.TensorDataset(*data)
    raise TypeError(f"{name} must be a Dataset of (x, y) items (e.g. seqlib.data.sensor_activity(...)) or a pair of "
                    f"tensors (inputs, targets), but got {type(data).__name__}")


def _cosine(epochs: int) -> Callable[[int], float]:
    """Learning-rate factor of epoch ``e`` (0-based): from 1 down along half a cosine, never quite 0."""
    return lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs))


def train_classifier(
    model: nn.Module,
    data: Dataset | tuple[Tensor, Tensor],
    *,
    loss_fn: Callable[[Tensor, Any], Tensor] | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    clip_grad_norm: float | None = None,
    val_data: Dataset | tuple[Tensor, Tensor] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    checkpoint_path: str | os.PathLike[str] | None = None,
    callbacks: Sequence[Callable[..., bool | None]] = (),
) -> History:
    r"""Train a classifier with the course's recipe: Adam, cosine decay of the learning rate over the epochs,
    shuffled mini-batches, the loop of :func:`seqlib.train.fit`.

    ``seed_everything(seed)`` runs first, so the shuffling (and dropout) repeat; build the model under a seed of its
    own (``torch.manual_seed(seed)``) so that its initial weights repeat too. One optimiser step per mini-batch:
    ``epochs * ceil(len(data) / batch_size)`` steps in all.

    Args:
        model: the classifier, ``model(x) -> logits`` (trained in place).
        data: a ``Dataset`` of ``(x, y)`` items or a pair of tensors ``(inputs, targets)``.
        loss_fn: ``loss_fn(logits, y) -> scalar``. Default: :func:`torch.nn.functional.cross_entropy`.
        epochs: passes over ``data``. Default: ``10``.
        batch_size: items per step. Default: ``32``.
        lr: the learning rate of the first epoch. Default: ``3e-3``.
        weight_decay: Adam's L2 penalty. Default: ``0``.
        clip_grad_norm: clip the total gradient norm to this (:func:`seqlib.clip_grad_norm_`). Default: no clipping.
        val_data: data for ``History.val_loss`` after every epoch.
        seed: seed of Python, NumPy and torch (:func:`seqlib.train.seed_everything`).
        device: where to train. Default: ``"cpu"`` (small models are fastest there).
        progress, checkpoint_path, callbacks: passed on to :func:`seqlib.train.fit` (the learning-rate schedule
            runs as the first callback).

    Returns:
        The :class:`~seqlib.train.History` of :func:`seqlib.train.fit`.
    """
    dataset = as_dataset("data", data)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ValueError(f"lr must be a positive number, but got {lr!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, int | float) or not weight_decay >= 0:
        raise ValueError(f"weight_decay must be a number >= 0, but got {weight_decay!r}")
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("data must hold at least one item")
    seed_everything(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    val_loader = None if val_data is None else DataLoader(as_dataset("val_data", val_data), batch_size=256)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(epochs))
    return fit(model, loader, loss_fn or F.cross_entropy, optimizer, epochs, val_loader=val_loader,
               clip_grad_norm=clip_grad_norm, device=device, checkpoint_path=checkpoint_path,
               callbacks=[lambda epoch, history, m: schedule.step(), *callbacks], progress=progress)


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: Tensor, batch_size: int = 256, lengths: Tensor | None = None) -> Tensor:
    r"""``model(inputs)`` in eval mode and without gradients, ``batch_size`` sequences at a time.

    Args:
        model: a classifier (its train/eval mode is restored afterwards).
        inputs: tokens :math:`(N, L)` or features :math:`(N, L, F)` (moved to the model's device in chunks).
        batch_size: sequences per forward pass. Default: ``256``.
        lengths: int64 :math:`(N)` for right-padded sequences, passed on as ``model(x, lengths)``.

    Outputs: logits :math:`(N, C)` (or whatever ``model`` returns per sequence), concatenated, on the device of
    ``inputs``.
    """
    check_tensor("inputs", inputs, "(N, L) or (N, L, F)")
    batch_size = check_positive_int("batch_size", batch_size)
    param = next(model.parameters(), None)
    device = inputs.device if param is None else param.device  # run where the model lives
    was_training = model.training
    model.eval()
    try:
        outs = []
        for i in range(0, len(inputs), batch_size):
            x = inputs[i:i + batch_size].to(device)
            out = model(x) if lengths is None else model(x, lengths[i:i + batch_size].to(device))
            outs.append(out.to(inputs.device))
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("inputs must hold at least one sequence")
    return torch.cat(outs)


def accuracy(model: nn.Module, data: Dataset | tuple[Tensor, Tensor], batch_size: int = 256) -> float:
    """The fraction of items of ``data`` whose largest logit is the label (eval mode, no gradients)."""
    dataset = as_dataset("data", data)
    correct, total = 0, 0
    for x, y in DataLoader(dataset, batch_size=batch_size):
        logits = predict_logits(model, x, batch_size)
        correct += int((logits.argmax(-1) == y).sum())
        total += len(y)
    if total == 0:
        raise ValueError("data must hold at least one item")
    return correct / total


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch_threads(1)
def cpu_latency(model: nn.Module, example: Tensor, repeats: int = 50, warmup: int = 5) -> float:
    r"""Median wall time in milliseconds of classifying one sequence on one CPU thread (batch of 1, no gradients).

    Args:
        model: the classifier (a copy of it is timed on the CPU in eval mode).
        example: one sequence, tokens :math:`(L)` or features :math:`(L, F)`.
        repeats: timed calls; the median is returned. Default: ``50``.
        warmup: untimed calls first. Default: ``5``.
    """
    check_tensor("example", example, "(L,) or (L, F)")
    repeats, warmup = check_positive_int("repeats", repeats), max(0, int(warmup))
    x = example.detach().cpu().unsqueeze(0)  # (1, L[, F])
    model = copy.deepcopy(model).cpu().eval()  # a CPU copy: the model itself stays where and as it is
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
