"""seqlib.attention, seqlib.normalization, seqlib.positional against torch.nn (C16-C23).

Every test builds the torch twin, copies the same weights into seqlib's module (or lets the same seed
initialise both), and compares outputs and gradients of the inputs and of every parameter.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import seqlib
from seqlib.attention import AdditiveAttention, MultiheadAttention, attention_weights, causal_mask
from seqlib.attention import scaled_dot_product_attention as sdpa
from seqlib.normalization import LayerNorm
from seqlib.positional import PositionalEncoding

pytestmark = pytest.mark.part3



DTYPES = [torch.float64, torch.float32]


def tol(dtype: torch.dtype) -> dict:
    return {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}


def leaves(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def weighted_sum(t: torch.Tensor) -> torch.Tensor:
    """A loss whose gradient differs per element (a plain sum hides permutation bugs)."""
    w = torch.linspace(-1.0, 2.0, t.numel(), dtype=t.dtype).view_as(t)
    return (t.nan_to_num() * w).sum()


# ----------------------------------------------------------------------------------------------------------------
# scaled dot-product attention
# ----------------------------------------------------------------------------------------------------------------

def _mask(kind: str, shape: tuple[int, ...], dtype: torch.dtype, g: torch.Generator) -> torch.Tensor | None:
    """Masks that keep at least one key per query (the first), so every row is defined."""
    if kind == "none":
        return None
    keep = torch.rand(shape, generator=g) > 0.4
    keep[..., 0] = True
    if kind == "bool":
        return keep
    return torch.randn(shape, generator=g, dtype=dtype).masked_fill(~keep, float("-inf"))  # float


SDPA_CASES = [
    # (q batch, k batch, L, S, mask kind, mask shape ("LS" = (L, S), "full" = (*batch, L, S)), is_causal, scale)
    ((2, 3), (2, 3), 4, 5, "none", None, False, None),
    ((2, 3), (2, 3), 4, 5, "bool", "LS", False, None),
    ((2, 3), (2, 3), 4, 5, "bool", "full", False, None),
    ((2, 3), (2, 3), 4, 5, "float", "LS", False, 0.3),
    ((2, 3), (2, 3), 4, 5, "float", "full", False, None),
    ((2,), (2,), 5, 5, "none", None, True, None),
    ((2,), (2,), 4, 6, "none", None, True, None),  # L < S: top-left aligned
    ((2,), (2,), 6, 4, "none", None, True, None),  # L > S
    ((2, 1), (1, 3), 3, 4, "bool", "LS", False, None),  # broadcast batch/head dims
    ((), (), 3, 4, "float", "LS", False, None),  # unbatched (L, E)
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("qb,kb,L,S,kind,mshape,is_causal,scale", SDPA_CASES)
def test_sdpa_matches_torch(dtype, qb, kb, L, S, kind, mshape, is_causal, scale):
    g = torch.Generator().manual_seed(0)
    E, Ev = 6, 7
    q = torch.randn(*qb, L, E, generator=g, dtype=dtype)
    k = torch.randn(*kb, S, E, generator=g, dtype=dtype)
    v = torch.randn(*kb, S, Ev, generator=g, dtype=dtype)
    batch = torch.broadcast_shapes(qb, kb)
    mask = _mask(kind, (L, S) if mshape == "LS" else (*batch, L, S), dtype, g)
    outs, grads = [], []
    for fn in (F.scaled_dot_product_attention, sdpa):
        args = leaves(q, k, v)
        out = fn(*args, attn_mask=mask, is_causal=is_causal, scale=scale)
        weighted_sum(out).backward()
        outs.append(out)
        grads.append([a.grad for a in args])
    assert outs[1].shape == (*batch, L, Ev)
    torch.testing.assert_close(outs[1], outs[0], **tol(dtype))
    for ours, theirs in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(ours, theirs, **tol(dtype))


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows_are_zero_like_torch(kind):
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64) for _ in range(3))
    keep = torch.ones(3, 4, 4, dtype=torch.bool)
    keep[1, 2] = False  # head 1, query 2 sees nothing
    mask = keep if kind == "bool" else torch.zeros(3, 4, 4, dtype=torch.float64).masked_fill(~keep, float("-inf"))
    results = []
    for fn in (F.scaled_dot_product_attention, sdpa):
        args = leaves(q, k, v)
        out = fn(*args, attn_mask=mask)
        weighted_sum(out).backward()
        results.append((out, [a.grad for a in args]))
    (ours, ours_g), (theirs, theirs_g) = results[1], results[0]
    assert torch.equal(theirs[:, 1, 2], torch.zeros_like(theirs[:, 1, 2]))  # what torch 2.13 does
    torch.testing.assert_close(ours, theirs)
    for a, b in zip(ours_g, theirs_g, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b)
    w = attention_weights(q, k, attn_mask=mask)
    assert torch.equal(w[:, 1, 2], torch.zeros(2, 4, dtype=torch.float64))


def test_attention_weights_is_the_softmax_matrix():
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(2, 4, 3, 8, generator=g), torch.randn(2, 4, 5, 8, generator=g)
    w = attention_weights(q, k)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 3))
    # value = identity turns torch's output into its weight matrix
    eye = torch.eye(5).expand(2, 4, 5, 5)
    torch.testing.assert_close(attention_weights(q, k, is_causal=True),
                               F.scaled_dot_product_attention(q, k, eye, is_causal=True))


@pytest.mark.parametrize("L,S", [(4, 4), (3, 6), (6, 3)])
def test_causal_mask_matches_is_causal(L, S):
    m = causal_mask(L, S)
    assert m.dtype == torch.bool and m.shape == (L, S)
    assert torch.equal(m, torch.ones(L, S, dtype=torch.bool).tril())
    q, k, v = torch.randn(L, 4), torch.randn(S, 4), torch.randn(S, 2)
    torch.testing.assert_close(sdpa(q, k, v, attn_mask=m), F.scaled_dot_product_attention(q, k, v, is_causal=True))
    # MultiheadAttention's convention is the opposite: the same pattern is ~causal_mask
    assert torch.equal(~causal_mask(L), seqlib.Transformer.generate_square_subsequent_mask(L).isinf())


def test_sdpa_dropout_scales_kept_weights():
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(3, 4, 6, generator=g), torch.randn(3, 5, 6, generator=g)
    eye = torch.eye(5).expand(3, 5, 5)  # output = (dropped) weights
    torch.manual_seed(0)
    dropped = sdpa(q, k, eye, dropout_p=0.5)
    w = attention_weights(q, k)
    kept = dropped != 0
    assert 0 < kept.sum() < kept.numel()
    torch.testing.assert_close(dropped[kept], (w / 0.5)[kept])
    assert torch.equal(sdpa(q, k, eye, dropout_p=1.0), torch.zeros(3, 4, 5))


@settings(max_examples=15, deadline=None)
@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2), L=st.integers(1, 5), S=st.integers(1, 5),
       E=st.integers(1, 6), causal=st.booleans(), seed=st.integers(0, 2**16))
def test_sdpa_shapes_property(batch, L, S, E, causal, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*batch, L, E, generator=g, dtype=torch.float64)
    k = torch.randn(*batch, S, E, generator=g, dtype=torch.float64)
    v = torch.randn(*batch, S, 3, generator=g, dtype=torch.float64)
    mask = None if causal else torch.rand(L, S, generator=g) > 0.5  # may fully mask rows
    ours = sdpa(q, k, v, attn_mask=mask, is_causal=causal)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    torch.testing.assert_close(ours, theirs, **tol(torch.float64))


def test_sdpa_bad_input():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    with pytest.raises(ValueError, match=r"not both"):
        sdpa(q, k, v, attn_mask=causal_mask(3, 5), is_causal=True)
    with pytest.raises(ValueError, match=r"attn_mask must broadcast.*\(2, 3, 5\).*\(3, 4\)"):
        sdpa(q, k, v, attn_mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"attn_mask must be a bool tensor or a float tensor.*torch.int64"):
        sdpa(q, k, v, attn_mask=torch.ones(3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"key must have shape \(\.\.\., S, E\) with E = .* = 4"):
        sdpa(q, torch.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match=r"value must have shape .* S = key.size\(-2\) = 5"):
        sdpa(q, k, torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match=r"must broadcast"):
        sdpa(torch.randn(3, 3, 4), k, v)
    with pytest.raises(TypeError, match=r"query must be a torch.Tensor"):
        sdpa([[1.0]], k, v)
    with pytest.raises(TypeError, match=r"key has dtype torch.float64 but query has dtype torch.float32"):
        sdpa(q, k.double(), v)
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\]"):
        sdpa(q, k, v, dropout_p=1.5)


# ----------------------------------------------------------------------------------------------------------------
# additive attention
# ----------------------------------------------------------------------------------------------------------------

def _additive_reference(attn: AdditiveAttention, q, keys, values, pad=None):
    """The Bahdanau formula written with einsum, independently of the module's code."""
    W_q, W_k, v = attn.query_proj.weight, attn.key_proj.weight, attn.v.weight[0]
    qq = q if q.dim() == 3 else q.unsqueeze(1)
    hidden = torch.tanh(torch.einsum("ah,nlh->nla", W_q, qq)[:, :, None, :]
                        + torch.einsum("ah,nsh->nsa", W_k, keys)[:, None, :, :])  # (N, L, S, A)
    e = torch.einsum("a,nlsa->nls", v, hidden)
    if pad is not None:
        e = e.masked_fill(pad[:, None, :], float("-inf"))
    alpha = torch.softmax(e, dim=-1)
    c = torch.einsum("nls,nsh->nlh", alpha, values)
    return (c, alpha) if q.dim() == 3 else (c[:, 0], alpha[:, 0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("query_rank", [2, 3])
@pytest.mark.parametrize("padded", [False, True])
def test_additive_attention_matches_formula(dtype, query_rank, padded):
    torch.manual_seed(4)
    attn = AdditiveAttention(query_size=5, key_size=6, hidden_size=4).to(dtype)
    N, L, S = 3, 2, 7
    q = torch.randn(N, L, 5, dtype=dtype) if query_rank == 3 else torch.randn(N, 5, dtype=dtype)
    keys, values = torch.randn(N, S, 6, dtype=dtype), torch.randn(N, S, 3, dtype=dtype)
    pad = (torch.arange(S) >= torch.tensor([7, 4, 1])[:, None]) if padded else None  # lengths 7, 4, 1
    ctx, w = attn(q, keys, values, key_padding_mask=pad)
    ref_ctx, ref_w = _additive_reference(attn, q, keys, values, pad)
    torch.testing.assert_close(ctx, ref_ctx, **tol(dtype))
    torch.testing.assert_close(w, ref_w, **tol(dtype))
    assert ctx.shape == ((N, L, 3) if query_rank == 3 else (N, 3))
    if padded:
        assert torch.all(w[..., 4:][1] == 0) and torch.all(w[..., 1:][2] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), **tol(dtype))
    # projected keys computed once give the same result
    ctx2, _ = attn(q, keys, values, key_padding_mask=pad, projected_keys=attn.key_proj(keys))
    torch.testing.assert_close(ctx2, ctx)


def test_additive_attention_gradcheck():
    torch.manual_seed(5)
    attn = AdditiveAttention(3, 4, 5).double()
    q = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    values = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    pad = torch.tensor([[False, False, True, True], [False] * 4])
    assert torch.autograd.gradcheck(lambda a, b, c: attn(a, b, c, key_padding_mask=pad), (q, keys, values))
    names = [n for n, _ in attn.named_parameters()]
    weights = tuple(p.detach().clone().requires_grad_(True) for p in attn.parameters())

    def by_params(*ws):
        return torch.func.functional_call(attn, dict(zip(names, ws, strict=True)),
                                          (q.detach(), keys.detach(), values.detach(), pad))

    assert torch.autograd.gradcheck(by_params, weights)


def test_additive_attention_bad_input():
    attn = AdditiveAttention(3, 4, 5)
    keys = torch.randn(2, 6, 4)
    with pytest.raises(ValueError, match=r"keys must have shape \(N, S, H_k\) with H_k = key_size = 4"):
        attn(torch.randn(2, 3), torch.randn(2, 6, 5), keys)
    with pytest.raises(ValueError, match=r"query must have H_q = query_size = 3"):
        attn(torch.randn(2, 2), keys, keys)
    with pytest.raises(TypeError, match=r"key_padding_mask must be a bool tensor \(True = padded\)"):
        attn(torch.randn(2, 3), keys, keys, key_padding_mask=torch.zeros(2, 6))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(N, S\) = \(2, 6\)"):
        attn(torch.randn(2, 3), keys, keys, key_padding_mask=torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"must agree on N and S"):
        attn(torch.randn(3, 3), keys, keys)


# ----------------------------------------------------------------------------------------------------------------
# multi-head attention
# ----------------------------------------------------------------------------------------------------------------

def _mha_pair(dtype=torch.float64, **cfg) -> tuple[nn.MultiheadAttention, MultiheadAttention]:
    """torch's and seqlib's module with the same seed: their initial weights must be identical."""
    torch.manual_seed(7)
    theirs = nn.MultiheadAttention(**cfg, dtype=dtype)
    torch.manual_seed(7)
    ours = MultiheadAttention(**cfg, dtype=dtype)
    sd_t, sd_o = theirs.state_dict(), ours.state_dict()
    assert list(sd_t) == list(sd_o)
    for name in sd_t:
        assert torch.equal(sd_t[name], sd_o[name]), f"initialisation of {name} differs from torch's"
    return theirs, ours


def _run_mha(module, q, k, v, self_attention: bool, **kw):
    q, k, v = leaves(q, k, v)
    args = (q, q, q) if self_attention else (q, k, v)
    out, w = module(*args, **kw)
    loss = weighted_sum(out) + (0 if w is None else weighted_sum(w))
    loss.backward()
    grads = [q.grad] if self_attention else [q.grad, k.grad, v.grad]
    return out, w, grads, {n: p.grad for n, p in module.named_parameters()}


def _assert_mha_equal(theirs, ours, q, k, v, dtype, self_attention=False, **kw):
    rt, ro = (_run_mha(m, q, k, v, self_attention, **kw) for m in (theirs, ours))
    t = tol(dtype)
    torch.testing.assert_close(ro[0], rt[0], equal_nan=True, **t)
    if rt[1] is None:
        assert ro[1] is None
    else:
        assert ro[1].shape == rt[1].shape
        torch.testing.assert_close(ro[1], rt[1], equal_nan=True, **t)
    for a, b in zip(ro[2], rt[2], strict=True):
        torch.testing.assert_close(a, b, equal_nan=True, **t)
    assert rt[3].keys() == ro[3].keys()
    for name in rt[3]:
        torch.testing.assert_close(ro[3][name], rt[3][name], equal_nan=True, msg=name, **t)


MHA_CONFIGS = [
    {},
    {"batch_first": True},
    {"bias": False},
    {"add_bias_kv": True},
    {"add_zero_attn": True},
    {"add_bias_kv": True, "add_zero_attn": True, "batch_first": True},
    {"kdim": 5, "vdim": 3},
    {"kdim": 5, "vdim": 3, "batch_first": True, "bias": False},
]
MASKS = ["none", "bool2d", "float2d", "bool3d", "float3d", "kpm_bool", "kpm_float", "both_bool", "mixed"]


def _mha_masks(kind: str, N: int, h: int, L: int, S: int, dtype, g) -> dict:
    keep_first = torch.zeros(L, S, dtype=torch.bool)
    keep_first[:, 0] = True

    def bool_mask(*shape):  # True = masked out, but never key 0
        return (torch.rand(*shape, generator=g) < 0.4) & ~keep_first

    def float_mask(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype).masked_fill(bool_mask(*shape), float("-inf"))

    pad = torch.rand(N, S, generator=g) < 0.3
    pad[:, 0] = False
    return {
        "none": {},
        "bool2d": {"attn_mask": bool_mask(L, S)},
        "float2d": {"attn_mask": float_mask(L, S)},
        "bool3d": {"attn_mask": bool_mask(N * h, L, S)},
        "float3d": {"attn_mask": float_mask(N * h, L, S)},
        "kpm_bool": {"key_padding_mask": pad},
        "kpm_float": {"key_padding_mask": torch.zeros(N, S, dtype=dtype).masked_fill(pad, float("-inf"))},
        "both_bool": {"attn_mask": bool_mask(L, S), "key_padding_mask": pad},
        "mixed": {"attn_mask": float_mask(N * h, L, S), "key_padding_mask": pad},
    }[kind]


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask and attn_mask is deprecated")
@pytest.mark.parametrize("cfg", MHA_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
@pytest.mark.parametrize("mask", MASKS)
def test_mha_matches_torch_float64(cfg, mask):
    E, h, N, L, S = 8, 2, 3, 4, 5
    theirs, ours = _mha_pair(embed_dim=E, num_heads=h, **cfg)
    g = torch.Generator().manual_seed(MASKS.index(mask))
    bf = cfg.get("batch_first", False)
    shape = (lambda n, l, e: (n, l, e)) if bf else (lambda n, l, e: (l, n, e))
    q = torch.randn(shape(N, L, E), generator=g, dtype=torch.float64)
    k = torch.randn(shape(N, S, cfg.get("kdim", E)), generator=g, dtype=torch.float64)
    v = torch.randn(shape(N, S, cfg.get("vdim", E)), generator=g, dtype=torch.float64)
    kw = _mha_masks(mask, N, h, L, S, torch.float64, g)
    for need_weights, average in [(True, True), (True, False), (False, True)]:
        _assert_mha_equal(theirs, ours, q, k, v, torch.float64, need_weights=need_weights,
                          average_attn_weights=average, **kw)


@pytest.mark.parametrize("cfg", [{}, {"batch_first": True}, {"add_bias_kv": True, "add_zero_attn": True}])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_self_attention_causal_float32(cfg, need_weights):
    E, h, N, L = 16, 4, 2, 6
    theirs, ours = _mha_pair(torch.float32, embed_dim=E, num_heads=h, **cfg)
    q = torch.randn((N, L, E) if cfg.get("batch_first") else (L, N, E))
    mask = seqlib.Transformer.generate_square_subsequent_mask(L)
    _assert_mha_equal(theirs, ours, q, q, q, torch.float32, self_attention=True, attn_mask=mask, is_causal=True,
                      need_weights=need_weights)
    _assert_mha_equal(theirs, ours, q, q, q, torch.float32, self_attention=True, attn_mask=~causal_mask(L),
                      need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_key_is_value(need_weights):
    theirs, ours = _mha_pair(embed_dim=8, num_heads=4)
    q, kv = torch.randn(3, 2, 8, dtype=torch.float64), torch.randn(5, 2, 8, dtype=torch.float64)
    outs = []
    for m in (theirs, ours):
        a, b = leaves(q, kv)
        out = m(a, b, b, need_weights=need_weights)[0]
        weighted_sum(out).backward()
        outs.append((out, a.grad, b.grad, m.in_proj_weight.grad))
    for x, y in zip(*outs, strict=True):
        torch.testing.assert_close(y, x)


@pytest.mark.parametrize("cfg", [{}, {"add_bias_kv": True}, {"kdim": 3, "vdim": 5}])
@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_unbatched(cfg, batch_first):
    E, h, L, S = 8, 2, 3, 4
    theirs, ours = _mha_pair(embed_dim=E, num_heads=h, batch_first=batch_first, **cfg)
    g = torch.Generator().manual_seed(8)
    q = torch.randn(L, E, generator=g, dtype=torch.float64)
    k = torch.randn(S, cfg.get("kdim", E), generator=g, dtype=torch.float64)
    v = torch.randn(S, cfg.get("vdim", E), generator=g, dtype=torch.float64)
    pad = torch.tensor([False, False, True, False])
    mask3 = torch.rand(h, L, S, generator=g) < 0.3
    mask3[..., 0] = False
    for kw in [{}, {"key_padding_mask": pad}, {"attn_mask": mask3}, {"attn_mask": mask3, "need_weights": False},
               {"average_attn_weights": False}]:
        _assert_mha_equal(theirs, ours, q, k, v, torch.float64, **kw)
    out, w = ours(q, k, v, average_attn_weights=False)
    assert out.shape == (L, E) and w.shape == (h, L, S + cfg.get("add_bias_kv", 0))


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_fully_masked_query_as_torch(need_weights):
    """torch: NaN with need_weights=True (plain softmax), zeros with need_weights=False (SDPA)."""
    theirs, ours = _mha_pair(embed_dim=8, num_heads=2)
    q = torch.randn(3, 2, 8, dtype=torch.float64)
    pad = torch.tensor([[True, True, True, True], [False, True, False, False]])
    k = torch.randn(4, 2, 8, dtype=torch.float64)
    _assert_mha_equal(theirs, ours, q, k, k.clone(), torch.float64, key_padding_mask=pad, need_weights=need_weights)
    out = ours(q, k, k, key_padding_mask=pad, need_weights=need_weights)[0]
    assert torch.isnan(out[:, 0]).all() == need_weights
    assert torch.isfinite(out[:, 1]).all()


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_eval_mode_with_dropout(batch_first):
    """Dropout is off in eval mode; under no_grad torch also takes its fused "fast path" (batch_first)."""
    theirs, ours = _mha_pair(torch.float32, embed_dim=16, num_heads=4, dropout=0.5, batch_first=batch_first)
    theirs.eval(), ours.eval()
    x = torch.randn(3, 5, 16)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True], [False] * 4 + [True]])
    if not batch_first:
        x = x.transpose(0, 1)
    with torch.no_grad():
        for kw in [{}, {"key_padding_mask": pad}, {"need_weights": False, "attn_mask": ~causal_mask(5)}]:
            a, wa = theirs(x, x, x, **kw)
            b, wb = ours(x, x, x, **kw)
            torch.testing.assert_close(b, a, **tol(torch.float32))
            if wa is not None:
                torch.testing.assert_close(wb, wa, **tol(torch.float32))
    ours.train()
    torch.manual_seed(0)
    out_train = ours(x, x, x, need_weights=False)[0]
    assert not torch.allclose(out_train, ours.eval()(x, x, x, need_weights=False)[0])


