r"""Figures of knowledge distillation (C36-C37): data in, a matplotlib Figure out.

* :func:`plot_softened_distributions` — a teacher's softmax at several temperatures for a few examples: the
  higher :math:`T`, the more of the "dark knowledge" (how much each wrong class resembles the right one) shows;
* :func:`plot_accuracy_bars` — test accuracy of each way of training the student, the mean over seeds as a bar, the
  spread as an error bar and every seed as a dot, with the teacher's accuracy as a line.

The data typically comes from :mod:`seqlib.distill_demo`::

    from seqlib import distill_demo as E, viz
    teacher, splits = E.sensor_teacher(), E.sensor_splits()
    viz.plot_softened_distributions(teacher(splits["test"].inputs[:3]), class_names=splits["test"].classes)
    result = E.compare(seeds=(0, 1, 2))
    viz.plot_accuracy_bars(result["accuracy"], teacher=result["teacher"]["accuracy"])

Importing this module imports matplotlib; ``import seqlib`` does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..distill import temperature_softmax
from ._data import as_array, as_mapping

__all__ = ["plot_softened_distributions", "plot_accuracy_bars"]


def plot_softened_distributions(
    logits: object,
    temperatures: Sequence[float] = (1.0, 2.0, 4.0, 8.0),
    *,
    class_names: Sequence[str] | None = None,
    targets: Sequence[int] | None = None,
    title: str | None = "The teacher's softmax at several temperatures",
) -> Figure:
    r"""Bars of :math:`\operatorname{softmax}(v / T)` for each example (one panel each) and temperature (a colour).

    Args:
        logits: a teacher's logits, :math:`(C)` for one example or :math:`(K, C)` for :math:`K`.
        temperatures: the temperatures :math:`T > 0` to compare. Default: ``(1, 2, 4, 8)``.
        class_names: the :math:`C` class names for the x axis. Default: ``0..C-1``.
        targets: the true class of each example, marked in bold on its panel.
        title: the figure's title (``None``: none).

    Returns:
        A new :class:`matplotlib.figure.Figure`.
    """
    z = as_array("logits", logits, (1, 2), "(C,) or (K, C)", nonempty=True, finite=True)
    z = z[None, :] if z.ndim == 1 else z
    K, C = z.shape
    if isinstance(temperatures, str | bytes) or not isinstance(temperatures, Sequence) or not temperatures:
        raise TypeError(f"temperatures must be a non-empty sequence of positive numbers, but got {temperatures!r}")
    for T in temperatures:
        if isinstance(T, bool) or not isinstance(T, int | float) or not (math.isfinite(T) and T > 0):
            raise ValueError(f"temperatures must be positive numbers (T > 0), but got {T!r}")
    names = [str(c) for c in range(C)] if class_names is None else [str(c) for c in class_names]
    if len(names) != C:
        raise ValueError(f"class_names must have one name per class (C = {C}), but got {len(names)}")
    if targets is not None and (len(targets) != K or not all(isinstance(t, int | np.integer) and 0 <= t < C
                                                             for t in targets)):
        raise ValueError(f"targets must be {K} class indices in [0, {C}), but got {targets!r}")

    fig = Figure(figsize=(min(3.2 + 0.9 * C, 12), 2.4 * K + 0.6), layout="constrained")
    axes = fig.subplots(K, 1, squeeze=False)[:, 0]
    width = 0.8 / len(temperatures)
    colours = [f"C{i}" for i in range(len(temperatures))]
    for k, ax in enumerate(axes):
        v = torch.as_tensor(z[k], dtype=torch.float64)
        for i, T in enumerate(temperatures):
            p = temperature_softmax(v, float(T)).numpy()
            ax.bar(np.arange(C) + (i - (len(temperatures) - 1) / 2) * width, p, width, color=colours[i],
                   label=f"T = {T:g}")
        ax.set_xticks(np.arange(C), names, rotation=20 if max(map(len, names)) > 6 else 0)
        if targets is not None:
            ax.get_xticklabels()[int(targets[k])].set_fontweight("bold")
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.grid(axis="y", alpha=0.3)
        if K > 1:
            ax.set_title(f"example {k}" + (f" (true class: {names[int(targets[k])]})" if targets is not None else ""),
                         fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper right", fontsize=8, ncols=min(6, len(temperatures)))
    if title:
        fig.suptitle(title, x=0.02, ha="left")
    return fig


def plot_accuracy_bars(
    accuracies: Mapping[str, Sequence[float]],
    *,
    teacher: float | None = None,
    names: Mapping[str, str] | None = None,
    ylabel: str = "test accuracy",
    title: str | None = "Student accuracy over seeds (bar: mean, line: one standard deviation, dots: seeds)",
) -> Figure:
    """One bar per way of training the student: the mean over seeds, an error bar of one standard deviation (over
    the seeds, ``ddof=1``; none for a single seed) and one dot per seed.

    Args:
        accuracies: ``{method: [accuracy of each seed]}``, e.g. ``compare(...)["accuracy"]``.
        teacher: the teacher's accuracy, drawn as a dashed line.
        names: display names of the methods (default: the keys).
        ylabel: the y-axis label.
        title: the figure's title (``None``: none).

    Returns:
        A new :class:`matplotlib.figure.Figure`.
    """
    values = {str(m): as_array(f"accuracies[{m!r}]", a, 1, "(seeds,)", nonempty=True, finite=True)
              for m, a in as_mapping("accuracies", accuracies, "{method: [accuracy per seed]}").items()}
    if teacher is not None and (isinstance(teacher, bool) or not isinstance(teacher, int | float)):
        raise TypeError(f"teacher must be a number (the teacher's accuracy) or None, but got {type(teacher).__name__}")
    names = dict(names or {})
    fig = Figure(figsize=(1.6 + 1.5 * len(values), 4.0), layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # the dots' horizontal jitter only
    for i, a in enumerate(values.values()):
        mean = float(a.mean())
        spread = float(a.std(ddof=1)) if len(a) > 1 else 0.0
        ax.bar(i, mean, 0.6, color=f"C{i}", alpha=0.75, yerr=spread if len(a) > 1 else None, capsize=6)
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(a)), a, color="black", s=14, zorder=3)
        text = f"{mean:.3f}" + (f"\n± {spread:.3f}" if len(a) > 1 else "")
        ax.annotate(text, (i, mean + spread), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    if teacher is not None:
        ax.axhline(float(teacher), color="black", linestyle="--", linewidth=1, label=f"teacher ({teacher:.3f})")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks(range(len(values)), [names.get(m, m) for m in values])
    top = max([float(a.max()) for a in values.values()] + ([float(teacher)] if teacher is not None else []))
    ax.set_ylim(0, top * 1.15 if top > 0 else 1)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
