r"""The trained sensor classifiers of lecture 06 (C31, C32): the float models that run in fixed point and in secret.

Lecture 06 takes a small recurrent classifier of the accelerometer activity task (:func:`seqlib.data.sensor_activity`)
into integer arithmetic (:class:`~seqlib.fixedpoint_rnn.FixedPointRNN`) and then into two-party inference
(:func:`seqlib.secure_rnn.secure_inference`). The classifier is a :class:`seqlib.classifiers.RNNClassifier` with a
GRU, an LSTM or a :class:`~seqlib.fastgrnn.FastGRNN` and a linear ``head`` on the last hidden state,

.. math::
    h_L = \text{RNN}(x_1, \dots, x_L), \qquad \text{logits} = W h_L + b,

the ``.rnn`` / ``.head`` layout that :meth:`~seqlib.fixedpoint_rnn.FixedPointRNN.from_float` reads.

- :func:`build_sensor_classifier`: the untrained model;
- :func:`train_sensor_classifier`: the lecture's recipe, :func:`seqlib.classifiers.train_classifier` with Adam at a
  constant ``lr = 0.02``, gradient norm clipped to 1, 30 epochs over 2000 windows (seconds on one CPU thread);
- :func:`sensor_classifier`: trained once, then loaded from the cache (:func:`seqlib.cache.cached_model`);
- :func:`fixed_point_accuracy`: the lecture's table, its accuracy in fixed point against the bit-widths.

::

    model = sensor_classifier("gru")
    test = sensor_activity(1000, 32, seed=99)
    accuracy(model, test), fixed_point_accuracy(model, test.inputs, test.targets)
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_choice, check_positive_int
from .cache import cached_model
from .classifiers import RNNClassifier, train_classifier
from .data import sensor_activity
from .fixedpoint_rnn import FixedPointRNN
from .train import History

__all__ = ["CELLS", "build_sensor_classifier", "train_sensor_classifier", "sensor_classifier",
           "fixed_point_accuracy"]

#: The recurrent layers that run in fixed point (:data:`seqlib.fixedpoint_rnn.MODES`).
CELLS = ("gru", "lstm", "fastgrnn")


def build_sensor_classifier(cell: str = "gru", hidden_size: int = 16, num_classes: int = 6) -> RNNClassifier:
    """The untrained classifier: ``cell`` over the 3 axes, a linear head on the last hidden state."""
    check_choice("cell", cell, CELLS)
    return RNNClassifier(num_classes, hidden_size, cell=cell, input_size=3)


def train_sensor_classifier(model: RNNClassifier, n_train: int = 2000, seq_len: int = 32, epochs: int = 30,
                            batch_size: int = 50, lr: float = 0.02, seed: int = 0) -> History:
    """Train ``model`` in place on ``sensor_activity(n_train, seq_len, seed=seed)`` with the lecture's recipe
    (module docstring), seeded by ``seed``; returns the :class:`~seqlib.train.History`."""
    check_positive_int("n_train", n_train)
    data = sensor_activity(n_train, seq_len=seq_len, seed=seed)
    return train_classifier(model, data, epochs=epochs, batch_size=batch_size, lr=lr, schedule="constant",
                            clip_grad_norm=1.0, seed=seed, progress=False)


def sensor_classifier(cell: str = "gru", hidden_size: int = 16, seq_len: int = 32, seed: int = 0,
                      retrain: bool = False) -> RNNClassifier:
    """The trained classifier (in eval mode), trained once and then loaded from the cache (``seqlib.cache``)."""
    check_choice("cell", cell, CELLS)  # cached_model trains on one thread
    return cached_model(f"sensor_{cell}_h{hidden_size}_L{seq_len}_s{seed}_v3",
                        lambda: build_sensor_classifier(cell, hidden_size),
                        lambda m: train_sensor_classifier(m, seq_len=seq_len, seed=seed), seed=seed, retrain=retrain)


@torch.no_grad()
def fixed_point_accuracy(model: RNNClassifier, inputs: Tensor, targets: Tensor,
                         frac_bits: tuple[int, ...] = (16, 12, 8, 6, 4), digit_bits: tuple[int, ...] = (8, 6, 4),
                         int_bits: int = 8) -> dict[tuple[int, int], float]:
    """Accuracy of ``model`` run by :class:`~seqlib.fixedpoint_rnn.FixedPointRNN` on ``inputs`` ``(N, L, 3)``
    against ``targets`` ``(N,)``, for every pair ``(frac_bits, digit_bits)``, with storage
    ``bits = min(frac_bits + int_bits, 32)``."""
    check_positive_int("int_bits", int_bits)
    result = {}
    for f in frac_bits:
        for d in digit_bits:
            fx = FixedPointRNN.from_float(model, frac_bits=f, bits=min(f + int_bits, 32), digit_bits=d)
            result[(f, d)] = float((fx.predict(inputs) == targets).double().mean())
    return result
