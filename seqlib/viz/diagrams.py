r"""Diagrams of recurrent networks: the network unfolded in time (C03, C07) and the four application types (C02).

:func:`draw_unrolled` draws on a matplotlib ``Axes`` you pass, so that it can sit in a figure of your own (lecture
02 adds a title; :func:`seqlib.viz.plot_unrolled_states` puts the hidden states under it);
:func:`plot_application_types` returns a new ``Figure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["draw_unrolled", "plot_application_types"]

_PAST, _NOW, _FUTURE, _EDGE = "#cfe2f3", "#f6b26b", "#eeeeee", "#3d5a80"
_SUBSCRIPT = str.maketrans("0123456789-+", "₀₁₂₃₄₅₆₇₈₉₋₊")


def _subscript(name: str, index: int | str) -> str:
    """``_subscript("h", -1) == "h₋₁"``: plain-text subscripts (cheaper to draw than mathtext)."""
    return f"{name}{str(index).translate(_SUBSCRIPT)}"


def draw_unrolled(ax: Any, n_steps: int, *, inputs: Sequence[str | None] | None = None,
                  outputs: Sequence[str | None] | None = None, current: int | None = None,
                  cell_label: str = "RNN", state_label: str = "h", show_h0: bool = True) -> None:
    r"""Draw an RNN unfolded over ``n_steps`` time steps on ``ax``: one box per step, ``h`` passed along.

    Every box carries the same label (``cell_label``) because every step applies the *same* weights.

    Args:
        ax: a matplotlib ``Axes``.
        n_steps: the number of boxes ``T``.
        inputs: ``T`` labels under the boxes (``None`` entries draw no input arrow). Default ``x_0 .. x_{T-1}``.
        outputs: ``T`` labels above the boxes (``None``: no output arrow). Default ``y_0 .. y_{T-1}``.
        current: highlight this step; later steps are drawn faded. ``None``: all steps alike.
        cell_label, state_label: text in the boxes and on the arrows between them.
        show_h0: draw the incoming ``h_{-1}`` arrow on the left.
    """
    T = int(n_steps)
    inputs = list(inputs) if inputs is not None else [_subscript("x", t) for t in range(T)]
    outputs = list(outputs) if outputs is not None else [_subscript("y", t) for t in range(T)]
    if len(inputs) != T or len(outputs) != T:
        raise ValueError(f"inputs and outputs must have n_steps = {T} entries, "
                         f"but got {len(inputs)} and {len(outputs)}")
    w, hgt = 0.62, 0.5
    for t in range(T):
        future = current is not None and t > current
        face = _NOW if t == current else (_FUTURE if future else _PAST)
        alpha = 0.45 if future else 1.0
        ax.add_artist(FancyBboxPatch((t - w / 2, -hgt / 2), w, hgt, boxstyle="round,pad=0.02", fc=face,
                                    ec=_EDGE, lw=2.2 if t == current else 1.2, alpha=alpha))
        ax.text(t, 0, cell_label, ha="center", va="center", fontsize=9, alpha=alpha)
        if inputs[t] is not None:
            ax.add_artist(FancyArrowPatch((t, -0.95), (t, -hgt / 2 - 0.03), arrowstyle="-|>", mutation_scale=10,
                                         color="0.3", alpha=alpha))
            ax.text(t, -1.05, inputs[t], ha="center", va="top", fontsize=9, alpha=alpha)
        if outputs[t] is not None:
            ax.add_artist(FancyArrowPatch((t, hgt / 2 + 0.03), (t, 0.95), arrowstyle="-|>", mutation_scale=10,
                                         color="0.3", alpha=alpha))
            ax.text(t, 1.02, outputs[t], ha="center", va="bottom", fontsize=9, alpha=alpha)
        if t > 0 or show_h0:
            start = t - 1 + w / 2 + 0.02 if t > 0 else -0.5
            ax.add_artist(FancyArrowPatch((start, 0), (t - w / 2 - 0.02, 0), arrowstyle="-|>", mutation_scale=10,
                                         color=_EDGE, alpha=alpha))
            if T <= 8 or t == 0:
                ax.text((start + t - w / 2) / 2, 0.07 if t > 0 else 0.12, _subscript(state_label, t - 1), ha="center",
                        va="bottom", fontsize=8, color=_EDGE, alpha=alpha)
    ax.set_xlim(-0.5, T - 0.5)  # step t at x = t, as in an imshow of T columns below it
    ax.set_ylim(-1.75, 1.5)
    ax.axis("off")


def plot_application_types() -> Figure:
    """One-to-one, many-to-one, one-to-many and many-to-many drawn as unrolled RNNs (the lecture's four types, C02)."""
    fig = Figure(figsize=(12, 3.2), layout="constrained")
    axes = fig.subplots(1, 4, width_ratios=[1.3, 4, 4, 6])
    panels = [
        ("one to one\n(classification)", 1, ["image"], ["class"]),
        ("many to one\n(sentiment analysis)", 4, ["I", "am", "happy", "."], [None, None, None, "positive"]),
        ("one to many\n(image captioning)", 4, ["image", None, None, None], ["a", "dog", "runs", "<eos>"]),
        ("many to many\n(translation)", 6, ["wie", "geht's", "?", None, None, None],
         [None, None, None, "how", "are", "you"]),
    ]
    for ax, (title, T, ins, outs) in zip(axes, panels, strict=True):
        draw_unrolled(ax, T, inputs=ins, outputs=outs, cell_label="RNN" if T > 1 else "f", show_h0=False)
        ax.set_title(title, fontsize=10)
    return fig
