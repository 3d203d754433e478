"""Assignment 5 (a5_transformer): positional encoding, the encoder block, a decoder-only LM, sampling.

The references, the stand-in models for ``generate`` and ``CATALOGUES``: the graded functions written with mutation
sites (:mod:`seqcourse.kernel.mutations`) for the diagnosis engine (:mod:`seqcourse.kernel.diagnose`).
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import math  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from .._pristine import _FORWARD, _NN, _t, seal  # noqa: E402
from ..catalogue import Catalogue  # noqa: E402
from ..inputs import call, randn  # noqa: E402
from ..mutations import Sites  # noqa: E402
from .bug import Bug  # noqa: E402


# --------------------------------------------------------------------------------------------- positional encoding
def _pe(m, max_len, d_model, dtype=torch.float32):
    """positional_encoding with mutation sites: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...)."""
    pos = _t.add(_t.unsqueeze(_t.arange(max_len, dtype=_t.float64), 1), m.offset("the first position", 0))
    two_i = _t.arange(0, d_model, 2, dtype=_t.float64)  # (ceil(d/2),)
    if m.option("the exponent", "2i/d_model", ("i/d_model",)) == "i/d_model":
        two_i = _t.div(two_i, 2)
    base = 10000.0 if m.option("the base", "10000", ("1000",)) == "10000" else 1000.0
    frequency = _t.pow(base, _t.div(two_i, d_model))  # (ceil(d/2),)
    angle = _t.div(pos, frequency) if m.option("the angle", "pos / 10000^(2i/d)", ("pos * 10000^(2i/d)",)) \
        == "pos / 10000^(2i/d)" else _t.mul(pos, frequency)  # (max_len, ceil(d/2))
    first, second = m.swap("sin and cos", _t.sin, _t.cos)
    pe = _t.zeros(max_len, d_model, dtype=_t.float64)
    if m.option("the layout", "interleaved", ("two halves",)) == "two halves":
        half = (d_model + 1) // 2
        pe[:, :half] = first(angle)
        pe[:, half:] = second(angle)[:, : d_model - half]
    else:
        pe[:, 0::2] = first(angle)
        pe[:, 1::2] = second(angle)[:, : d_model // 2]
    kind = m.option("the dtype", "the dtype that is given", ("always float32", "always float64"))
    return _t.to(pe, dtype={"always float32": _t.float32, "always float64": _t.float64}.get(kind, dtype))


def _ref_positional_encoding(max_len, d_model, dtype=torch.float32):
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    return _pe(Sites(), max_len, d_model, dtype)


def _observe_pe(fn, *args, **kwargs):
    """The encoding and its dtype (the dtype argument is part of what is graded)."""
    out = fn(*args, **kwargs)
    return out, str(getattr(out, "dtype", None))


PE = Catalogue(
    "positional_encoding", _pe, observe=_observe_pe, cells=("a5_pe_values",),
    about={"the first position": "the first position", "the exponent": "the exponent", "the base": "the base",
           "the angle": "the angle",
           "sin and cos": "sin and cos", "the layout": "the columns", "the dtype": "the dtype"},
    say={"sin and cos:swapped": "sin and cos are swapped: even columns 2i get sin, odd columns 2i+1 get cos",
         "the exponent:i/d_model": "the exponent is 2i/d_model where 2i is the even column index (columns 2i and "
                                   "2i+1 share a frequency)",
         "the layout:two halves": "interleave: sin goes to the even columns and cos to the odd columns, not into two "
                                  "halves",
         "the first position:+1": "positions count from 0: the first row is pos = 0",
         "the first position:-1": "positions count from 0: the first row is pos = 0",
         "the angle:pos * 10000^(2i/d)": "divide pos by 10000^(2i/d_model) (each pair of columns turns more slowly "
                                         "than the one before), do not multiply",
         "the base:1000": "the base of the frequencies is 10000: PE[pos, 2i] = sin(pos / 10000^(2i/d_model))",
         "the dtype:*": "the result must have the dtype that is passed in (dtype=torch.float32 by default): "
                        "return pe.to(dtype)"})


# --------------------------------------------------------------------------------------------- the encoder block
class _RefEncoderLayer(nn.Module):
    """A correct encoder block with torch.nn.TransformerEncoderLayer's parameter names (batch_first=True)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, norm_first=False):
        super().__init__()
        self.self_attn = _NN["MultiheadAttention"](d_model, nhead, dropout=dropout, batch_first=True)
        self.linear1 = _NN["Linear"](d_model, dim_feedforward)
        self.dropout = _NN["Dropout"](dropout)
        self.linear2 = _NN["Linear"](dim_feedforward, d_model)
        self.norm_first = norm_first
        self.norm1 = _NN["LayerNorm"](d_model)
        self.norm2 = _NN["LayerNorm"](d_model)
        self.dropout1 = _NN["Dropout"](dropout)
        self.dropout2 = _NN["Dropout"](dropout)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        return _encoder(Sites(), self, src, src_mask, src_key_padding_mask)


