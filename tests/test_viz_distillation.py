"""seqlib.viz.distillation: each figure draws from real data (a teacher's logits, accuracies over seeds) and refuses
bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_checks import no_pyplot_figures  # noqa: F401 (an autouse fixture)
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from seqlib import viz
from seqlib.classifiers import TransformerClassifier, predict_logits
from seqlib.data import ACTIVITIES, sensor_activity
from seqlib.distill import temperature_softmax

pytestmark = pytest.mark.part4


@pytest.fixture(scope="module")
def teacher_logits():
    torch.manual_seed(0)
    model = TransformerClassifier(6, 16, 2, 1, input_size=3, max_len=16)
    data = sensor_activity(3, 16, seed=0)
    return predict_logits(model, data.inputs), data.targets.tolist()


def test_softened_distributions_draw_one_panel_per_example_and_the_softmax_at_each_T(teacher_logits):
    logits, targets = teacher_logits
    fig = viz.plot_softened_distributions(logits, (1.0, 4.0), class_names=ACTIVITIES, targets=targets)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    bars = [p.get_height() for p in fig.axes[1].patches]  # example 1: T = 1 for six classes, then T = 4
    np.testing.assert_allclose(bars[:6], temperature_softmax(logits[1].double(), 1.0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(bars[6:], temperature_softmax(logits[1].double(), 4.0).numpy(), rtol=1e-6)
    assert max(bars[6:]) < max(bars[:6])  # softer
    assert fig.axes[0].get_xticklabels()[targets[0]].get_fontweight() == "bold"
    one = viz.plot_softened_distributions(logits[0].tolist(), title=None)
    assert len(one.axes) == 1 and len(one.axes[0].patches) == 6 * 4


def test_softened_distributions_bad_input(teacher_logits):
    logits, _ = teacher_logits
    with pytest.raises(ValueError, match=r"\(C,\) or \(K, C\)"):
        viz.plot_softened_distributions(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="T > 0"):
        viz.plot_softened_distributions(logits, (1.0, 0.0))
    with pytest.raises(TypeError, match="temperatures"):
        viz.plot_softened_distributions(logits, 2.0)
    with pytest.raises(ValueError, match="class_names must have one name per class"):
        viz.plot_softened_distributions(logits, class_names=["a", "b"])
    with pytest.raises(ValueError, match="targets must be 3 class indices"):
        viz.plot_softened_distributions(logits, targets=[0, 1, 6])
    with pytest.raises(TypeError, match="numbers"):
        viz.plot_softened_distributions("logits")


def test_accuracy_bars_show_mean_spread_and_every_seed():
    acc = {"labels": [0.47, 0.46, 0.49], "unlabelled": [0.58, 0.66, 0.68], "one seed": [0.7]}
    fig = viz.plot_accuracy_bars(acc, teacher=0.95, names={"labels": "labels only"})
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [np.mean(v) for v in acc.values()])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["labels only", "unlabelled", "one seed"]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]  # the scatter of the seeds
    assert [len(c.get_offsets()) for c in dots] == [3, 3, 1]
    np.testing.assert_allclose(dots[1].get_offsets()[:, 1], acc["unlabelled"])
    texts = " ".join(t.get_text() for t in ax.texts)
    assert f"± {np.std(acc['unlabelled'], ddof=1):.3f}" in texts
    assert any(line.get_linestyle() == "--" for line in ax.lines)


def test_accuracy_bars_bad_input():
    with pytest.raises(TypeError, match="non-empty mapping"):
        viz.plot_accuracy_bars([0.5, 0.6])
    with pytest.raises(ValueError, match="non-empty mapping"):
        viz.plot_accuracy_bars({})
    with pytest.raises(ValueError, match=r"accuracies\['a'\] must have shape \(seeds,\)"):
        viz.plot_accuracy_bars({"a": []})
    with pytest.raises(ValueError, match="finite"):
        viz.plot_accuracy_bars({"a": [0.5, float("nan")]})
    with pytest.raises(TypeError, match="teacher must be a number"):
        viz.plot_accuracy_bars({"a": [0.5]}, teacher="0.9")
