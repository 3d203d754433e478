r"""A synthetic wearable-sensor task: which activity does a 3-axis accelerometer window show?

Human-activity recognition from a body-worn accelerometer is the standard sensor time series of small and
private machine learning (the FastGRNN and SIRNN papers use such data): a window of ``L`` readings of the
acceleration along three axes, in units of g, and one label per window. Real recordings cannot ship with the
course, so :func:`sensor_activity` simulates them from a small physical model; everything is drawn from a
local ``torch.Generator`` seeded with ``seed``.

For a window of class :math:`k` with sample rate :math:`r` (Hz), step :math:`t` at time :math:`\tau = t / r`:

.. math::
    a(\tau) = R\,\big(g_k + \textstyle\sum_{m=1}^{3} A_{k,m}\, \sin(2\pi m f \tau + \varphi_m)\, d_k\big)
        + \epsilon_\tau, \qquad \epsilon_\tau \sim N(0, \sigma^2 I)

- :math:`g_k` is where gravity points in the sensor's frame for the class's posture (sitting: the thigh is
  horizontal, so gravity is along the sensor's x axis; otherwise along z, leaning forward on stairs going up);
- :math:`f` is the step frequency (drawn per window from the class's range; zero for the still postures), the
  :math:`A_{k,m}` are the amplitudes of its first three harmonics (running swings most, going down stairs has a
  strong second harmonic from the impact of each step), :math:`d_k` the direction of the swing;
- :math:`R` is a random rotation of up to ``tilt_deg`` degrees (the sensor is never strapped on the same way),
  and the still postures also drift slowly.

Neighbouring classes overlap on purpose (walking and going downstairs share step frequencies, sitting and
standing differ only in orientation), so a model must read the shape of the signal over time, not one reading.

``sensor_activity(n)`` draws the labels uniformly; ``counts=[2000, 500, 100, 20]`` draws exactly that many
windows of each class instead (a long-tailed, imbalanced set), and ``classes`` picks a subset of
:data:`ACTIVITIES`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._checks import check_positive_int
from .synthetic import PairDataset, _check_n, _generator

__all__ = ["ACTIVITIES", "SensorDataset", "sensor_activity"]

#: The activities, in label order.
ACTIVITIES: tuple[str, ...] = ("sitting", "standing", "walking", "running", "upstairs", "downstairs")

# posture: where gravity points in the sensor frame (unit vectors before the random tilt)
_GRAVITY = {
    "sitting": (1.0, 0.0, 0.15),
    "standing": (0.05, 0.0, 1.0),
    "walking": (0.1, 0.0, 1.0),
    "running": (0.2, 0.0, 1.0),
    "upstairs": (0.45, 0.0, 1.0),
    "downstairs": (-0.1, 0.0, 1.0),
}
# step frequency range in Hz (0: no periodic motion) and amplitudes (in g) of the first three harmonics
_MOTION = {
    "sitting": ((0.0, 0.0), (0.0, 0.0, 0.0)),
    "standing": ((0.0, 0.0), (0.0, 0.0, 0.0)),
    "walking": ((1.5, 2.1), (0.30, 0.06, 0.03)),
    "running": ((2.3, 3.0), (0.70, 0.20, 0.08)),
    "upstairs": ((1.2, 1.8), (0.24, 0.05, 0.13)),
    "downstairs": ((1.6, 2.2), (0.24, 0.20, 0.05)),
}
# direction of the swing in the sensor frame: mostly vertical, some forward/sideways
_SWING = (0.35, 0.2, 1.0)


class SensorDataset(PairDataset):
    """Windows ``x`` ``(n, L, 3)`` float32 (acceleration in g along x, y, z) and labels ``y`` ``(n,)`` int64.

    Attributes:
        inputs, targets: the two tensors (an item is ``(x[i], y[i])``: ``(L, 3)`` and ``()``).
        classes: the activity names, ``classes[y[i]]`` is item ``i``'s activity.
        sample_rate: readings per second.
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, classes: Sequence[str], sample_rate: float):
        super().__init__(inputs, targets)
        self.classes = tuple(classes)
        self.sample_rate = float(sample_rate)

    def class_counts(self) -> torch.Tensor:
        """``(C,)`` int64: how many windows of each class."""
        return torch.bincount(self.targets, minlength=len(self.classes))


