r"""Live demos for lectures 01-03: the unrolled RNN, gradient flow through time, and LSTM gates.

Each demo is a function that returns a :class:`~seqlib.widgets.shell.DemoWidget`: controls above a figure. The
numbers come from seqlib (``seqlib.RNNCell``, :func:`seqlib.gradflow.gradient_norms`,
:func:`seqlib.bptt.lstm_forward`, :func:`seqlib.clip_grad_norm_`), the figures from :mod:`seqlib.viz.recurrent`;
a demo only turns its controls into arguments. The lecture's sentences are the lecture's: the demos take them as
arguments.

================================================  ======================================================================
``rnn_unroll_demo(corpus)``                       step through a sentence; the unfolded RNN with ``h_t`` as heatmap
                                                  columns (C03, C07)
``gradient_flow_demo()``                          ``||dL/dh_t||`` against ``t`` on a log scale; spectral radius of
                                                  ``W_hh``, activation, initialisation, length, cell and clipping
                                                  as controls (C08, C09, C12)
``lstm_gates_demo(model, tokenizer, sentences)``  forget/input/output gates and the cell state of a sentiment
                                                  LSTM over a sentence (C10, C11, C14)
================================================  ======================================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from .. import bptt, gradflow
from ..clip import clip_grad_norm_
from ..embedding import Embedding
from ..rnn import RNNCell
from ..viz.recurrent import plot_gradient_flow, plot_lstm_gates, plot_unrolled_states
from ..vocab import WordTokenizer
from .shell import DemoWidget

__all__ = ["rnn_unroll_demo", "gradient_flow_demo", "lstm_gates_demo"]


def _sentences(name: str, value: object, example: str) -> list[str]:
    """``value`` as a non-empty list of strings, or a ``TypeError`` that says what the demo needs."""
    items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if not items or not all(isinstance(s, str) for s in items):
        raise TypeError(f"{name} must be a non-empty list of sentences (str), e.g. {example}, "
                        f"but got {type(value).__name__}")
    return items


# ---------------------------------------------------------------------------------------------------------------------
# rnn_unroll_demo
# ---------------------------------------------------------------------------------------------------------------------
def rnn_unroll_demo(corpus: Sequence[str] | None = None, text: str | None = None, hidden_size: int = 6,
                    embedding_dim: int = 4, seed: int = 0, max_steps: int = 14) -> DemoWidget:
    r"""Step through a sentence and watch the hidden state update, one box per time step.

    An untrained ``seqlib.Embedding`` turns each word into a vector :math:`x_t`; one ``seqlib.RNNCell`` computes
    :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`, the *same* cell at every step. The upper
    panel is the RNN unfolded in time (current step highlighted, later steps faded), the lower panel shows
    :math:`h_0, \dots, h_t` as heatmap columns (:func:`seqlib.viz.plot_unrolled_states`).

    Args:
        corpus: sentences whose words make the vocabulary (a lower-casing ``seqlib.WordTokenizer``); words
            outside it map to ``<unk>``.
        text: the sentence shown first. Default: ``corpus[0]``.
        hidden_size, embedding_dim: ``H`` and ``E``.
        seed: the embedding and the cell are drawn from ``torch.manual_seed(seed)`` (the caller's random state is
            left alone).
        max_steps: at most this many words are read.

    Controls: ``text`` (the sentence), ``step`` (the time step ``t``), ``scale`` (a factor on :math:`W_{hh}`:
    small = the state forgets quickly, large = it saturates at ±1).

    ``last_data``: ``tokens``, ``indices`` (from the vocabulary), ``step``, ``states`` ``(T, H)`` (all steps),
    ``h_t`` ``(H,)``, ``scale``, ``inputs`` ``(T, E)`` (the embedded words), and the modules ``embedding`` and
    ``cell`` (its ``weight_hh`` holds the scaled matrix).
    """
    corpus = _sentences("corpus", corpus, 'rnn_unroll_demo(["The food was good, not bad at all.", ...])')
    tokenizer = WordTokenizer(corpus, lowercase=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        emb, cell = Embedding(len(tokenizer), embedding_dim), RNNCell(embedding_dim, hidden_size)
    w_hh0 = cell.weight_hh.detach().clone()

    controls = {
        "text": widgets.Text(value=corpus[0] if text is None else text, description="sentence",
                             continuous_update=False, layout=widgets.Layout(width="420px")),
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
                w.controls["step"].max = len(tokens_of(w.controls["text"].value)) - 1

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
        fig = plot_unrolled_states(H, tokens, step, indices=indices, scale=float(v["scale"]))
        data = {"tokens": tokens, "indices": indices, "step": step, "states": H.clone(), "h_t": H[step].clone(),
                "scale": float(v["scale"]), "inputs": x.clone(), "embedding": emb, "cell": cell}
        return fig, data

    widget = DemoWidget(controls, draw, title="<b>An RNN unrolled in time</b>", rows=[["text"], ["step", "scale"]],
                        on_change=sync, dpi=80)
    sync(widget, "text")
    return widget


# ---------------------------------------------------------------------------------------------------------------------
# lstm_gates_demo
# ---------------------------------------------------------------------------------------------------------------------
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
    if the sentence ended after word ``t`` (:func:`seqlib.viz.plot_lstm_gates`). The numbers come from
    :func:`seqlib.bptt.lstm_forward`, which keeps the gate activations of every step.

    Args:
        model: a classifier with ``.embedding``, ``.lstm`` (one layer; ``seqlib.LSTM`` or ``torch.nn.LSTM``) and
            ``.fc`` (e.g. the lecture's ``LSTM(vocab_size, output_dim)`` class). ``None``:
            :func:`seqlib.models.sentiment_lstm`, trained on first use and cached.
        tokenizer: ``encode(str) -> list[int]`` and ``tokenize(str) -> list[str]`` for ``model``'s vocabulary
            (required when ``model`` is given).
        sentences: the presets of the ``sentence`` dropdown, e.g. the lecture's "The food was good, not bad at
            all." and its mirror image.
        units: how many hidden units to show at first.

    Controls: ``sentence`` (presets), ``text`` (edit or type any sentence; unknown words map to ``<unk>``),
    ``units`` (show the ``k`` units whose weight in ``fc`` separates the classes most).

    ``last_data``: ``tokens``, ``gates`` (``{"input", "forget", "cell", "output"}``, each ``(T, H)``), ``c``
    ``(T, H)``, ``h`` ``(T, H)``, ``p_positive`` ``(T,)``, ``units`` (indices shown), ``prediction``, ``indices``
    (the token indices fed to the model).
    """
    sentences = _sentences("sentences", sentences,
                           'lstm_gates_demo(model, tokenizer, sentences=["The food was good, not bad at all."])')
    if model is None:
        from ..models import sentiment_lstm

        model, tokenizer = sentiment_lstm()
    elif tokenizer is None:
        raise TypeError("tokenizer is required when model is given: pass the tokenizer whose vocabulary the model "
                        "was trained with (e.g. train_set.tokenizer)")
    embedding, lstm, fc = _lstm_parts(model)
    hidden = int(lstm.hidden_size)
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
        gates = {"input": i, "forget": f, "cell": g, "output": o}
        fig = plot_lstm_gates(gates, c, p_pos, tokens, shown, text=v["text"])
        label = "positive" if float(p_pos[-1]) >= 0.5 else "negative"
        data = {"tokens": tokens, "gates": gates, "c": c, "h": h, "p_positive": p_pos, "units": shown,
                "prediction": label, "indices": idx.tolist()}
        return fig, data

    widget = DemoWidget(controls, draw, title="<b>LSTM gates over a sentence</b>",
                        rows=[["sentence"], ["text"], ["units"]], on_change=sync, dpi=80)
    widget.model, widget.tokenizer = model, tokenizer
    return widget


# ---------------------------------------------------------------------------------------------------------------------
# gradient_flow_demo
# ---------------------------------------------------------------------------------------------------------------------
_CLIP_OPTIONS = [("off", 0.0), ("100", 100.0), ("10", 10.0), ("1", 1.0), ("0.1", 0.1)]


def gradient_flow_demo(hidden_size: int = 32, input_size: int = 8, batch_size: int = 4, seed: int = 0) -> DemoWidget:
    r"""How much gradient reaches each time step: :math:`\lVert \partial L/\partial h_t \rVert` against ``t``.

    A one-layer ``seqlib.RNN`` (or ``seqlib.LSTM``) from :func:`seqlib.gradflow.recurrent_model` reads ``length``
    random input vectors; the loss is on the last output only, :math:`L = \sum_j h_{T-1, j}`.
    :func:`seqlib.gradflow.gradient_norms` (and, for the LSTM, ``cell_state_norms``) run the manual BPTT and return
    the gradient norm at every step. Since

    .. math::
        \frac{\partial L}{\partial h_t} = \Big(\prod_{k=t+1}^{T-1} \operatorname{diag}(\phi'(a_k)) W_{hh}
        \Big)^{\!\top} \frac{\partial L}{\partial h_{T-1}},

    the curve falls (vanishing) or rises (exploding) roughly like :math:`\rho(W_{hh})^{T-1-t}`, drawn dashed
    (:func:`seqlib.viz.plot_gradient_flow`).

    Controls: ``scale`` (the spectral radius :math:`\rho` of :math:`W_{hh}`), ``activation`` (tanh/relu; RNN
    only), ``init`` (random, or identity :math:`W_{hh} = \rho I` with zero biases), ``length`` (``T``),
    ``cell`` (RNN/LSTM), ``clip`` (``max_norm`` of ``seqlib.clip_grad_norm_`` on all parameter gradients; the
    right panel shows the total norm before and after, the left panel the clipped curve dotted).

    ``last_data``: ``norms`` ``(T,)``, ``cell_norms`` ``(T,)`` or ``None``, ``spectral_radius`` (measured),
    ``grad_norm`` (all parameters, before clipping), ``clipped_norm``, ``clip_factor``, the ``model`` and its
    ``inputs`` ``(T, N, H_in)`` (float64), and the settings.
    """
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
        label = f"{cell}" + (f" ({v['activation']})" if cell == "RNN" else "") + f", {v['init']} init, T = {T}"
        fig = plot_gradient_flow(norms, grad_norm=total, clipped_norm=clipped, max_norm=max_norm,
                                 cell_norms=cell_norms, radius=radius if cell == "RNN" else None, label=label)
        data = {"norms": norms, "cell_norms": cell_norms, "spectral_radius": rho, "grad_norm": total,
                "clipped_norm": clipped, "clip_factor": factor, "model": model, "inputs": x, **v}
        return fig, data

    return DemoWidget(controls, draw, title="<b>Gradient flow back through time</b>",
                      rows=[["scale", "length"], ["cell", "activation", "init"], ["clip"]], on_change=sync, dpi=80)
