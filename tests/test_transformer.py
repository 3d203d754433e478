"""seqlib.transformer against torch.nn's Transformer layers and stacks (C24-C26).

Same seed -> identical initial weights; then outputs and the gradients of inputs and every parameter must
agree, for post-/pre-norm, batch-first or not, relu/gelu/callable activations, with and without biases and masks.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import seqlib
from seqlib.attention import causal_mask
from seqlib.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

pytestmark = [pytest.mark.part3, pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage")]



DTYPES = [torch.float64, torch.float32]


def tol(dtype: torch.dtype) -> dict:
    return {"rtol": 1e-9, "atol": 1e-11} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 2e-5}


def weighted_sum(t: torch.Tensor) -> torch.Tensor:
    w = torch.linspace(-1.0, 2.0, t.numel(), dtype=t.dtype).view_as(t)
    return (t * w).sum()


def twins(torch_cls, our_cls, *args, **kwargs):
    """Build both with the same seed and check that the initial state_dicts are identical."""
    torch.manual_seed(11)
    theirs = torch_cls(*args, **kwargs)
    torch.manual_seed(11)
    ours = our_cls(*args, **kwargs)
    sd_t, sd_o = theirs.state_dict(), ours.state_dict()
    assert list(sd_t) == list(sd_o)
    for name in sd_t:
        assert torch.equal(sd_t[name], sd_o[name]), f"initial {name} differs from torch's"
    return theirs, ours


def compare(theirs, ours, inputs: list[torch.Tensor], dtype, **kw):
    results = []
    for m in (theirs, ours):
        xs = [x.detach().clone().requires_grad_(True) for x in inputs]
        out = m(*xs, **kw)
        weighted_sum(out).backward()
        results.append((out, [x.grad for x in xs], {n: p.grad for n, p in m.named_parameters()}))
    (out_t, gx_t, gp_t), (out_o, gx_o, gp_o) = results
    torch.testing.assert_close(out_o, out_t, **tol(dtype))
    for a, b in zip(gx_o, gx_t, strict=True):
        torch.testing.assert_close(a, b, **tol(dtype))
    assert gp_t.keys() == gp_o.keys()
    for name in gp_t:
        torch.testing.assert_close(gp_o[name], gp_t[name], msg=name, **tol(dtype))


def seq(N, L, E, batch_first, dtype, g):
    return torch.randn((N, L, E) if batch_first else (L, N, E), generator=g, dtype=dtype)


LAYER_CONFIGS = [
    {},
    {"norm_first": True},
    {"batch_first": True, "activation": "gelu"},
    {"batch_first": True, "norm_first": True, "bias": False},
    {"activation": F.silu, "layer_norm_eps": 1e-3},
]


def cfg_id(c):
    return ",".join(f"{k}={getattr(v, '__name__', v)}" for k, v in c.items()) or "default"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", LAYER_CONFIGS, ids=cfg_id)
def test_encoder_layer_matches_torch(cfg, dtype):
    E, h, N, L = 8, 2, 3, 5
    theirs, ours = twins(nn.TransformerEncoderLayer, TransformerEncoderLayer, E, h, 16, 0.0, dtype=dtype, **cfg)
    g = torch.Generator().manual_seed(0)
    x = seq(N, L, E, cfg.get("batch_first", False), dtype, g)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True], [False] * 4 + [True]])
    compare(theirs, ours, [x], dtype)
    compare(theirs, ours, [x], dtype, src_mask=Transformer.generate_square_subsequent_mask(L, dtype=dtype),
            is_causal=True)
    compare(theirs, ours, [x], dtype, src_mask=~causal_mask(L), src_key_padding_mask=pad)
    compare(theirs, ours, [x[:, 0] if not cfg.get("batch_first") else x[0]], dtype, src_key_padding_mask=pad[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", LAYER_CONFIGS, ids=cfg_id)
def test_decoder_layer_matches_torch(cfg, dtype):
    E, h, N, T, S = 8, 2, 2, 4, 6
    theirs, ours = twins(nn.TransformerDecoderLayer, TransformerDecoderLayer, E, h, 16, 0.0, dtype=dtype, **cfg)
    g = torch.Generator().manual_seed(1)
    bf = cfg.get("batch_first", False)
    tgt, memory = seq(N, T, E, bf, dtype, g), seq(N, S, E, bf, dtype, g)
    mem_pad = torch.tensor([[False] * 6, [False] * 3 + [True] * 3])
    compare(theirs, ours, [tgt, memory], dtype)
    compare(theirs, ours, [tgt, memory], dtype, tgt_mask=Transformer.generate_square_subsequent_mask(T, dtype=dtype),
            tgt_is_causal=True, memory_key_padding_mask=mem_pad)
    memory_mask = torch.rand(T, S, generator=g) < 0.3
    memory_mask[:, 0] = False
    compare(theirs, ours, [tgt, memory], dtype, tgt_mask=~causal_mask(T), memory_mask=memory_mask,
            tgt_key_padding_mask=torch.tensor([[False] * 4, [False, False, False, True]]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [{}, {"batch_first": True, "norm_first": True, "activation": "gelu"},
                                 {"bias": False}], ids=cfg_id)
def test_full_transformer_matches_torch(cfg, dtype):
    E, N, S, T = 8, 2, 5, 4
    kw = {"d_model": E, "nhead": 2, "num_encoder_layers": 2, "num_decoder_layers": 2, "dim_feedforward": 16,
          "dropout": 0.0, "dtype": dtype, **cfg}
    theirs, ours = twins(nn.Transformer, Transformer, **kw)
    g = torch.Generator().manual_seed(2)
    bf = cfg.get("batch_first", False)
    src, tgt = seq(N, S, E, bf, dtype, g), seq(N, T, E, bf, dtype, g)
    src_pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    compare(theirs, ours, [src, tgt], dtype, tgt_mask=Transformer.generate_square_subsequent_mask(T, dtype=dtype),
            src_key_padding_mask=src_pad, memory_key_padding_mask=src_pad)
    compare(theirs, ours, [src[:, 0] if not bf else src[0], tgt[:, 0] if not bf else tgt[0]], dtype,
            tgt_mask=~causal_mask(T))


def test_stacks_deep_copy_the_layer_like_torch():
    layer = TransformerEncoderLayer(8, 2, 16, batch_first=True)
    enc = TransformerEncoder(layer, 3, norm=seqlib.LayerNorm(8))
    assert [n for n, _ in enc.named_children()] == ["layers", "norm"]
    assert all(m is not layer for m in enc.layers)
    for a, b in zip(enc.layers[0].parameters(), enc.layers[2].parameters(), strict=True):
        assert torch.equal(a, b) and a is not b  # same values, separate tensors
    t_enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 3, norm=nn.LayerNorm(8))
    assert list(t_enc.state_dict()) == list(enc.state_dict())
    dec = TransformerDecoder(TransformerDecoderLayer(8, 2, 16), 2)
    t_dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), 2)
    assert list(t_dec.state_dict()) == list(dec.state_dict())
    assert "layers.1.norm3.bias" in dec.state_dict() and "layers.1.multihead_attn.in_proj_weight" in dec.state_dict()


@pytest.mark.parametrize("dtype", DTYPES)
def test_encoder_and_decoder_stacks_match_torch(dtype):
    E, N, S, T = 8, 2, 5, 3
    torch.manual_seed(3)
    t_enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, 2, 16, 0.0, dtype=dtype), 2,
                                  norm=nn.LayerNorm(E, dtype=dtype), enable_nested_tensor=False)
    enc = TransformerEncoder(TransformerEncoderLayer(E, 2, 16, 0.0, dtype=dtype), 2,
                             norm=seqlib.LayerNorm(E, dtype=dtype))
    enc.load_state_dict(t_enc.state_dict(), strict=True)
    t_dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, 2, 16, 0.0, dtype=dtype), 2)
    dec = TransformerDecoder(TransformerDecoderLayer(E, 2, 16, 0.0, dtype=dtype), 2)
    t_dec.load_state_dict(dec.state_dict(), strict=True)  # the other direction
    g = torch.Generator().manual_seed(4)
    src, tgt = torch.randn(S, N, E, generator=g, dtype=dtype), torch.randn(T, N, E, generator=g, dtype=dtype)
    # is_causal=None: both detect the causal mask
    compare(t_enc, enc, [src], dtype, mask=Transformer.generate_square_subsequent_mask(S, dtype=dtype))
    compare(t_enc, enc, [src], dtype, src_key_padding_mask=torch.tensor([[False] * 5, [False] * 2 + [True] * 3]))
    compare(t_dec, dec, [tgt, src], dtype, tgt_mask=Transformer.generate_square_subsequent_mask(T, dtype=dtype))


def test_encoder_fast_path_padding_positions():
    """torch's eval + no_grad nested-tensor path zeroes padded positions; the others must agree."""
    E, N, S = 8, 3, 6
    torch.manual_seed(5)
    theirs = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, 2, 16, batch_first=True), 2).eval()
    ours = TransformerEncoder(TransformerEncoderLayer(E, 2, 16, batch_first=True), 2).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(N, S, E)
    pad = torch.arange(S) >= torch.tensor([6, 4, 2])[:, None]  # lengths 6, 4, 2 (left-aligned)
    with torch.no_grad():
        fast = theirs(x, src_key_padding_mask=pad)
        theirs.use_nested_tensor = False
        slow = theirs(x, src_key_padding_mask=pad)
        mine = ours(x, src_key_padding_mask=pad)
    assert torch.equal(fast[pad], torch.zeros_like(fast[pad]))  # what torch's fast path does
    torch.testing.assert_close(mine[~pad], fast[~pad], **tol(torch.float32))  # defined positions agree
    torch.testing.assert_close(mine, slow, **tol(torch.float32))  # and without nested tensors, all of them


