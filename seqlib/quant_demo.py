r"""The long-tailed quantization experiment of lecture 09: who loses when a sequence classifier is quantized? (C38-C39)

A small LSTM reads a window of accelerometer readings and names the activity
(:func:`seqlib.data.sensor_long_tailed`: many walking windows, few of going down stairs). It is trained in floating
point with a class-balanced loss (every class weighs the same in the loss, so that the float model knows every
class), then quantized at :math:`b` bits by one of these :data:`SCHEMES`:

==================  =================================================================================================
``"uniform"``       post-training: min-max affine grid for activations, symmetric grid for weights, calibrated
``"cdf"``           post-training: one normal distribution function fitted to all values, grid uniform in
                    :math:`F(x)` space (:func:`seqlib.cdf_quant.cdf_quantize`)
``"uniform_qat"``   quantization-aware training on the uniform grid, the float model's loss
``"cdf_qat"``       quantization-aware training in :math:`F(x)` space (one global normal), the float model's loss
``"climbq"``        quantization-aware training in :math:`F(x)` space, grid fitted after class-wise variance
                    scaling, HomoVar-weighted loss (:mod:`seqlib.climbq`)
==================  =================================================================================================

and evaluated class by class on a balanced test set (:func:`seqlib.train.per_class_accuracy`). Everything is seeded
and sized for a laptop CPU: training the float model takes about 20 s on one core, a QAT run a few seconds.

::

    train, test = sensor_long_tailed([2000, 500, 100, 20])
    model = train_classifier(SequenceClassifier(), train, seed=0)
    quantized = quantize_scheme(model, "climbq", bits=2, train=train, seed=0)
    per_class(quantized, test)            # tensor of K accuracies
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ._checks import check_choice, check_positive_int
from .climbq import HomoVarLoss, class_labels, homovar_class_weights
from .qat import calibrate, quantize_model
from .rnn import LSTM
from .train import fit, per_class_accuracy, predict, seed_everything

__all__ = ["SequenceClassifier", "balanced_class_weights", "train_classifier", "quantize_scheme", "per_class",
           "SCHEMES"]

SCHEMES = ("uniform", "cdf", "uniform_qat", "cdf_qat", "climbq")


class SequenceClassifier(nn.Module):
    r"""``seqlib.LSTM`` over the window, the mean of its outputs over time, a linear layer to :math:`K` logits.

    Inputs: x :math:`(N, L, H_{in})`; output: logits :math:`(N, K)`. :meth:`features` gives the :math:`(N, H)`
    averaged hidden states the linear layer reads.
    """

    def __init__(self, input_size: int = 3, hidden_size: int = 32, num_classes: int = 4):
        super().__init__()
        self.lstm = LSTM(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def features(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(x)  # (N, L, H)
        return out.mean(dim=1)  # (N, H)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (N, K)


class _WithLabels(nn.Module):
    """Training wrapper: ``forward(x, y)`` runs ``model(x)`` while its class-wise quantizers see ``y``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        with class_labels(self.model, y):
            return self.model(x)


def balanced_class_weights(targets: Tensor, num_classes: int) -> Tensor:
    r"""``(K,)`` weights :math:`\propto 1/n_k`, summing to :math:`K`: every class weighs the same in the loss."""
    counts = torch.bincount(targets, minlength=num_classes).float()
    if bool((counts == 0).any()):
        raise ValueError(f"every class needs training examples, but the counts are {counts.long().tolist()}")
    weights = 1.0 / counts
    return weights * num_classes / weights.sum()


def _loader(data: Dataset | tuple[Tensor, Tensor], batch_size: int, with_labels: bool = False) -> DataLoader:
    x, y = (data.inputs, data.targets) if hasattr(data, "inputs") else data
    pairs = TensorDataset(x, y, y) if with_labels else TensorDataset(x, y)
    collate = (lambda b: ((torch.stack([i[0] for i in b]), torch.stack([i[1] for i in b])),
                          torch.stack([i[2] for i in b]))) if with_labels else None
    return DataLoader(pairs, batch_size=batch_size, shuffle=True, collate_fn=collate)


