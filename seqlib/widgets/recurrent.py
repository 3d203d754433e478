r"""Live demos for lectures 01-03: the unrolled RNN, gradient flow through time, and LSTM gates.

Each demo is a function that returns a :class:`DemoWidget`: rows of ipywidgets controls above a matplotlib figure
rendered to PNG. The maths is seqlib's (``seqlib.RNNCell``, ``seqlib.gradflow.gradient_norms``,
``seqlib.bptt.lstm_forward``, ``seqlib.clip_grad_norm_``); a widget only turns its controls into arguments and
draws the result. So that a test (or a curious student) can drive a demo without a browser, every widget exposes

- ``w.controls``: ``{name: control}``; set ``w.controls["step"].value = 3`` and the figure is redrawn;
- ``w.last_data``: the numbers behind the current figure (tensors, lists, the modules used);
- ``w.png``: the PNG bytes on screen; ``w.figure``: the matplotlib ``Figure`` they came from;
- ``with w.hold(): ...``: change several controls and redraw once.

Demos and figures:

- ``rnn_unroll_demo()``: step through a sentence; the unfolded RNN with ``h_t`` as heatmap columns (C03, C07).
- ``gradient_flow_demo()``: ``||dL/dh_t||`` against ``t`` on a log scale; spectral radius of ``W_hh``, activation,
  initialisation, length, cell and gradient clipping as controls (C08, C09, C12).
- ``lstm_gates_demo(model=None)``: forget/input/output gates and the cell state of a sentiment LSTM over a
  sentence (C10, C11, C14).
- ``draw_unrolled(ax, T)``: the unfolded-in-time picture on a matplotlib ``Axes``.
- ``application_types_figure()``: one-to-one, many-to-one, one-to-many, many-to-many (C02).
"""

from __future__ import annotations

import contextlib
import html
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import ipywidgets as widgets
import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from torch import Tensor, nn

from .. import bptt, gradflow
from ..cache import cached_model
from ..embedding import Embedding
from ..rnn import LSTM, RNNCell
from ..threads import torch_threads
from ..vocab import WordTokenizer

__all__ = [
    "DemoWidget",
    "rnn_unroll_demo",
    "gradient_flow_demo",
    "lstm_gates_demo",
    "sentiment_lstm",
    "SentimentLSTM",
    "draw_unrolled",
    "application_types_figure",
]

DrawFn = Callable[[dict[str, Any]], tuple[Figure, dict[str, Any]]]

# The lecture's example sentences (L11.1).
FOOD_GOOD = "The food was good, not bad at all."
FOOD_BAD = "The food was bad, not good at all."
GERMANY = "I grew up in Germany when I was a child and I still speak fluent German."


