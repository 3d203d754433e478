r"""Figures of attention and Transformers: attention step by step, positional encodings, heads, next tokens (C20-C28).

These are the figures of the demos in :mod:`seqlib.widgets.attention`; each takes the numbers (from
:func:`seqlib.attention_weights`, :func:`seqlib.positional.sinusoidal_table`, a
:class:`seqlib.TransformerLM`'s attention weights, :func:`seqlib.sampling.next_token_distribution`) and returns a
new :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ._data import ArrayLike, as_array

__all__ = ["plot_attention_steps", "plot_positional_encoding", "plot_multihead",
           "plot_next_token", "visible_token"]

_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥"}


def visible_token(token: str) -> str:
    """A character token as it can be read on an axis: space ``␣``, newline ``↵``, tab ``⇥``; others unchanged."""
    return _VISIBLE.get(token, token)


def _annotate(ax: Any, matrix: np.ndarray, fmt: str = "{:.2f}", fontsize: int = 9) -> None:
    lo, hi = float(matrix[np.isfinite(matrix)].min()), float(matrix[np.isfinite(matrix)].max())
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            v = float(matrix[i, j])
            text = "−∞" if v == -math.inf else fmt.format(v)
            light = math.isfinite(v) and hi > lo and (v - lo) / (hi - lo) > 0.6
            color = "#444444" if not math.isfinite(v) else "black" if light else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=color)


def _heatmap(ax: Any, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str,
             vmin: float | None = None, vmax: float | None = None, annotate: bool = True,
             cmap: str = "viridis") -> None:
    """``matrix`` ``(len(rows), len(cols))`` as an image with its numbers written in; ``±inf`` drawn grey."""
    shown = matrix.copy()
    shown[~np.isfinite(shown)] = np.nan  # drawn as the background colour
    ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_facecolor("#d9d9d9")
    ax.set_xticks(range(len(cols)), cols, rotation=0 if max(map(len, cols), default=0) < 6 else 90)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title, fontsize=10)
    if annotate:
        _annotate(ax, matrix)


def plot_attention_steps(tokens: Sequence[str], scores: ArrayLike, masked_scores: ArrayLike, weights: ArrayLike,
                         output: ArrayLike, *, scaled: bool = True, causal: bool = False,
                         temperature: float = 1.0) -> Figure:
    r"""Scaled dot-product attention in four panels: scores, masked scores, softmax weights, output rows (C21).

    Args:
        tokens: the ``L`` tokens (queries and keys).
        scores: :math:`QK^\top/\sqrt{d_k}` (or unscaled), ``(L, L)``.
        masked_scores: the scores with :math:`-\infty` where the mask hides a key, ``(L, L)``.
        weights: :math:`\mathrm{softmax}(\text{masked scores}/\tau)` over the keys, ``(L, L)``.
        output: ``weights @ V``, ``(L, d_v)``.
        scaled, causal, temperature: what was computed, for the titles.
    """
    s, m, w, out = (as_array(name, value, 2, shape, dtype=None) for name, value, shape in
                    (("scores", scores, "(L, L)"), ("masked_scores", masked_scores, "(L, L)"),
                     ("weights", weights, "(L, L)"), ("output", output, "(L, d_v)")))
    L = len(tokens)
    fig = Figure(figsize=(14, 3.4), layout="constrained")
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.25]})
    s_name = "QKᵀ/√d_k" if scaled else "QKᵀ (unscaled)"
    _heatmap(axes[0], s, tokens, tokens, f"1. scores {s_name}")
    _heatmap(axes[1], m, tokens, tokens, "2. masked scores" + (" (causal)" if L and causal else " (no mask)"))
    _heatmap(axes[2], w, tokens, tokens, f"3. softmax(scores / {temperature:.2f})", vmin=0, vmax=1, cmap="magma")
    _heatmap(axes[3], out, tokens, [f"f{i + 1}" for i in range(out.shape[1])], "4. output = weights · V",
             cmap="cividis")
    for ax in axes[:3]:
        ax.set_xlabel("key (attended to)")
    axes[0].set_ylabel("query")
    return fig


def plot_positional_encoding(pe: ArrayLike, position: int, dots: ArrayLike) -> Figure:
    r"""The sinusoidal table, a few of its columns as waves, and :math:`PE_p \cdot PE_q` for every ``q`` (C23).

    Args:
        pe: the table ``(max_len, d_model)`` (rows = positions), e.g. ``seqlib.positional.sinusoidal_table``.
        position: the position :math:`p` marked in all panels.
        dots: ``(max_len,)``, :math:`PE_p \cdot PE_q` (``pe @ pe[position]``).
    """
    table = as_array("pe", pe, 2, "(max_len, d_model)", dtype=None)
    d = as_array("dots", dots, 1, "(max_len,)", dtype=None)
    max_len, d_model = table.shape
    p = position
    fig = Figure(figsize=(14, 3.6), layout="constrained")
    ax0, ax1, ax2 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.2, 1, 1]})
    im = ax0.imshow(table, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
    ax0.axhline(p, color="black", lw=1.5)
    ax0.set_xlabel("dimension")
    ax0.set_ylabel("position")
    ax0.set_title(f"PE matrix ({max_len} × {d_model}); line: position {p}", fontsize=10)
    fig.colorbar(im, ax=ax0, shrink=0.8)
    for dim in sorted({min(x, d_model - 2) // 2 * 2 for x in (0, 4, 10, 20)}):
        ax1.plot(table[:, dim], lw=1.2, label=f"dim {dim} (sin)")
    ax1.axvline(p, color="black", lw=1)
    ax1.set_xlabel("position")
    ax1.set_title("columns: waves of decreasing frequency", fontsize=10)
    ax1.legend(fontsize=7, loc="lower left")
    ax2.plot(d, color="tab:purple")
    ax2.axvline(p, color="black", lw=1)
    ax2.set_xlabel("position q")
    ax2.set_title(f"PE[{p}] · PE[q]  (max = d_model/2 = {d_model // 2})", fontsize=10)
    return fig


def plot_multihead(weights: ArrayLike, heads: ArrayLike, tokens: Sequence[str], *, layer: int, head: int) -> Figure:
    """One head's (or the mean's) attention over a text, large, next to every head of the layer, small (C22).

    Args:
        weights: the attention shown large, ``(T, T)``: a head's, or the mean over heads.
        heads: every head of the layer, ``(h, T, T)``.
        tokens: the ``T`` tokens (character tokens are shown with :func:`visible_token`).
        layer: the layer, for the title; head: the head shown large (``-1``: the mean), highlighted in red.
    """
    big = as_array("weights", weights, 2, "(T, T)", dtype=None)
    all_heads = as_array("heads", heads, 3, "(h, T, T)", dtype=None)
    n_heads = all_heads.shape[0]
    labels = [visible_token(t) for t in tokens]
    T = len(labels)
    fig = Figure(figsize=(14, 6.2), layout="constrained")
    grid = fig.add_gridspec(2, 2 + (n_heads + 1) // 2, width_ratios=[2.2, 2.2] + [1] * ((n_heads + 1) // 2))
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(big, cmap="magma", vmin=0, vmax=float(big.max()))
    step = max(1, T // 60)
    ax.set_xticks(range(0, T, step), labels[::step], rotation=90, fontsize=8 if T < 40 else 6)
    ax.set_yticks(range(0, T, step), labels[::step], fontsize=8 if T < 40 else 6)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    name = "mean of heads" if head == -1 else f"head {head}"
    ax.set_title(f"layer {layer}, {name}: row i = how much token i takes from each token", fontsize=10)
    for h in range(n_heads):
        sub = fig.add_subplot(grid[h % 2, 2 + h // 2])
        sub.imshow(all_heads[h], cmap="magma")
        sub.set_xticks([])
        sub.set_yticks([])
        sub.set_title(f"head {h}", fontsize=8, color="tab:red" if h == head else "black")
    return fig


def plot_next_token(p_model: ArrayLike, p_sample: ArrayLike, labels: Sequence[str], *, temperature: float,
                    top_k: int | None, context: str = "", shown: int = 25) -> Figure:
    r"""The model's next-token distribution beside the one sampled from after temperature and top-k (C28).

    Args:
        p_model: ``(V,)``, the model's own distribution (:math:`\tau = 1`, all tokens).
        p_sample: ``(V,)``, the distribution sampled from.
        labels: the ``V`` tokens (character tokens are shown with :func:`visible_token`).
        temperature, top_k: the sampling settings, for the legend (``top_k=None``: all tokens).
        context: the text before the next token, for the title (its last 30 characters).
        shown: how many of the model's likeliest tokens get a bar.
    """
    pm, ps = (as_array(name, p, 1, "(V,)", dtype=None) for name, p in (("p_model", p_model), ("p_sample", p_sample)))
    if not (pm.shape == ps.shape == (len(labels),)):
        raise ValueError(f"p_model and p_sample must have shape (V,) with V = len(labels) = {len(labels)}, but got "
                         f"{pm.shape} and {ps.shape}")
    top = np.argsort(-pm, kind="stable")[: min(shown, len(labels))]  # the model's likeliest next tokens
    fig = Figure(figsize=(14, 2.8), layout="constrained")
    ax = fig.subplots()
    xs = np.arange(len(top))
    ax.bar(xs - 0.2, pm[top], width=0.4, label="model (τ = 1, all tokens)", color="#bbbbbb")
    ax.bar(xs + 0.2, ps[top], width=0.4, label=f"sampled from (τ = {temperature:.2f}, top-k = {top_k or 'all'})",
           color="tab:orange")
    ax.set_xticks(xs, [visible_token(labels[i]) for i in top])
    ax.set_ylabel("probability")
    ax.set_title(f"next token after {context[-30:]!r}", fontsize=10)
    ax.legend(fontsize=8)
    return fig
