"""The Part 3 demo widgets: every control changes what is shown, and what is shown is the right maths.

The references are computed here, independently of seqlib (torch's fused attention, the sinusoid formula, a
greedy decoding loop), and compared with the numbers behind the widget's picture (``w.last_data``). The tables
and texts are the tests' own.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.part3

widgets_attention = pytest.importorskip("seqlib.widgets.attention")
from seqlib.widgets.attention import attention_demo, positional_encoding_demo  # noqa: E402

TOKENS = ["one", "two", "three", "four", "five"]
Q, K, V = (torch.randn(5, d, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
           for s, d in ((1, 4), (2, 4), (3, 3)))  # (L, d_k), (L, d_k), (L, d_v)


def shown(w):
    """What the widget shows: its figure and the values of the widgets under it (e.g. generated text)."""
    return w.image.value, tuple(e.value for e in w.extra)


def changes_picture(w, name, value):
    """Set a control and return whether what is shown changed (and check that a redraw happened)."""
    before, redraws = shown(w), w.redraws
    w.controls[name].value = value
    assert w.redraws > redraws, f"setting {name} did not redraw"
    assert w.image.value == w.png
    return shown(w) != before


# ------------------------------------------------------------------------------------------------------------------
# attention_demo
# ------------------------------------------------------------------------------------------------------------------


def reference_attention(L, scale, causal, tau):
    q, k, v = Q[:L], K[:L], V[:L]
    mask = torch.ones(L, L, dtype=torch.bool).tril() if causal else None  # True = may attend (torch's SDPA)
    s = (1 / math.sqrt(q.shape[-1]) if scale else 1.0) / tau
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=s)
    scores = q @ k.T * s
    if causal:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1), out


def demo():
    return attention_demo(Q, K, V, TOKENS, lengths=(3, 5))


def test_attention_demo_shows_the_tables_it_is_given():
    w = demo()
    assert set(w.controls) == {"sentence", "scale", "causal", "temperature"}
    assert list(w.controls["sentence"].options) == ["one two three", "one two three four five"]
    d = w.last_data
    assert d["tokens"] == ["one", "two", "three"]
    torch.testing.assert_close(d["scores"], Q[:3] @ K[:3].T / 2)  # sqrt(d_k) = 2
    torch.testing.assert_close(d["Q"], Q[:3])
    torch.testing.assert_close(d["V"], V[:3])
    weights, out = reference_attention(3, True, False, 1.0)
    torch.testing.assert_close(d["weights"], weights)
    torch.testing.assert_close(d["output"], out)
    assert w.png.startswith(b"\x89PNG")
    assert attention_demo(Q, K, V, TOKENS).last_data["tokens"] == TOKENS  # default: all tokens


def test_attention_demo_needs_its_tables():
    with pytest.raises(TypeError, match=r"attention_demo\(Q, K, V, tokens\)"):
        attention_demo()
    with pytest.raises(ValueError, match="L = len"):
        attention_demo(Q, K, V, TOKENS[:4])
    with pytest.raises(ValueError, match=r"values.*\(L, d_v\)"):
        attention_demo(Q, K, V[0], TOKENS)
    with pytest.raises(TypeError, match="tokens"):
        attention_demo(Q, K, V, "one two three four five")
    with pytest.raises(ValueError, match="lengths"):
        attention_demo(Q, K, V, TOKENS, lengths=(0, 9))


@pytest.fixture(scope="module")
def shared_demo():
    return demo()


@pytest.mark.parametrize("sentence", ["one two three", "one two three four five"])
@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("causal", [True, False])
def test_attention_demo_matches_torch(shared_demo, sentence, scale, causal):
    w = shared_demo
    redraws = w.redraws
    with w.hold():  # one redraw for the four changes
        w.controls["sentence"].value = sentence
        w.controls["scale"].value = scale
        w.controls["causal"].value = causal
        w.controls["temperature"].value = 0.5
    assert w.redraws == redraws + 1
    L = len(sentence.split())
    weights, out = reference_attention(L, scale, causal, 0.5)
    d = w.last_data
    torch.testing.assert_close(d["weights"], weights)
    torch.testing.assert_close(d["output"], out)
    upper = torch.ones(L, L, dtype=torch.bool).triu(1)
    assert torch.all(torch.isinf(d["masked_scores"][upper])) == causal
    assert torch.all(d["weights"][upper] == 0) or not causal


def test_attention_demo_every_control_changes_the_picture():
    w = demo()
    s0 = w.last_data["scores"].clone()
    assert changes_picture(w, "scale", False)
    torch.testing.assert_close(w.last_data["scores"], 2 * s0)  # sqrt(d_k) = 2
    assert changes_picture(w, "causal", True)
    assert w.last_data["weights"][0].tolist() == [1.0, 0.0, 0.0]  # the first token sees only itself
    top = float(w.last_data["weights"][2].max())
    assert changes_picture(w, "temperature", 0.2)
    assert float(w.last_data["weights"][2].max()) > top  # lower temperature sharpens
    assert changes_picture(w, "sentence", "one two three four five")
    assert w.last_data["weights"].shape == (5, 5)


# ------------------------------------------------------------------------------------------------------------------
# positional_encoding_demo
# ------------------------------------------------------------------------------------------------------------------


def test_positional_encoding_demo_shows_the_table():
    """The demo shows the library's one table (tests/test_positional.py checks it against the formula)."""
    from seqlib.positional import sinusoidal_table

    w = positional_encoding_demo()
    with w.hold():
        w.controls["d_model"].value = 16
        w.controls["max_len"].value = 30
    d = w.last_data
    ref = sinusoidal_table(30, 16, dtype=torch.float64)
    torch.testing.assert_close(d["pe"].double(), ref, atol=1e-6, rtol=0)
    p = d["position"]
    torch.testing.assert_close(d["dots"].double(), ref @ ref[p], atol=1e-5, rtol=0)
    assert int(d["dots"].argmax()) == p and math.isclose(float(d["dots"][p]), 8.0, rel_tol=1e-5)


