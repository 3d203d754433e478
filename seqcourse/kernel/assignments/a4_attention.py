"""Assignment 4 (a4_attention): scaled dot-product, masked, multi-head and additive attention.

The references, ``masked_from_own`` (a mask graded against the student's own unmasked weights) and ``CATALOGUES``:
the graded functions written with mutation sites (:mod:`seqcourse.kernel.mutations`) for the diagnosis engine.
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import math  # noqa: E402

import torch  # noqa: E402

from .._pristine import _t, seal  # noqa: E402
from ..catalogue import Catalogue  # noqa: E402
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


def _ref_additive(query, keys, values, w_q, w_k, w_v, mask=None):
    """Bahdanau: e_j = w_v . tanh(W_q q + W_k k_j); alpha = softmax_j(e); context = sum_j alpha_j v_j."""
    scores = _t.matmul(_t.tanh(_t.add(_t.unsqueeze(_t.linear(query, w_q), 1), _t.linear(keys, w_k))), w_v)  # (N, S)
    if mask is not None:
        scores = _t.masked_fill(scores, ~mask, float("-inf"))
    weights = _t.softmax(scores, -1)
    return _t.squeeze(_t.matmul(_t.unsqueeze(weights, 1), values), 1), weights


def masked_from_own(weights: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                    is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """What masking must turn the student's own *unmasked* weights into: zero where masked, rows renormalised.

    softmax(s + m) = softmax(s) * exp(m) / sum(softmax(s) * exp(m)), so this grades the mask apart from the
    scores: a scaling mistake made in both calls cancels.
    """
    q_len, k_len = _t.size(weights, -2), _t.size(weights, -1)
    factor = _t.ones_like(weights)
    if is_causal:
        factor = _t.mul(factor, _t.to(_t.tril(_t.ones(q_len, k_len, dtype=_t.bool)), dtype=weights.dtype))
    if attn_mask is not None:
        factor = _t.mul(factor, _t.to(attn_mask, dtype=weights.dtype) if attn_mask.dtype == _t.bool
                        else _t.exp(_t.to(attn_mask, dtype=weights.dtype)))
    masked = _t.mul(weights, factor)
    masked = _t.div(masked, _t.sum(masked, -1, keepdim=True))
    return _t.matmul(masked, value), masked


# --------------------------------------------------------------------------------------------------- catalogues
def _sdpa(m, query, key, value, attn_mask=None, is_causal=False):
    """scaled_dot_product_attention with mutation sites."""
    q, k = m.swap("Q and K in the scores Q K^T", query, key)
    scores = _t.matmul(q, m.transpose("K^T", _t.transpose(k, -2, -1)))  # (..., L, S)
    d_k, d_v = _t.size(query, -1), _t.size(value, -1)
    scores = m.scale("the scale 1/sqrt(d_k)", scores, 1 / math.sqrt(d_k),
                     {"1/d_k": 1 / d_k, "1/sqrt(d_v)": 1 / math.sqrt(d_v)})
    after = _t.ones(_t.size(scores), dtype=_t.bool)  # what is zeroed after the softmax (a mask put in the wrong place)
    if is_causal:
        ones = _t.ones(_t.size(query, -2), _t.size(key, -2), dtype=_t.bool)
        diagonal = m.offset("the causal mask's diagonal", 0)
        allowed = _t.triu(ones, -diagonal) if m.option("the causal triangle", "lower triangle", ("upper triangle",)) \
            == "upper triangle" else _t.tril(ones, diagonal)  # (L, S), True = may attend
        if m.option("where the causal mask goes", "before the softmax", ("after the softmax",)) == "after the softmax":
            after = _t.logical_and(after, allowed)
        else:
            scores = m.mask("the causal mask", scores, allowed)
    if attn_mask is not None and attn_mask.dtype == _t.bool:
        if m.option("where the boolean attn_mask goes", "before the softmax", ("after the softmax",)) \
                == "after the softmax":
            after = _t.logical_and(after, attn_mask)
        else:
            scores = m.mask("the boolean attn_mask", scores, attn_mask)
    elif attn_mask is not None:
        scores = m.combine("the float attn_mask", scores, attn_mask)
    weights = _t.mul(m.softmax("the scores", scores, -1), _t.to(after, dtype=scores.dtype))  # (..., L, S)
    v = key if m.option("what the weights average", "the values V", ("the keys K",)) == "the keys K" else value
    return _t.matmul(weights, v), weights


SDPA = Catalogue(
    "scaled_dot_product_attention", _sdpa, cells=("a4_sdpa_values", "a4_sdpa_masks"),
    about={"Q and K in the scores Q K^T": "Q and K in the scores", "K^T": "K in the scores Q K^T",
           "the scale 1/sqrt(d_k)": "the scale 1/sqrt(d_k)", "where the causal mask goes": "the causal mask",
           "where the boolean attn_mask goes": "the boolean attn_mask",
           "the causal mask's diagonal": "the causal mask's diagonal", "the causal mask": "the causal mask",
           "the causal triangle": "the causal mask",
           "the boolean attn_mask": "the boolean attn_mask", "the float attn_mask": "the float attn_mask",
           "the scores": "the scores", "what the weights average": "the output"},
    say={"Q and K in the scores Q K^T:swapped": "the scores are Q K^T (queries in rows, keys in columns), not K Q^T",
         "K^T:transposed": "the scores are Q K^T: transpose the keys (key.transpose(-2, -1))",
         "the scale 1/sqrt(d_k):missing": "scale the scores by 1/sqrt(d_k): softmax(Q K^T / sqrt(d_k)) V",
         "the scale 1/sqrt(d_k):1/d_k": "scale by 1/sqrt(d_k), not 1/d_k",
         "the scale 1/sqrt(d_k):1/sqrt(d_v)": "scale by 1/sqrt(d_k), with d_k the dimension of the queries and keys, "
                                              "not of the values",
         "the scale 1/sqrt(d_k):twice": "the scores are scaled twice: divide Q K^T by sqrt(d_k) once",
         "the scale 1/sqrt(d_k):inverted": "divide the scores by sqrt(d_k), do not multiply",
         "where the boolean attn_mask goes:after the softmax": "the mask must be applied before the softmax (set "
                                                               "masked scores to -inf, then softmax): zeroing weights "
                                                               "after the softmax leaves rows that no longer sum to 1",
         "where the causal mask goes:after the softmax": "the causal mask must be applied before the softmax (scores "
                                                         "above the diagonal to -inf, then softmax): zeroing weights "
                                                         "after the softmax leaves rows that no longer sum to 1",
         "the causal mask's diagonal:-1": "the causal mask hides the diagonal: position t may attend to itself and "
                                          "to earlier positions",
         "the causal mask's diagonal:+1": "the causal mask lets position t see position t+1: it may attend to "
                                          "positions 0..t only",
         "the causal triangle:upper triangle": "the causal mask is the wrong way round: position t may attend to "
                                           "positions <= t, not >= t",
         "the causal mask:*": "is_causal=True: position t may attend to positions 0..t (the lower triangle, "
                              "diagonal included); set the scores above the diagonal to -inf",
         "the boolean attn_mask:inverted": "the boolean mask is inverted: True means 'may attend' (as in "
                                           "F.scaled_dot_product_attention)",
         "the boolean attn_mask:zero": "masked scores are set to 0, which still gets weight after the softmax: set "
                                       "them to -inf",
         "the boolean attn_mask:ignored": "the boolean attn_mask is ignored: set the scores where it is False to -inf",
         "the float attn_mask:multiplied": "a float mask is added to the scores (before the softmax), not multiplied",
         "the float attn_mask:ignored": "the float attn_mask is ignored: add it to the scores before the softmax",
         "the float attn_mask:subtracted": "a float mask is added to the scores, not subtracted",
         "the scores:dim -2": "the softmax runs over the keys (the last dimension, each row of the score matrix sums "
                              "to 1), not over the queries",
         "the scores:missing": "the softmax is missing: the weights are softmax(Q K^T / sqrt(d_k))",
         "what the weights average:the keys K": "the output is weights @ V (the values), not weights @ K"})


def _mha(m, query, key, value, num_heads, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
         key_padding_mask=None):
    """multi_head_attention with mutation sites (batch_first=False)."""
    q_len, batch, embed = _t.size(query)
    k_len, hd = _t.size(key, 0), embed // num_heads
    w_q, w_k, w_v = m.chunk("in_proj_weight", in_proj_weight, 3, 0, names="qkv")
    b_q, b_k, b_v = m.chunk("in_proj_bias", in_proj_bias, 3, 0, names="qkv")

    def project(x, w, b):
        return _t.add(_t.matmul(x, m.transpose("W_q, W_k, W_v", _t.transpose(w, 0, 1))),
                      m.term("the in-projection bias", b))

    q, k, v = project(query, w_q, b_q), project(key, w_k, b_k), project(value, w_v, b_v)  # (L, N, E), (S, N, E)
    split = "(L, N, h, d) then heads next to the batch"
    straight = m.option("the head split", split, ("a reshape straight to (N, h, L, d)",)) != split

    def heads(x, length, which):
        if straight or m.option(f"the head split of {which}", split, ("a reshape straight to (N, h, L, d)",)) != split:
            return _t.reshape(_t.contiguous(x), (batch, num_heads, length, hd))  # mixes positions and sequences
        return _t.permute(_t.reshape(x, (length, batch, num_heads, hd)), (1, 2, 0, 3))  # (N, h, L, d)

    qh, kh, vh = heads(q, q_len, "q"), heads(k, k_len, "k"), heads(v, k_len, "v")
    scores = m.scale("the scale 1/sqrt(d_head)", _t.matmul(qh, _t.transpose(kh, -2, -1)), 1 / math.sqrt(hd),
                     {"1/sqrt(E)": 1 / math.sqrt(embed), "1/sqrt(num_heads)": 1 / math.sqrt(num_heads)})
    if key_padding_mask is not None:  # (N, S), True = padding
        scores = m.mask("key_padding_mask", scores, _t.logical_not(key_padding_mask[:, None, None, :]))
    weights = m.softmax("the scores", scores, -1)  # (N, h, L, S)
    ctx = _t.matmul(weights, vh)  # (N, h, L, d)
    merge = m.option("the head merge", "(N, h, L, d) -> (L, N, h, d) -> (L, N, E)",
                     ("(L, N, d, h): the head dimension last", "(N, L, E) reshaped to (L, N, E)"))
    if straight:
        ctx = _t.reshape(ctx, (q_len, batch, embed))
    elif merge == "(L, N, d, h): the head dimension last":
        ctx = _t.reshape(_t.permute(ctx, (2, 0, 3, 1)), (q_len, batch, embed))
    elif merge == "(N, L, E) reshaped to (L, N, E)":
        ctx = _t.reshape(_t.reshape(_t.transpose(ctx, 1, 2), (batch, q_len, embed)), (q_len, batch, embed))
    else:
        ctx = _t.reshape(_t.permute(ctx, (2, 0, 1, 3)), (q_len, batch, embed))  # (L, N, E)
    out = ctx
    if m.step("the output projection"):
        out = _t.add(_t.matmul(ctx, m.transpose("out_proj_weight", _t.transpose(out_proj_weight, 0, 1))),
                     m.term("out_proj_bias", out_proj_bias))
    return out, m.reduce("the attention weights over the heads", weights, 1, "mean")


MHA = Catalogue(
    "multi_head_attention", _mha, cells=("a4_mha_values", "a4_mha_key_padding"),
    about={"in_proj_weight": "in_proj_weight = [W_q; W_k; W_v]", "in_proj_bias": "in_proj_bias = [b_q; b_k; b_v]",
           "W_q, W_k, W_v": "W_q, W_k and W_v", "the in-projection bias": "the in-projection bias b_q, b_k, b_v",
           "the head split": "the head split", **{f"the head split of {w}": f"the head split of {w}" for w in "qkv"},
           "the scale 1/sqrt(d_head)": "the scale 1/sqrt(d_head)",
           "key_padding_mask": "key_padding_mask", "the scores": "the scores", "the head merge": "the head merge",
           "the output projection": "the output projection out_proj", "out_proj_weight": "out_proj_weight",
           "out_proj_bias": "out_proj_bias", "the attention weights over the heads": "the returned attention weights"},
    say={"in_proj_weight:as *": "in_proj_weight stacks W_q, W_k, W_v in this order in its rows "
                                "(in_proj_weight.chunk(3)); you read them as {order}",
         "in_proj_weight:*": "in_proj_weight (3E, E) stacks W_q, W_k, W_v along its rows: chunk(3) along dim 0",
         "in_proj_bias:as *": "in_proj_bias stacks b_q, b_k, b_v in this order; you read them as {order}",
         "W_q, W_k, W_v:transposed": "the in-projection weights are transposed: q = query @ W_q^T + b_q (torch.nn "
                                     "stores a weight as (out_features, in_features))",
         "the in-projection bias:missing": "the in-projection bias is missing: q = query @ W_q^T + b_q, and likewise "
                                           "for k and v (in_proj_bias = [b_q; b_k; b_v])",
         "the head split:a reshape straight to (N, h, L, d)": "the heads are split wrongly: reshape (L, N, E) to "
                                                              "(L, N, h, d_head) and move the head dimension next to "
                                                              "the batch before attending (each head sees all "
                                                              "positions of one sequence)",
         **{f"the head split of {w}:a reshape straight to (N, h, L, d)": f"the heads of {w} are split wrongly: "
            f"reshape (L, N, E) to (L, N, h, d_head) and move the head dimension next to the batch "
            f"(.permute(1, 2, 0, 3)) before attending" for w in "qkv"},
         "the scale 1/sqrt(d_head):1/sqrt(E)": "scale by 1/sqrt(d_head) with d_head = E / num_heads (each head "
                                               "attends in its own d_head dimensions)",
         "the scale 1/sqrt(d_head):missing": "scale the scores of each head by 1/sqrt(d_head)",
         "the scale 1/sqrt(d_head):twice": "the scores are scaled twice: divide by sqrt(d_head) once",
         "key_padding_mask:inverted": "key_padding_mask is True where a key is padding (the opposite of "
                                      "attn_mask's convention): mask those keys, attend to the others",
         "key_padding_mask:ignored": "key_padding_mask is ignored: the padding keys must get weight 0",
         "key_padding_mask:zero": "padding keys get a score of 0, which still gets weight after the softmax: set "
                                  "them to -inf",
         "the head merge:(L, N, d, h): the head dimension last": "the heads are merged in the wrong order: "
                                                                 "(N, h, L, d_head) -> (L, N, h, d_head) -> "
                                                                 "(L, N, E) puts each head's d_head values side by "
                                                                 "side",
         "the head merge:(N, L, E) reshaped to (L, N, E)": "the heads are merged into (N, L, E) and reshaped to "
                                                           "(L, N, E) without moving the batch dimension: permute to "
                                                           "(L, N, h, d_head), then reshape",
         "the output projection:missing": "the output projection out_proj is missing: concatenate the heads, then "
                                          "apply out_proj_weight/bias",
         "out_proj_weight:transposed": "out_proj_weight is transposed: out = concat @ out_proj_weight^T + "
                                       "out_proj_bias",
         "out_proj_bias:missing": "out_proj_bias is missing: out = concat @ out_proj_weight^T + out_proj_bias",
         "the attention weights over the heads:sum": "the returned attention weights are averaged over the heads "
                                                     "(nn.MultiheadAttention's default), not summed",
         "the scores:dim -2": "the softmax runs over the keys (the last dimension), not over the queries"})


def _additive(m, query, keys, values, w_q, w_k, w_v, mask=None):
    """additive_attention with mutation sites."""
    q = m.term("W_q q", _t.unsqueeze(_t.matmul(query, m.transpose("W_q", _t.transpose(w_q, 0, 1))), 1))  # (N, 1, A)
    k = m.term("W_k k_j", _t.matmul(keys, m.transpose("W_k", _t.transpose(w_k, 0, 1))))  # (N, S, A)
    scores = _t.matmul(m.apply("the tanh", "tanh", _t.add(q, k)), w_v)  # (N, S)
    if mask is not None:
        scores = m.mask("mask", scores, mask)
    weights = m.softmax("the scores e_j", scores, -1)  # (N, S)
    context = m.reduce("the context", _t.mul(_t.unsqueeze(weights, -1), values), 1, "sum")  # (N, D_v)
    returned = m.option("the returned weights", "alpha (after the softmax)", ("the scores e (before the softmax)",))
    return context, (scores if returned != "alpha (after the softmax)" else weights)


ADDITIVE = Catalogue(
    "additive_attention", _additive, cells=("a4_additive_values", "a4_additive_mask"),
    about={"W_q q": "W_q q", "W_k k_j": "W_k k_j", "W_q": "W_q", "W_k": "W_k", "the tanh": "e_j = w_v . tanh(...)",
           "mask": "the mask", "the scores e_j": "the scores e_j", "the context": "the context",
           "the returned weights": "the returned weights"},
    say={"the tanh:identity": "the tanh is missing: e_j = w_v . tanh(W_q q + W_k k_j)",
         "the tanh:*": "e_j = w_v . tanh(W_q q + W_k k_j): the scoring network uses tanh, not {label}",
         "the scores e_j:dim -2": "the softmax runs over the source positions j (dim=-1), not over the batch",
         "the scores e_j:missing": "the softmax is missing: alpha = softmax_j(e)",
         "the returned weights:the scores e (before the softmax)": "you returned the scores before the softmax as the "
                                                                   "weights; alpha = softmax(e)",
         "the context:mean": "the context is the weighted sum sum_j alpha_j v_j (the weights already sum to 1), not "
                             "a mean",
         "the context:*": "the context sums alpha_j v_j over the source positions j (dim=1)",
         "mask:inverted": "mask is True for real tokens: padding positions (False) get weight 0",
         "mask:ignored": "the mask is ignored: padding positions must get weight 0",
         "mask:zero": "padding positions get a score of 0, which still gets weight after the softmax: set them to "
                      "-inf",
         "W_q:transposed": "W_q is transposed: W_q q is query @ w_q.T (w_q is (A, D_q))",
         "W_k:transposed": "W_k is transposed: W_k k_j is keys @ w_k.T (w_k is (A, D_k))",
         "W_q q:missing": "the query term W_q q is missing from the scores",
         "W_k k_j:missing": "the key term W_k k_j is missing from the scores"})


CATALOGUES = {c.name: c for c in (SDPA, MHA, ADDITIVE)}


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

__all__ = ["CATALOGUES", "DEMO_BUGS", "REFERENCES", "masked_from_own"]


seal(__name__)
