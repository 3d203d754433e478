"""seqlib.viz.quantization: figures from a real (toy-sized) run of the long-tailed experiment, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_checks import no_pyplot_figures  # noqa: F401 (an autouse fixture)

from seqlib import quant_demo, viz
from seqlib.cdf_quant import cdf_levels, fit_distribution
from seqlib.classifiers import accuracy
from seqlib.data import sensor_long_tailed
from seqlib.observers import choose_qparams
from seqlib.quant import uniform_levels

pytestmark = pytest.mark.part4


@pytest.fixture(scope="module")
def run():
    train, test = sensor_long_tailed([60, 20, 8, 4], test_per_class=8, seq_len=12, seed=1)
    model = quant_demo.float_classifier(train, hidden_size=6, epochs=1, seed=0)
    results = {}
    for scheme in ("uniform", "cdf"):
        for bits in (8, 2):
            acc = accuracy(quant_demo.quantize_scheme(model, scheme, bits, train), test, per_class=True)
            results.setdefault(scheme, {})[bits] = torch.stack([acc, acc.flip(0)])  # two "seeds"
    results["float"] = {32: accuracy(model, test, per_class=True)}
    with torch.no_grad():
        features = model.features(train.inputs)
    return train, results, features


def test_per_class_accuracy_bars_hold_the_accuracies(run):
    train, results, _ = run
    fig = viz.plot_per_class_accuracy(results, class_names=train.classes, title="toy")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["float", "8 bits", "2 bits"]
    bars = [p.get_height() for p in axes[2].patches]  # 2 schemes x 4 classes
    expected = [100 * float(results[s][2].mean(0)[k]) for s in ("uniform", "cdf") for k in range(4)]
    np.testing.assert_allclose(bars, expected)
    assert [t.get_text() for t in axes[0].get_xticklabels()] == list(train.classes)


def test_quantization_grid_draws_one_line_per_level_over_every_class(run):
    train, _, features = run
    by_class = {name: features[train.targets == k] for k, name in enumerate(train.classes)}
    scale, zp = choose_qparams(features.min(), features.max(), bits=2, signed=False)
    loc, sigma = fit_distribution(features)
    grids = {"min-max, 2 bits": uniform_levels(float(scale), int(zp), 2, False),
             "global CDF, 2 bits": cdf_levels(2, "normal", float(loc), float(sigma))}
    fig = viz.plot_quantization_grid(by_class, grids, bins=20)
    assert len(fig.axes) == 2
    for ax, grid in zip(fig.axes, grids.values(), strict=True):
        vertical = sorted(line.get_xdata()[0] for line in ax.lines)
        np.testing.assert_allclose(vertical, grid.numpy())
        assert len(ax.patches) == 4  # one step histogram per class
    single = viz.plot_quantization_grid([features[train.targets == 0], features[train.targets == 3]],
                                        cdf_levels(3, "normal", 0.0, 0.2))
    assert len(single.axes[0].lines) == 8


def test_bad_input(run):
    train, results, features = run
    with pytest.raises(ValueError, match="non-empty mapping"):
        viz.plot_per_class_accuracy({})
    with pytest.raises(ValueError, match=r"shape \(K,\) or \(S, K\)"):
        viz.plot_per_class_accuracy({"uniform": {4: torch.zeros(2, 2, 2)}})
    with pytest.raises(ValueError, match="same number of classes"):
        viz.plot_per_class_accuracy({"a": {4: [0.5, 0.5]}, "b": {4: [0.5, 0.5, 0.1]}})
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        viz.plot_per_class_accuracy({"a": {4: [50.0, 20.0]}})
    with pytest.raises(ValueError, match="K = 4 names"):
        viz.plot_per_class_accuracy(results, class_names=["a"])
    with pytest.raises(ValueError, match="must not be empty"):
        viz.plot_quantization_grid({"a": features[:0]}, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"shape \(L,\)"):
        viz.plot_quantization_grid({"a": features}, torch.zeros(2, 2))
    with pytest.raises(TypeError, match="mapping or a list"):
        viz.plot_quantization_grid("walking", [0.0, 1.0])
    with pytest.raises(ValueError, match="bins"):
        viz.plot_quantization_grid({"a": features}, [0.0, 1.0], bins=1)
    with pytest.raises(ValueError, match="zero_point must lie"):
        uniform_levels(0.1, 300, 8, True)