def test_dropout_only_in_training():
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.5, batch_first=True)
    x = torch.randn(2, 4, 8)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    torch.manual_seed(0)
    a = layer(x)
    assert not torch.allclose(a, layer(x))


def test_generate_square_subsequent_mask():
    for sz in (1, 4):
        ours = Transformer.generate_square_subsequent_mask(sz)
        assert torch.equal(ours, nn.Transformer.generate_square_subsequent_mask(sz))
    m = Transformer.generate_square_subsequent_mask(3, dtype=torch.float64)
    assert m.dtype == torch.float64 and torch.isinf(m[0, 1]) and m[1, 0] == 0


@pytest.mark.parametrize("module", ["enc_layer", "dec_layer", "transformer"])
def test_state_dict_both_ways(module):
    build = {
        "enc_layer": lambda ns: ns.TransformerEncoderLayer(8, 2, 16, norm_first=True),
        "dec_layer": lambda ns: ns.TransformerDecoderLayer(8, 2, 16, bias=False),
        "transformer": lambda ns: ns.Transformer(8, 2, 1, 2, 16),
    }[module]
    theirs, ours = build(nn), build(seqlib)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    again = build(nn)
    again.load_state_dict(ours.state_dict(), strict=True)
    for k, v in theirs.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)


@settings(max_examples=8, deadline=None)
@given(N=st.integers(1, 3), S=st.integers(1, 5), T=st.integers(1, 5), nhead=st.sampled_from([1, 2, 4]),
       norm_first=st.booleans(), seed=st.integers(0, 999))