def _rotations(n: int, max_deg: float, g: torch.Generator) -> torch.Tensor:
    """``(n, 3, 3)`` rotations by a uniform angle in [0, max_deg] about uniformly random axes (Rodrigues)."""
    axis = torch.randn(n, 3, generator=g)
    axis = axis / axis.norm(dim=1, keepdim=True)  # (n, 3) unit axes
    angle = torch.rand(n, generator=g) * math.radians(max_deg)  # (n,)
    K = torch.zeros(n, 3, 3)  # cross-product matrices of the axes
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    K = K - K.transpose(1, 2)
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    return torch.eye(3) + s * K + (1 - c) * (K @ K)  # (n, 3, 3)


def sensor_activity(
    n: int = 1000,
    seq_len: int = 64,
    seed: int = 0,
    *,
    classes: Sequence[str] = ACTIVITIES,
    counts: Sequence[int] | None = None,
    sample_rate: float = 16.0,
    noise_std: float = 0.08,
    tilt_deg: float = 30.0,
) -> SensorDataset:
    r"""Simulated 3-axis accelerometer windows of human activities (see the module docstring for the model).

    Args:
        n: number of windows (labels drawn uniformly from ``classes``); ignored when ``counts`` is given.
        seq_len: ``L``, readings per window.
        seed: seed of the local generator.
        classes: which of :data:`ACTIVITIES` to use, in label order (label ``k`` is ``classes[k]``).
        counts: exactly ``counts[k]`` windows of class ``k`` (shuffled), e.g. ``[2000, 500, 100, 20]`` for a
            long-tailed set; ``None``: ``n`` windows with uniform labels.
        sample_rate: readings per second (Hz).
        noise_std: :math:`\sigma`, the sensor noise in g.
        tilt_deg: the largest random rotation of the sensor, in degrees.

    Outputs: a :class:`SensorDataset` whose items are
        - x: :math:`(L, 3)` float32
        - y: :math:`()` int64, the class index
    """
    check_positive_int("seq_len", seq_len)
    classes = tuple(classes)
    unknown = [c for c in classes if c not in ACTIVITIES]
    if not classes or unknown or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names from {ACTIVITIES}, but got {classes}")
    if not sample_rate > 0 or not noise_std >= 0 or not 0 <= tilt_deg <= 180:
        raise ValueError(f"need sample_rate > 0, noise_std >= 0 and 0 <= tilt_deg <= 180, but got {sample_rate}, "
                         f"{noise_std} and {tilt_deg}")
    g = _generator(seed)
    if counts is None:
        _check_n(n)
        labels = torch.randint(0, len(classes), (n,), generator=g)
    else:
        counts = [check_positive_int(f"counts[{k}]", c) for k, c in enumerate(counts)]
        if len(counts) != len(classes):
            raise ValueError(f"counts must have one entry per class ({len(classes)}), but got {len(counts)}")
        labels = torch.repeat_interleave(torch.arange(len(classes)), torch.tensor(counts))
        labels = labels[torch.randperm(len(labels), generator=g)]
    n = len(labels)
    gravity = torch.tensor([_GRAVITY[c] for c in classes])[labels]  # (n, 3)
    gravity = gravity / gravity.norm(dim=1, keepdim=True)
    f_lo, f_hi = (torch.tensor([_MOTION[c][0][i] for c in classes])[labels] for i in (0, 1))  # (n,) each
    amps = torch.tensor([_MOTION[c][1] for c in classes])[labels]  # (n, 3) harmonics
    freq = f_lo + (f_hi - f_lo) * torch.rand(n, generator=g)  # (n,) step frequency, Hz
    amps = amps * (0.7 + 0.6 * torch.rand(n, 1, generator=g))  # each person moves a little differently
    phase = 2 * math.pi * torch.rand(n, 3, generator=g)  # (n, 3) one phase per harmonic
    time = torch.arange(seq_len, dtype=torch.float32) / sample_rate  # (L,) seconds
    harmonic = torch.arange(1, 4, dtype=torch.float32)  # (3,)
    angle = 2 * math.pi * freq[:, None, None] * harmonic[None, None, :] * time[None, :, None]  # (n, L, 3)
    swing = (amps[:, None, :] * torch.sin(angle + phase[:, None, :])).sum(-1)  # (n, L)
    direction = torch.tensor(_SWING) / torch.tensor(_SWING).norm()  # (3,)
    drift = 0.03 * torch.cumsum(torch.randn(n, seq_len, 3, generator=g), dim=1) / math.sqrt(seq_len)  # (n, L, 3)
    body = gravity[:, None, :] + swing[:, :, None] * direction + drift  # (n, L, 3) before the sensor's tilt
    x = body @ _rotations(n, tilt_deg, g).transpose(1, 2)  # (n, L, 3): rotate every reading
    x = x + noise_std * torch.randn(n, seq_len, 3, generator=g)
    return SensorDataset(x.float(), labels.long(), classes, sample_rate)
