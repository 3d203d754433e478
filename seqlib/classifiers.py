r"""Sequence classifiers built from seqlib's layers, the one recipe that trains them, and what measures them (C05, C37).

A sequence classifier reads a whole sequence and returns one vector of class scores (logits). Part 4 trains them
on the accelerometer windows of :func:`seqlib.data.sensor_activity` and then runs them in fixed point, next to a
spiking network, as the students of a distilled teacher and quantized:

* :class:`RNNClassifier` — embed each step (or read the features as they are), run an RNN, GRU, LSTM or FastGRNN
  (one or both directions), a linear head on the last hidden state or on the mean over time;
* :class:`TransformerClassifier` — embed each step, add the sinusoidal positional encoding, run pre-norm encoder
  layers, average the outputs over the (unpadded) steps, a linear head (the distillation lecture's teacher).

Both read integer tokens ``(N, L)`` (``vocab_size=``) or float features ``(N, L, F)`` (``input_size=``) and take
optional ``lengths`` ``(N,)`` for right-padded batches.

:func:`train_classifier` is the one training recipe of Part 4: Adam, a learning-rate schedule over the optimiser
steps (cosine by default), shuffled mini-batches, optional class weights for a long-tailed training set,
:func:`seqlib.train.fit` for the loop, seeded by :func:`seqlib.train.seed_everything`. Between the lectures' models
only the loss, the data and the settings change, so their accuracies can be compared. :func:`predict_logits`,
:func:`accuracy` (overall or per class), :func:`count_parameters` and :func:`cpu_latency` measure them.

::

    train, test = sensor_activity(2000, 32, seed=0), sensor_activity(500, 32, seed=1)
    torch.manual_seed(0)
    model = RNNClassifier(6, 16, cell="gru", input_size=3)
    train_classifier(model, train, epochs=10, lr=1e-2, progress=False)
    accuracy(model, test), accuracy(model, test, per_class=True)
"""

from __future__ import annotations

import copy
import functools
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ._checks import (
    INT_DTYPES,
    check_bool,
    check_choice,
    check_lengths,
    check_positive_float,
    check_positive_int,
    check_probability,
    check_tensor,
    shape_str,
)
from .embedding import Embedding
from .fastgrnn import FastGRNN
from .normalization import LayerNorm
from .positional import PositionalEncoding
from .rnn import GRU, LSTM, RNN
from .threads import torch_threads
from .train import History, fit, per_class_accuracy, predict, seed_everything, select_device
from .transformer import TransformerEncoderLayer

__all__ = ["RNNClassifier", "TransformerClassifier", "as_dataset", "as_tensors", "count_classes",
           "balanced_class_weights", "train_classifier", "predict_logits", "accuracy", "count_parameters",
           "cpu_latency", "CELLS", "POOLS", "SCHEDULES"]

#: The recurrent layers of :class:`RNNClassifier`.
CELLS = ("rnn", "gru", "lstm", "fastgrnn")
#: What the head of :class:`RNNClassifier` reads: the last hidden state or the mean over time.
POOLS = ("last", "mean")
#: The learning-rate schedules of :func:`train_classifier`.
SCHEDULES = ("cosine", "constant", "one_cycle")


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
        if x.dtype not in INT_DTYPES or x.dim() != 2:
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
    N, L = x.shape[:2]
    lengths = check_lengths("lengths", lengths, N, L)
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