# ---------------------------------------------------------------------------------------------------------------------
# the widget shell: controls on top, a PNG below
# ---------------------------------------------------------------------------------------------------------------------
def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class DemoWidget(widgets.VBox):
    """Controls above a figure; any control change redraws the figure.

    Args:
        controls: ``{name: ipywidgets control}``, shown in this order (a row per ``rows`` entry).
        draw: ``draw(values) -> (figure, data)`` with ``values = {name: control.value}``. A ``ValueError`` it
            raises is shown as a message above the figure (the old figure stays).
        title: shown above the controls.
        rows: names of the controls per row; default: all in one wrapping row.
        on_change: ``on_change(widget, name)`` runs before the redraw when control ``name`` changed; it may
            set other controls (they do not trigger extra redraws).
        dpi: resolution of the PNG.

    Attributes:
        controls, last_data (the ``data`` of the last successful draw), figure, png, status (an ``HTML``
        message line), image (the ``ipywidgets.Image``).
    """

    def __init__(self, controls: Mapping[str, widgets.ValueWidget], draw: DrawFn, *, title: str = "",
                 rows: Sequence[Sequence[str]] | None = None,
                 on_change: Callable[[DemoWidget, str], None] | None = None, dpi: int = 80) -> None:
        image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        status = widgets.HTML()
        rows = rows if rows is not None else [list(controls)]
        boxes = [widgets.HBox([controls[n] for n in row], layout=widgets.Layout(flex_flow="row wrap"))
                 for row in rows]
        header = [widgets.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        super().__init__([*header, *boxes, status, image])
        self.controls: dict[str, widgets.ValueWidget] = dict(controls)
        self.image = image
        self.status = status
        self.figure: Figure | None = None
        self.last_data: dict[str, Any] = {}
        self.dpi = dpi
        self._draw = draw
        self._on_change = on_change
        self._holding = False
        for name, control in self.controls.items():
            control.observe(partial(self._changed, name), names="value")
        self.refresh()

    @property
    def png(self) -> bytes:
        """The PNG bytes currently shown."""
        return bytes(self.image.value)

    def values(self) -> dict[str, Any]:
        """``{name: control.value}``."""
        return {name: c.value for name, c in self.controls.items()}

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Change several controls at once and redraw once at the end: ``with w.hold(): ...``."""
        if self._holding:
            yield
            return
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        self.refresh()

    def _changed(self, name: str, change: dict[str, Any]) -> None:
        if self._holding:
            return
        with self.hold():
            if self._on_change is not None:
                self._on_change(self, name)

    def refresh(self) -> None:
        """Draw the figure for the current control values."""
        try:
            with torch_threads(1):  # demo-sized tensors: one thread is fastest, and never stalls on a busy machine
                fig, data = self._draw(self.values())
        except ValueError as err:
            self.status.value = f"<span style='color:#b00020'>{html.escape(str(err))}</span>"
            return
        self.status.value = ""
        self.image.value = _png(fig, self.dpi)
        self.figure = fig
        self.last_data = data


# ---------------------------------------------------------------------------------------------------------------------
# the unfolded picture
# ---------------------------------------------------------------------------------------------------------------------
_PAST, _NOW, _FUTURE, _EDGE = "#cfe2f3", "#f6b26b", "#eeeeee", "#3d5a80"
_SUBSCRIPT = str.maketrans("0123456789-+", "₀₁₂₃₄₅₆₇₈₉₋₊")


def _sub(name: str, index: int | str) -> str:
    """``_sub("h", -1) == "h₋₁"``: plain-text subscripts (cheaper to draw than mathtext)."""
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
    inputs = list(inputs) if inputs is not None else [_sub("x", t) for t in range(T)]
    outputs = list(outputs) if outputs is not None else [_sub("y", t) for t in range(T)]
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
                ax.text((start + t - w / 2) / 2, 0.07 if t > 0 else 0.12, _sub(state_label, t - 1), ha="center",
                        va="bottom", fontsize=8, color=_EDGE, alpha=alpha)
    ax.set_xlim(-0.5, T - 0.5)  # step t at x = t, as in an imshow of T columns below it
    ax.set_ylim(-1.75, 1.5)
    ax.axis("off")


def application_types_figure() -> Figure:
    """One-to-one, many-to-one, one-to-many and many-to-many drawn as unrolled RNNs (the lecture's four types)."""
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


# ---------------------------------------------------------------------------------------------------------------------
# rnn_unroll_demo
# ---------------------------------------------------------------------------------------------------------------------
_UNROLL_CORPUS = [FOOD_GOOD, FOOD_BAD, GERMANY, "I am happy with this water bottle.", "This is a bad investment.",
                  "I am going to walk today.", "hallo wie geht's juhu Vorlesung"]


def _seeded(seed: int, build: Callable[[], Any]) -> Any:
    """Build modules from ``torch.manual_seed(seed)`` without touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def rnn_unroll_demo(text: str = FOOD_GOOD, hidden_size: int = 6, embedding_dim: int = 4, seed: int = 0,
                    max_steps: int = 14) -> DemoWidget:
    r"""Step through a sentence and watch the hidden state update, one box per time step.

    An untrained ``seqlib.Embedding`` turns each word into a vector :math:`x_t`; one ``seqlib.RNNCell`` computes
    :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`, the *same* cell at every step. The upper
    panel is the RNN unfolded in time (current step highlighted, later steps faded), the lower panel shows
    :math:`h_0, \dots, h_t` as heatmap columns.

    Controls: ``text`` (the sentence, words split by ``seqlib.WordTokenizer``), ``step`` (the time step ``t``),
    ``scale`` (a factor on :math:`W_{hh}`: small = the state forgets quickly, large = it saturates at ±1).

    ``last_data``: ``tokens``, ``indices`` (from the vocabulary), ``step``, ``states`` ``(T, H)`` (all steps),
    ``h_t`` ``(H,)``, ``scale``, ``inputs`` ``(T, E)`` (the embedded words), and the modules ``embedding`` and
    ``cell`` (its ``weight_hh`` holds the scaled matrix).
    """
    tokenizer = WordTokenizer(_UNROLL_CORPUS, lowercase=True)
    emb, cell = _seeded(seed, lambda: (Embedding(len(tokenizer), embedding_dim), RNNCell(embedding_dim, hidden_size)))
    w_hh0 = cell.weight_hh.detach().clone()

    controls = {
        "text": widgets.Text(value=text, description="sentence", continuous_update=False,
                             layout=widgets.Layout(width="420px")),
        "step": widgets.IntSlider(value=0, min=0, max=max_steps - 1, description="step t"),
        "scale": widgets.FloatSlider(value=1.0, min=0.0, max=4.0, step=0.25, description="W_hh ×"),
    }

    def tokens_of(sentence: str) -> list[str]:
        tokens = tokenizer.tokenize(sentence)[:max_steps]
        if not tokens:
            raise ValueError("Type a sentence: the tokenizer found no words in it.")
        return tokens

    def sync(w: DemoWidget, name: str) -> None:
        if name == "text":
            with contextlib.suppress(ValueError):
                n = len(tokens_of(w.controls["text"].value))
                w.controls["step"].max = n - 1

    @torch.no_grad()
    def draw(v: dict[str, Any]) -> tuple[Figure, dict[str, Any]]:
        tokens = tokens_of(v["text"])
        indices = tokenizer.vocab.encode(tokens)
        T, step = len(tokens), min(int(v["step"]), len(tokens) - 1)
        cell.weight_hh.copy_(w_hh0 * float(v["scale"]))
        x = emb(torch.tensor(indices))  # (T, E)
        h, states = torch.zeros(hidden_size), []
        for t in range(T):
            h = cell(x[t], h)  # (H,): the same cell, the same weights, at every step
            states.append(h)
        H = torch.stack(states)  # (T, H)

        fig = Figure(figsize=(10, 5.4))  # fixed axes positions: faster to draw than a layout engine
        top = fig.add_axes((0.07, 0.47, 0.83, 0.45))
        bottom = fig.add_axes((0.07, 0.12, 0.83, 0.29))
        cax = fig.add_axes((0.92, 0.12, 0.015, 0.29))
        draw_unrolled(top, T, inputs=[f"{tok}\n[{i}]" for tok, i in zip(tokens, indices, strict=True)],
                      outputs=[_sub("h", t) for t in range(T)], current=step)
        top.set_title(f"step t = {step}:  $h_{{{step}}} = \\tanh(W_{{ih}}\\,x_{{{step}}} + b_{{ih}} + "
                      f"W_{{hh}}\\,h_{{{step - 1}}} + b_{{hh}})$ — the same $W_{{ih}}, W_{{hh}}, b$ in every box",
                      fontsize=10)
        shown = H.T.numpy().copy()  # (H, T)
        shown[:, step + 1:] = np.nan  # not computed yet
        cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
        image = bottom.imshow(shown, cmap=cmap, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        bottom.add_patch(Rectangle((step - 0.5, -0.5), 1, hidden_size, fill=False, ec="#e69138", lw=2.5))
        bottom.set_xticks(range(T), tokens, rotation=30, fontsize=8)
        bottom.set_yticks(range(hidden_size), [f"h[{j}]" for j in range(hidden_size)], fontsize=8)
        bottom.set_title(f"hidden states h₀ … {_sub('h', step)} (one column per step, H = {hidden_size}),  "
                         f"W_hh × {float(v['scale']):.2f}:  ‖{_sub('h', step)}‖ = {float(H[step].norm()):.3f}",
                         fontsize=10)
        fig.colorbar(image, cax=cax)
        data = {"tokens": tokens, "indices": indices, "step": step, "states": H.clone(), "h_t": H[step].clone(),
                "scale": float(v["scale"]), "inputs": x.clone(), "embedding": emb, "cell": cell}
        return fig, data

    widget = DemoWidget(controls, draw, title="An RNN unrolled in time", rows=[["text"], ["step", "scale"]],
                        on_change=sync)
    sync(widget, "text")
    return widget


# ---------------------------------------------------------------------------------------------------------------------
# lstm_gates_demo
# ---------------------------------------------------------------------------------------------------------------------
class SentimentLSTM(nn.Module):
    r"""The lecture's ``LSTM(vocab_size, output_dim)`` text classifier: embedding -> LSTM -> linear on the last state.

    Args:
        vocab_size: ``V``; output_dim: number of classes ``C``; embedding_dim: ``E``; hidden_dim: ``H``;
        padding_idx: the ``<pad>`` index (its embedding stays zero).

    Inputs: text, text_len
        - **text**: ``(L, N)`` int64 token indices, padded.
        - **text_len**: ``(N,)`` int64 lengths (CPU). The padded batch is packed, so the final state of every
          sentence is taken at its own last word, not after the padding.

    Outputs: ``(N, C)`` logits.
    """

    def __init__(self, vocab_size: int, output_dim: int, embedding_dim: int = 16, hidden_dim: int = 24,
                 padding_idx: int | None = 0) -> None:
        super().__init__()
        self.embedding = Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.lstm = LSTM(embedding_dim, hidden_dim)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, text: Tensor, text_len: Tensor) -> Tensor:
        embeds = self.embedding(text)  # (L, N, E)
        packed = nn.utils.rnn.pack_padded_sequence(embeds, text_len.cpu(), enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: (1, N, H), each sentence's state after its last word
        return self.fc(h_n[-1])  # (N, C)


def sentiment_lstm(*, retrain: bool = False) -> tuple[SentimentLSTM, WordTokenizer]:
    """A small :class:`SentimentLSTM` trained on ``seqlib.data.negation_sentiment`` (cached in ``build/``).

    Trained once (seeded: 1000 sentences, 3 epochs of Adam, a few seconds on a laptop CPU), then loaded from
    ``build/cache/models/sentiment_lstm_v2.pt``. Returns ``(model, tokenizer)``; the tokenizer (a lower-casing
    ``seqlib.WordTokenizer``) turns a sentence into the indices the model expects.
    """
    from ..data import collate_padded, encode_dataset, negation_sentiment
    from ..train import fit

    train = encode_dataset(negation_sentiment(1000, seed=0))
    tokenizer = train.tokenizer
    pad = tokenizer.vocab.pad_index

    def build() -> SentimentLSTM:
        return SentimentLSTM(len(tokenizer), 2, padding_idx=pad)

    def train_fn(model: SentimentLSTM) -> None:
        collate = partial(collate_padded, padding_value=pad, batch_first=False)
        loader = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True, collate_fn=collate)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        fit(model, loader, F.cross_entropy, optimizer, epochs=3, device="cpu", progress=False)

    return cached_model("sentiment_lstm_v2", build, train_fn, retrain=retrain), tokenizer


_GATE_SENTENCES = [
    FOOD_GOOD,
    FOOD_BAD,
    "The movie was not bad, it was great.",
    "The service was not great, it was awful.",
    "The coffee was good.",
    "Far from boring, the concert was brilliant.",
]


def _lstm_parts(model: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module]:
    missing = [a for a in ("embedding", "lstm", "fc") if not hasattr(model, a)]
    if missing:
        raise TypeError("model must have the lecture's layout: .embedding, .lstm (one layer, unidirectional) and "
                        f".fc, but it has no {', '.join('.' + m for m in missing)}")
    lstm = model.lstm
    if getattr(lstm, "num_layers", 1) != 1 or getattr(lstm, "bidirectional", False):
        raise ValueError("model.lstm must have num_layers=1 and bidirectional=False for the gate demo")
    return model.embedding, lstm, model.fc


def lstm_gates_demo(model: nn.Module | None = None, tokenizer: Any = None, *,
                    sentences: Sequence[str] | None = None, units: int = 8) -> DemoWidget:
    r"""The gates and the cell state of a sentiment LSTM, word by word over a sentence.

    For each word :math:`x_t` the panels show, for a few hidden units, the forget gate :math:`f_t`, the input
    (store) gate :math:`i_t`, the output gate :math:`o_t` (all in [0, 1]: 0 = let nothing through, 1 = let all
    through), the cell state :math:`C_t = f_t * C_{t-1} + i_t * \tilde C_t`, and what the classifier would say
    if the sentence ended after word ``t``. The numbers come from ``seqlib.bptt.lstm_forward``, which keeps the
    gate activations of every step.

    Args:
        model: a classifier with ``.embedding``, ``.lstm`` (one layer; ``seqlib.LSTM`` or ``torch.nn.LSTM``) and
            ``.fc`` (e.g. the lecture's ``LSTM(vocab_size, output_dim)`` class). ``None``: :func:`sentiment_lstm`,
            trained on first use and cached under ``build/cache/models/``.
        tokenizer: ``encode(str) -> list[int]`` and ``tokenize(str) -> list[str]`` for ``model``'s vocabulary
            (required when ``model`` is given).
        sentences: the presets of the ``sentence`` dropdown (default: the lecture's "The food was good, not bad
            at all." and its mirror image, and a few more).
        units: how many hidden units to show at first.

    Controls: ``sentence`` (presets), ``text`` (edit or type any sentence; unknown words map to ``<unk>``),
    ``units`` (show the ``k`` units whose weight in ``fc`` separates the classes most).

    ``last_data``: ``tokens``, ``gates`` (``{"input", "forget", "cell", "output"}``, each ``(T, H)``), ``c``
    ``(T, H)``, ``h`` ``(T, H)``, ``p_positive`` ``(T,)``, ``units`` (indices shown), ``prediction``, ``indices``
    (the token indices fed to the model).
    """
    if model is None:
        model, tokenizer = sentiment_lstm()
    elif tokenizer is None:
        raise TypeError("tokenizer is required when model is given: pass the tokenizer whose vocabulary the model "
                        "was trained with (e.g. train_set.tokenizer)")
    embedding, lstm, fc = _lstm_parts(model)
    hidden = int(lstm.hidden_size)
    sentences = list(sentences) if sentences is not None else list(_GATE_SENTENCES)
    weight = fc.weight.detach()  # (C, H)
    relevance = (weight[1] - weight[0]).abs() if weight.shape[0] == 2 else weight.norm(dim=0)  # (H,)
    ranking = relevance.argsort(descending=True).tolist()

    controls = {
        "sentence": widgets.Dropdown(options=sentences, value=sentences[0], description="preset",
                                     layout=widgets.Layout(width="420px")),
        "text": widgets.Text(value=sentences[0], description="sentence", continuous_update=False,
                             layout=widgets.Layout(width="420px")),
        "units": widgets.IntSlider(value=min(units, hidden), min=1, max=hidden, description="units"),
    }

    def sync(w: DemoWidget, name: str) -> None:
        if name == "sentence":
            w.controls["text"].value = w.controls["sentence"].value

    @torch.no_grad()
    def draw(v: dict[str, Any]) -> tuple[Figure, dict[str, Any]]:
        tokens = tokenizer.tokenize(v["text"])
        if not tokens:
            raise ValueError("Type a sentence: the tokenizer found no words in it.")
        p = next(model.parameters())
        idx = torch.tensor(tokenizer.encode(v["text"]), device=p.device)  # (T,)
        x = embedding(idx).unsqueeze(1)  # (T, 1, E)
        h0 = x.new_zeros(1, hidden)  # (1, H)
        out, _, _, cache = bptt.lstm_forward(x, h0, h0.clone(), lstm.weight_ih_l0, lstm.weight_hh_l0,
                                             getattr(lstm, "bias_ih_l0", None), getattr(lstm, "bias_hh_l0", None))
        i, f, g, o = cache.gates[:, 0].cpu().chunk(4, dim=-1)  # 4 x (T, H), torch's order i, f, g, o
        c = cache.c[1:, 0].cpu()  # (T, H): C_0 .. C_{T-1}
        h = out[:, 0].cpu()  # (T, H)
        probs = torch.softmax(fc(out[:, 0]), dim=-1).cpu()  # (T, C): the prediction if the sentence ended at t
        p_pos = probs[:, -1] if probs.shape[1] == 2 else probs.max(dim=-1).values
        shown = ranking[: int(v["units"])]
        T = len(tokens)

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
        lim = max(float(c[:, shown].abs().max()), 1e-6)
        panels.append((c, "cell state C_t = f_t * C_t-1 + i_t * C~_t", "RdBu_r", -lim, lim))
        for ax, cax, (values, title, cmap, lo, hi) in zip(axes[:4], colorbar_axes, panels, strict=True):
            im = ax.imshow(values[:, shown].T.numpy(), cmap=cmap, vmin=lo, vmax=hi, aspect="auto",
                           interpolation="nearest")
            ax.set_yticks(range(len(shown)), [f"unit {u}" for u in shown], fontsize=7)
            ax.set_title(title, fontsize=10, loc="left")
            ax.tick_params(labelbottom=False)
            fig.colorbar(im, cax=cax)
        ax = axes[4]
        ax.plot(range(T), p_pos.numpy(), "o-", color="#3d5a80")
        ax.axhline(0.5, color="0.6", lw=0.8, ls="--")
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("P(positive)", fontsize=9)
        ax.set_title("the classifier's verdict if the sentence ended at word t", fontsize=10, loc="left")
        ax.set_xticks(range(T), tokens, rotation=30, fontsize=9)
        label = "positive" if float(p_pos[-1]) >= 0.5 else "negative"
        ax.set_xlim(-0.5, T - 0.5)
        fig.suptitle(f'"{v["text"]}"  ->  {label} (P(positive) = {float(p_pos[-1]):.2f})', fontsize=11, y=0.985)
        data = {"tokens": tokens, "gates": {"input": i, "forget": f, "cell": g, "output": o}, "c": c, "h": h,
                "p_positive": p_pos, "units": shown, "prediction": label, "indices": idx.tolist()}
        return fig, data

    widget = DemoWidget(controls, draw, title="LSTM gates over a sentence", rows=[["sentence"], ["text"], ["units"]],
                        on_change=sync)
    widget.model, widget.tokenizer = model, tokenizer
    return widget


# ---------------------------------------------------------------------------------------------------------------------
# gradient_flow_demo
# ---------------------------------------------------------------------------------------------------------------------
_CLIP_OPTIONS = [("off", 0.0), ("100", 100.0), ("10", 10.0), ("1", 1.0), ("0.1", 0.1)]


def gradient_flow_demo(hidden_size: int = 32, input_size: int = 8, batch_size: int = 4, seed: int = 0) -> DemoWidget:
    r"""How much gradient reaches each time step: :math:`\lVert \partial L/\partial h_t \rVert` against ``t``.

    A one-layer ``seqlib.RNN`` (or ``seqlib.LSTM``) reads ``length`` random input vectors; the loss is on the
    last output only, :math:`L = \sum_j h_{T-1, j}`. ``seqlib.gradflow.gradient_norms`` (and, for the LSTM,
    ``cell_state_norms``) run the manual BPTT and return the gradient norm at every step. Since

    .. math::
        \frac{\partial L}{\partial h_t} = \Big(\prod_{k=t+1}^{T-1} \operatorname{diag}(\phi'(a_k)) W_{hh}
        \Big)^{\!\top} \frac{\partial L}{\partial h_{T-1}},

    the curve falls (vanishing) or rises (exploding) roughly like :math:`\rho(W_{hh})^{T-1-t}`, drawn dashed.

    Controls: ``scale`` (the spectral radius :math:`\rho` of :math:`W_{hh}`), ``activation`` (tanh/relu; RNN
    only), ``init`` (random, or identity :math:`W_{hh} = \rho I` with zero biases), ``length`` (``T``),
    ``cell`` (RNN/LSTM), ``clip`` (``max_norm`` of ``seqlib.clip_grad_norm_`` on all parameter gradients; the
    right panel shows the total norm before and after, the left panel the clipped curve dotted).

    ``last_data``: ``norms`` ``(T,)``, ``cell_norms`` ``(T,)`` or ``None``, ``spectral_radius`` (measured),
    ``grad_norm`` (all parameters, before clipping), ``clipped_norm``, ``clip_factor``, the ``model`` and its
    ``inputs`` ``(T, N, H_in)`` (float64), and the settings.
    """
    from .. import clip_grad_norm_

    controls = {
        "scale": widgets.FloatSlider(value=1.0, min=0.25, max=2.0, step=0.05, description="ρ(W_hh)",
                                     continuous_update=False),
        "activation": widgets.ToggleButtons(options=["tanh", "relu"], value="tanh", description="activation"),
        "init": widgets.ToggleButtons(options=["random", "identity"], value="random", description="init W_hh"),
        "length": widgets.IntSlider(value=50, min=5, max=200, step=5, description="length T",
                                    continuous_update=False),
        "cell": widgets.ToggleButtons(options=["RNN", "LSTM"], value="RNN", description="cell"),
        "clip": widgets.Dropdown(options=_CLIP_OPTIONS, value=0.0, description="clip norm"),
    }
    for toggle in ("activation", "init", "cell"):
        controls[toggle].style.button_width = "70px"

    def sync(w: DemoWidget, name: str) -> None:
        w.controls["activation"].disabled = w.controls["cell"].value == "LSTM"

    def draw(v: dict[str, Any]) -> tuple[Figure, dict[str, Any]]:
        cell, T, radius, max_norm = v["cell"], int(v["length"]), float(v["scale"]), float(v["clip"])
        model = gradflow.recurrent_model(cell, radius, input_size=input_size, hidden_size=hidden_size,
                                         nonlinearity=v["activation"], init=v["init"], seed=seed)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(T, batch_size, input_size, generator=g, dtype=torch.float64)  # (T, N, H_in)

        def loss_fn(out: Tensor) -> Tensor:  # out (T, N, H): a loss on the last step only
            return out[-1].sum()

        norms = gradflow.gradient_norms(model, x, loss_fn)  # (T,)
        cell_norms = gradflow.cell_state_norms(model, x, loss_fn) if cell == "LSTM" else None
        out, _ = model(x)
        loss_fn(out).backward()
        params = [p for p in model.parameters() if p.grad is not None]
        if max_norm > 0:
            total = float(clip_grad_norm_(params, max_norm))
            clipped = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
        else:
            total = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
            clipped = total
        factor = clipped / total if total > 0 else 1.0
        rho = gradflow.spectral_radius(model.weight_hh_l0.detach()[:hidden_size])

        fig = Figure(figsize=(10, 3.9))
        left, right = fig.subplots(1, 2, width_ratios=[3, 1])
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.22)
        steps = np.arange(T)
        n = norms.numpy()
        left.semilogy(steps, n, "o-", ms=3, color="#3d5a80", label=r"$\|\partial L/\partial h_t\|$")
        if cell_norms is not None:
            left.semilogy(steps, cell_norms.numpy(), "s-", ms=3, color="#e69138",
                          label=r"$\|\partial L/\partial C_t\|$ (cell state)")
        shown = [n]
        if cell == "RNN":
            ref = n[-1] * radius ** (T - 1 - steps.astype(float))
            left.semilogy(steps, ref, "--", color="0.55", lw=1, label=rf"$\rho^{{T-1-t}}$ ($\rho$ = {radius:.2f})")
        if cell_norms is not None:
            shown.append(cell_norms.numpy())
        if max_norm > 0 and factor < 1:
            left.semilogy(steps, n * factor, ":", color="#cc0000", label="after clipping (same direction, scaled)")
            shown.append(n * factor)
        left.set_xlabel("time step t  (the loss is at t = T-1)")
        left.set_ylabel("gradient norm (log scale)")
        ratio = f"{n[0] / n[-1]:.1e}" if n[-1] > 0 and np.isfinite(n[0]) else "n/a"
        title = f"{cell}" + (f" ({v['activation']})" if cell == "RNN" else "") + f", {v['init']} init, T = {T}"
        left.set_title(f"{title}:  $\\|\\partial L/\\partial h_0\\| / \\|\\partial L/\\partial h_{{T-1}}\\|$ = {ratio}",
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
        data = {"norms": norms, "cell_norms": cell_norms, "spectral_radius": rho, "grad_norm": total,
                "clipped_norm": clipped, "clip_factor": factor, "model": model, "inputs": x, **v}
        return fig, data

    widget = DemoWidget(controls, draw, title="Gradient flow back through time",
                        rows=[["scale", "length"], ["cell", "activation", "init"], ["clip"]], on_change=sync)
    return widget