def _train(model: nn.Module, loader: DataLoader, loss_fn, epochs: int, lr: float) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    fit(model, loader, loss_fn, optimizer, epochs, clip_grad_norm=1.0, device="cpu", progress=False,
        callbacks=[lambda epoch, history, m: schedule.step()])


def train_classifier(model: nn.Module, train: Dataset, *, epochs: int = 30, lr: float = 1e-2, batch_size: int = 64,
                     seed: int = 0) -> nn.Module:
    """Train ``model`` in floating point with the class-balanced cross-entropy (Adam, cosine schedule, clipping at
    1), seeded; returns it in eval mode."""
    check_positive_int("epochs", epochs)
    seed_everything(seed)
    num_classes = len(train.classes) if hasattr(train, "classes") else int(train.targets.max()) + 1
    weight = balanced_class_weights(train.targets, num_classes)
    _train(model, _loader(train, batch_size), lambda out, y: F.cross_entropy(out, y, weight=weight), epochs, lr)
    return model.eval()


def quantize_scheme(model: nn.Module, scheme: str, bits: int, train: Dataset, *, per_channel: bool = False,
                    qat_epochs: int = 8, lr: float = 3e-3, batch_size: int = 64, beta: float = 0.9999,
                    alpha: float = 0.05, seed: int = 0) -> nn.Module:
    r"""Quantize a trained float ``model`` at ``bits`` bits with one of :data:`SCHEMES` (see the module docstring).

    Args:
        model: the float classifier (left unchanged; a quantized copy is returned, in eval mode).
        scheme: ``"uniform"``, ``"cdf"``, ``"uniform_qat"``, ``"cdf_qat"`` or ``"climbq"``.
        bits: weights and layer inputs at this bit-width (2-8 in the course).
        train: the training set: calibration data, and the QAT data.
        per_channel: one weight grid per output row.
        qat_epochs, lr, batch_size: the quantization-aware fine-tuning (QAT schemes only).
        beta, alpha: the HomoVar loss's :math:`\beta` and Levene's significance level (``"climbq"`` only). The
            supplement's :math:`\beta = 0.999` saturates for classes of a few thousand (:math:`0.999^{2000}
            \approx e^{-2}`), so the default is 0.9999.
        seed: seeds the QAT run.
    """
    check_choice("scheme", scheme, SCHEMES)
    num_classes = len(train.classes) if hasattr(train, "classes") else int(train.targets.max()) + 1
    grid = {"uniform": "uniform", "uniform_qat": "uniform", "cdf": "cdf", "cdf_qat": "cdf", "climbq": "climbq"}[scheme]
    quantized = quantize_model(model, bits, per_channel=per_channel, scheme=grid,
                               num_classes=num_classes if grid == "climbq" else None)
    calibration = [(train.inputs[i:i + 512], train.targets[i:i + 512]) for i in range(0, len(train), 512)]
    calibrate(quantized, calibration)
    if scheme in ("uniform", "cdf"):
        return quantized
    seed_everything(seed)
    if scheme in ("uniform_qat", "cdf_qat"):
        weight = balanced_class_weights(train.targets, num_classes)
        _train(quantized, _loader(train, batch_size), lambda out, y: F.cross_entropy(out, y, weight=weight),
               qat_epochs, lr)
        return quantized.eval()
    with torch.no_grad():
        features = model.features(train.inputs) if hasattr(model, "features") else train.inputs
    loss = HomoVarLoss(homovar_class_weights(features, train.targets, num_classes, alpha=alpha, beta=beta))
    _train(_WithLabels(quantized), _loader(train, batch_size, with_labels=True), loss, qat_epochs, lr)
    return quantized.eval()


def per_class(model: nn.Module, test: Dataset, batch_size: int = 1024) -> Tensor:
    """``(K,)`` accuracy of ``model`` on each class's examples of ``test`` (:func:`seqlib.train.per_class_accuracy`)."""
    num_classes = len(test.classes) if hasattr(test, "classes") else int(test.targets.max()) + 1
    loader = DataLoader(TensorDataset(test.inputs, test.targets), batch_size=batch_size)
    predictions, targets = predict(model, loader, device="cpu")
    return per_class_accuracy(predictions, targets, num_classes)
