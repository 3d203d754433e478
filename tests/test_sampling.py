"""Next-token sampling (seqlib.sampling) against the formula written out here, and every generate built on it."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlib import RNNLM, TransformerLM
from seqlib.sampling import next_token_distribution, sample_next_token

pytestmark = pytest.mark.part3


def reference_distribution(logits: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
    """exp(z_i / T) normalised over the k largest scores of each row, in float64, one row at a time."""
    rows = logits.double().reshape(-1, logits.shape[-1])
    out = torch.zeros_like(rows)
    for r, z in enumerate(rows):
        keep = list(range(len(z)))
        if top_k is not None and top_k < len(z):
            kth = sorted(z.tolist(), reverse=True)[top_k - 1]
            keep = [i for i in keep if z[i] >= kth]  # ties with the k-th score stay
        weights = [math.exp((float(z[i]) - float(z.max())) / temperature) for i in keep]
        for i, w in zip(keep, weights, strict=True):
            out[r, i] = w / sum(weights)
    return out.reshape(logits.shape)


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 4), V=st.integers(1, 9), temperature=st.sampled_from([0.1, 0.5, 1.0, 1.7, 4.0]),
       top_k=st.one_of(st.none(), st.integers(1, 12)), batched=st.booleans(), seed=st.integers(0, 2**16))
def test_distribution_matches_the_formula(B, V, temperature, top_k, batched, seed):
    logits = torch.randn(B, V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if not batched:
        logits = logits[0]
    probs = next_token_distribution(logits, temperature, top_k)
    assert probs.shape == logits.shape and probs.dtype == logits.dtype
    torch.testing.assert_close(probs, reference_distribution(logits, temperature, top_k))
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1], dtype=torch.float64))


def test_distribution_defaults_ties_and_temperature():
    z = torch.tensor([[2.0, 1.0, 1.0, -1.0]])
    torch.testing.assert_close(next_token_distribution(z), torch.softmax(z, dim=-1))
    assert (next_token_distribution(z, top_k=2) > 0).sum() == 3  # the tie with the 2nd score is kept
    cold, hot = next_token_distribution(z, 0.2), next_token_distribution(z, 5.0)
    assert cold.max() > torch.softmax(z, -1).max() > hot.max()  # lower temperature: sharper


def test_sample_shapes_greedy_and_determinism():
    torch.manual_seed(0)
    logits = torch.randn(5, 7)
    assert sample_next_token(logits).shape == (5, 1) and sample_next_token(logits[0]).shape == (1,)
    assert torch.equal(sample_next_token(logits, temperature=0), logits.argmax(-1, keepdim=True))
    assert torch.equal(sample_next_token(logits, top_k=1, generator=torch.Generator().manual_seed(3)),
                       logits.argmax(-1, keepdim=True))
    a = sample_next_token(logits, 1.3, 4, generator=torch.Generator().manual_seed(1))
    b = sample_next_token(logits, 1.3, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == torch.int64


def test_samples_follow_the_distribution():
    logits = torch.tensor([1.0, 0.0, -0.5, 2.0, -3.0])
    rows = logits.expand(20000, 5)  # 20000 independent draws
    draws = sample_next_token(rows, 0.8, 3, generator=torch.Generator().manual_seed(0))[:, 0]
    freq = torch.bincount(draws, minlength=5).double() / len(draws)
    torch.testing.assert_close(freq, reference_distribution(logits, 0.8, 3), atol=0.015, rtol=0)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda z: next_token_distribution(z, 0.0), ValueError, ["temperature", "> 0"]),
        (lambda z: next_token_distribution(z, -1.0), ValueError, ["temperature"]),
        (lambda z: next_token_distribution(z, math.inf), ValueError, ["temperature"]),
        (lambda z: next_token_distribution(z, "hot"), TypeError, ["temperature"]),
        (lambda z: next_token_distribution(z, 1.0, 0), ValueError, ["top_k", "positive"]),
        (lambda z: next_token_distribution(z, 1.0, 2.5), TypeError, ["top_k"]),
        (lambda z: next_token_distribution(z.long(), 1.0), TypeError, ["logits", "floating"]),
        (lambda z: next_token_distribution(z[None], 1.0), ValueError, ["logits", "(B, V) or (V,)"]),
        (lambda z: next_token_distribution(z.tolist()), TypeError, ["logits", "torch.Tensor"]),
        (lambda z: sample_next_token(z, -0.5), ValueError, ["temperature", ">= 0"]),
    ],
)
def test_bad_arguments(call, error, words):
    with pytest.raises(error) as info:
        call(torch.randn(2, 5))
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("kind", ["transformer", "rnn"])
@pytest.mark.parametrize(("temperature", "top_k"), [(1.0, None), (0.7, 3), (2.0, 1), (0.0, None)])
def test_generate_samples_as_the_formula_says(kind, temperature, top_k):
    """generate's tokens are the ones drawn from softmax(logits / T) over the top k, with the same generator."""
    torch.manual_seed(0)
    if kind == "transformer":
        model = TransformerLM(12, d_model=16, nhead=2, num_layers=1, context_length=6, dropout=0.0).eval()
    else:
        model = RNNLM(12, 8, 16, cell="gru").eval()
    prompt = torch.randint(0, 12, (3, 4), generator=torch.Generator().manual_seed(1))
    got = model.generate(prompt, 9, temperature=temperature, top_k=top_k, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    idx = prompt
    with torch.no_grad():
        for _ in range(9):
            context = idx[:, -6:] if kind == "transformer" else idx  # an RNN reads everything (same logits)
            z = model(context)[:, -1]  # (B, V)
            if temperature == 0:
                nxt = z.argmax(-1, keepdim=True)
            else:
                probs = reference_distribution(z, temperature, top_k).to(z.dtype)
                nxt = torch.multinomial(probs, 1, generator=g)
            idx = torch.cat([idx, nxt], dim=1)
    assert torch.equal(got, idx)
