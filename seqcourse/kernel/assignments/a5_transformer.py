"""Assignment 5 (a5_transformer): positional encoding, the encoder block, a decoder-only LM, sampling.

Each ``*_mistakes`` function returns ``{message: what the mistake computes}`` for the same inputs as the
reference; ``checks.expect_close(..., diagnoses=...)`` names the first one a wrong answer matches.
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import math  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from .._pristine import _FORWARD, _NN, _t, seal  # noqa: E402
from ..inputs import call  # noqa: E402
from .bug import Bug  # noqa: E402


def _ref_positional_encoding(max_len, d_model, dtype=torch.float32):
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    return _pe_variant(max_len, d_model, dtype)


def _pe_variant(max_len, d_model, dtype=torch.float32, variant=None):
    pos = _t.unsqueeze(_t.arange(max_len, dtype=_t.float64), 1)
    two_i = _t.arange(0, d_model, 2, dtype=_t.float64)
    if variant == "i_not_2i":
        two_i = _t.div(two_i, 2)
    if variant == "pos_from_1":
        pos = _t.add(pos, 1)
    angle = _t.div(pos, _t.pow(10000.0, _t.div(two_i, d_model)))  # (max_len, ceil(d/2))
    first, second = (_t.cos, _t.sin) if variant == "sin_cos_swapped" else (_t.sin, _t.cos)
    pe = _t.zeros(max_len, d_model, dtype=_t.float64)
    if variant == "halves":
        half = (d_model + 1) // 2
        pe[:, :half] = first(angle)
        pe[:, half:] = second(angle)[:, : d_model - half]
    else:
        pe[:, 0::2] = first(angle)
        pe[:, 1::2] = second(angle)[:, : d_model // 2]
    return _t.to(pe, dtype=dtype)


def positional_encoding_mistakes(max_len: int, d_model: int) -> dict[str, torch.Tensor]:
    return {
        "sin and cos are swapped: even columns 2i get sin, odd columns 2i+1 get cos":
            _pe_variant(max_len, d_model, _t.float64, "sin_cos_swapped"),
        "the exponent is 2i/d_model where 2i is the even column index (columns 2i and 2i+1 share a frequency)":
            _pe_variant(max_len, d_model, _t.float64, "i_not_2i"),
        "interleave: sin goes to the even columns and cos to the odd columns, not into two halves":
            _pe_variant(max_len, d_model, _t.float64, "halves"),
        "positions count from 0: the first row is pos = 0": _pe_variant(max_len, d_model, _t.float64, "pos_from_1"),
    }


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
        return _encoder_variant(self, src, src_mask, src_key_padding_mask)


def _encoder_variant(layer, x, mask=None, padding=None, variant=None):
    def sa(y):  # masks in nn.TransformerEncoderLayer's convention: bool True = blocked, float = added
        out = _FORWARD[_NN["MultiheadAttention"]](layer.self_attn, y, y, y, attn_mask=mask,
                                                    key_padding_mask=padding, need_weights=False)[0]
        return _FORWARD[_NN["Dropout"]](layer.dropout1, out)

    def ff(y):
        hidden = _t.linear(y, layer.linear1.weight, layer.linear1.bias)
        if variant != "no_relu":
            hidden = _t.relu(hidden)
        hidden = _FORWARD[_NN["Dropout"]](layer.dropout, hidden)
        return _FORWARD[_NN["Dropout"]](layer.dropout2, _t.linear(hidden, layer.linear2.weight, layer.linear2.bias))

    def norm(module, y):
        return _t.layer_norm(y, module.normalized_shape, module.weight, module.bias, module.eps)

    def residual(y, out, keep):
        return _t.add(y, out) if keep else out

    norm_first = layer.norm_first if variant not in ("pre_norm", "post_norm") else variant == "pre_norm"
    keep_attn, keep_ff = variant != "no_residual_attn", variant != "no_residual_ff"
    if norm_first:
        x = residual(x, sa(norm(layer.norm1, x)), keep_attn)
        return residual(x, ff(norm(layer.norm2, x)), keep_ff)
    x = norm(layer.norm1, residual(x, sa(x), keep_attn))
    return norm(layer.norm2, residual(x, ff(x), keep_ff))


def encoder_layer_mistakes(layer: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What an encoder layer with ``layer``'s parameters returns for ``x`` with the usual mistakes (no mask)."""
    with _t.no_grad():
        return {
            "the residual connection around self-attention is missing (add & norm: add the block's input to "
            "the attention output)":
                _encoder_variant(layer, x, variant="no_residual_attn"),
            "the residual connection around the feed-forward block is missing (add & norm: add its input to "
            "its output)":
                _encoder_variant(layer, x, variant="no_residual_ff"),
            "the feed-forward block is linear2(dropout(relu(linear1(x)))): the ReLU is missing":
                _encoder_variant(layer, x, variant="no_relu"),
            "norm_first=False is the original post-norm block (add, then norm): x = norm1(x + sa(x)); "
            "you normalised before the sublayer": _encoder_variant(layer, x, variant="pre_norm"),
            "norm_first=True is the pre-norm block: x = x + sa(norm1(x)); x = x + ff(norm2(x))":
                _encoder_variant(layer, x, variant="post_norm"),
        }


def reference_encoder_layer(layer: nn.Module) -> nn.Module:
    """torch.nn.TransformerEncoderLayer (float64, batch_first, training mode) with ``layer``'s weights."""
    d_model = layer.linear1.in_features
    ref = _NN["TransformerEncoderLayer"](d_model, layer.self_attn.num_heads, layer.linear1.out_features, dropout=0.0,
                                         batch_first=True, norm_first=bool(layer.norm_first)).to(_t.float64)
    ref.load_state_dict({k: _t.to(_t.detach(v), dtype=_t.float64) for k, v in layer.state_dict().items()})
    return ref


