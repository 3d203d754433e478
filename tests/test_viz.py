"""Every figure function returns a matplotlib Figure drawn from exactly the data it was given."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from figure_checks import no_pyplot_figures, renders  # noqa: F401 (an autouse fixture)
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from seqlib import viz

pytestmark = pytest.mark.part1


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


# ---------------------------------------------------------------------------------------------------------------
# viz.diagrams
# ---------------------------------------------------------------------------------------------------------------


def test_application_types_and_unrolled_picture():
    fig = viz.plot_application_types()
    axes = fig.get_axes()
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["one to one", "many to one", "one to many",
                                                              "many to many"]
    renders(fig)
    ax = Figure().subplots()
    viz.draw_unrolled(ax, 3, current=1, inputs=["a", "b", None])
    assert sum(t.get_text() == "RNN" for t in ax.texts) == 3  # one box per step, all the same cell
    assert {"a", "b"} <= {t.get_text() for t in ax.texts} and ax.get_xlim() == (-0.5, 2.5)
    with pytest.raises(ValueError, match="n_steps"):
        viz.draw_unrolled(ax, 3, inputs=["a"])


# ---------------------------------------------------------------------------------------------------------------
# viz.recurrent
# ---------------------------------------------------------------------------------------------------------------


def test_unrolled_states_shows_the_states_up_to_the_step():
    states = torch.linspace(-1, 1, 12).reshape(4, 3)  # (T, H)
    fig = viz.plot_unrolled_states(states, ["a", "b", "c", "d"], 1, indices=[5, 6, 7, 8], scale=2.0)
    heat = [ax for ax in fig.get_axes() if ax.get_images()][0]
    shown = np.asarray(heat.get_images()[0].get_array().filled(np.nan))  # (H, T)
    np.testing.assert_array_equal(shown[:, :2], states.T[:, :2].numpy())
    assert np.isnan(shown[:, 2:]).all()  # steps after t are not computed yet
    assert [t.get_text() for t in heat.get_xticklabels()] == ["a", "b", "c", "d"]
    assert "W_hh × 2.00" in heat.get_title()
    renders(fig)
    with pytest.raises(ValueError, match="tokens must have T = 4"):
        viz.plot_unrolled_states(states, ["a"], 0)
    with pytest.raises(ValueError, match="step"):
        viz.plot_unrolled_states(states, list("abcd"), 4)


def test_lstm_gates_panels_hold_the_chosen_units():
    g = torch.Generator().manual_seed(0)
    gates = {name: torch.rand(5, 6, generator=g) for name in ("forget", "input", "output", "cell")}
    c, p = torch.randn(5, 6, generator=g), torch.tensor([0.2, 0.4, 0.5, 0.7, 0.9])
    fig = viz.plot_lstm_gates(gates, c, p, list("abcde"), [4, 1], text="a b c d e")
    panels = [ax for ax in fig.get_axes() if ax.get_images() and ax.get_title(loc="left")]
    for ax, values in zip(panels, [gates["forget"], gates["input"], gates["output"], c], strict=True):
        np.testing.assert_array_equal(np.asarray(ax.get_images()[0].get_array()), values[:, [4, 1]].T.numpy())
    (verdict,) = [ax for ax in fig.get_axes() if lines_with_data(ax)]
    np.testing.assert_allclose(lines_with_data(verdict)[0].get_ydata(), p.numpy())
    assert "positive" in fig.get_suptitle()
    renders(fig)
    with pytest.raises(ValueError, match="T = len"):
        viz.plot_lstm_gates(gates, c, p, list("abc"), [0])


def test_gradient_flow_curves_and_clipping_bars():
    norms = 10.0 ** -torch.arange(6, 0, -1, dtype=torch.float64)  # (T,): growing towards the end
    fig = viz.plot_gradient_flow(norms, grad_norm=4.0, clipped_norm=1.0, max_norm=1.0, radius=0.5, label="RNN")
    left, right = fig.get_axes()
    got, ref, clipped = lines_with_data(left)
    np.testing.assert_array_equal(got.get_ydata(), norms.numpy())
    np.testing.assert_allclose(ref.get_ydata(), norms[-1].item() * 0.5 ** (5 - np.arange(6)))  # rho^(T-1-t)
    np.testing.assert_allclose(clipped.get_ydata(), norms.numpy() / 4)  # the same direction, scaled by 1/4
    assert [bar.get_height() for bar in right.patches] == [4.0, 1.0]
    assert left.get_yscale() == right.get_yscale() == "log" and left.get_title().startswith("RNN:")
    renders(fig)
    fig = viz.plot_gradient_flow(norms, grad_norm=4.0, clipped_norm=4.0, cell_norms=norms * 2)
    assert len(lines_with_data(fig.get_axes()[0])) == 2  # h and c, no reference, nothing clipped


# ---------------------------------------------------------------------------------------------------------------
# viz.attention
# ---------------------------------------------------------------------------------------------------------------


def test_attention_steps_four_panels_with_their_numbers():
    scores = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    masked = torch.tensor([[1.0, -math.inf], [0.5, -1.0]], dtype=torch.float64)
    weights = torch.softmax(masked, dim=-1)
    output = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=torch.float64)
    fig = viz.plot_attention_steps(["x", "y"], scores, masked, weights, output, causal=True, temperature=0.5)
    axes = fig.get_axes()
    assert len(axes) == 4
    for ax, matrix in zip(axes, [scores, masked, weights, output], strict=True):
        shown = np.asarray(ax.get_images()[0].get_array().filled(np.nan))
        finite = torch.isfinite(matrix).numpy()
        np.testing.assert_array_equal(shown[finite], matrix.numpy()[finite])
        assert np.isnan(shown[~finite]).all()  # -inf is drawn as the background
    assert "−∞" in {t.get_text() for t in axes[1].texts} and "(causal)" in axes[1].get_title()
    assert "0.50" in axes[2].get_title() and len(axes[3].get_xticklabels()) == 3
    renders(fig)


def test_positional_encoding_multihead_and_next_token_figures():
    from seqlib.positional import sinusoidal_table

    pe = sinusoidal_table(20, 8)
    fig = viz.plot_positional_encoding(pe, 5, pe @ pe[5])
    np.testing.assert_array_equal(np.asarray(fig.get_axes()[0].get_images()[0].get_array()), pe.numpy())
    np.testing.assert_allclose(lines_with_data(fig.get_axes()[2])[0].get_ydata(), (pe @ pe[5]).numpy())
    renders(fig)

    heads = torch.softmax(torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0)), dim=-1)  # (h, T, T)
    fig = viz.plot_multihead(heads.mean(0), heads, ["a", " ", "b", "\n"], layer=1, head=-1)
    big, *small = fig.get_axes()
    np.testing.assert_array_equal(np.asarray(big.get_images()[0].get_array()), heads.mean(0).numpy())
    assert len(small) == 3 and [t.get_text() for t in big.get_xticklabels()] == ["a", "␣", "b", "↵"]
    renders(fig)

    p_model = torch.tensor([0.1, 0.6, 0.3])
    p_sample = torch.tensor([0.0, 0.8, 0.2])
    fig = viz.plot_next_token(p_model, p_sample, ["a", " ", "c"], temperature=0.5, top_k=2, context="xyz", shown=2)
    (ax,) = fig.get_axes()
    heights = [bar.get_height() for bar in ax.patches]
    np.testing.assert_allclose(heights, [0.6, 0.3, 0.8, 0.2])  # the model's two likeliest, then the sampled ones
    assert [t.get_text() for t in ax.get_xticklabels()] == ["␣", "c"] and "'xyz'" in ax.get_title()
    renders(fig)
    with pytest.raises(ValueError, match="V = len"):
        viz.plot_next_token(p_model, p_sample, ["a"], temperature=1.0, top_k=None)


def test_package_table_is_complete():
    import importlib
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(viz.__path__) if not m.name.startswith("_")}  # _data: helpers
    assert modules == viz._SUBMODULES
    for name, module in viz._EXPORTS.items():
        assert getattr(importlib.import_module(f"seqlib.viz.{module}"), name) is getattr(viz, name)
        assert name in importlib.import_module(f"seqlib.viz.{module}").__all__