def _encoder(m, layer, src, src_mask=None, src_key_padding_mask=None):
    """EncoderLayer.forward with mutation sites (masks in torch.nn's convention: bool True = blocked)."""
    mask = src_mask if src_mask is None or m.step("src_mask passed on") else None
    padding = src_key_padding_mask if src_key_padding_mask is None or m.step("src_key_padding_mask passed on") \
        else None
    dropout = _FORWARD[_NN["Dropout"]]
    norm1, norm2 = m.swap("norm1 and norm2", layer.norm1, layer.norm2)
    if m.option("the second norm", "norm2", ("norm1 again",)) == "norm1 again":
        norm2 = norm1
    if m.option("the first norm", "norm1", ("norm2",)) == "norm2":
        norm1 = norm2

    def sa(y):
        out = _FORWARD[_NN["MultiheadAttention"]](layer.self_attn, y, y, y, attn_mask=mask, key_padding_mask=padding,
                                                    need_weights=False)[0]
        return dropout(layer.dropout1, out)

    def ff(y):  # (N, S, E) -> (N, S, dim_feedforward) -> (N, S, E)
        hidden = m.apply("the feed-forward activation", "relu", _t.linear(y, layer.linear1.weight, layer.linear1.bias))
        hidden = dropout(layer.dropout, hidden)
        return dropout(layer.dropout2, _t.linear(hidden, layer.linear2.weight, layer.linear2.bias))

    def norm(module, y):
        return _t.layer_norm(y, module.normalized_shape, module.weight, module.bias, module.eps)

    placement = m.option("norm_first", "as the flag says",
                         ("post-norm whatever the flag", "pre-norm whatever the flag"))
    pre = layer.norm_first if placement == "as the flag says" else placement.startswith("pre")
    x = src
    if pre:
        y = norm(norm1, x)
        skip = y if m.option("the residual (attention, pre-norm)", "x", ("norm1(x)",)) == "norm1(x)" else x
        x = _t.add(m.term("the residual around self-attention", skip), sa(y))
        y = norm(norm2, x)
        skip = y if m.option("the residual (feed-forward, pre-norm)", "x", ("norm2(x)",)) == "norm2(x)" else x
        return _t.add(m.term("the residual around the feed-forward block", skip), ff(y))
    if m.option("add & norm (attention)", "norm1(x + sa(x))", ("norm1(sa(x)) + x",)) == "norm1(sa(x)) + x":
        x = _t.add(norm(norm1, sa(x)), m.term("the residual around self-attention", x))
    else:
        x = norm(norm1, _t.add(m.term("the residual around self-attention", x), sa(x)))
    y = src if m.option("the feed-forward input", "x after attention", ("the block's input src",)) != \
        "x after attention" else x
    if m.option("add & norm (feed-forward)", "norm2(x + ff(x))", ("norm2(ff(x)) + x",)) == "norm2(ff(x)) + x":
        return _t.add(norm(norm2, ff(y)), m.term("the residual around the feed-forward block", x))
    return norm(norm2, _t.add(m.term("the residual around the feed-forward block", x), ff(y)))


