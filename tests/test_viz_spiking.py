"""seqlib.viz.spiking: each figure is drawn from real spiking data and holds exactly that data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_checks import no_pyplot_figures, renders  # noqa: F401 (an autouse fixture)

from seqlib import viz
from seqlib.spike_coding import delta_encode
from seqlib.spiking import LIF
from seqlib.stdp import WTALayer, stdp_traces, stdp_window

pytestmark = pytest.mark.part4


def lif_run():
    torch.manual_seed(0)
    lif = LIF(3, 12, beta=0.9)
    x = 2 * torch.randn(50, 3)  # unbatched (L, H_in)
    with torch.no_grad():
        return lif(x)


def test_raster_holds_every_spike():
    spikes, _ = lif_run()
    fig = viz.plot_raster(spikes, dt=2.0, unit="ms")
    ax = fig.get_axes()[0]
    points = ax.collections[0].get_offsets()
    t, n = np.nonzero(spikes.numpy())
    np.testing.assert_array_equal(np.asarray(points), np.stack([t * 2.0, n], 1))
    assert "firing rate" in ax.get_title() and ax.get_xlabel() == "time (ms)"
    renders(fig)
    # ON and OFF spikes of a delta code
    signal = torch.sin(torch.linspace(0, 6, 60))[:, None].repeat(1, 2)
    code = delta_encode(signal, 0.2)
    fig = viz.plot_raster(code, title="delta")
    on, off = fig.get_axes()[0].collections
    assert len(on.get_offsets()) == int((code > 0).sum()) and len(off.get_offsets()) == int((code < 0).sum())
    renders(fig)


def test_membrane_traces_threshold_and_spikes():
    spikes, membranes = lif_run()
    fig = viz.plot_membrane(membranes[:, :3], spikes[:, :3], threshold=1.0, labels=["a", "b", "c"], title="LIF")
    axes = fig.get_axes()
    assert len(axes) == 3 and fig.get_suptitle() == "LIF"
    for k, ax in enumerate(axes):
        trace, threshold, marks = ax.get_lines()
        np.testing.assert_array_equal(trace.get_ydata(), membranes[:, k].numpy().astype(float))
        assert list(threshold.get_ydata()) == [1.0, 1.0]
        np.testing.assert_array_equal(marks.get_xdata(), np.nonzero(spikes[:, k].numpy())[0])
        assert ax.get_title() == "abc"[k]
    renders(fig)
    fig = viz.plot_membrane(membranes[:, 0])  # one neuron, nothing else
    assert len(fig.get_axes()) == 1 and len(fig.get_axes()[0].get_lines()) == 1


def test_stdp_window_with_points_measured_by_the_trace_rule():
    dt = torch.arange(-40, 41)
    dw = stdp_window(dt)
    points = []
    for d in range(-20, 21, 5):  # one pre spike at 25, one post spike at 25 + d
        pre, post = torch.zeros(51, 1, dtype=torch.float64), torch.zeros(51, 1, dtype=torch.float64)
        pre[25, 0], post[25 + d, 0] = 1, 1
        points.append(float(stdp_traces(pre, post)[0, 0]))
    fig = viz.plot_stdp_window(dt, dw, measured=(np.arange(-20, 21, 5), points))
    ax = fig.get_axes()[0]
    curve, measured = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
    np.testing.assert_array_equal(curve.get_ydata(), dw.numpy())
    np.testing.assert_allclose(measured.get_ydata(), stdp_window(torch.arange(-20, 21, 5)).numpy(), rtol=1e-12)
    renders(fig)


def test_stdp_features_one_image_per_neuron():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(40, 8, 8, generator=g)
    wta = WTALayer(64, 12, seed=0).fit(images, num_steps=20, batch_size=8)
    fig = viz.plot_stdp_features(wta.weight, labels=list(range(12)), ncols=5, title="features")
    shown = [ax for ax in fig.get_axes() if ax.get_images()]
    assert len(shown) == 12 and len(fig.get_axes()) == 15  # 3 rows of 5, the last 3 blank
    for k, ax in enumerate(shown):
        np.testing.assert_array_equal(np.asarray(ax.get_images()[0].get_array()), wta.weight[k].reshape(8, 8).numpy())
        assert ax.get_title() == str(k)
    renders(fig)
    fig = viz.plot_stdp_features(wta.weight.reshape(12, 8, 8))
    assert len([ax for ax in fig.get_axes() if ax.get_images()]) == 12


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"spikes must have shape \(T, N\)"):
        viz.plot_raster(torch.zeros(5))
    with pytest.raises(ValueError, match="only 0 and 1"):
        viz.plot_raster(torch.full((5, 2), 0.5))
    with pytest.raises(TypeError, match="numbers"):
        viz.plot_raster("spikes")
    with pytest.raises(ValueError, match="shape of membranes"):
        viz.plot_membrane(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="K = 2"):
        viz.plot_membrane(torch.zeros(5, 2), labels=["a"])
    with pytest.raises(ValueError, match="same shape"):
        viz.plot_stdp_window(torch.arange(5), torch.zeros(4))
    with pytest.raises(ValueError, match="h \\* w = D = 60"):
        viz.plot_stdp_features(torch.zeros(3, 60))
    with pytest.raises(ValueError, match="one label per neuron"):
        viz.plot_stdp_features(torch.zeros(3, 64), labels=[1])