def test_positional_encoding_demo_controls():
    w = positional_encoding_demo()
    assert set(w.controls) == {"d_model", "max_len", "position"}
    assert changes_picture(w, "d_model", 32)
    assert w.last_data["pe"].shape[1] == 32
    assert changes_picture(w, "position", 10)
    assert w.last_data["position"] == 10
    assert changes_picture(w, "max_len", 20)
    assert w.last_data["pe"].shape[0] == 20
    w.controls["position"].value = 19
    w.controls["max_len"].value = 10  # the position is clamped into range
    assert w.controls["position"].value <= 9 and w.last_data["position"] <= 9


# ------------------------------------------------------------------------------------------------------------------
# multihead_demo and sampling_demo on a small untrained model (fast, deterministic)
# ------------------------------------------------------------------------------------------------------------------

TEXT = "the cat sat on the mat. the dog sat on the log."


@pytest.fixture(scope="module")
def tiny_lm():
    from seqlib import CharTokenizer, TransformerLM

    tok = CharTokenizer(TEXT)
    torch.manual_seed(0)
    model = TransformerLM(len(tok.vocab), d_model=16, nhead=2, num_layers=2, context_length=32,
                          dim_feedforward=32, dropout=0.0).eval()
    return model, tok


def test_multihead_demo_shows_the_models_attention(tiny_lm):
    from seqlib.widgets.attention import multihead_demo

    model, tok = tiny_lm
    w = multihead_demo(model, "the cat sat", tokenizer=tok)
    assert set(w.controls) == {"layer", "head", "text"}
    w.controls["layer"].value = 0
    w.controls["head"].value = 1
    idx = torch.tensor([tok.encode("the cat sat")])
    with torch.no_grad():
        _, attn = model(idx, return_attention=True)
    torch.testing.assert_close(w.last_data["weights"], attn[0][0, 1])
    assert len(w.last_data["tokens"]) == idx.shape[1]
    T = idx.shape[1]
    assert torch.all(w.last_data["weights"].triu(1) == 0)  # a language model attends only backwards
    torch.testing.assert_close(w.last_data["weights"].sum(-1), torch.ones(T))
    assert changes_picture(w, "head", -1)
    torch.testing.assert_close(w.last_data["weights"], attn[0][0].mean(0))
    assert changes_picture(w, "layer", 1)
    torch.testing.assert_close(w.last_data["weights"], attn[1][0].mean(0))
    assert changes_picture(w, "text", "the dog sat on the log")
    assert len(w.last_data["tokens"]) == len("the dog sat on the log")
    first = multihead_demo(model, "the cat", tokenizer=tok, layer=0, head=-1)
    torch.testing.assert_close(first.last_data["weights"], model(torch.tensor([tok.encode("the cat")]),
                                                                 return_attention=True)[1][0][0].mean(0))
    with pytest.raises(ValueError, match="layer"):
        multihead_demo(model, "the cat", tokenizer=tok, layer=2)
    with pytest.raises(TypeError, match="text is required"):
        multihead_demo(model, tokenizer=tok)