ENCODER = Catalogue(
    "EncoderLayer.forward", _encoder,
    cells=("a5_encoder_values", "a5_encoder_norm_first", "a5_encoder_masks"),
    about={"src_mask passed on": "src_mask, passed on to self_attn as attn_mask",
           "src_key_padding_mask passed on": "src_key_padding_mask, passed on to self_attn as key_padding_mask",
           "norm1 and norm2": "norm1 and norm2", "the second norm": "the second norm",
           "the first norm": "the first norm", "add & norm (attention)": "add & norm around self-attention",
           "add & norm (feed-forward)": "add & norm around the feed-forward block",
           "the feed-forward input": "the feed-forward sub-block's input",
           "the residual (attention, pre-norm)": "the pre-norm residual around self-attention",
           "the residual (feed-forward, pre-norm)": "the pre-norm residual around the feed-forward block",
           "the feed-forward activation": "the feed-forward block linear2(dropout(relu(linear1(x))))",
           "norm_first": "the norm_first flag", "the residual around self-attention": "the residual connection "
           "around self-attention", "the residual around the feed-forward block": "the residual connection around "
           "the feed-forward block"},
    say={"src_mask passed on:missing": "src_mask is not passed on: self_attn(x, x, x, attn_mask=src_mask, ...)",
         "src_key_padding_mask passed on:missing": "src_key_padding_mask is not passed on: self_attn(x, x, x, "
                                                   "key_padding_mask=src_key_padding_mask, ...)",
         "norm1 and norm2:swapped": "norm1 and norm2 are swapped: norm1 belongs to the attention sub-block, norm2 to "
                                    "the feed-forward one",
         "the second norm:norm1 again": "the feed-forward sub-block uses norm1 again: it has its own norm2",
         "the first norm:norm2": "the attention sub-block uses norm2: it has its own norm1 (norm2 belongs to the "
                                 "feed-forward sub-block)",
         "the feed-forward activation:identity": "the feed-forward block is linear2(dropout(relu(linear1(x)))): the "
                                                 "ReLU is missing",
         "the feed-forward activation:*": "the feed-forward block uses ReLU (nn.TransformerEncoderLayer's default "
                                          "activation), not {label}",
         "norm_first:post-norm whatever the flag": "norm_first=True is the pre-norm block: x = x + sa(norm1(x)); "
                                                   "x = x + ff(norm2(x))",
         "norm_first:pre-norm whatever the flag": "norm_first=False is the original post-norm block (add, then "
                                                  "norm): x = norm1(x + sa(x)); you normalised before the sublayer",
         "the residual around self-attention:missing": "the residual connection around self-attention is missing "
                                                       "(add & norm: add the block's input to the attention output)",
         "the residual around the feed-forward block:missing": "the residual connection around the feed-forward "
                                                               "block is missing (add & norm: add its input to its "
                                                               "output)",
         "add & norm (attention):norm1(sa(x)) + x": "the residual is added after the norm: add & norm is "
                                                    "norm1(x + sa(x)) (add first, then normalise)",
         "add & norm (feed-forward):norm2(ff(x)) + x": "the residual is added after the norm: add & norm is "
                                                       "norm2(x + ff(x)) (add first, then normalise)",
         "the feed-forward input:the block's input src": "the feed-forward sub-block takes the output of the "
                                                         "attention sub-block, not the block's input src",
         "the residual (attention, pre-norm):norm1(x)": "pre-norm adds the block's input: x = x + sa(norm1(x)), "
                                                        "not norm1(x) + sa(norm1(x))",
         "the residual (feed-forward, pre-norm):norm2(x)": "pre-norm adds the sub-block's input: x = x + "
                                                           "ff(norm2(x)), not norm2(x) + ff(norm2(x))"})


def reference_encoder_layer(layer: nn.Module) -> nn.Module:
    """torch.nn.TransformerEncoderLayer (float64, batch_first, training mode) with ``layer``'s weights."""
    d_model = layer.linear1.in_features
    ref = _NN["TransformerEncoderLayer"](d_model, layer.self_attn.num_heads, layer.linear1.out_features, dropout=0.0,
                                         batch_first=True, norm_first=bool(layer.norm_first)).to(_t.float64)
    ref.load_state_dict({k: _t.to(_t.detach(v), dtype=_t.float64) for k, v in layer.state_dict().items()})
    return ref


