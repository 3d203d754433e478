"""Assignment 4 (a4_attention): scaled dot-product, masked, multi-head and additive attention.

Each ``*_mistakes`` function returns ``{message: what the mistake computes}`` for the same inputs as the
reference; ``checks.expect_close(..., diagnoses=...)`` names the first one a wrong answer matches.
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import math  # noqa: E402

import torch  # noqa: E402

from .._pristine import _t, seal  # noqa: E402
from .bug import Bug  # noqa: E402


def _ref_sdpa(query, key, value, attn_mask=None, is_causal=False):
    """(output, weights): softmax(Q K^T / sqrt(d_k) + mask) V, bool masks True = may attend."""
    scores = _t.div(_t.matmul(query, _t.transpose(key, -2, -1)), math.sqrt(_t.size(query, -1)))
    if is_causal:
        q_len, k_len = _t.size(query, -2), _t.size(key, -2)
        allowed = _t.tril(_t.ones(q_len, k_len, dtype=_t.bool, device=query.device))
        scores = _t.masked_fill(scores, ~allowed, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == _t.bool:
            scores = _t.masked_fill(scores, ~attn_mask, float("-inf"))
        else:
            scores = _t.add(scores, attn_mask)
    weights = _t.softmax(scores, -1)
    return _t.matmul(weights, value), weights


def sdpa_mistakes(query, key, value) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``scaled_dot_product_attention`` returns (output, weights) without a mask, with the usual mistakes."""
    d_k = _t.size(query, -1)
    raw = _t.matmul(query, _t.transpose(key, -2, -1))

    def finish(scores, dim=-1):
        weights = _t.softmax(scores, dim)
        return _t.matmul(weights, value), weights

    return {
        "scale the scores by 1/sqrt(d_k): softmax(Q K^T / sqrt(d_k)) V": finish(raw),
        "scale by 1/sqrt(d_k), not 1/d_k": finish(_t.div(raw, d_k)),
        "the softmax runs over the keys (the last dimension, each row of the score matrix sums to 1), "
        "not over the queries": finish(_t.div(raw, math.sqrt(d_k)), -2),
        "the scores are Q K^T (queries in rows, keys in columns), not K Q^T":
            finish(_t.div(_t.transpose(raw, -2, -1), math.sqrt(d_k))) if _t.size(query, -2) == _t.size(key, -2)
            else (None, None),
    }