def test_decoder_layer_shapes_property(N, S, T, nhead, norm_first, seed):
    E = 8
    theirs, ours = twins(nn.TransformerDecoderLayer, TransformerDecoderLayer, E, nhead, 12, 0.0,
                         norm_first=norm_first, batch_first=True, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    tgt, mem = (torch.randn(N, n, E, generator=g, dtype=torch.float64) for n in (T, S))
    compare(theirs, ours, [tgt, mem], torch.float64, tgt_mask=~causal_mask(T))


def test_bad_input():
    layer = TransformerEncoderLayer(8, 2, 16, batch_first=True)
    with pytest.raises(ValueError, match=r"src must have shape \(N, L, E\).*E = d_model = 8.*\(2, 5, 6\)"):
        layer(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"embed_dim must be divisible by num_heads"):
        TransformerEncoderLayer(10, 3)
    with pytest.raises(ValueError, match=r"activation must be 'relu', 'gelu' or a callable.*'tanh'"):
        TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"attn_mask must have shape"):
        layer(torch.randn(2, 5, 8), src_mask=torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"is_causal=True is only a hint"):
        TransformerEncoder(layer, 2)(torch.randn(2, 5, 8), is_causal=True)
    model = Transformer(8, 2, 1, 1, 16, batch_first=True)
    with pytest.raises(ValueError, match=r"same batch size N"):
        model(torch.randn(2, 5, 8), torch.randn(3, 4, 8))
    with pytest.raises(ValueError, match=r"tgt must have shape .*E = d_model = 8"):
        model(torch.randn(2, 5, 8), torch.randn(2, 4, 7))
    with pytest.raises(ValueError, match=r"memory must be 3-D like tgt"):
        TransformerDecoderLayer(8, 2)(torch.randn(4, 2, 8), torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\]"):
        TransformerDecoderLayer(8, 2, dropout=2.0)


def test_custom_encoder_and_deepcopy():
    enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 1)
    model = Transformer(8, 2, custom_encoder=enc, num_decoder_layers=1, dim_feedforward=16)
    assert model.encoder is enc
    clone = copy.deepcopy(model)
    x, y = torch.randn(5, 2, 8), torch.randn(3, 2, 8)
    model.eval(), clone.eval()
    torch.testing.assert_close(model(x, y), clone(x, y))
