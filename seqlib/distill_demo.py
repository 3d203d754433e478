r"""The distillation experiment of lecture 08 (C37): a Transformer teacher, a 16-unit LSTM student, the sensor task.

The task is :func:`seqlib.data.sensor_activity`: which of six activities a 2-second window of a 3-axis
accelerometer shows (``L = 32`` readings at 16 Hz). Its classes overlap on purpose (walking and going downstairs
share step rates, sitting and standing differ only in how the sensor hangs), so a good teacher's scores say which
classes look alike. The windows come from disjoint seeds:

==================  ======  ====================================================================================
split               size    use
==================  ======  ====================================================================================
``teacher_train``   4000    the teacher's labelled training data
``labelled``        120     the student's labels (20 per class on average: labelling is expensive)
``unlabelled``      3000    more windows, their labels thrown away (recordings are cheap)
``test``            2000    every accuracy of the lecture and the benchmark
==================  ======  ====================================================================================

The teacher, :func:`build_teacher`, is a two-layer :class:`~seqlib.classifiers.TransformerClassifier`
(17 478 parameters) trained once by :func:`train_teacher` and cached by :func:`sensor_teacher`
(:func:`seqlib.cache.cached_model`; 15-40 s on one CPU core the first time, milliseconds afterwards). The
student, :func:`build_student`, is an LSTM :class:`~seqlib.classifiers.RNNClassifier` with 16 hidden units
(1 446 parameters). :func:`run_student` trains one student by one of the :data:`METHODS`, each with the same recipe
(:func:`seqlib.classifiers.train_classifier`: Adam at ``lr = 0.03``, cosine decay, gradient norm clipped to 1,
batches of 64) and the same number of optimiser steps, so that only what the student learns from differs:

================  ===============================================================================================
``"labels"``      cross-entropy on the 120 labels alone: the baseline
``"soft"``        the same 120 windows, soft targets at ``T = 2`` mixed half and half with the labels (Hinton et al.)
``"augmented"``   logit matching (MSE) on the 120 windows and 10 augmented copies of each (Tang et al.)
``"unlabelled"``  logit matching on the 120 windows and the 3000 unlabelled ones
``"all_labels"``  a reference, not distillation: cross-entropy on the 120 + 3000 windows with their true labels
================  ===============================================================================================

:func:`compare` runs them over several seeds and returns accuracies, sizes and CPU latencies for the table.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import TensorDataset

from ._checks import check_choice, check_positive_int
from .cache import cached_model
from .classifiers import (
    RNNClassifier,
    TransformerClassifier,
    accuracy,
    count_parameters,
    cpu_latency,
    train_classifier,
)
from .data import SensorDataset, sensor_activity
from .distill import distill
from .threads import torch_threads
from .train import History
from .transfer import TransferSet, transfer_set

__all__ = ["SEQ_LEN", "TEACHER_NAME", "METHODS", "sensor_splits", "build_teacher", "build_student", "train_teacher",
           "sensor_teacher", "method_transfer_set", "run_student", "compare"]

#: Readings per window (2 s at 16 Hz).
SEQ_LEN = 32
#: The cache key of the trained teacher (change the version when the recipe changes).
TEACHER_NAME = "distill_sensor_teacher_v1"
#: The ways to train the student, with the settings each uses.
METHODS: dict[str, dict[str, Any]] = {
    "labels": {},
    "soft": {"kind": "kl", "temperature": 2.0, "alpha": 0.5},
    "augmented": {"kind": "mse", "alpha": 1.0, "copies": 10},
    "unlabelled": {"kind": "mse", "alpha": 1.0, "unlabelled": True},
    "all_labels": {"all_labels": True},
}
_SEEDS = {"teacher_train": 1, "labelled": 2, "unlabelled": 3, "test": 4}  # one seed of sensor_activity per split


def sensor_splits(n_labelled: int = 120, n_unlabelled: int = 3000, n_test: int = 2000, n_teacher: int = 4000,
                  seq_len: int = SEQ_LEN) -> dict[str, SensorDataset]:
    """The four splits of the experiment (the module docstring's table), each drawn from a seed of its own.

    The ``unlabelled`` split keeps its labels in the dataset object (the lecture may peek at them); the experiment
    passes only its ``inputs`` on.
    """
    sizes = {"teacher_train": n_teacher, "labelled": n_labelled, "unlabelled": n_unlabelled, "test": n_test}
    return {name: sensor_activity(check_positive_int(f"n_{name}", n), seq_len, seed=_SEEDS[name])
            for name, n in sizes.items()}


def build_teacher(seq_len: int = SEQ_LEN) -> TransformerClassifier:
    """The untrained teacher: 2 pre-norm encoder layers, width 32, 4 heads, feed-forward 64, on 3 input features."""
    return TransformerClassifier(6, d_model=32, nhead=4, num_layers=2, dim_feedforward=64, dropout=0.1,
                                 input_size=3, max_len=seq_len)


def build_student(hidden_size: int = 16) -> RNNClassifier:
    """The untrained student: one LSTM layer of ``hidden_size`` units over the 3 features, a linear head on its last
    hidden state."""
    return RNNClassifier(6, hidden_size, cell="lstm", input_size=3)


def train_teacher(model: TransformerClassifier, data: SensorDataset | None = None, epochs: int = 10,
                  progress: bool = False) -> History:
    """Train the teacher on ``data`` (default: the ``teacher_train`` split) with the course's recipe."""
    data = sensor_splits()["teacher_train"] if data is None else data
    return train_classifier(model, data, epochs=epochs, batch_size=32, lr=3e-3, seed=0, progress=progress)


def sensor_teacher(*, retrain: bool = False, folder: str | os.PathLike[str] | None = None) -> TransformerClassifier:
    """The trained teacher, from the model cache (trained and stored there on first use), in eval mode."""
    return cached_model(TEACHER_NAME, build_teacher, train_teacher, folder=folder, retrain=retrain)


def method_transfer_set(method: str, teacher: torch.nn.Module, splits: dict[str, SensorDataset],
                        seed: int = 0, copies: int | None = None) -> TransferSet | None:
    """The transfer set a method distils on (``None`` for the label-only methods); the teacher runs over it once.

    ``copies`` overrides the method's number of augmented copies of each labelled window.
    """
    check_choice("method", method, tuple(METHODS))
    settings = METHODS[method]
    if method in ("labels", "all_labels"):
        return None
    unlabelled = splits["unlabelled"].inputs if settings.get("unlabelled") else None
    copies = settings.get("copies", 0) if copies is None else copies
    return transfer_set(teacher, splits["labelled"], unlabelled=unlabelled, copies=copies, seed=seed)


_OVERRIDES = ("kind", "temperature", "alpha", "copies")


def _all_labels(splits: dict[str, SensorDataset]) -> TensorDataset:
    """The labelled and the unlabelled windows with their true labels (the reference of "all_labels")."""
    parts = (splits["labelled"], splits["unlabelled"])
    return TensorDataset(torch.cat([p.inputs for p in parts]), torch.cat([p.targets for p in parts]))


@torch_threads(1)
def run_student(method: str, seed: int = 0, *, teacher: torch.nn.Module | None = None,
                splits: dict[str, SensorDataset] | None = None, transfer: TransferSet | None = None,
                steps: int = 1200, batch_size: int = 64, lr: float = 3e-2, clip_grad_norm: float | None = 1.0,
                hidden_size: int = 16, progress: bool = False, **overrides: Any) -> dict[str, Any]:
    r"""Train one student by ``method`` (a key of :data:`METHODS`) and measure it on the test split.

    Every method gets about ``steps`` optimiser steps (whole epochs: ``round(steps / batches per epoch)``, at least
    one) of :func:`seqlib.classifiers.train_classifier` with ``batch_size`` and ``lr``; the student's initial
    weights and the shuffling come from ``seed``.

    Args:
        method: a key of :data:`METHODS`.
        seed: seed of the student's initialisation, the augmentation and the training.
        teacher: the trained teacher. Default: :func:`sensor_teacher`.
        splits: the data. Default: :func:`sensor_splits`.
        transfer: a transfer set built before (:func:`method_transfer_set`), to share it between seeds.
        steps, batch_size, lr, clip_grad_norm: the budget and the recipe. Defaults: ``1200``, ``64``, ``0.03``,
            ``1.0``.
        hidden_size: the student's LSTM units. Default: ``16``.
        **overrides: ``kind``, ``temperature``, ``alpha``, ``copies`` in place of the method's own settings (a
            widget's sliders: ``run_student("soft", temperature=8.0, alpha=0.9)``).

    Returns:
        ``{"method", "seed", "accuracy", "steps", "epochs", "seconds", "model"}`` (``model`` is the trained student).
    """
    check_choice("method", method, tuple(METHODS))
    check_positive_int("steps", steps)
    unknown = sorted(set(overrides) - set(_OVERRIDES))
    if unknown or (overrides and method in ("labels", "all_labels")):
        raise TypeError(f"run_student({method!r}) takes the overrides {_OVERRIDES} for the distilling methods only, "
                        f"but got {sorted(overrides)}")
    splits = sensor_splits() if splits is None else splits
    settings = {**METHODS[method], **overrides}
    if method == "labels":
        data: Any = splits["labelled"]
    elif method == "all_labels":
        data = _all_labels(splits)
    else:
        teacher = sensor_teacher() if teacher is None else teacher
        if transfer is None:
            transfer = method_transfer_set(method, teacher, splits, seed, copies=settings.get("copies"))
        data = transfer
    per_epoch = math.ceil(len(data) / batch_size)
    epochs = max(1, round(steps / per_epoch))
    torch.manual_seed(seed)
    student = build_student(hidden_size)
    start = time.perf_counter()
    train = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "clip_grad_norm": clip_grad_norm, "seed": seed,
             "progress": progress}
    if method in ("labels", "all_labels"):
        train_classifier(student, data, **train)
    else:
        distill(student, teacher, data, kind=settings["kind"], temperature=settings.get("temperature", 1.0),
                alpha=settings["alpha"], **train)
    seconds = time.perf_counter() - start
    return {"method": method, "seed": seed, "accuracy": accuracy(student.eval(), splits["test"]),
            "steps": epochs * per_epoch, "epochs": epochs, "seconds": seconds, "model": student}