def test_mha_training_weights_are_the_ones_applied():
    """With dropout in training mode the returned per-head weights are those that multiplied the values (torch)."""
    torch.manual_seed(0)
    mha = MultiheadAttention(8, 2, dropout=0.5, batch_first=True).double().train()
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    out, w = mha(x, x, x, average_attn_weights=False)  # w: (N, h, L, S)
    assert (w == 0).any()
    v = F.linear(x, mha.in_proj_weight[16:], mha.in_proj_bias[16:]).view(3, 5, 2, 4).transpose(1, 2)  # (N, h, S, hd)
    heads = (w @ v).transpose(1, 2).reshape(3, 5, 8)  # (N, L, E)
    torch.testing.assert_close(out, mha.out_proj(heads))


@pytest.mark.parametrize("cfg", MHA_CONFIGS[:1] + MHA_CONFIGS[2:])
def test_mha_state_dict_loads_both_ways(cfg):
    theirs = nn.MultiheadAttention(8, 2, **cfg)
    ours = MultiheadAttention(8, 2, **cfg)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    for (n1, p1), (n2, p2) in zip(theirs.state_dict().items(), ours.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    fresh = nn.MultiheadAttention(8, 2, **cfg)
    fresh.load_state_dict(MultiheadAttention(8, 2, **cfg).state_dict(), strict=True)


@settings(max_examples=12, deadline=None)
@given(N=st.integers(1, 3), L=st.integers(1, 5), S=st.integers(1, 5), h=st.sampled_from([1, 2, 4]),
       head_dim=st.integers(1, 3), batch_first=st.booleans(), need_weights=st.booleans(), seed=st.integers(0, 999))
def test_mha_shapes_property(N, L, S, h, head_dim, batch_first, need_weights, seed):
    E = h * head_dim
    theirs, ours = _mha_pair(embed_dim=E, num_heads=h, batch_first=batch_first)
    g = torch.Generator().manual_seed(seed)
    shape = (lambda n, l: (n, l, E)) if batch_first else (lambda n, l: (l, n, E))
    q = torch.randn(shape(N, L), generator=g, dtype=torch.float64)
    k = torch.randn(shape(N, S), generator=g, dtype=torch.float64)
    mask = torch.rand(L, S, generator=g) < 0.5  # may mask whole rows: NaN/zeros must match torch too
    _assert_mha_equal(theirs, ours, q, k, k.clone(), torch.float64, attn_mask=mask, need_weights=need_weights)


def test_mha_bad_input():
    with pytest.raises(ValueError, match=r"embed_dim must be divisible by num_heads.*embed_dim=10 and num_heads=4"):
        MultiheadAttention(10, 4)
    with pytest.raises(TypeError, match=r"num_heads must be an int"):
        MultiheadAttention(8, 2.0)
    mha = MultiheadAttention(8, 2)
    x = torch.randn(4, 3, 8)  # (L, N, E)
    with pytest.raises(ValueError, match=r"query must have E = embed_dim = 8 .* got shape \(4, 3, 6\)"):
        mha(torch.randn(4, 3, 6), x, x)
    with pytest.raises(ValueError, match=r"key must be 3-D like query"):
        mha(x, x[:, 0], x)
    with pytest.raises(ValueError, match=r"same batch size N"):
        mha(x, torch.randn(4, 2, 8), torch.randn(4, 2, 8))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(N, S\) = \(3, 4\).*\(4, 3\)"):
        mha(x, x, x, key_padding_mask=torch.zeros(4, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"key_padding_mask must be a bool tensor or a float tensor"):
        mha(x, x, x, key_padding_mask=torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(L, S\) or \(N\*num_heads, L, S\) = "
                                         r"\(4, 4\) or \(6, 4, 4\).*\(3, 4, 4\)"):
        mha(x, x, x, attn_mask=torch.zeros(3, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"is_causal=True is only a hint.*attn_mask must be given"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(TypeError, match=r"query has dtype torch.float64 but the module's weights have dtype"):
        mha(x.double(), x.double(), x.double())
    with pytest.raises(ValueError, match=r"query must have shape \(L, N, E\)"):
        mha(torch.randn(8), x, x)


# ----------------------------------------------------------------------------------------------------------------
# layer norm
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kw", [(8, {}), ((3, 8), {}), (8, {"bias": False}),
                                      (8, {"elementwise_affine": False}), (8, {"eps": 1e-2})])
def test_layer_norm_matches_torch(dtype, shape, kw):
    theirs = nn.LayerNorm(shape, dtype=dtype, **kw)
    ours = LayerNorm(shape, dtype=dtype, **kw)
    with torch.no_grad():  # make gamma/beta non-trivial, then copy
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p))
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x0 = torch.randn(2, 5, 3, 8, dtype=dtype) * 3 + 2
    outs = []
    for m in (theirs, ours):
        (x,) = leaves(x0)
        y = m(x)
        weighted_sum(y).backward()
        outs.append((y, x.grad, [p.grad for p in m.parameters()]))
    torch.testing.assert_close(outs[1][0], outs[0][0], **tol(dtype))
    torch.testing.assert_close(outs[1][1], outs[0][1], **tol(dtype))
    for a, b in zip(outs[1][2], outs[0][2], strict=True):
        torch.testing.assert_close(a, b, **tol(dtype))