def masked_from_own(weights: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                    is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """What masking must turn the student's own *unmasked* weights into: zero where masked, rows renormalised.

    softmax(s + m) = softmax(s) * exp(m) / sum(softmax(s) * exp(m)), so this grades the mask apart from the
    scores: a scaling mistake made in both calls cancels.
    """
    factor = _mask_factor(weights, attn_mask, is_causal)
    masked = _t.mul(weights, factor)
    masked = _t.div(masked, _t.sum(masked, -1, keepdim=True))
    return _t.matmul(masked, value), masked


def _mask_factor(weights, attn_mask, is_causal, *, inverted=False, causal_offset=0):
    q_len, k_len = _t.size(weights, -2), _t.size(weights, -1)
    factor = _t.ones_like(weights)
    if is_causal:
        allowed = _t.tril(_t.ones(q_len, k_len, dtype=_t.bool), causal_offset)
        factor = _t.mul(factor, _t.to(allowed, dtype=weights.dtype))
    if attn_mask is not None:
        if attn_mask.dtype == _t.bool:
            allowed = ~attn_mask if inverted else attn_mask
            factor = _t.mul(factor, _t.to(allowed, dtype=weights.dtype))
        else:
            factor = _t.mul(factor, _t.exp(_t.to(attn_mask, dtype=weights.dtype)))
    return factor


def mask_mistakes(weights: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                  is_causal: bool = False) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Masking mistakes, built from the student's own unmasked ``weights`` (see :func:`masked_from_own`)."""

    def renormalised(factor):
        masked = _t.mul(weights, factor)
        masked = _t.div(masked, _t.sum(masked, -1, keepdim=True))
        return _t.matmul(masked, value), masked

    out = {}
    after = _t.mul(weights, _mask_factor(weights, attn_mask, is_causal))
    out["the mask must be applied before the softmax (set masked scores to -inf, then softmax): zeroing "
        "weights after the softmax leaves rows that no longer sum to 1"] = (_t.matmul(after, value), after)
    if attn_mask is not None and attn_mask.dtype == _t.bool:
        out["the boolean mask is inverted: True means 'may attend' (as in F.scaled_dot_product_attention)"] = \
            renormalised(_mask_factor(weights, attn_mask, is_causal, inverted=True))
    if is_causal:
        out["the causal mask hides the diagonal: position t may attend to itself and to earlier positions"] = \
            renormalised(_mask_factor(weights, attn_mask, is_causal, causal_offset=-1))
        out["the causal mask is the wrong way round: position t may attend to positions <= t, not >= t"] = \
            renormalised(_t.to(_t.triu(_t.ones(_t.size(weights, -2), _t.size(weights, -1))), dtype=weights.dtype))
    if attn_mask is not None and attn_mask.dtype != _t.bool:
        out["a float mask is added to the scores (before the softmax), not multiplied"] = \
            renormalised(_t.ones_like(weights))
    return out


def mha_mistakes(query, key, value, num_heads, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``multi_head_attention`` returns (output (L, N, E), weights (N, L, S)) with the usual mistakes."""
    q_len, batch, embed = _t.size(query)
    k_len = _t.size(key, 0)
    hd = embed // num_heads
    w_q, w_k, w_v = _t.chunk(in_proj_weight, 3, 0)
    b_q, b_k, b_v = _t.chunk(in_proj_bias, 3, 0)
    q, k, v = _t.linear(query, w_q, b_q), _t.linear(key, w_k, b_k), _t.linear(value, w_v, b_v)

    def heads(x, length, wrong=False):
        if wrong:  # reshaped straight from (L, N, E), mixing positions and sequences
            return _t.reshape(_t.contiguous(x), (batch, num_heads, length, hd))
        return _t.permute(_t.reshape(x, (length, batch, num_heads, hd)), (1, 2, 0, 3))  # (N, h, L, hd)

    def run(wrong_split=False, scale=None, out_proj=True, average=True):
        qh, kh, vh = heads(q, q_len, wrong_split), heads(k, k_len, wrong_split), heads(v, k_len, wrong_split)
        scores = _t.div(_t.matmul(qh, _t.transpose(kh, -2, -1)), math.sqrt(scale or hd))
        weights = _t.softmax(scores, -1)  # (N, h, L, S)
        ctx = _t.matmul(weights, vh)  # (N, h, L, hd)
        if wrong_split:
            ctx = _t.reshape(ctx, (q_len, batch, embed))
        else:
            ctx = _t.reshape(_t.transpose(_t.transpose(ctx, 1, 2), 0, 1), (q_len, batch, embed))  # (L, N, E)
        out = _t.linear(ctx, out_proj_weight, out_proj_bias) if out_proj else ctx
        return out, (weights.mean(1) if average else weights.sum(1))

    return {
        "the heads are split wrongly: reshape (L, N, E) to (L, N, h, d_head) and move the head dimension next to "
        "the batch before attending (each head sees all positions of one sequence)": run(wrong_split=True),
        "scale by 1/sqrt(d_head) with d_head = E / num_heads (each head attends in its own d_head dimensions)":
            run(scale=embed),
        "the output projection out_proj is missing: concatenate the heads, then apply out_proj_weight/bias":
            run(out_proj=False),
        "the returned attention weights are averaged over the heads (nn.MultiheadAttention's default), "
        "not summed": run(average=False),
    }


def _ref_additive(query, keys, values, w_q, w_k, w_v, mask=None):
    """Bahdanau: e_j = w_v . tanh(W_q q + W_k k_j); alpha = softmax_j(e); context = sum_j alpha_j v_j."""
    scores = _t.matmul(_t.tanh(_t.add(_t.unsqueeze(_t.linear(query, w_q), 1), _t.linear(keys, w_k))), w_v)  # (N, S)
    if mask is not None:
        scores = _t.masked_fill(scores, ~mask, float("-inf"))
    weights = _t.softmax(scores, -1)
    return _t.squeeze(_t.matmul(_t.unsqueeze(weights, 1), values), 1), weights


def additive_mistakes(query, keys, values, w_q, w_k, w_v) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``additive_attention`` returns (context, weights) with the usual mistakes."""
    pre = _t.add(_t.unsqueeze(_t.linear(query, w_q), 1), _t.linear(keys, w_k))

    def finish(scores, dim=-1):
        weights = _t.softmax(scores, dim)
        return _t.squeeze(_t.matmul(_t.unsqueeze(weights, 1), values), 1), weights

    return {
        "the tanh is missing: e_j = w_v . tanh(W_q q + W_k k_j)": finish(_t.matmul(pre, w_v)),
        "the softmax runs over the source positions j (dim=-1), not over the batch": finish(
            _t.matmul(_t.tanh(pre), w_v), 0),
        "you returned the scores before the softmax as the weights; alpha = softmax(e)": (
            _ref_additive(query, keys, values, w_q, w_k, w_v)[0], _t.matmul(_t.tanh(pre), w_v)),
    }


#: correct versions of the notebook's helpers, swapped in by ``run_student(..., uses=[...])``
REFERENCES = {"scaled_dot_product_attention": _ref_sdpa, "additive_attention": _ref_additive}

#: the demo class: one realistic mistake per student, and the graded cells it must lose
DEMO_BUGS = {
    "bug-no-scaling": Bug(
        "a4_attention", "a4_sdpa",
        old="scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])",
        new="scores = query @ key.transpose(-2, -1)",
        breaks=("a4_sdpa_values",), says="scale the scores by 1/sqrt(d_k)"),
    "bug-mask-after-softmax": Bug(
        "a4_attention", "a4_sdpa",
        old="    if attn_mask is not None:\n"
            "        if attn_mask.dtype == torch.bool:\n"
            "            scores = scores.masked_fill(~attn_mask, float(\"-inf\"))\n"
            "        else:\n"
            "            scores = scores + attn_mask\n"
            "    weights = torch.softmax(scores, dim=-1)  # (..., L, S)\n",
        new="    if attn_mask is not None and attn_mask.dtype != torch.bool:\n"
            "        scores = scores + attn_mask\n"
            "    weights = torch.softmax(scores, dim=-1)  # (..., L, S)\n"
            "    if attn_mask is not None and attn_mask.dtype == torch.bool:\n"
            "        weights = weights * attn_mask  # zero the weights of masked keys\n",
        breaks=("a4_sdpa_masks",), says="the mask must be applied before the softmax"),
    "bug-mha-no-out-proj": Bug(
        "a4_attention", "a4_mha",
        old="return out @ out_proj_weight.T + out_proj_bias, weights.mean(dim=1)",
        new="return out, weights.mean(dim=1)",
        breaks=("a4_mha_values",), says="the output projection out_proj is missing"),
}

__all__ = [
    "DEMO_BUGS", "REFERENCES", "additive_mistakes", "mask_mistakes", "masked_from_own", "mha_mistakes", "sdpa_mistakes",
]


seal(__name__)
