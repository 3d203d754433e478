r"""A long-tailed sensor task: an imbalanced training set and a balanced test set (C39).

Real deployments rarely see their classes equally often: a wearable logs hours of walking for every minute of
climbing stairs. A model trained on such data, and then quantized, tends to lose the rare classes first. To see
that, the training set must be imbalanced while the test set is balanced, so that every class's accuracy is
measured on the same number of windows.

:func:`long_tailed_counts` gives the usual exponential profile of the long-tailed benchmarks (CIFAR-LT): class
:math:`k` of :math:`K` gets

.. math::
    n_k = \big\lfloor n_{\max}\, \gamma^{-k / (K - 1)} \big\rceil, \qquad k = 0, \dots, K - 1

so the largest class has :math:`n_{\max}` windows and the smallest :math:`n_{\max} / \gamma` (the *imbalance ratio*
:math:`\gamma`). :func:`sensor_long_tailed` draws the training set with those counts (or counts you give) from
:func:`~seqlib.data.sensor.sensor_activity` and a balanced test set from an independent seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._checks import check_positive_int
from .sensor import SensorDataset, sensor_activity

__all__ = ["long_tailed_counts", "sensor_long_tailed", "LONG_TAILED_CLASSES"]

#: The four moving activities (they overlap in step frequency, so the task is not trivial).
LONG_TAILED_CLASSES: tuple[str, ...] = ("walking", "running", "upstairs", "downstairs")


def long_tailed_counts(n_max: int, imbalance: float, num_classes: int) -> list[int]:
    r"""Class sizes :math:`n_k = \operatorname{round}(n_{\max} \gamma^{-k/(K-1)})`, largest first, each at least 1.

    Args:
        n_max: :math:`n_{\max}`, the size of the largest class.
        imbalance: :math:`\gamma \ge 1`, the ratio of the largest to the smallest class (``1``: balanced).
        num_classes: :math:`K \ge 1`.

    Example: ``long_tailed_counts(2000, 100, 4) == [2000, 431, 93, 20]``.
    """
    check_positive_int("n_max", n_max)
    check_positive_int("num_classes", num_classes)
    if not isinstance(imbalance, int | float) or isinstance(imbalance, bool) or not imbalance >= 1:
        raise ValueError(f"imbalance must be a number >= 1 (largest / smallest class), but got {imbalance!r}")
    if num_classes == 1:
        return [n_max]
    return [max(1, round(n_max * imbalance ** (-k / (num_classes - 1)))) for k in range(num_classes)]


def sensor_long_tailed(
    counts: Sequence[int] | None = None,
    *,
    n_max: int = 2000,
    imbalance: float = 100.0,
    test_per_class: int = 200,
    classes: Sequence[str] = LONG_TAILED_CLASSES,
    seq_len: int = 64,
    seed: int = 0,
    **sensor_kwargs: float,
) -> tuple[SensorDataset, SensorDataset]:
    r"""An imbalanced training set and a balanced test set of the simulated accelerometer task.

    Args:
        counts: training windows per class, e.g. ``[2000, 500, 100, 20]``; ``None``: ``long_tailed_counts(n_max,
            imbalance, len(classes))``.
        n_max, imbalance: the long-tailed profile used when ``counts`` is ``None``.
        test_per_class: windows of each class in the test set.
        classes: activities in label order (label ``k`` is ``classes[k]``, the ``k``-th largest class).
        seq_len: ``L``, readings per window.
        seed: the training set uses ``seed``, the test set an independent stream (``seed + 10_000``).
        sensor_kwargs: passed on to :func:`~seqlib.data.sensor.sensor_activity` (``noise_std``, ``tilt_deg``, ...).

    Returns:
        ``(train, test)``, two :class:`~seqlib.data.sensor.SensorDataset` with items ``x`` :math:`(L, 3)` float32 and
        ``y`` :math:`()` int64; ``train.class_counts()`` is ``counts``, ``test.class_counts()`` is all
        ``test_per_class``.
    """
    classes = tuple(classes)
    if counts is None:
        counts = long_tailed_counts(n_max, imbalance, len(classes))
    counts = list(counts)
    if len(counts) != len(classes):
        raise ValueError(f"counts must have one entry per class ({len(classes)}: {classes}), but got {len(counts)}")
    for k, c in enumerate(counts):  # an empty class has no examples to learn from
        if isinstance(c, int) and not isinstance(c, bool) and c < 1:
            raise ValueError(f"counts[{k}] (class {classes[k]!r}) must be at least 1, but got {c}: every class needs "
                             f"training examples")
    check_positive_int("test_per_class", test_per_class)
    train = sensor_activity(seq_len=seq_len, seed=seed, classes=classes, counts=counts, **sensor_kwargs)
    test = sensor_activity(seq_len=seq_len, seed=seed + 10_000, classes=classes,
                           counts=[test_per_class] * len(classes), **sensor_kwargs)
    return train, test
