r"""Figures of fixed-point math and secure inference (C29-C32): data in, a matplotlib Figure out.

The data comes from the library::

    from seqlib import lut, secure_math, viz
    viz.plot_function_error({m: lut.function_error(m, 12) for m in ("sigmoid_lut", "sigmoid_generic")})
    viz.plot_error_vs_bits({m: {f: float(lut.function_error(m, f)["max_error"]) for f in (4, 8, 12, 16)}
                            for m in ("sigmoid_lut", "sigmoid_generic")})
    viz.plot_accuracy_vs_bits(sensor_models.fixed_point_accuracy(model, x, y), float_accuracy=0.95)
    viz.plot_communication(secure_rnn.secure_inference(fx, x).report)

Importing this module imports matplotlib; ``import seqlib`` does not.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from ._data import as_array, as_mapping

__all__ = ["plot_function_error", "plot_error_vs_bits", "plot_accuracy_vs_bits", "plot_communication"]


def plot_function_error(curves: Mapping[str, Mapping[str, object]], *, title: str | None = None) -> Figure:
    r"""The approximations of one function and their absolute error along :math:`x`, one line per method.

    Args:
        curves: ``{label: {"x": (P,), "approx": (P,), "exact": (P,), "error": (P,)}}``, e.g.
            ``{m: lut.function_error(m, 12) for m in ("sigmoid_lut", "sigmoid_generic")}``.
        title: the figure's title.

    Returns:
        The figure: left, the exact function (dashed) and each method's values; right, each method's error on a log
        scale (exact zeros are drawn at the smallest positive error).
    """
    curves = as_mapping("curves", curves)
    fig = Figure(figsize=(10.0, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    for k, (label, c) in enumerate(curves.items()):
        if not isinstance(c, Mapping) or not {"x", "approx", "error"} <= set(c):
            raise ValueError(f"curves[{label!r}] must hold 'x', 'approx' and 'error' (as from lut.function_error)")
        x, approx, err = (as_array(key, c[key], 1, "(P,)", nonempty=True) for key in ("x", "approx", "error"))
        if not len(x) == len(approx) == len(err):
            raise ValueError(f"curves[{label!r}]: x, approx and error must have one length, but got "
                             f"{len(x)}, {len(approx)} and {len(err)}")
        if k == 0 and "exact" in c:
            left.plot(x, as_array("exact", c["exact"], 1, "(P,)", nonempty=True), "k--", linewidth=1, label="exact")
        left.plot(x, approx, label=str(label))
        positive = err[err > 0]
        right.plot(x, np.where(err > 0, err, positive.min() if positive.size else 1e-12), label=str(label))
    left.set_xlabel("$x$")
    left.set_ylabel("value")
    right.set_xlabel("$x$")
    right.set_ylabel("absolute error")
    right.set_yscale("log")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_error_vs_bits(errors: Mapping[str, Mapping[int, float]], *, xlabel: str = "fractional bits $f$",
                       ulp: bool = True, title: str | None = None) -> Figure:
    r"""Largest error against the bit budget, one line per method, on a log scale.

    Args:
        errors: ``{method: {bits: max_error}}``.
        xlabel: the x-axis label (fractional bits, digit bits ...).
        ulp: also draw one ulp, :math:`2^{-f}`, as a dotted reference line.
        title: the figure's title.

    Returns:
        The figure; line ``k`` has the sorted bits as x data and their errors as y data.
    """
    errors = as_mapping("errors", errors)
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    all_bits: set[int] = set()
    for label, per_bits in errors.items():
        per_bits = as_mapping(f"errors[{label!r}]", per_bits)
        bits = sorted(per_bits)
        all_bits.update(bits)
        ax.plot(bits, [float(per_bits[b]) for b in bits], "o-", label=str(label))
    if ulp:
        b = np.array(sorted(all_bits), dtype=float)
        ax.plot(b, 2.0**-b, "k:", linewidth=1, label="one ulp $2^{-f}$")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("largest absolute error")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_accuracy_vs_bits(accuracy: Mapping[tuple[int, int], float], *, float_accuracy: float | None = None,
                          title: str | None = None) -> Figure:
    r"""Classifier accuracy against fractional bits, one line per LUT digit width.

    Args:
        accuracy: ``{(frac_bits, digit_bits): accuracy}`` (as from ``sensor_models.fixed_point_accuracy``).
        float_accuracy: the float model's accuracy, drawn as a dashed line.
        title: the figure's title.

    Returns:
        The figure; one line per digit width (in increasing order), x = fractional bits (increasing), y = accuracy.
    """
    accuracy = as_mapping("accuracy", accuracy)
    for key in accuracy:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"accuracy's keys must be (frac_bits, digit_bits) pairs, but got {key!r}")
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for d in sorted({d for _, d in accuracy}):
        fs = sorted(f for f, dd in accuracy if dd == d)
        ax.plot(fs, [accuracy[(f, d)] for f in fs], "o-", label=f"{2**d}-entry tables ($d = {d}$)")
    if float_accuracy is not None:
        ax.axhline(float(float_accuracy), color="k", linestyle="--", linewidth=1, label="float")
    ax.set_xlabel("fractional bits $f$")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_communication(costs: object, *, key: str = "op", offline: bool = False, unit: float = 1e3,
                       title: str | None = None) -> Figure:
    r"""Where the bytes go: one horizontal bar per operation (or layer), largest first.

    Args:
        costs: a :class:`seqlib.secure_rnn.CostReport` (grouped by ``key``, per sequence), ``{name: bytes}``, or
            ``{setting: {name: bytes}}`` for grouped bars (e.g. LUT against generic).
        key: how to group a report: ``"op"``, ``"layer"`` or ``"message"``.
        offline: draw the dealer's (offline) bytes of a report instead of the online ones.
        unit: bytes per unit of the axis (1e3: kB).
        title: the figure's title.

    Returns:
        The figure; each bar's width is its bytes divided by ``unit``.
    """
    if hasattr(costs, "by") and hasattr(costs, "sequences"):
        column = "offline_bytes" if offline else "online_bytes"
        n = max(costs.sequences, 1)
        data: dict[str, dict[str, float]] = {"": {k or "-": v[column] / n for k, v in costs.by(key).items()}}
    else:
        costs = as_mapping("costs", costs)
        first = next(iter(costs.values()))
        if isinstance(first, Mapping):
            data = {str(s): {str(k): float(v) for k, v in as_mapping(f"costs[{s!r}]", m).items()}
                    for s, m in costs.items()}
        else:
            data = {"": {str(k): float(v) for k, v in costs.items()}}
    names = sorted({n for m in data.values() for n in m}, key=lambda n: -max(m.get(n, 0.0) for m in data.values()))
    fig = Figure(figsize=(6.5, 1.0 + 0.45 * len(names) * max(1, len(data) / 2)), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(data)
    y = np.arange(len(names))
    for k, (setting, values) in enumerate(data.items()):
        widths = [values.get(n, 0.0) / unit for n in names]
        ax.barh(y + k * height, widths, height=height, label=setting or None)
    ax.set_yticks(y + height * (len(data) - 1) / 2, names)
    ax.invert_yaxis()
    ax.set_xlabel(f"bytes / {unit:g}" if unit != 1e3 else "kB")
    ax.grid(True, axis="x", alpha=0.3)
    if len(data) > 1:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig
