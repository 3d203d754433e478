"""seqlib.data.sensor: the simulated accelerometer activity task."""

from __future__ import annotations

import math

import pytest
import torch

from seqlib.data import ACTIVITIES, sensor_activity
from seqlib.data import sensor as S

pytestmark = pytest.mark.part4


def test_shapes_dtypes_and_determinism():
    ds = sensor_activity(50, seq_len=40, seed=3)
    assert ds.inputs.shape == (50, 40, 3) and ds.inputs.dtype == torch.float32
    assert ds.targets.shape == (50,) and ds.targets.dtype == torch.int64
    x, y = ds[7]
    assert x.shape == (40, 3) and y.shape == ()
    again = sensor_activity(50, seq_len=40, seed=3)
    assert torch.equal(ds.inputs, again.inputs) and torch.equal(ds.targets, again.targets)
    assert not torch.equal(ds.inputs, sensor_activity(50, seq_len=40, seed=4).inputs)
    assert ds.classes == ACTIVITIES and ds.sample_rate == 16.0


def test_counts_give_a_long_tailed_set_with_a_class_subset():
    ds = sensor_activity(counts=[200, 50, 10, 2], classes=("walking", "running", "upstairs", "downstairs"), seed=1)
    assert ds.class_counts().tolist() == [200, 50, 10, 2]
    assert ds.classes == ("walking", "running", "upstairs", "downstairs")
    assert len(ds) == 262 and ds.targets[:20].unique().numel() > 1  # shuffled, not sorted by class


def test_gravity_and_step_frequency_follow_the_model():
    """The mean reading has norm ~1 g (gravity), and the dominant frequency of the motion is the step rate."""
    ds = sensor_activity(counts=[40] * 6, seq_len=128, seed=0, noise_std=0.0)
    mean = ds.inputs.mean(1)  # (n, 3)
    assert torch.allclose(mean.norm(dim=1), torch.ones(len(ds)), atol=0.15)
    magnitude = ds.inputs.norm(dim=2)  # (n, L): orientation-free
    spectrum = torch.fft.rfft(magnitude - magnitude.mean(1, keepdim=True), dim=1).abs()  # (n, L/2 + 1)
    freqs = torch.fft.rfftfreq(128, d=1 / 16.0)
    for k, name in enumerate(ACTIVITIES):
        (lo, hi), amps = S._MOTION[name]
        rows = ds.targets == k
        if hi == 0:  # still postures: no periodic motion beyond drift
            assert float(magnitude[rows].std(1).max()) < 0.1, name
            continue
        peak = freqs[spectrum[rows, 1:].argmax(1) + 1]  # skip the DC bin
        resolution = 16.0 / 128
        fundamental = (peak >= lo - resolution) & (peak <= hi + resolution)
        second = (peak >= 2 * lo - resolution) & (peak <= 2 * hi + resolution)  # the step's impact harmonic
        assert bool(fundamental.float().mean() > (0.3 if amps[1] > 0.5 * amps[0] else 0.8)), (name, peak)
        assert bool((fundamental | second).float().mean() > 0.9), (name, peak)


def test_rotations_are_rotations():
    R = S._rotations(20, 45.0, torch.Generator().manual_seed(0))
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(20, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(20), atol=1e-5)
    angles = torch.arccos(((R.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    assert float(angles.max()) <= math.radians(45.0) + 1e-4


@pytest.mark.parametrize("kwargs, error", [
    ({"n": 0}, ValueError), ({"seq_len": 0}, ValueError), ({"classes": ("flying",)}, ValueError),
    ({"classes": ("walking", "walking")}, ValueError), ({"counts": [1, 2]}, ValueError),
    ({"counts": [1, 0, 1, 1, 1, 1]}, ValueError), ({"noise_std": -1.0}, ValueError), ({"seed": 1.5}, TypeError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        sensor_activity(**kwargs)