def test_sampling_demo_controls_and_determinism(tiny_lm):
    from seqlib.widgets.attention import sampling_demo

    model, tok = tiny_lm
    w = sampling_demo(model, tok, prompt="the ")
    assert set(w.controls) == {"temperature", "top_k", "length", "seed", "prompt"}
    w.controls["length"].value = 40
    first = w.last_data["text"]
    assert len(w.last_data["ids"]) == 40
    w.refresh()
    assert w.last_data["text"] == first  # fixed seed: the same controls give the same text
    assert changes_picture(w, "seed", 1)
    assert w.last_data["text"] != first
    p_model = w.last_data["p_model"]
    assert changes_picture(w, "temperature", 0.3)
    p = w.last_data["p_sample"]
    assert float(p.max()) > float(p_model.max())  # sharper than the model's own distribution
    assert changes_picture(w, "top_k", 3)
    assert int((w.last_data["p_sample"] > 0).sum()) == 3
    assert changes_picture(w, "prompt", "the dog ")
    assert changes_picture(w, "length", 60)
    assert len(w.last_data["ids"]) == 60


def test_sampling_with_top_k_1_is_greedy(tiny_lm):
    from seqlib.widgets.attention import sampling_demo

    model, tok = tiny_lm
    w = sampling_demo(model, tok, prompt="the ")
    w.controls["length"].value = 20
    w.controls["top_k"].value = 1
    idx = torch.tensor([tok.encode("the ")])
    with torch.no_grad():
        for _ in range(20):
            nxt = model(idx[:, -32:])[0, -1].argmax()
            idx = torch.cat([idx, nxt.view(1, 1)], dim=1)
    assert w.last_data["ids"] == idx[0, 4:].tolist()
    assert w.last_data["text"] == tok.decode(idx[0, 4:].tolist())


# ------------------------------------------------------------------------------------------------------------------
# the default model (trained once, cached under build/)
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_default_model_widgets():
    from seqlib.models import CHAR_LM_CONFIG, char_lm
    from seqlib.widgets import multihead_demo, sampling_demo

    model, tok = char_lm()
    assert model.training is False
    w = multihead_demo()
    assert w.last_data["all_heads"].shape[0] == CHAR_LM_CONFIG["nhead"]
    s = sampling_demo(prompt="The ")
    s.controls["temperature"].value = 0.3
    text = s.last_data["text"]
    # a trained model writes mostly letters and spaces, not a uniform mix of the vocabulary
    assert sum(c.isalpha() or c == " " for c in text) / len(text) > 0.8
