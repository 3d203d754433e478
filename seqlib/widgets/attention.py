r"""Live demos for Part 3: attention and Transformers (lectures 04 and 05).

Each function returns a :class:`DemoWidget` (an ``ipywidgets.VBox``) whose controls redraw a matplotlib figure.
The maths is seqlib's (:func:`seqlib.attention_weights`, :func:`seqlib.scaled_dot_product_attention`,
:func:`seqlib.causal_mask`, :class:`seqlib.PositionalEncoding`, :class:`seqlib.TransformerLM`); the widgets
only drive it.

For tests and for notebooks that want to script a demo, every widget exposes:

* ``w.controls``: ``{name: ipywidgets control}``; set ``w.controls["scale"].value = False`` and the widget redraws;
* ``w.last_data``: the numbers behind the current picture (tensors, strings);
* ``w.png``: the current figure as PNG bytes (also shown in ``w.image``, an ``ipywidgets.Image``).

=================================  ========================================================================
``attention_demo()``               Q, K, V for "Hello how are (you)": scores, mask, softmax, output (C20, C21)
``multihead_demo(model, text)``    one head's attention heatmap in a trained Transformer, layer by layer (C22)
``positional_encoding_demo()``     the sinusoidal encoding matrix and dot products between positions (C23)
``sampling_demo(model)``           temperature and top-k sampling from a trained character-level LM (C28)
=================================  ========================================================================

With ``model=None``, :func:`multihead_demo` and :func:`sampling_demo` use :func:`default_char_lm`: a small
character-level Transformer trained on ``seqlib.data.text_corpus("python-docs")`` on first use (seeded, a few
seconds) and cached under ``build/cache/models/``.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..attention import attention_weights, causal_mask, scaled_dot_product_attention
from ..cache import cached_model
from ..positional import sinusoidal_table
from ..sampling import next_token_distribution
from ..threads import torch_threads

__all__ = ["DemoWidget", "attention_demo", "default_char_lm", "multihead_demo", "positional_encoding_demo",
           "sampling_demo", "SLIDE_Q", "SLIDE_K", "SLIDE_V", "SLIDE_TOKENS"]

# ------------------------------------------------------------------------------------------------------------------
# the widget shell
# ------------------------------------------------------------------------------------------------------------------


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes (no pyplot, no global state)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class DemoWidget(widgets.VBox):
    """Controls on top, a figure (and optional extra outputs) below; redraws whenever a control changes.

    Args:
        title: a line of HTML shown above the controls.
        controls: ``{name: control}``; every control's ``value`` change triggers a redraw.
        draw: ``() -> (Figure, data)``; reads the controls, returns the figure and the numbers behind it.
        extra: widgets shown under the figure (e.g. an HTML box of generated text).
    """

    def __init__(self, title: str, controls: dict[str, widgets.Widget], draw: Callable[[], tuple[Figure, dict]],
                 extra: tuple[widgets.Widget, ...] = ()) -> None:
        super().__init__()
        for control in controls.values():
            if hasattr(control, "continuous_update"):  # redraw when a slider is released, not on every pixel
                control.continuous_update = False
            control.style.description_width = "initial"
        self.controls = controls
        self.extra = tuple(extra)
        self.last_data: dict[str, Any] = {}
        self.png = b""
        self.redraws = 0
        self._draw = draw
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.image.add_class("seqcourse-demo-figure")
        rows, row = [], []
        for control in controls.values():  # three controls to a row
            row.append(control)
            if len(row) == 3:
                rows.append(widgets.HBox(row))
                row = []
        if row:
            rows.append(widgets.HBox(row))
        self.children = (widgets.HTML(title), *rows, self.image, *extra)
        self._held, self._dirty = 0, False
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.refresh()

    def _on_change(self, _change: dict) -> None:
        if self._held:
            self._dirty = True
        else:
            self.refresh()

    @contextlib.contextmanager
    def hold(self) -> Iterator[DemoWidget]:
        """Change several controls and redraw once, at the end: ``with w.hold(): w.controls[...].value = ...``."""
        self._held += 1
        try:
            yield self
        finally:
            self._held -= 1
            if not self._held and self._dirty:
                self._dirty = False
                self.refresh()

    def refresh(self) -> None:
        """Recompute and redraw from the current control values."""
        with torch_threads(1):
            fig, data = self._draw()
        self.png = figure_png(fig)
        self.last_data = data
        self.image.value = self.png
        self.image.layout.width = f"{int(fig.get_figwidth() * 100)}px"
        self.redraws += 1


def _annotate(ax, matrix: Tensor, fmt: str = "{:.2f}", fontsize: int = 9) -> None:
    lo, hi = float(matrix[torch.isfinite(matrix)].min()), float(matrix[torch.isfinite(matrix)].max())
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            v = float(matrix[i, j])
            text = "−∞" if v == -math.inf else fmt.format(v)
            light = math.isfinite(v) and hi > lo and (v - lo) / (hi - lo) > 0.6
            color = "#444444" if not math.isfinite(v) else "black" if light else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=color)


def _heatmap(ax, matrix: Tensor, rows: list[str], cols: list[str], title: str, vmin=None, vmax=None,
             annotate: bool = True, cmap: str = "viridis") -> None:
    shown = matrix.clone()
    finite = torch.isfinite(shown)
    shown[~finite] = float("nan")  # drawn as the background colour
    ax.imshow(shown.numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_facecolor("#d9d9d9")
    ax.set_xticks(range(len(cols)), cols, rotation=0 if max(map(len, cols), default=0) < 6 else 90)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title, fontsize=10)
    if annotate:
        _annotate(ax, matrix)


# ------------------------------------------------------------------------------------------------------------------
# attention_demo: the slides' "Hello how are" tables
# ------------------------------------------------------------------------------------------------------------------

SLIDE_TOKENS = ["Hello", "how", "are", "you"]
#: Queries: the rows for "Hello", "how", "are" are the slide's; "you" is added.
SLIDE_Q = torch.tensor([[1.0, 1.5, 0.6, 0.2], [0.1, 2.0, 1.0, 0.3], [1.0, 0.7, 0.9, 1.3], [0.6, 0.3, 1.4, 0.9]],
                       dtype=torch.float64)
#: Values ("word features"): the slide's rows for "Hello", "how", "are"; "you" is added.
SLIDE_V = torch.tensor([[1.5, 0.7, 1.5, 2.1], [1.3, 1.0, 2.4, 0.9], [0.3, 0.7, 0.5, 2.0], [0.8, 1.6, 0.2, 0.4]],
                       dtype=torch.float64)
# The slide's scaled score table (rows/columns Hello, how, are), extended by a row and column for "you".
_SLIDE_SCALED_SCORES = torch.tensor([[1.5, 1.4, 1.9, 0.9], [1.8, 1.3, 2.0, 1.7], [2.4, 2.0, 2.5, 1.4],
                                     [1.1, 1.6, 1.2, 2.2]], dtype=torch.float64)
#: Keys: chosen so that Q Kᵀ / √d_k reproduces the slide's score table exactly.
SLIDE_K = torch.linalg.solve(SLIDE_Q, _SLIDE_SCALED_SCORES * math.sqrt(4.0)).T.contiguous()


def attention_demo() -> DemoWidget:
    r"""Scaled dot-product attention step by step on the slides' "Hello how are" example (C20, C21).

    Panels: the score matrix :math:`QK^\top` (divided by :math:`\sqrt{d_k}` when *scale* is on), the masked
    scores (:math:`-\infty` above the diagonal when *causal mask* is on), the softmax weights
    :math:`\text{softmax}(\text{scores}/\tau)` and the output rows :math:`\text{weights}\cdot V`.

    Controls (``w.controls``): ``sentence`` ("Hello how are" = the slides' 3×3 tables, or with "you"),
    ``scale`` (divide by :math:`\sqrt{d_k}`), ``causal`` (mask the future), ``temperature`` (:math:`\tau`).
    ``w.last_data``: ``tokens, Q, K, V, scores, masked_scores, mask, weights, output``.
    """
    controls = {
        "sentence": widgets.Dropdown(options=["Hello how are", "Hello how are you"], value="Hello how are",
                                     description="sentence"),
        "scale": widgets.Checkbox(value=True, description="divide by √d_k"),
        "causal": widgets.Checkbox(value=False, description="causal mask"),
        "temperature": widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05,
                                              description="temperature τ", readout_format=".2f"),
    }

    def draw() -> tuple[Figure, dict]:
        tokens = controls["sentence"].value.split()
        L = len(tokens)
        Q, K, V = SLIDE_Q[:L], SLIDE_K[:L], SLIDE_V[:L]  # (L, d_k), (L, d_k), (L, d_v)
        d_k = Q.shape[-1]
        scale = 1.0 / math.sqrt(d_k) if controls["scale"].value else 1.0
        tau = float(controls["temperature"].value)
        # True = may attend (the convention of scaled_dot_product_attention and causal_mask)
        mask = causal_mask(L) if controls["causal"].value else torch.ones(L, L, dtype=torch.bool)
        scores = (Q @ K.T) * scale  # (L, L), what the slides tabulate
        masked = scores.masked_fill(~mask, -math.inf)
        weights = attention_weights(Q, K, attn_mask=mask, scale=scale / tau)  # softmax(masked / τ) over keys
        output = scaled_dot_product_attention(Q, K, V, attn_mask=mask, scale=scale / tau)  # (L, d_v)

        fig = Figure(figsize=(14, 3.4), layout="constrained")
        axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.25]})
        s_name = "QKᵀ/√d_k" if controls["scale"].value else "QKᵀ (unscaled)"
        _heatmap(axes[0], scores, tokens, tokens, f"1. scores {s_name}")
        _heatmap(axes[1], masked, tokens, tokens, "2. masked scores" + (" (causal)" if L and controls["causal"].value
                                                                        else " (no mask)"))
        _heatmap(axes[2], weights, tokens, tokens, f"3. softmax(scores / {tau:.2f})", vmin=0, vmax=1, cmap="magma")
        _heatmap(axes[3], output, tokens, [f"f{i + 1}" for i in range(V.shape[1])], "4. output = weights · V",
                 cmap="cividis")
        for ax in axes[:3]:
            ax.set_xlabel("key (attended to)")
        axes[0].set_ylabel("query")
        data = {"tokens": tokens, "Q": Q, "K": K, "V": V, "scale": scale, "temperature": tau, "mask": mask,
                "scores": scores, "masked_scores": masked, "weights": weights, "output": output}
        return fig, data

    return DemoWidget("<b>Scaled dot-product attention</b>: softmax(QKᵀ/√d_k + mask) V, step by step",
                      controls, draw)


# ------------------------------------------------------------------------------------------------------------------
# positional_encoding_demo
# ------------------------------------------------------------------------------------------------------------------


def positional_encoding_demo() -> DemoWidget:
    r"""The sinusoidal positional encoding of :class:`seqlib.PositionalEncoding` (C23).

    .. math::
        PE_{pos, 2i} = \sin(pos / 10000^{2i/d_{model}}), \qquad PE_{pos, 2i+1} = \cos(pos / 10000^{2i/d_{model}})

    Panels: the matrix (rows = positions, columns = dimensions), a few of its columns as waves, and the dot
    product :math:`PE_{p} \cdot PE_{q}` of the chosen position :math:`p` with every position :math:`q` (it
    depends only on :math:`p - q` and falls off with the distance).

    Controls: ``d_model``, ``max_len``, ``position``. ``w.last_data``: ``pe (max_len, d_model)``, ``dots (max_len,)``.
    """
    controls = {
        "d_model": widgets.IntSlider(value=64, min=8, max=256, step=8, description="d_model"),
        "max_len": widgets.IntSlider(value=100, min=10, max=400, step=10, description="max_len"),
        "position": widgets.IntSlider(value=40, min=0, max=99, description="position p"),
    }

    def clamp_position(change):
        controls["position"].max = change["new"] - 1  # ipywidgets clamps the value too

    controls["max_len"].observe(clamp_position, names="value")

    def draw() -> tuple[Figure, dict]:
        d_model, max_len = controls["d_model"].value, controls["max_len"].value
        p = min(controls["position"].value, max_len - 1)
        pe = sinusoidal_table(max_len, d_model)  # (max_len, d_model)
        dots = pe @ pe[p]  # (max_len,)

        fig = Figure(figsize=(14, 3.6), layout="constrained")
        ax0, ax1, ax2 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.2, 1, 1]})
        im = ax0.imshow(pe.numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
        ax0.axhline(p, color="black", lw=1.5)
        ax0.set_xlabel("dimension")
        ax0.set_ylabel("position")
        ax0.set_title(f"PE matrix ({max_len} × {d_model}); line: position {p}", fontsize=10)
        fig.colorbar(im, ax=ax0, shrink=0.8)
        for dim in sorted({min(x, d_model - 2) // 2 * 2 for x in (0, 4, 10, 20)}):
            ax1.plot(pe[:, dim].numpy(), lw=1.2, label=f"dim {dim} (sin)")
        ax1.axvline(p, color="black", lw=1)
        ax1.set_xlabel("position")
        ax1.set_title("columns: waves of decreasing frequency", fontsize=10)
        ax1.legend(fontsize=7, loc="lower left")
        ax2.plot(dots.numpy(), color="tab:purple")
        ax2.axvline(p, color="black", lw=1)
        ax2.set_xlabel("position q")
        ax2.set_title(f"PE[{p}] · PE[q]  (max = d_model/2 = {d_model // 2})", fontsize=10)
        return fig, {"pe": pe, "dots": dots, "position": p, "d_model": d_model, "max_len": max_len}

    return DemoWidget("<b>Sinusoidal positional encoding</b>: PE[pos, 2i] = sin(pos/10000^(2i/d)), "
                      "PE[pos, 2i+1] = cos(...)", controls, draw)


# ------------------------------------------------------------------------------------------------------------------
# a small trained character-level language model for the two model demos
# ------------------------------------------------------------------------------------------------------------------

#: Architecture and training of :func:`default_char_lm` (change the cache name when changing these).
CHAR_LM_CONFIG = {"d_model": 64, "nhead": 4, "num_layers": 2, "context_length": 64, "dim_feedforward": 256,
                  "dropout": 0.0}
CHAR_LM_STEPS = 250
_CHAR_LM_NAME = "char_transformer_lm_python_docs_v2"


def _char_tokenizer():
    from ..data import text_corpus
    from ..vocab import CharTokenizer

    return CharTokenizer(text_corpus("python-docs"))


def train_char_lm(model, tokenizer, steps: int, batch_size: int = 32, lr: float = 1e-2, seed: int = 0,
                  log_every: int = 0) -> list[float]:
    """Train a character LM on python-docs with AdamW on random windows; return the loss of every step.

    A plain loop (rather than :func:`seqlib.train.fit` over all windows), so that the number of steps, and with
    it the training time, does not depend on the corpus size. Runs on one CPU thread.
    """
    import torch.nn.functional as F

    from ..clip import clip_grad_norm_
    from ..data import CharDataset, text_corpus, train_val_split

    train_text, _ = train_val_split(text_corpus("python-docs"), 0.1)
    T = model.context_length
    data = CharDataset(train_text, T, tokenizer=tokenizer).data  # (N,)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    offsets = torch.arange(T)  # (T,)
    losses: list[float] = []
    model.train()
    with torch_threads(1):
        for step in range(steps):
            starts = torch.randint(0, data.numel() - T - 1, (batch_size, 1), generator=g)  # (B, 1)
            x, y = data[starts + offsets], data[starts + offsets + 1]  # (B, T) each: windows and next characters
            logits = model(x)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))  # (B*T, V) vs (B*T,)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if log_every and (step + 1) % log_every == 0:
                print(f"step {step + 1:4d}  loss {sum(losses[-log_every:]) / log_every:.3f}")
    model.eval()
    return losses


def default_char_lm():
    """``(model, tokenizer)``: a 2-layer, 4-head character-level :class:`seqlib.TransformerLM` on python-docs.

    Trained on first use (seeded, :data:`CHAR_LM_STEPS` steps, a few seconds on two cores) and cached under
    ``build/cache/models/``; later calls load the weights in milliseconds.
    """
    from ..lm import TransformerLM

    tokenizer = _char_tokenizer()

    def build():
        return TransformerLM(len(tokenizer.vocab), **CHAR_LM_CONFIG)

    model = cached_model(_CHAR_LM_NAME, build, lambda m: train_char_lm(m, tokenizer, CHAR_LM_STEPS))
    return model, tokenizer


def _show_char(c: str) -> str:
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(c, c)


# ------------------------------------------------------------------------------------------------------------------
# multihead_demo
# ------------------------------------------------------------------------------------------------------------------


def _attention_of(model, tokenizer, text: str) -> tuple[list[str], list[Tensor]]:
    """Tokens and per-layer attention ``[(h, T, T)]`` of ``text`` in a TransformerLM or a BertLike."""
    with torch.no_grad():
        if hasattr(tokenizer, "cls_index"):  # a WordPiece tokenizer: a BERT-style encoder
            ids, mask = tokenizer(text)
            _, attn = model(ids, mask, return_attention=True)
            return tokenizer.decode(ids[0]), [a[0] for a in attn]
        ids = tokenizer.encode(text)
        T = getattr(model, "context_length", len(ids))
        ids = ids[-T:]
        idx = torch.tensor([ids], dtype=torch.long)  # (1, T)
        _, attn = model(idx, return_attention=True)
        return [_show_char(c) for c in tokenizer.decode(ids)], [a[0] for a in attn]


def multihead_demo(model=None, text: str | None = None, tokenizer=None, layer: int | None = None,
                   head: int = 0) -> DemoWidget:
    """The attention weights of one head of one layer of a trained Transformer (C22, C19).

    Args:
        model: a :class:`seqlib.TransformerLM` (its ``forward(idx, return_attention=True)`` gives per-layer
            ``(B, nhead, T, T)`` weights) or a :class:`seqlib.pretrained.BertLike`. Default:
            :func:`default_char_lm`.
        text: the input shown. Default: a sentence in the style of the training text.
        tokenizer: encodes ``text`` (``encode``/``decode``). Default: ``model.tokenizer`` if it has one, else the
            default model's character tokenizer.
        layer, head: the layer and head shown first. Default: the last layer, head 0 (``head=-1``: the mean).

    Controls: ``layer``, ``head`` (-1 = the mean over heads), ``text``. ``w.last_data``: ``tokens``,
    ``weights (T, T)`` of the selected head, ``all_heads (h, T, T)`` of the selected layer.
    """
    if model is None:
        model, default_tok = default_char_lm()
        tokenizer = tokenizer or default_tok
    tokenizer = tokenizer or getattr(model, "tokenizer", None)
    if tokenizer is None:
        tokenizer = _char_tokenizer()
    if text is None:
        text = "The FBI is chasing a criminal on the run." if hasattr(tokenizer, "cls_index") \
            else "Return a new list of the items in the sequence."
    probe_tokens, probe = _attention_of(model, tokenizer, text)
    n_layers, n_heads = len(probe), probe[0].shape[0]
    layer = n_layers - 1 if layer is None else layer
    if not (0 <= layer < n_layers and -1 <= head < n_heads):
        raise ValueError(f"layer must be in [0, {n_layers}) and head in [-1, {n_heads}) for this model, "
                         f"but got layer={layer}, head={head}")
    controls = {
        "layer": widgets.IntSlider(value=layer, min=0, max=n_layers - 1, description="layer"),
        "head": widgets.Dropdown(options=[("mean of heads", -1)] + [(f"head {h}", h) for h in range(n_heads)],
                                 value=head, description="head"),
        "text": widgets.Text(value=text, description="text", continuous_update=False,
                             layout=widgets.Layout(width="420px")),
    }
    cache: dict[str, tuple[list[str], list[Tensor]]] = {text: (probe_tokens, probe)}

    def draw() -> tuple[Figure, dict]:
        current = controls["text"].value or " "
        if current not in cache:
            cache.clear()
            cache[current] = _attention_of(model, tokenizer, current)
        tokens, attn = cache[current]
        layer, head = controls["layer"].value, controls["head"].value
        heads = attn[layer]  # (h, T, T)
        weights = heads.mean(0) if head == -1 else heads[head]  # (T, T)
        T = len(tokens)
        fig = Figure(figsize=(14, 6.2), layout="constrained")
        grid = fig.add_gridspec(2, 2 + (n_heads + 1) // 2, width_ratios=[2.2, 2.2] + [1] * ((n_heads + 1) // 2))
        ax = fig.add_subplot(grid[:, :2])
        ax.imshow(weights.numpy(), cmap="magma", vmin=0, vmax=float(weights.max()))
        step = max(1, T // 60)
        ax.set_xticks(range(0, T, step), tokens[::step], rotation=90, fontsize=8 if T < 40 else 6)
        ax.set_yticks(range(0, T, step), tokens[::step], fontsize=8 if T < 40 else 6)
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query")
        name = "mean of heads" if head == -1 else f"head {head}"
        ax.set_title(f"layer {layer}, {name}: row i = how much token i takes from each token", fontsize=10)
        for h in range(n_heads):
            sub = fig.add_subplot(grid[h % 2, 2 + h // 2])
            sub.imshow(heads[h].numpy(), cmap="magma")
            sub.set_xticks([])
            sub.set_yticks([])
            sub.set_title(f"head {h}", fontsize=8, color="tab:red" if h == head else "black")
        return fig, {"tokens": tokens, "layer": layer, "head": head, "weights": weights, "all_heads": heads}

    return DemoWidget("<b>Multi-head attention</b> in a trained Transformer: each head learns its own pattern",
                      controls, draw)


# ------------------------------------------------------------------------------------------------------------------
# sampling_demo
# ------------------------------------------------------------------------------------------------------------------


def _next_token_probabilities(model, idx: Tensor, temperature: float, top_k: int | None) -> tuple[Tensor, Tensor]:
    """``(p_model, p_sample)`` of the token after ``idx`` ``(1, T)``: the model's own distribution, and the one
    sampled from with ``temperature`` and ``top_k``."""
    with torch.no_grad():
        logits = model(idx[:, -model.context_length:])[0, -1]  # (V,)
    return next_token_distribution(logits), next_token_distribution(logits, temperature, top_k)


def sampling_demo(model=None, tokenizer=None, prompt: str = "The ") -> DemoWidget:
    r"""Generate text from a trained language model with temperature and top-k sampling (C28).

    The logits :math:`z` of the next token are divided by the temperature :math:`\tau` before the softmax,
    :math:`p_i \propto \exp(z_i / \tau)`: :math:`\tau \to 0` approaches greedy decoding, :math:`\tau = 1` samples
    the model's own distribution, :math:`\tau > 1` flattens it. Top-:math:`k` keeps only the :math:`k` most
    likely tokens. Every generation uses a new ``torch.Generator`` seeded with the ``seed`` control, so the text
    changes only because a control changed.

    Args:
        model: a :class:`seqlib.TransformerLM` (or anything with its ``forward`` and
            ``generate(idx, max_new_tokens, temperature, top_k, generator)``). Default:
            :func:`default_char_lm`.
        tokenizer: its tokenizer. Default: ``model.tokenizer`` or the default character tokenizer.
        prompt: the initial text.

    Controls: ``temperature``, ``top_k`` (0 = all tokens), ``length``, ``seed``, ``prompt``.
    ``w.last_data``: ``text`` and ``ids`` (generated, without the prompt), ``p_model``, ``p_sample``.
    """
    if model is None:
        model, default_tok = default_char_lm()
        tokenizer = tokenizer or default_tok
    tokenizer = tokenizer or getattr(model, "tokenizer", None) or _char_tokenizer()
    vocab_size = len(tokenizer.vocab)
    controls = {
        "temperature": widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.05, description="temperature τ"),
        "top_k": widgets.IntSlider(value=0, min=0, max=vocab_size, description="top-k (0 = all)"),
        "length": widgets.IntSlider(value=200, min=20, max=400, step=20, description="new tokens"),
        "seed": widgets.IntText(value=0, description="seed", layout=widgets.Layout(width="160px")),
        "prompt": widgets.Text(value=prompt, description="prompt", continuous_update=False),
    }
    text_box = widgets.HTML()

    def draw() -> tuple[Figure, dict]:
        tau = float(controls["temperature"].value)
        k = int(controls["top_k"].value) or None
        start = controls["prompt"].value or " "
        ids = [tokenizer.vocab.unk_index if i is None else i for i in tokenizer.encode(start)]
        idx = torch.tensor([ids], dtype=torch.long)  # (1, T0)
        p_model, p_sample = _next_token_probabilities(model, idx, tau, k)
        generator = torch.Generator().manual_seed(int(controls["seed"].value))
        with torch.no_grad():
            out = model.generate(idx, controls["length"].value, temperature=tau, top_k=k,
                                 generator=generator)  # (1, T0 + n)
        new_ids = out[0, len(ids):].tolist()
        generated = tokenizer.decode(new_ids)
        text_box.value = (
            "<pre style='white-space: pre-wrap; font-size: 12px; line-height: 1.3; max-width: 1100px'>"
            f"<b>{html.escape(start)}</b>{html.escape(generated)}</pre>"
        )
        top = torch.topk(p_model, min(25, vocab_size)).indices  # the model's 25 likeliest next tokens
        labels = [_show_char(tokenizer.decode([int(i)])) for i in top]
        fig = Figure(figsize=(14, 2.8), layout="constrained")
        ax = fig.subplots()
        xs = torch.arange(len(top)).numpy()
        ax.bar(xs - 0.2, p_model[top].numpy(), width=0.4, label="model (τ = 1, all tokens)", color="#bbbbbb")
        ax.bar(xs + 0.2, p_sample[top].numpy(), width=0.4, label=f"sampled from (τ = {tau:.2f}, top-k = {k or 'all'})",
               color="tab:orange")
        ax.set_xticks(xs, labels)
        ax.set_ylabel("probability")
        ax.set_title(f"next token after {start[-30:]!r}", fontsize=10)
        ax.legend(fontsize=8)
        return fig, {"text": generated, "ids": new_ids, "prompt": start, "p_model": p_model, "p_sample": p_sample,
                     "temperature": tau, "top_k": k}

    return DemoWidget("<b>Sampling</b> from a character-level Transformer: temperature and top-k",
                      controls, draw, extra=(text_box,))
