r"""Figures of gradient flow through time (C07-C09, C12): data in, a matplotlib Figure out.

Every function takes plain data (tensors, arrays or lists; a dict ``{label: values}`` for several settings), draws
it on a new :class:`matplotlib.figure.Figure` and returns the figure. Nothing here calls ``plt.show()`` or touches
pyplot's list of open figures, so the functions work the same in a notebook (the figure displays when it is the
value of a cell), in a script (``fig.savefig(...)``) and on a headless server. The data typically comes from
:mod:`seqlib.gradflow` or :mod:`seqlib.experiments`::

    from seqlib import experiments, viz
    viz.plot_gradient_norms(experiments.vanishing_exploding()["norms"])
    viz.plot_clipping_landscape(**experiments.clipping_landscape())

Importing this module imports matplotlib; ``import seqlib`` does not.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ._data import ArrayLike, as_array, settings

__all__ = ["plot_gradient_norms", "plot_jacobian_heatmap", "plot_clipping_landscape", "plot_loss_curves"]


def _finite(y: np.ndarray) -> np.ndarray:
    """``inf`` -> ``nan``, so that a diverged run leaves a gap instead of breaking the axis limits."""
    return np.where(np.isfinite(y), y, np.nan)


def plot_gradient_norms(
    norms: Mapping[str, ArrayLike] | ArrayLike,
    *,
    side_by_side: bool = True,
    ylabel: str = r"$\Vert\partial L/\partial h_t\Vert$",
    title: str | None = None,
) -> Figure:
    r"""Gradient norm against time step, on a log scale, for one or several settings.

    Args:
        norms: ``{label: (T,)}`` (e.g. ``experiments.vanishing_exploding()["norms"]``) or one ``(T,)`` sequence.
        side_by_side: one panel per setting with a shared y-axis (default), or all lines in one panel with a legend.
        ylabel: the y-axis label; e.g. ``r"$\Vert\partial L/\partial c_t\Vert$"`` for cell-state norms.
        title: the figure's title.

    Returns:
        The figure; each line's x data is ``t = 0..T-1`` and its y data the given norms.
    """
    data = settings("norms", norms)
    n = len(data) if side_by_side else 1
    fig = Figure(figsize=(min(4.0 * n, 16.0), 3.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True, squeeze=False)[0])
    for k, (label, y) in enumerate(data.items()):
        ax = axes[k if side_by_side else 0]
        ax.plot(np.arange(len(y)), _finite(y), label=label or None)
        if side_by_side and label:
            ax.set_title(label)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("time step $t$")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    if not side_by_side and any(data):
        axes[0].legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_jacobian_heatmap(
    norms: Mapping[str, ArrayLike],
    *,
    label: str = r"$\Vert\partial h_T/\partial h_t\Vert$",
    title: str | None = None,
) -> Figure:
    r"""Heatmap of :math:`\lVert \partial h_T/\partial h_t \rVert` over time step (columns) and setting (rows).

    Args:
        norms: ``{setting: (T,)}``, all of the same length (e.g. ``vanishing_exploding()["jacobian_norms"]``).
        label: the colour bar's label.
        title: the figure's title.

    Returns:
        The figure; its image holds exactly the given values, one row per setting in the mapping's order, with a
        logarithmic colour scale.
    """
    data = settings("norms", norms)
    lengths = {len(y) for y in data.values()}
    if len(lengths) != 1:
        raise ValueError(f"norms must hold sequences of one length T, but got lengths {sorted(lengths)}")
    grid = np.stack(list(data.values()))  # (settings, T)
    positive = grid[np.isfinite(grid) & (grid > 0)]
    vmin, vmax = (positive.min(), positive.max()) if positive.size else (1e-3, 1.0)
    fig = Figure(figsize=(8.0, 1.2 + 0.5 * len(data)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", norm=LogNorm(vmin=vmin, vmax=max(vmax, vmin * 10)))
    ax.set_yticks(range(len(data)), list(data))
    ax.set_xlabel("time step $t$")
    fig.colorbar(image, ax=ax, label=label)
    if title:
        ax.set_title(title)
    return fig


def plot_clipping_landscape(
    w: ArrayLike,
    b: ArrayLike,
    loss: ArrayLike,
    trajectories: Mapping[str, ArrayLike],
    losses: Mapping[str, ArrayLike] | None = None,
    grad_norms: Mapping[str, ArrayLike] | None = None,
    *,
    title: str | None = None,
) -> Figure:
    r"""What clipping does: a loss surface with a cliff and gradient-descent paths on it (Pascanu et al., 2013).

    The arguments are the keys of :func:`seqlib.experiments.clipping_landscape`'s result, so
    ``plot_clipping_landscape(**experiments.clipping_landscape())`` draws it.

    Args:
        w, b: grid values ``(R_w,)`` and ``(R_b,)`` of the two parameters.
        loss: ``(R_w, R_b)``, ``loss[i, j]`` the loss at ``(w[i], b[j])``; drawn with a log colour scale, ``b`` across
            and ``w`` up.
        trajectories: ``{label: (K, 2)}`` points ``(w, b)`` visited by gradient descent, drawn as paths.
        losses, grad_norms: optional ``{label: (K,)}``: the loss and the gradient norm along each path, drawn in
            panels of their own.
        title: the figure's title.

    Returns:
        The figure; the first panel's image holds ``loss``; path ``k``'s line has ``b`` as x data and ``w`` as y data.
    """
    w_values, b_values = as_array("w", w, 1, "(R_w,)"), as_array("b", b, 1, "(R_b,)")
    surface = as_array("loss", loss, 2, "(R_w, R_b)")
    if surface.shape != (len(w_values), len(b_values)):
        raise ValueError(f"loss must have shape (R_w, R_b) = {(len(w_values), len(b_values))}, "
                         f"but got shape {surface.shape}")
    paths = settings("trajectories", trajectories, ndim=2, shape="(K, 2)")
    extra = [(name, settings(name, d, shape="(K,)")) for name, d in (("loss", losses), ("gradient norm", grad_norms))
             if d]
    fig = Figure(figsize=(5.5 + 4.0 * len(extra), 4.5), layout="constrained")
    axes = fig.subplots(1, 1 + len(extra), squeeze=False)[0]
    ax = axes[0]
    positive = surface[np.isfinite(surface) & (surface > 0)]
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
    image = ax.imshow(surface, origin="lower", aspect="auto", interpolation="nearest", norm=norm, cmap="viridis",
                      extent=(b_values[0], b_values[-1], w_values[0], w_values[-1]))
    fig.colorbar(image, ax=ax, label="loss")
    on_surface = ["tab:red", "white", "tab:orange", "tab:cyan"]  # path colours, readable on the colour map
    on_white = ["tab:red", "black", "tab:orange", "tab:cyan"]  # the same runs in the line panels
    for k, (label, path) in enumerate(paths.items()):
        if path.shape[1] != 2:
            raise ValueError(f"trajectories[{label!r}] must have shape (K, 2) of (w, b) points, "
                             f"but got shape {path.shape}")
        color = on_surface[k % len(on_surface)]
        ax.plot(path[:, 1], path[:, 0], ".-", color=color, markersize=3, linewidth=1, label=label or None)
        ax.plot(path[:1, 1], path[:1, 0], "o", color=color, markersize=6)
    ax.set_xlim(b_values[0], b_values[-1])
    ax.set_ylim(w_values[0], w_values[-1])
    ax.set_xlabel("$b$")
    ax.set_ylabel("$w$")
    if any(paths):
        ax.legend(loc="lower left", fontsize="small", facecolor="0.8")
    for ax, (name, curves) in zip(axes[1:], extra, strict=True):
        for k, (label, y) in enumerate(curves.items()):
            ax.plot(np.arange(len(y)), _finite(y), color=on_white[k % len(on_white)], label=label or None)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_loss_curves(
    curves: Mapping[str, ArrayLike] | ArrayLike,
    *,
    baseline: float | None = None,
    logy: bool = True,
    xlabel: str = "step",
    ylabel: str = "loss",
    title: str | None = None,
) -> Figure:
    """Training loss against step for one or several runs (e.g. ``experiments.clipping_training()["losses"]``).

    Args:
        curves: ``{label: (K,)}`` or one sequence. ``nan``/``inf`` values leave a gap; a run that stopped being
            finite gets an ``x`` at its last finite point.
        baseline: draw a dashed horizontal line at this loss (e.g. the loss of always predicting the mean).
        logy: logarithmic y-axis (default).
        xlabel, ylabel, title: labels.

    Returns:
        The figure; each line's y data is the given curve with non-finite values as ``nan``.
    """
    data = settings("curves", curves)
    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.subplots()
    for label, y in data.items():
        y = _finite(y)
        (line,) = ax.plot(np.arange(len(y)), y, label=label or None)
        finite = np.flatnonzero(np.isfinite(y))
        if finite.size and finite[-1] < len(y) - 1:  # the run diverged after its last finite value
            ax.plot([finite[-1]], [y[finite[-1]]], "x", color=line.get_color(), markersize=10, markeredgewidth=2)
    if baseline is not None:
        ax.axhline(baseline, color="0.4", linestyle="--", linewidth=1, label=f"baseline {baseline:.3g}")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if any(data) or baseline is not None:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig
