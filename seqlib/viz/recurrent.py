r"""Figures of recurrent networks at work: hidden states over a sentence, LSTM gates, gradient flow (C03, C08-C12).

These are the figures of the recurrent demos in :mod:`seqlib.widgets.recurrent`; each takes the numbers (from
``seqlib.RNNCell``, :func:`seqlib.bptt.lstm_forward`, :func:`seqlib.gradflow.gradient_norms`, ...) and returns a
new :class:`matplotlib.figure.Figure`. Axes are placed at fixed positions rather than by a layout engine, which
keeps a redraw fast enough for a slider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ._data import ArrayLike, as_array
from .diagrams import _subscript, draw_unrolled

__all__ = ["plot_unrolled_states", "plot_lstm_gates", "plot_gradient_flow"]


def plot_unrolled_states(states: ArrayLike, tokens: Sequence[str], step: int, *,
                         indices: Sequence[int] | None = None, scale: float = 1.0) -> Figure:
    r"""The RNN unfolded over a sentence (step ``step`` highlighted) above its hidden states as heatmap columns.

    Args:
        states: :math:`h_0 \dots h_{T-1}`, ``(T, H)``; columns after ``step`` are left blank (not computed yet).
        tokens: the ``T`` words, written under the boxes.
        step: the current step ``t``.
        indices: the words' vocabulary indices, written under the words.
        scale: the factor on :math:`W_{hh}`, shown in the title.
    """
    H = as_array("states", states, 2, "(T, H)", dtype=None)
    T, hidden_size = H.shape
    if len(tokens) != T:
        raise ValueError(f"tokens must have T = {T} entries (one per row of states), but got {len(tokens)}")
    if not 0 <= step < T:
        raise ValueError(f"step must be in [0, T) = [0, {T}), but got {step}")
    labels = tokens if indices is None else [f"{tok}\n[{i}]" for tok, i in zip(tokens, indices, strict=True)]
    fig = Figure(figsize=(10, 5.4))  # fixed axes positions: faster to draw than a layout engine
    top = fig.add_axes((0.07, 0.47, 0.83, 0.45))
    bottom = fig.add_axes((0.07, 0.12, 0.83, 0.29))
    cax = fig.add_axes((0.92, 0.12, 0.015, 0.29))
    draw_unrolled(top, T, inputs=labels, outputs=[_subscript("h", t) for t in range(T)], current=step)
    top.set_title(f"step t = {step}:  $h_{{{step}}} = \\tanh(W_{{ih}}\\,x_{{{step}}} + b_{{ih}} + "
                  f"W_{{hh}}\\,h_{{{step - 1}}} + b_{{hh}})$ — the same $W_{{ih}}, W_{{hh}}, b$ in every box",
                  fontsize=10)
    shown = H.T.copy()  # (H, T)
    shown[:, step + 1:] = np.nan  # not computed yet
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    image = bottom.imshow(shown, cmap=cmap, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    bottom.add_patch(Rectangle((step - 0.5, -0.5), 1, hidden_size, fill=False, ec="#e69138", lw=2.5))
    bottom.set_xticks(range(T), tokens, rotation=30, fontsize=8)
    bottom.set_yticks(range(hidden_size), [f"h[{j}]" for j in range(hidden_size)], fontsize=8)
    bottom.set_title(f"hidden states h₀ … {_subscript('h', step)} (one column per step, H = {hidden_size}),  "
                     f"W_hh × {float(scale):.2f}:  ‖{_subscript('h', step)}‖ = {float(np.linalg.norm(H[step])):.3f}",
                     fontsize=10)
    fig.colorbar(image, cax=cax)
    return fig


def plot_lstm_gates(gates: Mapping[str, ArrayLike], c: ArrayLike, p_positive: ArrayLike, tokens: Sequence[str],
                    units: Sequence[int], *, text: str | None = None) -> Figure:
    r"""The forget, input and output gates and the cell state of some LSTM units, word by word, and the verdict.

    Args:
        gates: ``{"forget": (T, H), "input": (T, H), "output": (T, H)}``, the activated gates (in [0, 1]).
        c: the cell states :math:`C_0 \dots C_{T-1}`, ``(T, H)``.
        p_positive: ``(T,)``, the classifier's probability of "positive" if the sentence ended at word ``t``.
        tokens: the ``T`` words (the x-axis).
        units: the hidden units to show (rows of each panel), in this order.
        text: the sentence, for the title (default: the tokens joined by spaces).
    """
    f, i, o = (as_array(f"gates[{name!r}]", gates[name], 2, "(T, H)", dtype=None)
               for name in ("forget", "input", "output"))
    c, p_pos = as_array("c", c, 2, "(T, H)", dtype=None), as_array("p_positive", p_positive, 1, "(T,)", dtype=None)
    T = len(tokens)
    if not (f.shape[0] == i.shape[0] == o.shape[0] == c.shape[0] == p_pos.shape[0] == T):
        raise ValueError(f"gates, c (T, H) and p_positive (T,) must have T = len(tokens) = {T} rows, but got "
                         f"{f.shape[0]}, {c.shape[0]} and {p_pos.shape[0]}")
    shown = list(units)
    text = " ".join(tokens) if text is None else text

    fig = Figure(figsize=(10, 8.2))  # fixed axes positions: faster to draw than a layout engine
    heights, gap, top = [0.13, 0.13, 0.13, 0.13, 0.13], 0.045, 0.92
    axes, colorbar_axes = [], []
    for k, hgt in enumerate(heights):
        bottom = top - hgt
        axes.append(fig.add_axes((0.09, bottom, 0.82, hgt), sharex=axes[0] if axes else None))
        if k < 4:
            colorbar_axes.append(fig.add_axes((0.925, bottom, 0.012, hgt)))
        top = bottom - gap
    panels = [(f, "forget gate f_t  (1 = keep C_t-1)", "viridis", 0, 1),
              (i, "input gate i_t  (1 = store the candidate C~_t)", "viridis", 0, 1),
              (o, "output gate o_t  (1 = show tanh C_t)", "viridis", 0, 1)]
    lim = max(float(np.abs(c[:, shown]).max()), 1e-6)
    panels.append((c, "cell state C_t = f_t * C_t-1 + i_t * C~_t", "RdBu_r", -lim, lim))
    for ax, cax, (values, title, cmap, lo, hi) in zip(axes[:4], colorbar_axes, panels, strict=True):
        im = ax.imshow(values[:, shown].T, cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(shown)), [f"unit {u}" for u in shown], fontsize=7)
        ax.set_title(title, fontsize=10, loc="left")
        ax.tick_params(labelbottom=False)
        fig.colorbar(im, cax=cax)
    ax = axes[4]
    ax.plot(range(T), p_pos, "o-", color="#3d5a80")
    ax.axhline(0.5, color="0.6", lw=0.8, ls="--")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("P(positive)", fontsize=9)
    ax.set_title("the classifier's verdict if the sentence ended at word t", fontsize=10, loc="left")
    ax.set_xticks(range(T), tokens, rotation=30, fontsize=9)
    label = "positive" if float(p_pos[-1]) >= 0.5 else "negative"
    ax.set_xlim(-0.5, T - 0.5)
    fig.suptitle(f'"{text}"  ->  {label} (P(positive) = {float(p_pos[-1]):.2f})', fontsize=11, y=0.985)
    return fig


def plot_gradient_flow(norms: ArrayLike, *, grad_norm: float, clipped_norm: float, max_norm: float = 0.0,
                       cell_norms: ArrayLike | None = None, radius: float | None = None, label: str = "") -> Figure:
    r""":math:`\lVert \partial L/\partial h_t \rVert` against ``t`` on a log scale, and the effect of clipping.

    Left: the gradient norm reaching every step (the loss at ``t = T-1``), the cell state's next to it for an
    LSTM, the reference :math:`\rho^{T-1-t}` dashed, and the clipped curve dotted when clipping shortened the
    gradient. Right: the total gradient norm of all parameters before and after clipping.

    Args:
        norms: ``(T,)``, e.g. :func:`seqlib.gradflow.gradient_norms`.
        grad_norm, clipped_norm: the total parameter-gradient norm before and after clipping.
        max_norm: the clipping threshold; ``0``: no clipping.
        cell_norms: ``(T,)`` :math:`\lVert \partial L/\partial C_t \rVert` of an LSTM, or ``None``.
        radius: draw the reference :math:`\rho^{T-1-t}` with this :math:`\rho` (``None``: not drawn).
        label: what was measured (the cell, activation, ...), for the title.
    """
    n = as_array("norms", norms, 1, "(T,)", dtype=None)
    T = n.shape[0]
    cell = None if cell_norms is None else as_array("cell_norms", cell_norms, 1, "(T,)", dtype=None)
    total, clipped = float(grad_norm), float(clipped_norm)
    factor = clipped / total if total > 0 else 1.0

    fig = Figure(figsize=(10, 3.9))
    left, right = fig.subplots(1, 2, width_ratios=[3, 1])
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.22)
    steps = np.arange(T)
    left.semilogy(steps, n, "o-", ms=3, color="#3d5a80", label=r"$\|\partial L/\partial h_t\|$")
    if cell is not None:
        left.semilogy(steps, cell, "s-", ms=3, color="#e69138", label=r"$\|\partial L/\partial C_t\|$ (cell state)")
    shown = [n]
    if radius is not None:
        ref = n[-1] * radius ** (T - 1 - steps.astype(float))
        left.semilogy(steps, ref, "--", color="0.55", lw=1, label=rf"$\rho^{{T-1-t}}$ ($\rho$ = {radius:.2f})")
    if cell is not None:
        shown.append(cell)
    if max_norm > 0 and factor < 1:
        left.semilogy(steps, n * factor, ":", color="#cc0000", label="after clipping (same direction, scaled)")
        shown.append(n * factor)
    left.set_xlabel("time step t  (the loss is at t = T-1)")
    left.set_ylabel("gradient norm (log scale)")
    ratio = f"{n[0] / n[-1]:.1e}" if n[-1] > 0 and np.isfinite(n[0]) else "n/a"
    left.set_title(f"{label}:  $\\|\\partial L/\\partial h_0\\| / \\|\\partial L/\\partial h_{{T-1}}\\|$ = {ratio}",
                   fontsize=10)
    values = np.concatenate(shown)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size:
        left.set_ylim(max(values.min(), 1e-300) / 10, values.max() * 10)
    left.legend(fontsize=8, loc="best")
    left.grid(True, which="major", alpha=0.3)
    right.bar([0, 1], [total, clipped], color=["#3d5a80", "#cc0000"])
    right.set_xticks([0, 1], ["before", "after"])
    right.set_yscale("log")
    lows = [x for x in (total, clipped, max_norm) if x > 0]
    right.set_ylim(min(lows) / 10, max(lows) * 10)
    if max_norm > 0:
        right.axhline(max_norm, color="0.4", ls="--", lw=1)
    right.set_title("$\\|\\nabla_\\theta L\\|$, clip " + ("off" if max_norm == 0 else f"at {max_norm:g}"),
                    fontsize=10)
    return fig
