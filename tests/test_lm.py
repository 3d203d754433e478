"""seqlib.lm: TransformerLM, RNNLM and Seq2Seq (C16, C28).

The models are checked against twins assembled from torch.nn layers with the same submodule names (the
state_dict loads strictly both ways, logits and gradients agree), for causality (a future token never changes
a past logit), and for sampling (shapes, seeded determinism, top-k support).
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
from seqlib.lm import RNNLM, Seq2Seq, TransformerLM
from seqlib.positional import sinusoidal_table

pytestmark = pytest.mark.part3




def weighted_sum(t: torch.Tensor) -> torch.Tensor:
    w = torch.linspace(-1.0, 2.0, t.numel(), dtype=t.dtype).view_as(t)
    return (t * w).sum()


def assert_same_grads(theirs: nn.Module, ours: nn.Module, **tol) -> None:
    g_t = {n: p.grad for n, p in theirs.named_parameters()}
    g_o = {n: p.grad for n, p in ours.named_parameters()}
    assert g_t.keys() == g_o.keys()
    for name in g_t:
        torch.testing.assert_close(g_o[name], g_t[name], msg=name, **tol)


# ----------------------------------------------------------------------------------------------------------------
# TransformerLM
# ----------------------------------------------------------------------------------------------------------------

class TorchTransformerLM(nn.Module):
    """The same architecture from torch.nn parts, with the same submodule names."""

    def __init__(self, V, E, h, n_layers, T, F_):
        super().__init__()
        self.token_embedding = nn.Embedding(V, E)
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(E, h, F_, 0.0, activation="gelu", batch_first=True,
                                                                norm_first=True) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(E)
        self.head = nn.Linear(E, V)
        self.register_buffer("pe", sinusoidal_table(T, E), persistent=False)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.token_embedding(idx) + self.pe[:T].to(self.head.weight.dtype)
        mask = nn.Transformer.generate_square_subsequent_mask(T, dtype=x.dtype)
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=True)
        return self.head(self.norm(x))


def small_lm(**kw) -> TransformerLM:
    cfg = {"vocab_size": 11, "d_model": 16, "nhead": 4, "num_layers": 2, "context_length": 8, "dim_feedforward": 32,
           "dropout": 0.0}
    cfg.update(kw)
    return TransformerLM(**cfg)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_transformer_lm_matches_torch_twin(dtype):
    torch.manual_seed(0)
    ours = small_lm().to(dtype)
    theirs = TorchTransformerLM(11, 16, 4, 2, 8, 32).to(dtype)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    idx = torch.randint(0, 11, (3, 8))
    lo, lt = ours(idx), theirs(idx)
    tol = {"rtol": 1e-9, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    torch.testing.assert_close(lo, lt, **tol)
    weighted_sum(lo).backward()
    weighted_sum(lt).backward()
    assert_same_grads(theirs, ours, **tol)
    assert lo.shape == (3, 8, 11)
    assert "pos_encoding.pe" not in ours.state_dict()


def test_transformer_lm_attention_weights():
    torch.manual_seed(1)
    lm = small_lm().eval()
    idx = torch.randint(0, 11, (2, 6))
    logits, attention = lm(idx, return_attention=True)
    torch.testing.assert_close(logits, lm(idx))
    assert len(attention) == 2
    for w in attention:
        assert w.shape == (2, 4, 6, 6)
        assert torch.all(w.triu(1) == 0)  # nothing from the future
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 6))


@settings(max_examples=10, deadline=None)
@given(T=st.integers(2, 8), cut=st.integers(1, 7), seed=st.integers(0, 999))
def test_transformer_lm_is_causal(T, cut, seed):
    cut = min(cut, T - 1)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    lm = small_lm().eval()
    idx = torch.randint(0, 11, (2, T), generator=g)
    changed = idx.clone()
    changed[:, cut:] = torch.randint(0, 11, (2, T - cut), generator=g)
    torch.testing.assert_close(lm(idx)[:, :cut], lm(changed)[:, :cut], rtol=0, atol=1e-6)
    # and through the attention: the gradient of a past logit wrt future embeddings is zero
    emb = lm.token_embedding(idx).detach().requires_grad_(True)
    x = lm.pos_encoding(emb)
    for layer in lm.layers:
        x = layer(x, src_mask=~seqlib.causal_mask(T), is_causal=True)
    lm.head(lm.norm(x))[:, cut - 1].sum().backward()
    assert torch.all(emb.grad[:, cut:] == 0)


def test_transformer_lm_generate_shapes_and_determinism():
    torch.manual_seed(2)
    lm = small_lm(dropout=0.1).train()
    prompt = torch.randint(0, 11, (3, 12))  # longer than context_length = 8: cropped
    a = lm.generate(prompt, 7, generator=torch.Generator().manual_seed(5))
    b = lm.generate(prompt, 7, generator=torch.Generator().manual_seed(5))
    assert a.shape == (3, 19) and a.dtype == torch.long
    assert torch.equal(a, b) and torch.equal(a[:, :12], prompt)
    assert lm.training  # mode restored
    outs = {tuple(lm.generate(prompt, 7, generator=torch.Generator().manual_seed(s))[0].tolist()) for s in range(4)}
    assert len(outs) > 1
    assert torch.equal(lm.generate(prompt, 0), prompt)
    # greedy equals top_k=1 and follows the argmax of the model's own logits
    greedy = lm.generate(prompt, 4, temperature=0)
    assert torch.equal(greedy, lm.generate(prompt, 4, top_k=1, generator=torch.Generator().manual_seed(9)))
    lm.eval()
    with torch.no_grad():
        for t in range(12, 16):
            expected = lm(greedy[:, :t][:, -8:])[:, -1].argmax(-1)
            assert torch.equal(greedy[:, t], expected)


@pytest.mark.parametrize("model", ["transformer", "rnn"])
def test_top_k_restricts_support(model):
    torch.manual_seed(3)
    lm = small_lm() if model == "transformer" else RNNLM(11, 8, 16)
    lm.eval()
    prompt = torch.randint(0, 11, (64, 3))
    out = lm.generate(prompt, 1, temperature=5.0, top_k=3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        top3 = lm(prompt)[:, -1].topk(3, dim=-1).indices  # (64, 3)
    assert torch.all((top3 == out[:, -1:]).any(-1))
    assert len(set(out[:, -1].tolist())) > 1  # a hot temperature still samples


def test_transformer_lm_state_dict_and_bad_input():
    lm = small_lm()
    lm2 = small_lm()
    lm2.load_state_dict(lm.state_dict(), strict=True)
    with pytest.raises(ValueError, match=r"idx has T = 9 tokens but context_length = 8"):
        lm(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(TypeError, match=r"idx must hold integer token indices \(B, T\).*torch.float32.*idx.long\(\)"):
        lm(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"idx must have shape \(B, T\).*idx.unsqueeze\(0\)"):
        lm(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token indices in \[0, 11\).*from 0 to 11"):
        lm(torch.tensor([[0, 11]]))
    with pytest.raises(ValueError, match=r"temperature must be a number >= 0"):
        lm.generate(torch.zeros(1, 2, dtype=torch.long), 3, temperature=-1.0)
    with pytest.raises(ValueError, match=r"top_k must be a positive integer"):
        lm.generate(torch.zeros(1, 2, dtype=torch.long), 3, top_k=0)
    with pytest.raises(ValueError, match=r"embed_dim must be divisible by num_heads"):
        small_lm(nhead=3)


# ----------------------------------------------------------------------------------------------------------------
# RNNLM
# ----------------------------------------------------------------------------------------------------------------

class TorchRNNLM(nn.Module):
    def __init__(self, V, E, H, layers, cell):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](E, H, layers, batch_first=True)
        self.head = nn.Linear(H, V)

    def forward(self, idx):
        return self.head(self.rnn(self.embedding(idx))[0])


@pytest.mark.parametrize("cell,layers", [("lstm", 1), ("gru", 2), ("rnn", 1)])
def test_rnn_lm_matches_torch_twin(cell, layers):
    torch.manual_seed(4)
    ours = RNNLM(13, 6, 10, num_layers=layers, cell=cell).double()
    theirs = TorchRNNLM(13, 6, 10, layers, cell).double()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    idx = torch.randint(0, 13, (3, 7))
    lo, lt = ours(idx), theirs(idx)
    torch.testing.assert_close(lo, lt)
    weighted_sum(lo).backward()
    weighted_sum(lt).backward()
    assert_same_grads(theirs, ours)
    # continuing from a returned state equals reading everything at once
    first, hidden = ours(idx[:, :4], return_hidden=True)
    torch.testing.assert_close(ours(idx[:, 4:], hidden), lo[:, 4:])


def test_rnn_lm_generate_and_causality():
    torch.manual_seed(5)
    lm = RNNLM(13, 6, 10, num_layers=2, cell="lstm", dropout=0.2)
    prompt = torch.randint(0, 13, (2, 5))
    a = lm.generate(prompt, 6, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 11) and torch.equal(a, lm.generate(prompt, 6, generator=torch.Generator().manual_seed(1)))
    assert lm.training
    lm.eval()
    greedy = lm.generate(prompt, 4, temperature=0)
    with torch.no_grad():
        for t in range(5, 9):  # the carried state gives what a full re-read gives
            assert torch.equal(greedy[:, t], lm(greedy[:, :t])[:, -1].argmax(-1))
        changed = greedy.clone()
        changed[:, 6:] = (changed[:, 6:] + 1) % 13
        torch.testing.assert_close(lm(greedy)[:, :6], lm(changed)[:, :6])
    with pytest.raises(ValueError, match=r"cell must be one of 'lstm', 'gru', 'rnn'"):
        RNNLM(5, 4, 4, cell="transformer")
    with pytest.raises(TypeError, match=r"integer token indices"):
        lm(torch.zeros(2, 3))


# ----------------------------------------------------------------------------------------------------------------
# Seq2Seq
# ----------------------------------------------------------------------------------------------------------------

def reference_seq2seq(model: Seq2Seq, src, lengths, tgt_in):
    """Bahdanau's decoder written with torch.nn's LSTM/LSTMCell and einsum, from the model's weights."""
    sd = model.state_dict()
    E, H = model.embedding_dim, model.hidden_size
    enc = nn.LSTM(E, H, batch_first=True, bidirectional=True).double()
    enc.load_state_dict({k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")})
    cell = nn.LSTMCell(E + 2 * H, H).double()
    cell.load_state_dict({k[len("decoder_cell."):]: v for k, v in sd.items() if k.startswith("decoder_cell.")})
    N, S = src.shape
    emb = F.embedding(src, sd["src_embedding.weight"])
    packed = nn.utils.rnn.pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
    out, (h_n, _) = enc(packed)
    memory, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=S)
    h = torch.tanh(F.linear(torch.cat([h_n[0], h_n[1]], -1), sd["bridge.weight"], sd["bridge.bias"]))
    c = torch.zeros_like(h)
    pad = torch.arange(S) >= lengths[:, None]
    W_q, W_k, v = sd["attention.query_proj.weight"], sd["attention.key_proj.weight"], sd["attention.v.weight"][0]
    logits = []
    for t in range(tgt_in.shape[1]):
        e = torch.einsum("a,nsa->ns", v, torch.tanh((h @ W_q.T)[:, None] + memory @ W_k.T))
        alpha = torch.softmax(e.masked_fill(pad, -math.inf), -1)
        ctx = torch.einsum("ns,nsh->nh", alpha, memory)
        h, c = cell(torch.cat([F.embedding(tgt_in[:, t], sd["tgt_embedding.weight"]), ctx], -1), (h, c))
        logits.append(F.linear(torch.cat([h, ctx], -1), sd["out.weight"], sd["out.bias"]))
    return torch.stack(logits, 1)


def seq2seq_batch(g):
    src = torch.randint(0, 9, (4, 6), generator=g)
    lengths = torch.tensor([6, 3, 1, 5])
    tgt_in = torch.randint(0, 12, (4, 5), generator=g)
    return src, lengths, tgt_in


def test_seq2seq_matches_reference():
    torch.manual_seed(6)
    model = Seq2Seq(9, 12, embedding_dim=5, hidden_size=7, attention_size=6).double()
    src, lengths, tgt_in = seq2seq_batch(torch.Generator().manual_seed(0))
    logits = model(src, lengths, tgt_in)
    assert logits.shape == (4, 5, 12)
    torch.testing.assert_close(logits, reference_seq2seq(model, src, lengths, tgt_in))
    weighted_sum(logits).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    Seq2Seq(9, 12, 5, 7, 6).load_state_dict(model.state_dict(), strict=True)


def test_seq2seq_padding_and_teacher_forcing_causality():
    torch.manual_seed(7)
    model = Seq2Seq(9, 12, 5, 7).eval()
    src, lengths, tgt_in = seq2seq_batch(torch.Generator().manual_seed(1))
    base = model(src, lengths, tgt_in)
    noisy = src.clone()
    noisy[torch.arange(6) >= lengths[:, None]] = 8  # change only the padding
    torch.testing.assert_close(model(noisy, lengths, tgt_in), base)
    later = tgt_in.clone()
    later[:, 3:] = (later[:, 3:] + 1) % 12
    torch.testing.assert_close(model(src, lengths, later)[:, :3], base[:, :3])


def test_seq2seq_greedy_decode():
    torch.manual_seed(8)
    model = Seq2Seq(9, 12, 5, 7, bidirectional=False)
    src, lengths, _ = seq2seq_batch(torch.Generator().manual_seed(2))
    tokens, weights = model.greedy_decode(src, lengths, max_len=6, bos_index=1, eos_index=2)
    assert model.training
    N, T_out = tokens.shape
    assert N == 4 and 1 <= T_out <= 6 and weights.shape == (4, T_out, 6)
    assert torch.all(weights[torch.arange(6).expand(4, T_out, 6) >= lengths[:, None, None]] == 0)  # padding
    # feeding the decoded tokens back with teacher forcing reproduces them (until <eos>)
    model.eval()
    tgt_in = torch.cat([torch.full((4, 1), 1), tokens[:, :-1]], dim=1)
    with torch.no_grad():
        again = model(src, lengths, tgt_in).argmax(-1)
    for n in range(4):
        stop = (tokens[n] == 2).nonzero()
        end = int(stop[0]) + 1 if len(stop) else T_out
        assert torch.equal(again[n, :end], tokens[n, :end])
        if end < T_out:
            assert torch.all(tokens[n, end:] == 2) and torch.all(weights[n, end:] == 0)
        torch.testing.assert_close(weights[n, :end].sum(-1), torch.ones(end))


def test_seq2seq_learns_to_copy():
    torch.manual_seed(9)
    model = Seq2Seq(6, 6, embedding_dim=8, hidden_size=16)
    src = torch.randint(3, 6, (8, 4))
    lengths = torch.full((8,), 4)
    tgt_in = torch.cat([torch.full((8, 1), 1), src], dim=1)  # <bos> x
    tgt_out = torch.cat([src, torch.full((8, 1), 2)], dim=1)  # x <eos>
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(60):
        loss = F.cross_entropy(model(src, lengths, tgt_in).reshape(-1, 6), tgt_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    tokens, _ = model.greedy_decode(src, lengths, max_len=6, bos_index=1, eos_index=2)
    assert torch.equal(tokens[:, :5], tgt_out), float(loss)


def test_seq2seq_bad_input():
    model = Seq2Seq(9, 12, 5, 7)
    src, lengths, tgt_in = seq2seq_batch(torch.Generator().manual_seed(3))
    with pytest.raises(ValueError, match=r"src_lengths must lie in \[1, S\] = \[1, 6\]"):
        model(src, torch.tensor([7, 3, 1, 5]), tgt_in)
    with pytest.raises(ValueError, match=r"src_lengths must be an integer tensor of shape \(N,\) = \(4,\)"):
        model(src, lengths[:3], tgt_in)
    with pytest.raises(ValueError, match=r"same batch size N"):
        model(src, lengths, tgt_in[:2])
    with pytest.raises(TypeError, match=r"tgt_in must hold integer token indices"):
        model(src, lengths, tgt_in.float())
    with pytest.raises(ValueError, match=r"eos_index must be a token index in \[0, 12\)"):
        model.greedy_decode(src, lengths, 5, bos_index=1, eos_index=12)


def test_exports():
    assert seqlib.TransformerLM is TransformerLM and seqlib.RNNLM is RNNLM and seqlib.Seq2Seq is Seq2Seq