def test_layer_norm_bad_input():
    with pytest.raises(ValueError, match=r"input must have shape \(\*, 8\).*got shape \(2, 7\)"):
        LayerNorm(8)(torch.randn(2, 7))
    with pytest.raises(TypeError, match=r"normalized_shape must be a positive int"):
        LayerNorm(0)
    with pytest.raises(TypeError, match=r"floating-point"):
        LayerNorm(3)(torch.ones(2, 3, dtype=torch.long))


# ----------------------------------------------------------------------------------------------------------------
# positional encoding
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("d_model", [6, 7])
def test_positional_encoding_formula(d_model):
    pos = PositionalEncoding(d_model, max_len=50)
    pe = pos.pe
    assert pe.shape == (50, d_model)
    for p in (0, 1, 17, 49):
        for i in range(d_model):
            angle = p / 10000 ** ((i - i % 2) / d_model)
            expected = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert abs(pe[p, i].item() - expected) < 1e-6, (p, i)
    assert "pe" not in pos.state_dict()  # non-persistent buffer
    pos.load_state_dict(PositionalEncoding(d_model, max_len=10).state_dict(), strict=True)
    assert pos.double().pe.dtype == torch.float64  # moves with the module


@pytest.mark.parametrize("batch_first", [False, True])
def test_positional_encoding_adds_table(batch_first):
    pos = PositionalEncoding(4, max_len=20, batch_first=batch_first)
    x = torch.randn(3, 9, 4) if batch_first else torch.randn(9, 3, 4)
    out = pos(x)
    table = pos.pe[:9]
    expected = x + (table[None] if batch_first else table[:, None])
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(pos(x[0] if batch_first else x[:, 0]), expected[0] if batch_first else expected[:, 0])
    assert pos(torch.zeros(9, 4, dtype=torch.float64)).dtype == torch.float64
    drop = PositionalEncoding(4, dropout=0.5).train()
    assert (drop(torch.zeros(9, 3, 4)) == 0).any()


def test_positional_encoding_bad_input():
    pos = PositionalEncoding(4, max_len=8, batch_first=True)
    with pytest.raises(ValueError, match=r"L = 9 positions but the table covers max_len = 8"):
        pos(torch.zeros(2, 9, 4))
    with pytest.raises(ValueError, match=r"E = d_model = 4"):
        pos(torch.zeros(2, 3, 5))
    with pytest.raises(TypeError, match=r"embed token indices first"):
        pos(torch.zeros(2, 3, 4, dtype=torch.long))


def test_exports():
    for name in ["scaled_dot_product_attention", "attention_weights", "causal_mask", "AdditiveAttention",
                 "MultiheadAttention", "LayerNorm", "PositionalEncoding"]:
        assert getattr(seqlib, name) is not None
