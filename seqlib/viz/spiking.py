r"""Figures of spiking networks (C33-C35): raster plots, membrane traces, the STDP window, learned STDP features.

Every function takes plain data (tensors, arrays or lists), draws it on a new :class:`matplotlib.figure.Figure` and
returns the figure; nothing touches pyplot. The data typically comes from :mod:`seqlib.spiking`,
:mod:`seqlib.spike_coding` and :mod:`seqlib.stdp`::

    from seqlib import spiking, stdp, viz
    spikes, membranes = spiking.LIF(3, 20)(x)                 # x: (L, 3), one unbatched window
    viz.plot_raster(spikes)
    viz.plot_membrane(membranes[:, :3], spikes[:, :3], threshold=1.0)
    dt = torch.arange(-50, 51); viz.plot_stdp_window(dt, stdp.stdp_window(dt))
    viz.plot_stdp_features(stdp.WTALayer(64, 30).fit(images).weight)

Importing this module imports matplotlib; ``import seqlib`` does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ._data import ArrayLike, as_array

__all__ = ["plot_raster", "plot_membrane", "plot_stdp_window", "plot_stdp_features"]

def plot_raster(spikes: ArrayLike, *, dt: float = 1.0, unit: str = "step", ylabel: str = "neuron",
                title: str | None = None) -> Figure:
    r"""A raster plot: a dot at (time, neuron) for every spike; OFF spikes (−1, from a delta code) in another colour.

    Args:
        spikes: ``(T, N)`` spike trains (0/1, or −1/0/1).
        dt: the time of one step, for the x axis. Default: 1.
        unit: the x axis's unit. Default: ``"step"``.
        ylabel: the y axis's label. Default: ``"neuron"``.
        title: the figure's title; default the spike count and the firing rate.

    Returns:
        The figure; its first collection holds the ON spikes at ``(t * dt, neuron)``, a second one the OFF spikes.
    """
    s = as_array("spikes", spikes, (2,), "(T, N)")
    if not np.isin(s, (-1.0, 0.0, 1.0)).all():
        raise ValueError("spikes must hold only 0 and 1 (or -1 for OFF spikes)")
    T, N = s.shape
    fig = Figure(figsize=(7.0, 1.5 + min(0.12 * N, 4.5)), layout="constrained")
    ax = fig.subplots()
    t_on, n_on = np.nonzero(s > 0)
    ax.scatter(t_on * dt, n_on, marker="|", s=60, color="black", linewidths=1.2, label="ON" if (s < 0).any() else None)
    if (s < 0).any():
        t_off, n_off = np.nonzero(s < 0)
        ax.scatter(t_off * dt, n_off, marker="|", s=60, color="tab:red", linewidths=1.2, label="OFF")
        ax.legend(loc="upper right")
    ax.set_xlim(-0.5 * dt, (T - 0.5) * dt)
    ax.set_ylim(-0.5, N - 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel(ylabel)
    count = int(np.count_nonzero(s))
    ax.set_title(title if title is not None else f"{count} spikes, firing rate {count / s.size:.1%}")
    return fig


def plot_membrane(membranes: ArrayLike, spikes: ArrayLike | None = None, *, threshold: float | None = None,
                  labels: Sequence[str] | None = None, dt: float = 1.0, unit: str = "step",
                  title: str | None = None) -> Figure:
    r"""Membrane potentials over time, one panel per neuron, with the threshold and the spike times.

    Args:
        membranes: ``(T,)`` for one neuron or ``(T, K)`` for ``K`` neurons (e.g. ``LIF(...)(x)[1]``).
        spikes: the neurons' spikes, of the same shape; drawn as markers above each trace.
        threshold: :math:`\theta`, drawn as a dashed line.
        labels: a title per panel. Default ``"neuron k"``.
        dt, unit: the time of one step and its unit. Defaults: 1, ``"step"``.
        title: the figure's title.

    Returns:
        The figure; panel ``k``'s first line holds ``membranes[:, k]`` against ``t * dt``.
    """
    u = as_array("membranes", membranes, (1, 2), "(T,) or (T, K)")
    u = u[:, None] if u.ndim == 1 else u  # (T, K)
    T, K = u.shape
    s = None
    if spikes is not None:
        s = as_array("spikes", spikes, (1, 2), "(T,) or (T, K)")
        s = s[:, None] if s.ndim == 1 else s
        if s.shape != u.shape:
            raise ValueError(f"spikes must have the shape of membranes, (T, K) = {u.shape}, but got {s.shape}")
    if labels is not None and len(labels) != K:
        raise ValueError(f"labels must name the K = {K} neurons, but got {len(labels)} labels")
    fig = Figure(figsize=(7.0, 1.2 + 1.6 * K), layout="constrained")
    axes = np.atleast_1d(fig.subplots(K, 1, sharex=True, squeeze=False)[:, 0])
    time = np.arange(T) * dt
    for k, ax in enumerate(axes):
        ax.plot(time, u[:, k], color="tab:blue", label="$U_t$")
        if threshold is not None:
            ax.axhline(threshold, color="gray", linestyle="--", linewidth=1, label=r"$\theta$")
        if s is not None:
            fired = np.nonzero(s[:, k])[0]
            top = max(float(np.max(u[:, k])), threshold or 0.0)
            ax.plot(time[fired], np.full(len(fired), top * 1.1 + 0.05), "v", color="black", markersize=5,
                    label="spike")
        ax.set_ylabel("membrane")
        ax.set_title(labels[k] if labels is not None else f"neuron {k}", fontsize=9)
    axes[-1].set_xlabel(f"time ({unit})")
    axes[0].legend(loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_stdp_window(dt: ArrayLike, dw: ArrayLike, *, measured: tuple[ArrayLike, ArrayLike] | None = None,
                     title: str | None = None) -> Figure:
    r"""The STDP window :math:`\Delta w` against :math:`\Delta t = t_{\text{post}} - t_{\text{pre}}`.

    Args:
        dt: ``(M,)`` time differences, e.g. ``torch.arange(-50, 51)``.
        dw: ``(M,)`` the window at those points (``stdp_window(dt)``).
        measured: optional ``(dt, dw)`` points measured another way (e.g. the trace rule on single pairs of spikes),
            drawn as dots over the curve.
        title: the figure's title.

    Returns:
        The figure; its first line holds ``(dt, dw)``, the potentiation side in one colour and depression in another
        as two filled areas.
    """
    x = as_array("dt", dt, (1,), "(M,)")
    y = as_array("dw", dw, (1,), "(M,)")
    if x.shape != y.shape:
        raise ValueError(f"dt and dw must have the same shape (M,), but got {x.shape} and {y.shape}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(x, y, color="black", linewidth=1.5, label=r"$W(\Delta t)$")
    ax.fill_between(x, y, 0, where=x > 0, color="tab:green", alpha=0.3, label="potentiation (pre before post)")
    ax.fill_between(x, y, 0, where=x <= 0, color="tab:red", alpha=0.3, label="depression (post before pre)")
    if measured is not None:
        mx = as_array("measured[0]", measured[0], (1,), "(P,)")
        my = as_array("measured[1]", measured[1], (1,), "(P,)")
        if mx.shape != my.shape:
            raise ValueError(f"measured must be two (P,) arrays, but got shapes {mx.shape} and {my.shape}")
        ax.plot(mx, my, "o", color="tab:blue", markersize=4, label="measured")
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.axvline(0, color="gray", linewidth=0.8)
    ax.set_xlabel(r"$\Delta t = t_{post} - t_{pre}$ (steps)")
    ax.set_ylabel(r"$\Delta w$")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title if title is not None else "spike-timing-dependent plasticity")
    return fig


def plot_stdp_features(weights: ArrayLike, *, image_shape: tuple[int, int] = (8, 8),
                       labels: Sequence[object] | None = None, ncols: int = 10, title: str | None = None) -> Figure:
    """The learned input weights of each neuron as an image (e.g. ``WTALayer.weight``, one row per neuron).

    Args:
        weights: ``(K, D)`` with ``D = h * w``, or ``(K, h, w)``.
        image_shape: ``(h, w)`` for flat weights. Default: ``(8, 8)``.
        labels: a label per neuron (e.g. the class it was assigned), shown above its image.
        ncols: images per row. Default: 10.
        title: the figure's title.

    Returns:
        The figure; its ``k``-th axes shows neuron ``k``'s weights reshaped to ``(h, w)``.
    """
    w = as_array("weights", weights, (2, 3), "(K, D) or (K, h, w)")
    if w.ndim == 2:
        h, width = image_shape
        if h * width != w.shape[1]:
            raise ValueError(f"weights of shape (K, D) = {w.shape} need image_shape (h, w) with h * w = D = "
                             f"{w.shape[1]}, but got {image_shape}")
        w = w.reshape(w.shape[0], h, width)  # (K, h, w)
    K = w.shape[0]
    if labels is not None and len(labels) != K:
        raise ValueError(f"labels must hold one label per neuron (K = {K}), but got {len(labels)}")
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, but got {ncols!r}")
    ncols = min(ncols, K)
    nrows = -(-K // ncols)
    fig = Figure(figsize=(1.0 * ncols + 0.4, 1.1 * nrows + (0.4 if title else 0.1)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for k, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= K:
            ax.set_axis_off()
            continue
        ax.imshow(w[k], cmap="gray_r", interpolation="nearest")
        if labels is not None:
            ax.set_title(str(labels[k]), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
