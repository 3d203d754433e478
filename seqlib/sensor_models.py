r"""Small recurrent classifiers for the accelerometer activity task (Part 4's running example).

:class:`SensorClassifier` reads a window of 3-axis accelerometer readings
(:func:`seqlib.data.sensor_activity`) with a GRU, an LSTM or a :class:`~seqlib.fastgrnn.FastGRNN` and maps the
last hidden state to the activity's logits with a linear ``head``:

.. math::
    h_L = \text{RNN}(x_1, \dots, x_L), \qquad \text{logits} = W h_L + b

This is the shape :meth:`seqlib.fixedpoint_rnn.FixedPointRNN.from_float` and
:func:`seqlib.secure_rnn.secure_inference` expect (``.rnn`` and ``.head``). :func:`train_sensor_classifier`
trains one in seconds on a CPU (seeded), and :func:`sensor_classifier` trains it once and caches it with
:func:`seqlib.cache.cached_model`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ._checks import check_choice, check_positive_int, check_rank, check_size, check_tensor
from .cache import cached_model
from .data import sensor_activity
from .fastgrnn import FastGRNN
from .fixedpoint_rnn import FixedPointRNN
from .rnn import GRU, LSTM
from .threads import torch_threads
from .train import fit

__all__ = ["SensorClassifier", "train_sensor_classifier", "sensor_classifier", "accuracy", "fixed_point_accuracy",
           "KINDS"]

KINDS = ("gru", "lstm", "fastgrnn")


class SensorClassifier(nn.Module):
    r"""A recurrent layer and a linear head on its last hidden state.

    Args:
        kind: ``"gru"``, ``"lstm"`` or ``"fastgrnn"``.
        input_size: ``H_in``, features per reading (3 axes). Default: 3.
        hidden_size: ``H``. Default: 16.
        num_classes: ``C``. Default: 6.

    Inputs: x
        - **x**: ``(N, L, H_in)`` (batch first, as ``sensor_activity`` makes them).

    Outputs: logits
        - **logits**: ``(N, C)``.

    Attributes:
        rnn: the recurrent layer (``batch_first=True``); head: ``nn.Linear(H, C)``.
    """

    def __init__(self, kind: str = "gru", input_size: int = 3, hidden_size: int = 16, num_classes: int = 6) -> None:
        super().__init__()
        check_choice("kind", kind, KINDS)
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_classes", num_classes)):
            check_positive_int(name, value)
        self.kind = kind
        layer = {"gru": GRU, "lstm": LSTM, "fastgrnn": FastGRNN}[kind]
        self.rnn = layer(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = check_tensor("x", x, "(N, L, H_in)")
        check_rank("x", x, (3,), "(N, L, H_in)")
        check_size("x", x, -1, self.rnn.input_size, "H_in", "(N, L, H_in)")
        out, _ = self.rnn(x)  # (N, L, H)
        return self.head(out[:, -1])  # (N, C)


def accuracy(logits_or_labels: Tensor, targets: Tensor) -> float:
    """The fraction of correct predictions from logits ``(N, C)`` or labels ``(N,)``."""
    pred = logits_or_labels.argmax(-1) if logits_or_labels.dim() == 2 else logits_or_labels
    return float((pred == targets).double().mean())


def train_sensor_classifier(model: SensorClassifier, n_train: int = 2000, seq_len: int = 32, epochs: int = 30,
                            batch_size: int = 50, lr: float = 0.02, seed: int = 0) -> list[float]:
    """Train ``model`` in place on ``sensor_activity(n_train, seq_len, seed)`` with Adam and
    :func:`seqlib.train.fit` (gradient norm clipped to 1); returns the mean training loss of each epoch. Seeded
    (data and shuffling); seconds on one CPU thread at the defaults."""
    check_positive_int("n_train", n_train)
    check_positive_int("epochs", epochs)
    data = sensor_activity(n_train, seq_len=seq_len, seed=seed)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    history = fit(model, loader, F.cross_entropy, torch.optim.Adam(model.parameters(), lr=lr), epochs,
                  clip_grad_norm=1.0, device="cpu", progress=False)
    return list(history.train_loss)


def sensor_classifier(kind: str = "gru", hidden_size: int = 16, seq_len: int = 32, seed: int = 0,
                      retrain: bool = False) -> SensorClassifier:
    """A trained :class:`SensorClassifier`, trained once and then loaded from the cache (``seqlib.cache``)."""
    check_choice("kind", kind, KINDS)
    with torch_threads(1):
        return cached_model(f"sensor_{kind}_h{hidden_size}_L{seq_len}_s{seed}_v2",
                            lambda: SensorClassifier(kind, hidden_size=hidden_size),
                            lambda m: train_sensor_classifier(m, seq_len=seq_len, seed=seed), seed=seed,
                            retrain=retrain)


def fixed_point_accuracy(model: SensorClassifier, inputs: Tensor, targets: Tensor,
                         frac_bits: tuple[int, ...] = (16, 12, 8, 6, 4), digit_bits: tuple[int, ...] = (8, 6, 4),
                         int_bits: int = 8) -> dict[tuple[int, int], float]:
    """Accuracy of ``model`` run by :class:`~seqlib.fixedpoint_rnn.FixedPointRNN` for every pair
    ``(frac_bits, digit_bits)``, with storage ``bits = min(frac_bits + int_bits, 32)``."""
    check_positive_int("int_bits", int_bits)
    return {(f, d): accuracy(FixedPointRNN.from_float(model, frac_bits=f, bits=min(f + int_bits, 32),
                                                      digit_bits=d).predict(inputs), targets)
            for f in frac_bits for d in digit_bits}
