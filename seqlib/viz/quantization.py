r"""Figures of quantization under class imbalance (C38-C39): data in, a matplotlib Figure out.

- :func:`plot_per_class_accuracy`: each class's accuracy as bars, one group per class, one bar per scheme, one panel
  per bit-width (error bars: the spread over seeds). Where a minority class collapses, its bars drop to zero.
- :func:`plot_quantization_grid`: each class's histogram of the values a quantizer sees (each normalised to its own
  area, so a class of 20 examples is as visible as one of 2000), with the quantization levels drawn over it, one
  panel per grid. It shows at a glance which classes get levels and which fall between them.

The numbers come from :mod:`seqlib.quant_demo` (accuracies), :func:`seqlib.quant.uniform_levels` and
:func:`seqlib.cdf_quant.cdf_levels` (levels)::

    from seqlib import viz
    viz.plot_per_class_accuracy({"uniform": {8: acc8, 2: acc2}, "climbq": {8: ..., 2: ...}}, class_names=names)
    viz.plot_quantization_grid(features_by_class, {"min-max 2 bits": uniform_levels(s, z, 2, False)})

Importing this module imports matplotlib; ``import seqlib`` does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ._data import ArrayLike, as_array, as_mapping

__all__ = ["plot_per_class_accuracy", "plot_quantization_grid"]

def plot_per_class_accuracy(
    results: Mapping[str, Mapping[int, ArrayLike]],
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Per-class accuracy bars: one panel per bit-width, one group of bars per class, one bar per scheme.

    Args:
        results: ``{scheme: {bits: accuracies}}`` with accuracies ``(K,)`` (one run) or ``(S, K)`` (``S`` seeds:
            bar = mean, error bar = standard deviation), values in [0, 1]. Every scheme needs the same ``K``.
        class_names: the ``K`` class names (default ``class 0 .. K-1``).
        title: the figure's title.

    Returns:
        The figure: panels in decreasing bit-width; in each, bar ``j`` of group ``k`` is scheme ``j``'s mean accuracy
        on class ``k`` (in percent).
    """
    table: dict[str, dict[int, np.ndarray]] = {}
    for scheme, by_bits in as_mapping("results", results, "{scheme: {bits: accuracies}}").items():
        by_bits = as_mapping(f"results[{scheme!r}]", by_bits, "{bits: accuracies}")
        table[str(scheme)] = {int(b): np.atleast_2d(as_array(f"results[{scheme!r}][{b}]", acc, (1, 2),
                                                             "(K,) or (S, K)", nonempty=True))
                              for b, acc in by_bits.items()}
    ks = {a.shape[1] for by_bits in table.values() for a in by_bits.values()}
    if len(ks) != 1:
        raise ValueError(f"every accuracy vector must have the same number of classes K, but got {sorted(ks)}")
    k = ks.pop()
    values = np.concatenate([a.ravel() for by_bits in table.values() for a in by_bits.values()])
    if np.any((values < 0) | (values > 1)):
        raise ValueError("accuracies must lie in [0, 1]")
    names = list(class_names) if class_names is not None else [f"class {i}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names must have K = {k} names, but got {len(names)}")
    bit_widths = sorted({b for by_bits in table.values() for b in by_bits}, reverse=True)
    fig = Figure(figsize=(min(4.2 * len(bit_widths), 16.0), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(bit_widths), sharey=True, squeeze=False)[0])
    width = 0.8 / len(table)
    x = np.arange(k)
    for ax, bits in zip(axes, bit_widths, strict=True):
        for j, (scheme, by_bits) in enumerate(table.items()):
            if bits not in by_bits:
                continue
            runs = 100 * by_bits[bits]  # (S, K)
            spread = runs.std(0, ddof=1) if len(runs) > 1 else None
            ax.bar(x - 0.4 + (j + 0.5) * width, runs.mean(0), width, yerr=spread, capsize=2, label=scheme)
        ax.set_xticks(x, names, rotation=20)
        ax.set_title(f"{bits} bits" if bits < 32 else "float")
        ax.set_ylim(0, 105)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("accuracy on the class (%)")
    axes[-1].legend(fontsize="small", loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_quantization_grid(
    values_by_class: Mapping[str, ArrayLike] | Sequence[ArrayLike],
    levels: Mapping[str, ArrayLike] | ArrayLike,
    *,
    bins: int = 60,
    title: str | None = None,
) -> Figure:
    """Each class's value histogram (normalised per class) with the quantization levels drawn over it.

    Args:
        values_by_class: ``{class name: values}`` or a list of per-class values (any shape; flattened).
        levels: the quantization levels, ``(2^b,)``; or ``{grid name: levels}`` for one panel per grid.
        bins: histogram bins over the range of all values and levels.
        title: the figure's title.

    Returns:
        The figure: one panel per grid; in each, one step histogram per class and one vertical line per level.
    """
    if isinstance(values_by_class, Mapping):
        classes = {str(name): as_array(f"values_by_class[{name!r}]", v, (0, 1, 2, 3), "(n_k, ...)",
                                       nonempty=True).ravel()
                   for name, v in values_by_class.items()}
    elif isinstance(values_by_class, Sequence) and not isinstance(values_by_class, str):
        classes = {f"class {i}": as_array(f"values_by_class[{i}]", v, (0, 1, 2, 3), "(n_k, ...)",
                                          nonempty=True).ravel()
                   for i, v in enumerate(values_by_class)}
    else:
        raise TypeError(f"values_by_class must be a mapping or a list of per-class values, but got "
                        f"{type(values_by_class).__name__}")
    if not classes:
        raise ValueError("values_by_class must hold at least one class")
    grids = {str(n): as_array(f"levels[{n!r}]", v, 1, "(L,)", nonempty=True) for n, v in levels.items()} \
        if isinstance(levels, Mapping) else {"": as_array("levels", levels, 1, "(L,)", nonempty=True)}
    if not grids:
        raise ValueError("levels must hold at least one grid")
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise ValueError(f"bins must be an int >= 2, but got {bins!r}")
    everything = np.concatenate([*classes.values(), *grids.values()])
    everything = everything[np.isfinite(everything)]
    lo, hi = float(everything.min()), float(everything.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    fig = Figure(figsize=(7.5, 1.2 + 2.2 * len(grids)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(grids), 1, sharex=True, squeeze=False)[:, 0])
    for ax, (name, grid) in zip(axes, grids.items(), strict=True):
        for label, values in classes.items():
            ax.hist(values, bins=edges, density=True, histtype="step", linewidth=1.5, label=f"{label} ({len(values)})")
        for level in grid:
            ax.axvline(level, color="black", linewidth=0.8, alpha=0.6)
        ax.set_ylabel("density")
        if name:
            ax.set_title(f"{name}: {len(grid)} levels", fontsize="medium")
    axes[-1].set_xlabel("value")
    axes[0].legend(fontsize="small", ncols=2)
    if title:
        fig.suptitle(title)
    return fig