# --------------------------------------------------------------------------------------------- the language model
def reference_lm_logits(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, V) of a decoder-only LM with ``model``'s parameters, built from torch.nn references.

    Expects the attribute names given in A5's ``DecoderOnlyLM``: ``tok_emb``, ``layers``, ``lm_head``.
    """
    with _t.no_grad():
        emb = _t.embedding(idx, _t.to(_t.detach(model.tok_emb.weight), dtype=_t.float64))
        steps, d_model = _t.size(idx, 1), _t.size(emb, -1)
        x = _t.add(emb, _ref_positional_encoding(steps, d_model, _t.float64))
        causal = _t.triu(_t.full((steps, steps), float("-inf"), dtype=_t.float64), 1)
        for layer in model.layers:
            x = call(reference_encoder_layer(layer), x, src_mask=causal)
        head = model.lm_head
        return _t.linear(x, _t.to(_t.detach(head.weight), dtype=_t.float64),
                         None if head.bias is None else _t.to(_t.detach(head.bias), dtype=_t.float64))


def _lm(m, model, idx):
    """DecoderOnlyLM.forward with mutation sites (its layers and positional encoding are the correct ones)."""
    steps = _t.size(idx, 1)
    x = _t.embedding(idx, model.tok_emb.weight)  # (B, T, d_model)
    d_model = _t.size(x, -1)
    if m.option("the token embedding", "as it is", ("scaled by sqrt(d_model)",)) != "as it is":
        x = _t.mul(x, math.sqrt(d_model))
    pe = model.pe[:steps] if isinstance(getattr(model, "pe", None), _t.Tensor) else \
        _ref_positional_encoding(steps, d_model, x.dtype)
    x = _t.add(x, m.term("the positional encoding", pe))
    kind = m.option("the causal mask", "float, -inf above the diagonal",
                    ("boolean, True on and below the diagonal", "none"))
    full = _t.full((steps, steps), float("-inf"), dtype=x.dtype)
    triangle = _t.triu if m.option("the triangle", "torch.triu", ("torch.tril",)) == "torch.triu" else _t.tril
    mask = {"boolean, True on and below the diagonal": lambda: _t.tril(_t.ones(steps, steps, dtype=_t.bool)),
            "none": lambda: None}.get(kind, lambda: triangle(full, m.offset("the causal mask's diagonal", 1)))()
    start, used = x, m.option("the layers' output", "used", ("not used",)) == "used"
    for layer in model.layers:
        out = _encoder(Sites(), layer, m.carry("the input of each layer", x, start), mask)
        x = out if used else x
    return _t.linear(x, model.lm_head.weight, model.lm_head.bias)  # (B, T, V)


LM = Catalogue(
    "DecoderOnlyLM.forward", _lm, cells=("a5_lm_causal", "a5_lm_values"),
    about={"the token embedding": "the token embedding", "the positional encoding": "the positional encoding",
           "the causal mask": "the causal mask", "the causal mask's diagonal": "the causal mask's diagonal",
           "the input of each layer": "the stack of layers", "the triangle": "the causal mask",
           "the layers' output": "the layers' output"},
    say={"the positional encoding:missing": "the positional encoding is missing: x = tok_emb(idx) + pe[:T] "
                                            "(attention alone does not know the order)",
         "the token embedding:scaled by sqrt(d_model)": "here the token embedding is not scaled: "
                                                        "x = tok_emb(idx) + pe[:T]",
         "the causal mask:boolean, True on and below the diagonal": "the boolean mask follows "
         "F.scaled_dot_product_attention's convention (True = may attend), but nn.TransformerEncoderLayer's src_mask "
         "is True where attention is *not* allowed: use a float mask with -inf above the diagonal "
         "(torch.triu(torch.full((T, T), float('-inf')), diagonal=1))",
         "the triangle:torch.tril": "the causal mask is the wrong way round: -inf goes above the diagonal (the "
                                    "future, torch.triu), not below it",
         "the layers' output:not used": "the logits must come from the last layer's output: x = layer(x, "
                                        "src_mask=mask) for every layer, then lm_head(x)",
         "the causal mask:none": "no causal mask reaches the layers: pass src_mask = the causal mask (T, T) to every "
                                 "layer",
         "the causal mask's diagonal:+1": "the causal mask lets position t see position t+1: -inf above the diagonal "
                                          "(torch.triu(..., diagonal=1))",
         "the causal mask's diagonal:-1": "the causal mask hides the diagonal: position t may attend to itself and to "
                                          "earlier positions (torch.triu(..., diagonal=1))",
         "the input of each layer:not carried": "each layer gets the embeddings instead of the previous layer's "
                                                "output: x = layer(x, src_mask=mask) for layer in self.layers"})


# --------------------------------------------------------------------------------------------- sampling
def _next_token(m, logits, temperature=1.0, top_k=None):
    """next_token_distribution with mutation sites: softmax(logits / T) restricted to the top_k largest logits."""
    after = m.option("the temperature", "divides the logits", ("divides the probabilities",)) != "divides the logits"
    scaled = logits if after else m.scale("the temperature", logits, 1.0 / temperature)
    keep, place = None, "before the softmax"
    if top_k is not None:
        k = m.offset("k", min(top_k, _t.size(scaled, -1)))
        largest = m.option("the kept logits", "the k largest", ("the k smallest",)) == "the k largest"
        kth = _t.topk(scaled, k, -1, largest=largest).values[..., -1:]  # (B, 1)
        drops = m.option("the comparison with the k-th logit", "keeps it", ("drops it",)) == "drops it"
        keep = (_t.gt if drops else _t.ge)(scaled, kth) if largest else (_t.lt if drops else _t.le)(scaled, kth)
        place = m.option("the top-k filter", "before the softmax", ("after the softmax, not renormalised",))
        if place == "before the softmax":
            scaled = m.mask("the logits outside the top k", scaled, keep)
    probs = m.softmax("the logits", scaled, -1)  # (B, V)
    if keep is not None and place != "before the softmax":
        probs = _t.mul(probs, _t.to(keep, dtype=probs.dtype))
    return _t.div(probs, temperature) if after else probs


def _ref_next_token_distribution(logits, temperature=1.0, top_k=None):
    """softmax(logits / T) restricted to the top_k largest logits (others get probability 0)."""
    return _next_token(Sites(), logits, temperature, top_k)


NEXT_TOKEN = Catalogue(
    "next_token_distribution", _next_token, cells=("a5_sampling_probs",),
    about={"the temperature": "the temperature", "k": "k", "the kept logits": "top-k",
           "the comparison with the k-th logit": "top-k",
           "the top-k filter": "the top-k filter", "the logits outside the top k": "the top-k filter",
           "the logits": "the logits"},
    say={"the temperature:inverted": "divide the logits by the temperature (T < 1 sharpens, T > 1 flattens), do not "
                                     "multiply",
         "the temperature:missing": "the temperature is ignored: p = softmax(logits / T)",
         "the temperature:twice": "the logits are divided by the temperature twice: p = softmax(logits / T)",
         "the temperature:divides the probabilities": "the temperature divides the logits before the softmax, "
                                                      "p = softmax(logits / T), not the probabilities after it",
         "the logits:dim -2": "the softmax runs over the vocabulary (the last dimension)",
         "the logits:missing": "the softmax is missing: the result must be probabilities, softmax(logits / T)",
         "k:-1": "top-k keeps k tokens, not k - 1: mask only the logits below the k-th largest (logits < kth, not "
                 "<=)",
         "k:+1": "top-k keeps k tokens, not k + 1",
         "the comparison with the k-th logit:drops it": "top-k keeps k tokens, not k - 1: the k-th largest logit "
                                                        "stays (mask logits < kth, not <=)",
         "the kept logits:the k smallest": "top-k keeps the k *largest* logits",
         "the logits outside the top k:zero": "set the logits outside the top k to -inf before the softmax (a logit "
                                              "of 0 still gets probability)",
         "the logits outside the top k:ignored": "top_k is ignored: keep only the top_k largest logits (the others "
                                                 "get -inf before the softmax)",
         "the logits outside the top k:inverted": "top-k masks the k largest logits instead of keeping them",
         "the top-k filter:after the softmax, not renormalised": "after removing the tokens outside the top k the "
                                                                 "probabilities must sum to 1 again (mask the logits "
                                                                 "with -inf before the softmax)"})


def _generate(m, model, idx, max_new_tokens, context_length, temperature=1.0, top_k=None, generator=None):
    """generate with mutation sites (next_token_distribution is the correct one)."""
    first = m.option("the crop", "the last context_length tokens", ("the first context_length tokens",)) != \
        "the last context_length tokens"
    at_first = m.option("the logits used", "the last position's", ("the first position's",)) != "the last position's"
    greedy = m.option("the next token", "drawn with torch.multinomial", ("the most likely one",)) != \
        "drawn with torch.multinomial"
    temperature = temperature if temperature == 1.0 or m.step("temperature passed on") else 1.0
    top_k = top_k if top_k is None or m.step("top_k passed on") else None
    generator = m.rng("the generator", generator)
    for _ in m.loop("the sampling loop", max_new_tokens):
        logits = model(idx[:, :context_length] if first else idx[:, -context_length:])  # (B, T', V)
        probs = _ref_next_token_distribution(logits[:, 0] if at_first else logits[:, -1], temperature, top_k)
        nxt = _t.argmax(probs, -1, keepdim=True) if greedy else _t.multinomial(probs, 1, generator=generator)
        idx = _t.cat([idx, nxt], 1)  # (B, T + 1)
    return idx


GENERATE = Catalogue(
    "generate", _generate, cells=("a5_generate",),
    about={"the crop": "the crop", "the logits used": "the logits", "the next token": "the next token",
           "temperature passed on": "the temperature", "top_k passed on": "top_k", "the generator": "sampling",
           "the sampling loop": "the sampling loop"},
    say={"the crop:the first context_length tokens": "crop idx to its *last* context_length tokens "
                                                     "(idx[:, -context_length:]): the model predicts what follows the "
                                                     "end",
         "the logits used:the first position's": "take the logits of the last position (logits[:, -1]): they "
                                                 "predict the token after the whole prompt",
         "the next token:the most likely one": "generate must sample from the distribution (torch.multinomial), not "
                                               "take the argmax",
         "temperature passed on:missing": "the temperature is not passed on to next_token_distribution",
         "top_k passed on:missing": "top_k is not passed on to next_token_distribution",
         "the generator:ignored": "torch.multinomial(probs, 1, generator=generator): the generator that is passed in "
                                  "is not used, so the draw comes from torch's global random state (a seeded "
                                  "generator must give the same text every time)",
         "the sampling loop:*": "generate must add max_new_tokens tokens, one per step"},
    skip=frozenset({"the sampling loop:backwards"}))


class _FakeLM(nn.Module):
    """A stand-in language model for testing ``generate``: it predicts ``(last token + 1) % V`` ("counting"), puts
    equal logits on tokens 0 and 1 ("coin"), or gives each last token its own fixed random logits ("table"); it
    fails if given more than ``context_length`` tokens."""

    def __init__(self, kind: str, vocab_size: int, context_length: int):
        super().__init__()
        self.kind, self.vocab_size, self.context_length = kind, vocab_size, context_length
        self.longest_input = 0
        self.table = randn(vocab_size, vocab_size, seed=vocab_size + 17, scale=1.5)  # (V, V)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if not isinstance(idx, _t.Tensor) or idx.dtype != _t.long or _t.dim(idx) != 2:
            raise TypeError(f"the model takes idx as an int64 tensor (B, T); got {idx!r:.80}")
        steps = _t.size(idx, 1)
        self.longest_input = max(self.longest_input, steps)
        if steps > self.context_length:
            raise ValueError(f"the model sees at most context_length = {self.context_length} tokens, but idx has "
                             f"T = {steps}: crop idx to its last context_length tokens before calling the model")
        if self.kind == "table":
            return self.table[idx]  # (B, T, V)
        logits = _t.zeros(_t.size(idx, 0), steps, self.vocab_size, dtype=_t.float64)
        if self.kind == "counting":
            nxt = _t.unsqueeze(_t.remainder(_t.add(idx, 1), self.vocab_size), -1)
            logits.scatter_(-1, nxt, 20.0)
        else:
            logits[..., 2:] = float("-inf")
        return logits


def fake_lm(kind: str, vocab_size: int, context_length: int) -> nn.Module:
    """A stand-in model for ``generate`` tests (``"counting"``, ``"coin"`` or ``"table"``, see ``_FakeLM``)."""
    return _FakeLM(kind, vocab_size, context_length)


CATALOGUES = {c.name: c for c in (PE, ENCODER, LM, NEXT_TOKEN, GENERATE)}

#: correct versions of the notebook's helpers, swapped in by ``run_student(..., uses=[...])``
REFERENCES = {
    "positional_encoding": _ref_positional_encoding, "EncoderLayer": _RefEncoderLayer, "next_token_distribution":
    _ref_next_token_distribution, "generate": GENERATE.handin(),
}

#: the demo class: one realistic mistake per student, and the graded cells it must lose
DEMO_BUGS = {
    "bug-pe-sin-cos-swapped": Bug(
        "a5_transformer", "a5_pe",
        old="pe[:, 0::2] = torch.sin(angle)\n    pe[:, 1::2] = torch.cos(angle)",
        new="pe[:, 0::2] = torch.cos(angle)\n    pe[:, 1::2] = torch.sin(angle)",
        breaks=("a5_pe_values",), says="sin and cos are swapped"),
    "bug-post-norm-no-residual": Bug(
        "a5_transformer", "a5_encoder",
        old="x = self.norm1(x + sa(x))", new="x = self.norm1(sa(x))",
        breaks=("a5_encoder_values",), says="residual connection around self-attention is missing"),
    "bug-temperature-multiplied": Bug(
        "a5_transformer", "a5_sampling",
        old="logits = logits / temperature", new="logits = logits * temperature",
        breaks=("a5_sampling_probs",), says="divide the logits by the temperature"),
}

__all__ = ["CATALOGUES", "DEMO_BUGS", "REFERENCES", "fake_lm", "reference_encoder_layer", "reference_lm_logits"]


seal(__name__)
