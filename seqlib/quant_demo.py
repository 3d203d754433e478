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

and evaluated class by class on a balanced test set (``seqlib.classifiers.accuracy(model, test, per_class=True)``,
:func:`seqlib.train.per_class_accuracy`). The float model is a :class:`seqlib.classifiers.RNNClassifier` (one LSTM
layer, the mean of its outputs over time, a linear head); it and every QAT run train with
:func:`seqlib.classifiers.train_classifier` (Adam, cosine schedule, gradient norm clipped to 1). Everything is seeded
and sized for a laptop CPU: training the float model takes about 20 s on one core, a QAT run a few seconds.

::

    train, test = sensor_long_tailed([2000, 500, 100, 20])
    model = float_classifier(train, seed=0)
    quantized = quantize_scheme(model, "climbq", bits=2, train=train, seed=0)
    accuracy(quantized, test, per_class=True)            # tensor of K accuracies
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ._checks import check_choice
from .classifiers import RNNClassifier, as_tensors, count_classes, train_classifier
from .climbq import HomoVarLoss, class_labels, homovar_class_weights
from .qat import calibrate, quantize_model

__all__ = ["build_classifier", "float_classifier", "quantize_scheme", "SCHEMES"]

SCHEMES = ("uniform", "cdf", "uniform_qat", "cdf_qat", "climbq")


def build_classifier(num_classes: int = 4, hidden_size: int = 32, input_size: int = 3) -> RNNClassifier:
    """The untrained float model: ``seqlib.LSTM`` over the window, the mean of its outputs, a linear head."""
    return RNNClassifier(num_classes, hidden_size, cell="lstm", pool="mean", input_size=input_size)


def float_classifier(train: Dataset, *, hidden_size: int = 32, epochs: int = 30, lr: float = 1e-2,
                     batch_size: int = 64, seed: int = 0) -> RNNClassifier:
    """The float model trained on ``train`` with the class-balanced cross-entropy (every class weighs the same in
    the loss), its initial weights and the training seeded by ``seed``; returned in eval mode."""
    torch.manual_seed(seed)  # the initial weights
    model = build_classifier(count_classes(train), hidden_size, as_tensors("train", train)[0].shape[-1])
    train_classifier(model, train, class_weights="balanced", epochs=epochs, lr=lr, batch_size=batch_size,
                     clip_grad_norm=1.0, seed=seed, progress=False)
    return model.eval()


class _WithLabels(nn.Module):
    """Training wrapper: ``forward(x, y)`` runs ``model(x)`` while its class-wise quantizers see ``y``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        with class_labels(self.model, y):
            return self.model(x)


class _LabelledInputs(Dataset):
    """Items ``((x, y), y)`` of a labelled dataset: the model reads the label beside its input (``_WithLabels``)."""

    def __init__(self, data: Dataset):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[tuple[Tensor, Tensor], Tensor]:
        x, y = self.data[i]
        return (x, y), y


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
    inputs, targets = as_tensors("train", train)
    num_classes = count_classes(train)
    grid = {"uniform": "uniform", "uniform_qat": "uniform", "cdf": "cdf", "cdf_qat": "cdf", "climbq": "climbq"}[scheme]
    quantized = quantize_model(model, bits, per_channel=per_channel, scheme=grid,
                               num_classes=num_classes if grid == "climbq" else None)
    calibrate(quantized, [(inputs[i:i + 512], targets[i:i + 512]) for i in range(0, len(inputs), 512)])
    if scheme in ("uniform", "cdf"):
        return quantized
    recipe = {"epochs": qat_epochs, "lr": lr, "batch_size": batch_size, "clip_grad_norm": 1.0, "seed": seed,
              "progress": False}
    if scheme in ("uniform_qat", "cdf_qat"):
        train_classifier(quantized, train, class_weights="balanced", **recipe)
        return quantized.eval()
    with torch.no_grad():
        features = model.features(inputs) if hasattr(model, "features") else inputs
    loss = HomoVarLoss(homovar_class_weights(features, targets, num_classes, alpha=alpha, beta=beta))
    train_classifier(_WithLabels(quantized), _LabelledInputs(train), loss_fn=loss, **recipe)
    return quantized.eval()
