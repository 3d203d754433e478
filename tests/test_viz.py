"""Every figure function returns a matplotlib Figure drawn from exactly the data it was given."""

from __future__ import annotations

import io
import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from seqlib import viz

pytestmark = pytest.mark.part1


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """The functions never register figures with pyplot (nothing for the caller to close)."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def renders(fig: Figure) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def lines_with_data(ax):
    return [line for line in ax.get_lines() if len(line.get_xdata()) > 1]


def norms_data():
    torch.manual_seed(0)
    return {"small": torch.rand(20).double() * 1e-3, "large": 10 ** torch.linspace(0, 5, 20), "list": [1.0] * 20}


def test_gradient_norms_side_by_side():
    data = norms_data()
    fig = viz.plot_gradient_norms(data, title="decay")
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert len(axes) == 3
    for ax, (label, values) in zip(axes, data.items(), strict=True):
        (line,) = lines_with_data(ax)
        np.testing.assert_array_equal(line.get_ydata(), np.asarray(values, dtype=float))
        np.testing.assert_array_equal(line.get_xdata(), np.arange(20))
        assert ax.get_yscale() == "log"
        assert ax.get_title() == label
    assert fig.get_suptitle() == "decay"
    renders(fig)


def test_gradient_norms_one_panel_and_single_sequence():
    data = norms_data()
    fig = viz.plot_gradient_norms(data, side_by_side=False, ylabel="cell")
    (ax,) = fig.get_axes()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(data)
    for line, values in zip(lines_with_data(ax), data.values(), strict=True):
        np.testing.assert_array_equal(line.get_ydata(), np.asarray(values, dtype=float))
    assert ax.get_ylabel() == "cell" and ax.get_yscale() == "log"
    fig = viz.plot_gradient_norms(np.array([3.0, 2.0, 1.0]))
    (line,) = lines_with_data(fig.get_axes()[0])
    np.testing.assert_array_equal(line.get_ydata(), [3.0, 2.0, 1.0])


def test_jacobian_heatmap():
    data = {"a": torch.logspace(-8, 0, 12), "b": torch.ones(12), "c": np.logspace(0, 4, 12)}
    fig = viz.plot_jacobian_heatmap(data, title="J")
    ax = fig.get_axes()[0]
    (image,) = ax.get_images()
    expected = np.stack([np.asarray(v, float) for v in data.values()])  # (settings, T)
    np.testing.assert_array_equal(np.asarray(image.get_array()), expected)
    assert isinstance(image.norm, LogNorm)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert ax.get_title() == "J"
    renders(fig)
    with pytest.raises(ValueError, match="one length"):
        viz.plot_jacobian_heatmap({"a": [1.0, 2.0], "b": [1.0]})


def landscape_data():
    w = np.linspace(1, 3, 5)
    b = np.linspace(-1, 1, 4)
    loss = np.exp(w[:, None] + b[None, :])  # (5, 4)
    paths = {"plain": torch.tensor([[2.0, 0.0], [1.5, -0.5], [2.5, 0.5]]),
             "clipped": np.array([[2.0, 0.0], [1.9, 0.1]])}
    return w, b, loss, paths


def test_clipping_landscape():
    w, b, loss, paths = landscape_data()
    losses = {"plain": [1.0, 5.0, math.inf], "clipped": [1.0, 0.5]}
    fig = viz.plot_clipping_landscape(w, b, loss, paths, losses=losses, grad_norms={"plain": [1.0, 100.0, 2.0]})
    surface_ax, loss_ax, norm_ax = [ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>"]
    (image,) = surface_ax.get_images()
    np.testing.assert_array_equal(np.asarray(image.get_array()), loss)
    assert isinstance(image.norm, LogNorm)
    assert tuple(image.get_extent()) == (b[0], b[-1], w[0], w[-1])
    drawn = lines_with_data(surface_ax)
    assert len(drawn) == 2
    for line, path in zip(drawn, paths.values(), strict=True):
        path = np.asarray(path, dtype=float)
        np.testing.assert_array_equal(line.get_xdata(), path[:, 1])  # b across
        np.testing.assert_array_equal(line.get_ydata(), path[:, 0])  # w up
    plain, clipped = lines_with_data(loss_ax)
    np.testing.assert_array_equal(plain.get_ydata(), [1.0, 5.0, np.nan])
    np.testing.assert_array_equal(clipped.get_ydata(), [1.0, 0.5])
    assert loss_ax.get_yscale() == "log"
    np.testing.assert_array_equal(lines_with_data(norm_ax)[0].get_ydata(), [1.0, 100.0, 2.0])
    renders(fig)
    # without the optional curves: one panel (plus its colour bar)
    fig = viz.plot_clipping_landscape(w, b, loss, paths)
    assert len([ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>"]) == 1


def test_clipping_landscape_errors():
    w, b, loss, paths = landscape_data()
    with pytest.raises(ValueError, match="loss"):
        viz.plot_clipping_landscape(w, b, loss.T, paths)
    with pytest.raises(ValueError, match="trajectories"):
        viz.plot_clipping_landscape(w, b, loss, {"bad": np.zeros((3, 3))})
    with pytest.raises(TypeError, match="w"):
        viz.plot_clipping_landscape("abc", b, loss, paths)


def test_loss_curves():
    curves = {"no clipping": [2.0, 10.0, 1e6, math.inf, math.nan], "clipped": torch.tensor([2.0, 1.0, 0.5, 0.3, 0.2])}
    fig = viz.plot_loss_curves(curves, baseline=1 / 6, title="adding problem")
    (ax,) = fig.get_axes()
    plain, marker, clipped, baseline = ax.get_lines()
    np.testing.assert_array_equal(plain.get_ydata(), [2.0, 10.0, 1e6, np.nan, np.nan])
    np.testing.assert_array_equal(marker.get_xdata(), [2])  # the last finite point of the diverged run
    np.testing.assert_array_equal(marker.get_ydata(), [1e6])
    np.testing.assert_allclose(clipped.get_ydata(), [2.0, 1.0, 0.5, 0.3, 0.2])
    np.testing.assert_allclose(baseline.get_ydata(), [1 / 6, 1 / 6])
    assert ax.get_yscale() == "log" and ax.get_title() == "adding problem"
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == list(curves)
    renders(fig)
    fig = viz.plot_loss_curves([1.0, 2.0], logy=False)
    assert fig.get_axes()[0].get_yscale() == "linear"


def test_agg_backend_and_figures_from_experiments():
    from seqlib import experiments

    assert matplotlib.get_backend().lower() == "agg"
    result = experiments.clipping_landscape(steps=5, resolution=8)
    fig = viz.plot_clipping_landscape(**result)
    image = fig.get_axes()[0].get_images()[0]
    np.testing.assert_array_equal(np.asarray(image.get_array()), result["loss"].numpy())
    renders(fig)