def compare(seeds: Sequence[int] = (0, 1, 2), methods: Sequence[str] = tuple(METHODS), *,
            teacher: torch.nn.Module | None = None, splits: dict[str, SensorDataset] | None = None,
            steps: int = 1200, progress: bool = False, **kwargs: Any) -> dict[str, Any]:
    r"""Teacher and students side by side: every method of ``methods`` for every seed of ``seeds``.

    Returns:
        ``{"teacher": {"accuracy", "parameters", "latency_ms"}, "student": {"parameters", "latency_ms"},
        "accuracy": {method: [one per seed]}, "seconds": {method: [...]}, "steps": {method: int}, "seeds": [...]}``;
        latencies are the median of classifying one window on one CPU thread (:func:`cpu_latency`).
    """
    for m in methods:
        check_choice("method", m, tuple(METHODS))
    splits = sensor_splits() if splits is None else splits
    teacher = sensor_teacher() if teacher is None else teacher
    example = splits["test"].inputs[0]
    student = build_student(kwargs.get("hidden_size", 16))
    result: dict[str, Any] = {
        "teacher": {"accuracy": accuracy(teacher, splits["test"]), "parameters": count_parameters(teacher),
                    "latency_ms": cpu_latency(teacher, example)},
        "student": {"parameters": count_parameters(student), "latency_ms": cpu_latency(student, example)},
        "accuracy": {}, "seconds": {}, "steps": {}, "seeds": list(seeds),
    }
    for method in methods:
        transfer = method_transfer_set(method, teacher, splits, seed=0)  # scored once, shared by the seeds
        runs = [run_student(method, s, teacher=teacher, splits=splits, transfer=transfer, steps=steps,
                            progress=progress, **kwargs) for s in seeds]
        result["accuracy"][method] = [r["accuracy"] for r in runs]
        result["seconds"][method] = [r["seconds"] for r in runs]
        result["steps"][method] = runs[0]["steps"]
    return result
