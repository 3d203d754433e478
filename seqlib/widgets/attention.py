r"""Live demos for Part 3: attention and Transformers (lectures 04 and 05).

Each function returns a :class:`~seqlib.widgets.shell.DemoWidget` whose controls redraw a figure. The numbers
come from seqlib (:func:`seqlib.attention_weights`, :func:`seqlib.scaled_dot_product_attention`,
:func:`seqlib.causal_mask`, :func:`seqlib.positional.sinusoidal_table`, a :class:`seqlib.TransformerLM`,
:func:`seqlib.sampling.next_token_distribution`), the figures from :mod:`seqlib.viz.attention`; the widgets only
drive them.

===========================================  ==================================================================
``attention_demo(Q, K, V, tokens)``          scores, mask, softmax and output for the lecture's tables (C20, C21)
``multihead_demo(model, text)``              one head's attention heatmap in a trained Transformer, layer by
                                             layer (C22)
``positional_encoding_demo()``               the sinusoidal encoding matrix and dot products between positions
                                             (C23)
``sampling_demo(model)``                     temperature and top-k sampling from a trained character-level LM
                                             (C28)
===========================================  ==================================================================

With ``model=None``, :func:`multihead_demo` and :func:`sampling_demo` use :func:`seqlib.models.char_lm`: a small
character-level Transformer trained on ``seqlib.data.text_corpus("python-docs")`` on first use (seeded, a few
seconds) and cached.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .._checks import check_floating, check_rank, check_tensor, shape_str
from ..attention import attention_weights, causal_mask, scaled_dot_product_attention
from ..positional import sinusoidal_table
from ..sampling import next_token_distribution
from ..viz.attention import plot_attention_steps, plot_multihead, plot_next_token, plot_positional_encoding
from .shell import DemoWidget

__all__ = ["attention_demo", "multihead_demo", "positional_encoding_demo", "sampling_demo"]

_WIDE = {"description_width": "initial"}  # the descriptions of these demos are long: give them the room they need


# ------------------------------------------------------------------------------------------------------------------
# attention_demo: the lecture's query, key and value tables
# ------------------------------------------------------------------------------------------------------------------


def _check_tables(queries: object, keys: object, values: object, tokens: object) -> tuple[Tensor, Tensor, Tensor,
                                                                                            list[str]]:
    if queries is None or keys is None or values is None or tokens is None:
        raise TypeError("attention_demo needs the tables it attends over: attention_demo(Q, K, V, tokens), with Q "
                        "and K (L, d_k), V (L, d_v) and L tokens, e.g. lecture 04's SLIDE_Q, SLIDE_K, SLIDE_V and "
                        "SLIDE_TOKENS")
    named = {"queries": (queries, "(L, d_k)"), "keys": (keys, "(L, d_k)"), "values": (values, "(L, d_v)")}
    for name, (t, symbols) in named.items():
        check_tensor(name, t, symbols)
        check_floating(name, t)  # type: ignore[arg-type]
        check_rank(name, t, (2,), symbols)  # type: ignore[arg-type]
    Q, K, V = queries, keys, values
    assert isinstance(Q, Tensor) and isinstance(K, Tensor) and isinstance(V, Tensor)
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):  # type: ignore[union-attr]
        raise TypeError(f"tokens must be a list of L strings, one per row of Q, but got {type(tokens).__name__}")
    words = list(tokens)  # type: ignore[call-overload]
    L = len(words)
    if L == 0 or Q.shape[0] != L or K.shape != Q.shape or V.shape[0] != L:
        raise ValueError(f"queries and keys must have shape (L, d_k) and values (L, d_v) with L = len(tokens) = {L}, "
                         f"but got {shape_str(Q.shape)}, {shape_str(K.shape)} and {shape_str(V.shape)}")
    return Q, K, V, words


def attention_demo(queries: Tensor | None = None, keys: Tensor | None = None, values: Tensor | None = None,
                   tokens: Sequence[str] | None = None, *, lengths: Sequence[int] | None = None) -> DemoWidget:
    r"""Scaled dot-product attention step by step on a small table of queries, keys and values (C20, C21).

    Panels (:func:`seqlib.viz.plot_attention_steps`): the score matrix :math:`QK^\top` (divided by
    :math:`\sqrt{d_k}` when *scale* is on), the masked scores (:math:`-\infty` above the diagonal when *causal
    mask* is on), the softmax weights :math:`\text{softmax}(\text{scores}/\tau)` and the output rows
    :math:`\text{weights}\cdot V`.

    Args:
        queries, keys: ``(L, d_k)``, one row per token (self-attention: the tokens are queries and keys).
        values: ``(L, d_v)``.
        tokens: the ``L`` tokens, e.g. ``["Hello", "how", "are", "you"]``.
        lengths: the sentence dropdown offers the first ``n`` tokens for each ``n`` here, the first one shown
            first. Default: all ``L`` tokens only.

    Controls (``w.controls``): ``sentence`` (the first ``n`` tokens joined by spaces), ``scale`` (divide by
    :math:`\sqrt{d_k}`), ``causal`` (mask the future), ``temperature`` (:math:`\tau`).
    ``w.last_data``: ``tokens, Q, K, V, scale, temperature, mask, scores, masked_scores, weights, output``.
    """
    Q_all, K_all, V_all, words = _check_tables(queries, keys, values, tokens)
    lengths = [len(words)] if lengths is None else list(lengths)
    if not lengths or any(isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(words)
                          for n in lengths):
        raise ValueError(f"lengths must be token counts in [1, {len(words)}], but got {lengths!r}")
    sentences = {" ".join(words[:n]): n for n in lengths}
    controls = {
        "sentence": widgets.Dropdown(options=list(sentences), value=next(iter(sentences)), description="sentence",
                                     style=_WIDE),
        "scale": widgets.Checkbox(value=True, description="divide by √d_k", style=_WIDE),
        "causal": widgets.Checkbox(value=False, description="causal mask", style=_WIDE),
        "temperature": widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05,
                                              description="temperature τ", readout_format=".2f",
                                              continuous_update=False, style=_WIDE),
    }

    def draw(v: dict[str, Any]) -> tuple[Figure, dict[str, Any]]:
        L = sentences[v["sentence"]]
        shown = words[:L]
        Q, K, V = Q_all[:L], K_all[:L], V_all[:L]  # (L, d_k), (L, d_k), (L, d_v)
        d_k = Q.shape[-1]
        scale = 1.0 / math.sqrt(d_k) if v["scale"] else 1.0
        tau = float(v["temperature"])
        # True = may attend (the convention of scaled_dot_product_attention and causal_mask)
        mask = causal_mask(L) if v["causal"] else torch.ones(L, L, dtype=torch.bool)
        scores = (Q @ K.T) * scale  # (L, L), what the slides tabulate
        masked = scores.masked_fill(~mask, -math.inf)
        weights = attention_weights(Q, K, attn_mask=mask, scale=scale / tau)  # softmax(masked / τ) over keys
        output = scaled_dot_product_attention(Q, K, V, attn_mask=mask, scale=scale / tau)  # (L, d_v)
        fig = plot_attention_steps(shown, scores, masked, weights, output, scaled=bool(v["scale"]),
                                   causal=bool(v["causal"]), temperature=tau)
        data = {"tokens": shown, "Q": Q, "K": K, "V": V, "scale": scale, "temperature": tau, "mask": mask,
                "scores": scores, "masked_scores": masked, "weights": weights, "output": output}
        return fig, data

    return DemoWidget(controls, draw,
                      title="<b>Scaled dot-product attention</b>: softmax(QKᵀ/√d_k + mask) V, step by step")


# ------------------------------------------------------------------------------------------------------------------
# positional_encoding_demo
# ------------------------------------------------------------------------------------------------------------------


def positional_encoding_demo() -> DemoWidget:
    r"""The sinusoidal positional encoding of :class:`seqlib.PositionalEncoding` (C23).

    .. math::
        PE_{pos, 2i} = \sin(pos / 10000^{2i/d_{model}}), \qquad PE_{pos, 2i+1} = \cos(pos / 10000^{2i/d_{model}})

    Panels (:func:`seqlib.viz.plot_positional_encoding`): the matrix (rows = positions, columns = dimensions) from
    :func:`seqlib.positional.sinusoidal_table`, a few of its columns as waves, and the dot product
    :math:`PE_{p} \cdot PE_{q}` of the chosen position :math:`p` with every position :math:`q` (it depends only
    on :math:`p - q` and falls off with the distance).

    Controls: ``d_model``, ``max_len``, ``position``. ``w.last_data``: ``pe (max_len, d_model)``, ``dots (max_len,)``.
    """
    controls = {
        "d_model": widgets.IntSlider(value=64, min=8, max=256, step=8, description="d_model",
                                     continuous_update=False, style=_WIDE),
        "max_len": widgets.IntSlider(value=100, min=10, max=400, step=10, description="max_len",
                                     continuous_update=False, style=_WIDE),
        "position": widgets.IntSlider(value=40, min=0, max=99, description="position p", continuous_update=False,
                                      style=_WIDE),
    }

    def sync(w: DemoWidget, name: str) -> None:
        if name == "max_len":
            w.controls["position"].max = w.controls["max_len"].value - 1  # ipywidgets clamps the value too

    def draw(v: dict[str, Any]) -> tuple[Figure, dict[str, Any]]:
        d_model, max_len = v["d_model"], v["max_len"]
        p = min(v["position"], max_len - 1)
        pe = sinusoidal_table(max_len, d_model)  # (max_len, d_model)
        dots = pe @ pe[p]  # (max_len,)
        fig = plot_positional_encoding(pe, p, dots)
        return fig, {"pe": pe, "dots": dots, "position": p, "d_model": d_model, "max_len": max_len}

    return DemoWidget(controls, draw, on_change=sync,
                      title="<b>Sinusoidal positional encoding</b>: PE[pos, 2i] = sin(pos/10000^(2i/d)), "
                            "PE[pos, 2i+1] = cos(...)")


# ------------------------------------------------------------------------------------------------------------------
# multihead_demo
# ------------------------------------------------------------------------------------------------------------------


def _default_model(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """``model`` and its tokenizer: the given ones, ``model.tokenizer``, or :func:`seqlib.models.char_lm`."""
    from ..models import char_lm, char_lm_tokenizer

    if model is None:
        model, default_tokenizer = char_lm()
        return model, tokenizer or default_tokenizer
    return model, tokenizer or getattr(model, "tokenizer", None) or char_lm_tokenizer()


def _attention_of(model: Any, tokenizer: Any, text: str) -> tuple[list[str], list[Tensor]]:
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
        return list(tokenizer.decode(ids)), [a[0] for a in attn]


def multihead_demo(model: Any = None, text: str | None = None, tokenizer: Any = None, layer: int | None = None,
                   head: int = 0) -> DemoWidget:
    """The attention weights of one head of one layer of a trained Transformer (C22, C19).

    Args:
        model: a :class:`seqlib.TransformerLM` (its ``forward(idx, return_attention=True)`` gives per-layer
            ``(B, nhead, T, T)`` weights) or a :class:`seqlib.pretrained.BertLike`. Default:
            :func:`seqlib.models.char_lm`.
        text: the input shown. Required with a ``model`` of your own; the default model's default is a sentence
            in the style of its training text.
        tokenizer: encodes ``text`` (``encode``/``decode``). Default: ``model.tokenizer`` if it has one, else the
            default model's character tokenizer.
        layer, head: the layer and head shown first. Default: the last layer, head 0 (``head=-1``: the mean).

    Controls: ``layer``, ``head`` (-1 = the mean over heads), ``text``. ``w.last_data``: ``tokens``,
    ``weights (T, T)`` of the selected head, ``all_heads (h, T, T)`` of the selected layer.
    """
    if text is None:
        if model is not None:
            raise TypeError("text is required with a model of your own: multihead_demo(model, text, tokenizer=...)")
        text = "Return a new list of the items in the sequence."
    model, tokenizer = _default_model(model, tokenizer)
    probe_tokens, probe = _attention_of(model, tokenizer, text)
    n_layers, n_heads = len(probe), probe[0].shape[0]
    layer = n_layers - 1 if layer is None else layer
    if not (0 <= layer < n_layers and -1 <= head < n_heads):
        raise ValueError(f"layer must be in [0, {n_layers}) and head in [-1, {n_heads}) for this model, "
                         f"but got layer={layer}, head={head}")
    controls = {
        "layer": widgets.IntSlider(value=layer, min=0, max=n_layers - 1, description="layer", continuous_update=False,
                                   style=_WIDE),
        "head": widgets.Dropdown(options=[("mean of heads", -1)] + [(f"head {h}", h) for h in range(n_heads)],
                                 value=head, description="head", style=_WIDE),
        "text": widgets.Text(value=text, description="text", continuous_update=False,
                             layout=widgets.Layout(width="420px"), style=_WIDE),
    }
    cache: dict[str, tuple[list[str], list[Tensor]]] = {text: (probe_tokens, probe)}

    def draw(v: dict[str, Any]) -> tuple[Figure, dict[str, Any]]:
        current = v["text"] or " "
        if current not in cache:
            cache.clear()
            cache[current] = _attention_of(model, tokenizer, current)
        tokens, attn = cache[current]
        layer, head = v["layer"], v["head"]
        heads = attn[layer]  # (h, T, T)
        weights = heads.mean(0) if head == -1 else heads[head]  # (T, T)
        fig = plot_multihead(weights, heads, tokens, layer=layer, head=head)
        return fig, {"tokens": tokens, "layer": layer, "head": head, "weights": weights, "all_heads": heads}

    return DemoWidget(controls, draw,
                      title="<b>Multi-head attention</b> in a trained Transformer: each head learns its own pattern")


# ------------------------------------------------------------------------------------------------------------------
# sampling_demo
# ------------------------------------------------------------------------------------------------------------------


def sampling_demo(model: Any = None, tokenizer: Any = None, prompt: str = "The ") -> DemoWidget:
    r"""Generate text from a trained language model with temperature and top-k sampling (C28).

    The logits :math:`z` of the next token are divided by the temperature :math:`\tau` before the softmax,
    :math:`p_i \propto \exp(z_i / \tau)`: :math:`\tau \to 0` approaches greedy decoding, :math:`\tau = 1` samples
    the model's own distribution, :math:`\tau > 1` flattens it. Top-:math:`k` keeps only the :math:`k` most
    likely tokens (:func:`seqlib.sampling.next_token_distribution`). Every generation uses a new
    ``torch.Generator`` seeded with the ``seed`` control, so the text changes only because a control changed. The
    bars (:func:`seqlib.viz.plot_next_token`) compare the model's distribution with the one sampled from.

    Args:
        model: a :class:`seqlib.TransformerLM` (or anything with its ``forward``, ``context_length`` and
            ``generate(idx, max_new_tokens, temperature, top_k, generator)``). Default:
            :func:`seqlib.models.char_lm`.
        tokenizer: its tokenizer. Default: ``model.tokenizer`` or the default character tokenizer.
        prompt: the initial text.

    Controls: ``temperature``, ``top_k`` (0 = all tokens), ``length``, ``seed``, ``prompt``.
    ``w.last_data``: ``text`` and ``ids`` (generated, without the prompt), ``p_model``, ``p_sample``.
    """
    model, tokenizer = _default_model(model, tokenizer)
    vocab_size = len(tokenizer.vocab)
    labels = [tokenizer.decode([i]) for i in range(vocab_size)]
    controls = {
        "temperature": widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.05, description="temperature τ",
                                           continuous_update=False, style=_WIDE),
        "top_k": widgets.IntSlider(value=0, min=0, max=vocab_size, description="top-k (0 = all)",
                                   continuous_update=False, style=_WIDE),
        "length": widgets.IntSlider(value=200, min=20, max=400, step=20, description="new tokens",
                                    continuous_update=False, style=_WIDE),
        "seed": widgets.IntText(value=0, description="seed", layout=widgets.Layout(width="160px"),
                                continuous_update=False, style=_WIDE),
        "prompt": widgets.Text(value=prompt, description="prompt", continuous_update=False, style=_WIDE),
    }
    text_box = widgets.HTML()

    def draw(v: dict[str, Any]) -> tuple[Figure, dict[str, Any]]:
        tau = float(v["temperature"])
        k = int(v["top_k"]) or None
        start = v["prompt"] or " "
        ids = [tokenizer.vocab.unk_index if i is None else i for i in tokenizer.encode(start)]
        idx = torch.tensor([ids], dtype=torch.long)  # (1, T0)
        with torch.no_grad():
            logits = model(idx[:, -model.context_length:])[0, -1]  # (V,): the scores of the next token
            out = model.generate(idx, v["length"], temperature=tau, top_k=k,
                                 generator=torch.Generator().manual_seed(int(v["seed"])))  # (1, T0 + n)
        p_model, p_sample = next_token_distribution(logits), next_token_distribution(logits, tau, k)  # (V,) each
        new_ids = out[0, len(ids):].tolist()
        generated = tokenizer.decode(new_ids)
        text_box.value = (
            "<pre style='white-space: pre-wrap; font-size: 12px; line-height: 1.3; max-width: 1100px'>"
            f"<b>{html.escape(start)}</b>{html.escape(generated)}</pre>"
        )
        fig = plot_next_token(p_model, p_sample, labels, temperature=tau, top_k=k, context=start)
        return fig, {"text": generated, "ids": new_ids, "prompt": start, "p_model": p_model, "p_sample": p_sample,
                     "temperature": tau, "top_k": k}

    return DemoWidget(controls, draw, extra=(text_box,),
                      title="<b>Sampling</b> from a character-level Transformer: temperature and top-k")