def _ref_next_token_distribution(logits, temperature=1.0, top_k=None):
    """softmax(logits / T) restricted to the top_k largest logits (others get probability 0)."""
    scaled = _t.div(logits, temperature)
    if top_k is not None:
        kth = _t.topk(scaled, min(top_k, _t.size(scaled, -1)), -1).values[..., -1:]
        scaled = _t.masked_fill(scaled, scaled < kth, float("-inf"))
    return _t.softmax(scaled, -1)


def next_token_mistakes(logits, temperature=1.0, top_k=None) -> dict[str, torch.Tensor]:
    ref = _ref_next_token_distribution
    out = {
        "divide the logits by the temperature (T < 1 sharpens, T > 1 flattens), do not multiply":
            ref(_t.mul(logits, temperature * temperature), temperature, top_k),
        "the softmax runs over the vocabulary (the last dimension)": _t.softmax(_t.div(logits, temperature), 0),
    }
    if top_k is not None:
        k = min(top_k, _t.size(logits, -1))
        scaled = _t.div(logits, temperature)
        low = _t.topk(scaled, k, -1, largest=False).values[..., -1:]
        out["top-k keeps the k *largest* logits"] = _t.softmax(
            _t.masked_fill(scaled, scaled > low, float("-inf")), -1)
        kth = _t.topk(scaled, k, -1).values[..., -1:]
        out["set the logits outside the top k to -inf before the softmax (a logit of 0 still gets probability)"] = \
            _t.softmax(_t.masked_fill(scaled, scaled < kth, 0.0), -1)
        p = _t.softmax(scaled, -1)
        kept = _t.masked_fill(p, scaled < kth, 0.0)
        out["after removing the tokens outside the top k the probabilities must sum to 1 again (mask the logits "
            "with -inf before the softmax)"] = kept
    return out


def reference_lm_logits(model: nn.Module, idx: torch.Tensor, variant: str | None = None) -> torch.Tensor:
    """Logits (B, T, V) of a decoder-only LM with ``model``'s parameters, built from torch.nn references.

    Expects the attribute names given in A5's ``DecoderOnlyLM``: ``tok_emb``, ``layers``, ``lm_head``.
    """
    with _t.no_grad():
        emb = _t.embedding(idx, _t.to(_t.detach(model.tok_emb.weight), dtype=_t.float64))
        steps, d_model = _t.size(idx, 1), _t.size(emb, -1)
        if variant == "scaled_embedding":
            emb = _t.mul(emb, math.sqrt(d_model))
        x = emb if variant == "no_pe" else _t.add(emb, _ref_positional_encoding(steps, d_model, _t.float64))
        causal = _t.triu(_t.full((steps, steps), float("-inf"), dtype=_t.float64), 1)
        for layer in model.layers:
            x = call(reference_encoder_layer(layer), x, src_mask=causal)
        head = model.lm_head
        return _t.linear(x, _t.to(_t.detach(head.weight), dtype=_t.float64),
                         None if head.bias is None else _t.to(_t.detach(head.bias), dtype=_t.float64))


def lm_mistakes(model: nn.Module, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the LM's logits look like with the usual mistakes."""
    return {
        "the positional encoding is missing: x = tok_emb(idx) + pe[:T] (attention alone does not know the order)":
            reference_lm_logits(model, idx, "no_pe"),
        "here the token embedding is not scaled: x = tok_emb(idx) + pe[:T]":
            reference_lm_logits(model, idx, "scaled_embedding"),
    }


class _FakeLM(nn.Module):
    """A stand-in language model for testing ``generate``: it predicts ``(last token + 1) % V`` ("counting"),
    or puts equal logits on tokens 0 and 1 ("coin"); it fails if given more than ``context_length`` tokens."""

    def __init__(self, kind: str, vocab_size: int, context_length: int):
        super().__init__()
        self.kind, self.vocab_size, self.context_length = kind, vocab_size, context_length
        self.longest_input = 0

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if not isinstance(idx, _t.Tensor) or idx.dtype != _t.long or _t.dim(idx) != 2:
            raise TypeError(f"the model takes idx as an int64 tensor (B, T); got {idx!r:.80}")
        steps = _t.size(idx, 1)
        self.longest_input = max(self.longest_input, steps)
        if steps > self.context_length:
            raise ValueError(f"the model sees at most context_length = {self.context_length} tokens, but idx has "
                             f"T = {steps}: crop idx to its last context_length tokens before calling the model")
        logits = _t.zeros(_t.size(idx, 0), steps, self.vocab_size, dtype=_t.float64)
        if self.kind == "counting":
            nxt = _t.unsqueeze(_t.remainder(_t.add(idx, 1), self.vocab_size), -1)
            logits.scatter_(-1, nxt, 20.0)
        else:
            logits[..., 2:] = float("-inf")
        return logits


def fake_lm(kind: str, vocab_size: int, context_length: int) -> nn.Module:
    """A stand-in model for ``generate`` tests (``"counting"`` or ``"coin"``, see ``_FakeLM``)."""
    return _FakeLM(kind, vocab_size, context_length)


#: correct versions of the notebook's helpers, swapped in by ``run_student(..., uses=[...])``
REFERENCES = {
    "positional_encoding": _ref_positional_encoding, "EncoderLayer": _RefEncoderLayer, "next_token_distribution":
    _ref_next_token_distribution,
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

__all__ = [
    "DEMO_BUGS", "REFERENCES", "encoder_layer_mistakes", "fake_lm", "lm_mistakes", "next_token_mistakes",
    "positional_encoding_mistakes", "reference_encoder_layer", "reference_lm_logits",
]


seal(__name__)