class RNNClassifier(nn.Module):
    r"""A recurrent network that classifies whole sequences: an RNN, GRU, LSTM or FastGRNN and a linear head.

    .. math::
        e_t = \text{embed}(x_t)\ \text{(tokens) or}\ x_t\ \text{(features)}, \qquad
        h_t = \text{cell}(e_t, h_{t-1}), \qquad
        \text{logits} = \text{head}\big(\text{pool}(h_1, \dots, h_{L_n})\big)

    ``pool="last"`` reads :math:`h_{L_n}`, the top layer's state after each sequence's own last step (C05's
    many-to-one classifier); with ``bidirectional=True`` the last state of both directions,
    :math:`[\overrightarrow{h}_{L_n}; \overleftarrow{h}_1]` (the BiLSTM student of Tang et al., 2019).
    ``pool="mean"`` reads :math:`\frac{1}{L_n}\sum_{t \le L_n} h_t`, the top layer's outputs averaged over the valid
    steps. Right-padded batches with ``lengths`` are packed, so each sequence ends at its own last step (FastGRNN
    reads the padded batch: its valid steps never see the padding that follows them).

    The layout is the one Part 4 builds on: ``rnn`` is the recurrent layer (``batch_first=True``) and ``head`` the
    ``nn.Linear``, what :meth:`seqlib.fixedpoint_rnn.FixedPointRNN.from_float` and :mod:`seqlib.secure_rnn` read
    (one direction, ``pool="last"``, feature inputs) and what :func:`seqlib.qat.quantize_model` quantizes.

    Args:
        num_classes: :math:`C`.
        hidden_size: :math:`H`. Default: ``16``.
        num_layers: stacked recurrent layers. Default: ``1``.
        bidirectional: also read backwards. Default: ``False``.
        cell: ``"rnn"`` (tanh), ``"gru"``, ``"lstm"`` or ``"fastgrnn"`` (one layer, one direction):
            :class:`seqlib.RNN`, :class:`seqlib.GRU`, :class:`seqlib.LSTM`, :class:`seqlib.FastGRNN`.
            Default: ``"lstm"``.
        pool: ``"last"`` or ``"mean"``. Default: ``"last"``.
        vocab_size: for token inputs, :math:`V`, with an ``embedding`` ``(V, embedding_dim)``.
        embedding_dim: size of the token embeddings. Default: ``hidden_size``.
        input_size: for feature inputs, :math:`F`, read by the recurrent layer as they are.
        padding_idx: the padding token (token inputs only).

    Submodules: ``embedding`` (token inputs), ``rnn``, ``head`` (``nn.Linear(D * H, C)``, :math:`D = 2` if
    bidirectional else 1).

    Inputs: x, lengths=None (as :class:`TransformerClassifier`).

    Outputs: logits :math:`(N, C)`. :meth:`features` returns the :math:`(N, D \cdot H)` pooled states the head reads.
    """

    def __init__(self, num_classes: int, hidden_size: int = 16, num_layers: int = 1, bidirectional: bool = False,
                 *, cell: str = "lstm", pool: str = "last", vocab_size: int | None = None,
                 embedding_dim: int | None = None, input_size: int | None = None,
                 padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_bool("bidirectional", bidirectional)
        check_choice("cell", cell, CELLS)
        check_choice("pool", pool, POOLS)
        if cell == "fastgrnn" and (num_layers != 1 or bidirectional):
            raise ValueError(f"cell='fastgrnn' is one layer in one direction, but got num_layers={num_layers} and "
                             f"bidirectional={bidirectional}")
        self.cell, self.pool, self.bidirectional = cell, pool, bidirectional
        self.vocab_size, self.input_size = _input_kind(vocab_size, input_size)
        if self.vocab_size is not None:
            width = hidden_size if embedding_dim is None else check_positive_int("embedding_dim", embedding_dim)
            self.embedding = Embedding(self.vocab_size, width, padding_idx=padding_idx)
        else:
            width = self.input_size  # type: ignore[assignment]
        if cell == "fastgrnn":
            self.rnn: nn.Module = FastGRNN(width, hidden_size, batch_first=True)
        else:
            layer = {"rnn": RNN, "gru": GRU, "lstm": LSTM}[cell]
            self.rnn = layer(width, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The pooled states :math:`(N, D \\cdot H)` that the head reads."""
        valid = _check_inputs(x, lengths, self.vocab_size, self.input_size)  # (N, L) or None: all valid
        h = self.embedding(x) if self.vocab_size is not None else x  # (N, L, E_in)
        steps = None if valid is None else valid.sum(1)  # (N,) valid steps
        if steps is None or self.cell == "fastgrnn":
            out, state = self.rnn(h)  # out: (N, L, D*H)
        else:
            packed = pack_padded_sequence(h, steps.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (N, L, D*H), 0 at padding
        if self.pool == "mean":
            if valid is None:
                return out.mean(1)  # (N, D*H)
            w = valid.unsqueeze(-1).to(out.dtype)  # (N, L, 1)
            return (out * w).sum(1) / w.sum(1)  # (N, D*H) mean over the valid steps
        if steps is not None and self.cell == "fastgrnn":
            return out[torch.arange(len(out), device=out.device), steps - 1]  # (N, H) at each last valid step
        h_n = state[0] if self.cell == "lstm" else state  # (num_layers * D, N, H)
        last = h_n[-2:] if self.bidirectional else h_n[-1:]  # (D, N, H): the top layer's directions
        return torch.cat(list(last), dim=-1)  # (N, D*H)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.head(self.features(x, lengths))  # (N, C)

    def extra_repr(self) -> str:
        return f"cell={self.cell!r}, pool={self.pool!r}"


# --------------------------------------------------------------------------------------------- data


def as_dataset(name: str, data: object) -> Dataset:
    """``data`` as a ``Dataset`` of ``(x, y)`` items: a ``Dataset`` as it is, a pair of tensors ``(inputs, targets)``
    as a ``TensorDataset``."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(d, Tensor) for d in data):
        if len(data[0]) != len(data[1]):
            raise ValueError(f"{name} = (inputs, targets) must hold as many inputs as targets, but got "
                             f"{len(data[0])} and {len(data[1])}")
        return TensorDataset(*data)
    raise TypeError(f"{name} must be a Dataset of (x, y) items (e.g. seqlib.data.sensor_activity(...)) or a pair of "
                    f"tensors (inputs, targets), but got {type(data).__name__}")


def as_tensors(name: str, data: object) -> tuple[Tensor, Tensor]:
    """The ``(inputs, targets)`` of labelled ``data`` (as :func:`as_dataset` takes it), stacked; targets int64."""
    dataset = as_dataset(name, data)
    inputs, targets = getattr(dataset, "inputs", None), getattr(dataset, "targets", None)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        inputs, targets = dataset.tensors
    if not (isinstance(inputs, Tensor) and isinstance(targets, Tensor)):
        items = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
        if not items:
            raise ValueError(f"{name} must hold at least one labelled item")
        inputs, targets = torch.stack([x for x, _ in items]), torch.stack([torch.as_tensor(y) for _, y in items])
    if targets.dtype not in INT_DTYPES:
        raise TypeError(f"{name}'s targets must be class indices (int64), but got dtype {targets.dtype}")
    return inputs, targets.long()


def count_classes(data: Dataset | tuple[Tensor, Tensor]) -> int:
    """:math:`K`: the length of ``data.classes`` where the dataset names its classes, else the largest target + 1."""
    classes = getattr(data, "classes", None)
    return len(classes) if classes is not None else int(as_tensors("data", data)[1].max()) + 1


def balanced_class_weights(targets: Tensor, num_classes: int) -> Tensor:
    r"""``(K,)`` weights :math:`w_k \propto 1/n_k`, summing to :math:`K`: every class weighs the same in the loss.

    ``targets``: int64 class indices :math:`(N)`. A class without examples raises (its weight would be infinite).
    """
    check_tensor("targets", targets, "(N,)")
    check_positive_int("num_classes", num_classes)
    counts = torch.bincount(targets.reshape(-1), minlength=num_classes).float()  # (K,)
    if bool((counts == 0).any()):
        raise ValueError(f"every class needs training examples, but the counts are {counts.long().tolist()}")
    weights = 1.0 / counts
    return weights * num_classes / weights.sum()


# --------------------------------------------------------------------------------------------- training


def _scheduler(schedule: str, optimizer: torch.optim.Optimizer, lr: float, epochs: int, per_epoch: int) -> Any:
    """The learning-rate schedule, stepped after each of the ``epochs * per_epoch`` steps (``None``: constant)."""
    if schedule == "cosine":  # epoch e (0-based) at lr (1 + cos(pi e / E)) / 2: from lr down, never quite 0
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * (step // per_epoch) / epochs)))
    if schedule == "one_cycle":  # warm up to lr over the first 30 % of the steps, then anneal (Smith & Topin, 2019)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * per_epoch)
    return None


def train_classifier(
    model: nn.Module,
    data: Dataset | tuple[Tensor, Tensor],
    *,
    loss_fn: Callable[[Tensor, Any], Tensor] | None = None,
    class_weights: str | Tensor | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    clip_grad_norm: float | None = None,
    val_data: Dataset | tuple[Tensor, Tensor] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    checkpoint_path: str | os.PathLike[str] | None = None,
    callbacks: Sequence[Callable[..., bool | None]] = (),
) -> History:
    r"""Train a classifier with the course's recipe: Adam, a learning-rate schedule over the optimiser steps,
    shuffled mini-batches, the loop of :func:`seqlib.train.fit`.

    ``seed_everything(seed)`` runs first, so the shuffling (and dropout) repeat; build the model under a seed of its
    own (``torch.manual_seed(seed)``) so that its initial weights repeat too. One optimiser step per mini-batch,
    :math:`B` = ``ceil(len(data) / batch_size)`` steps per epoch, :math:`S = EB` in all for :math:`E` epochs; the
    schedule is stepped after every step (``fit``'s ``scheduler``), so step :math:`s` (0-based) runs at

    .. math::
        \text{cosine: } \eta_s = \tfrac{\eta}{2}\big(1 + \cos(\pi \lfloor s / B \rfloor / E)\big), \qquad
        \text{constant: } \eta_s = \eta, \qquad \text{one\_cycle: torch's } \texttt{OneCycleLR}(\eta, S);

    the cosine decays epoch by epoch (every step of an epoch at one rate), the one cycle step by step.

    Args:
        model: the classifier, ``model(x) -> logits`` (trained in place; a tuple ``x`` is unpacked into the call).
        data: a ``Dataset`` of ``(x, y)`` items or a pair of tensors ``(inputs, targets)``.
        loss_fn: ``loss_fn(logits, y) -> scalar``. Default: :func:`torch.nn.functional.cross_entropy`.
        class_weights: weights :math:`(K)` of the default cross-entropy's classes, or ``"balanced"`` for
            :func:`balanced_class_weights` of ``data``'s targets (a long-tailed training set). Default: none.
        epochs: passes over ``data``. Default: ``10``.
        batch_size: items per step. Default: ``32``.
        lr: the learning rate :math:`\eta` (of the first epoch; the peak of ``"one_cycle"``). Default: ``3e-3``.
        weight_decay: Adam's L2 penalty. Default: ``0``.
        schedule: ``"cosine"``, ``"constant"`` or ``"one_cycle"``. Default: ``"cosine"``.
        clip_grad_norm: clip the total gradient norm to this (:func:`seqlib.clip_grad_norm_`). Default: no clipping.
        val_data: data for ``History.val_loss`` after every epoch.
        seed: seed of Python, NumPy and torch (:func:`seqlib.train.seed_everything`).
        device: where to train. Default: ``"cpu"`` (small models are fastest there).
        progress, checkpoint_path, callbacks: passed on to :func:`seqlib.train.fit`.

    Returns:
        The :class:`~seqlib.train.History` of :func:`seqlib.train.fit` (``History.lr``: the rate of every step).
    """
    dataset = as_dataset("data", data)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    check_positive_float("lr", lr)
    check_positive_float("weight_decay", weight_decay, allow_zero=True)
    check_choice("schedule", schedule, SCHEDULES)
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("data must hold at least one item")
    dev = select_device(device)
    if class_weights is not None:
        if loss_fn is not None:
            raise TypeError("give loss_fn or class_weights, not both: class_weights weighs the default cross-entropy")
        if isinstance(class_weights, str):
            check_choice("class_weights", class_weights, ("balanced",))
            class_weights = balanced_class_weights(as_tensors("data", dataset)[1], count_classes(dataset))
        check_tensor("class_weights", class_weights, "(K,)")
        loss_fn = functools.partial(F.cross_entropy, weight=class_weights.to(dev))
    seed_everything(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    val_loader = None if val_data is None else DataLoader(as_dataset("val_data", val_data), batch_size=256)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = _scheduler(schedule, optimizer, lr, epochs, len(loader))
    return fit(model, loader, loss_fn or F.cross_entropy, optimizer, epochs, val_loader=val_loader,
               clip_grad_norm=clip_grad_norm, device=dev, checkpoint_path=checkpoint_path, callbacks=callbacks,
               progress=progress, scheduler=scheduler)


# --------------------------------------------------------------------------------------------- measuring


def _device(model: nn.Module, default: torch.device | str = "cpu") -> torch.device:
    """Where ``model``'s parameters live (``default`` for a model without parameters)."""
    param = next(model.parameters(), None)
    return torch.device(default) if param is None else param.device


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
    device = _device(model, inputs.device)  # run where the model lives
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


def accuracy(model: nn.Module, data: Dataset | tuple[Tensor, Tensor], batch_size: int = 256, *,
             per_class: bool = False) -> float | Tensor:
    """The fraction of items of ``data`` whose largest logit is the label (eval mode, no gradients).

    With ``per_class=True``: the ``(K,)`` accuracy on each class's own items instead
    (:func:`seqlib.train.per_class_accuracy`; :math:`K` from ``data.classes``, else the largest label + 1).
    """
    dataset = as_dataset("data", data)
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("data must hold at least one item")
    batch_size = check_positive_int("batch_size", batch_size)
    predictions, targets = predict(model, DataLoader(dataset, batch_size=batch_size), device=_device(model))
    if per_class:
        return per_class_accuracy(predictions, targets, count_classes(dataset))
    return float((predictions == targets).double().mean())


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
