"""The recurrent lecture widgets: every control is driven and must change what is shown, and the numbers shown
must be the ones torch.nn computes for the same weights.

A widget is driven the way a student drives it: ``w.controls[name].value = ...``. After each change the test
checks ``w.last_data`` (the numbers behind the figure) against a torch.nn reference built in the test, and that
the PNG on screen (``w.png``) changed.
"""

from __future__ import annotations

import pytest
import torch

from seqlib import cache
from seqlib.models import SentimentLSTM
from seqlib.widgets.recurrent import gradient_flow_demo, lstm_gates_demo, rnn_unroll_demo
from seqlib.widgets.shell import DemoWidget

pytestmark = [pytest.mark.part1]

GOOD = "The food was good, not bad at all."
BAD = "The food was bad, not good at all."
CORPUS = [GOOD, BAD, "I grew up in Germany and I still speak fluent German.", "hallo wie geht's"]

# ------------------------------------------------------------------------------------------------ rnn_unroll_demo
def _torch_states(cell, inputs: torch.Tensor) -> torch.Tensor:
    """h_0 .. h_{T-1} of torch.nn.RNNCell with the demo cell's weights, for inputs (T, E)."""
    ref = torch.nn.RNNCell(cell.input_size, cell.hidden_size)
    ref.load_state_dict(cell.state_dict(), strict=True)
    h, states = torch.zeros(1, cell.hidden_size), []
    with torch.no_grad():
        for x_t in inputs:
            h = ref(x_t.unsqueeze(0), h)
            states.append(h[0])
    return torch.stack(states)


def test_unroll_states_are_torch_rnn_states_and_step_moves_the_highlight():
    w = rnn_unroll_demo(CORPUS)
    assert isinstance(w, DemoWidget) and set(w.controls) == {"text", "step", "scale"}
    d = w.last_data
    assert d["states"].shape == (len(d["tokens"]), 6) and d["step"] == 0
    torch.testing.assert_close(d["states"], _torch_states(d["cell"], d["inputs"]))
    # the embedded inputs are the embedding rows of the words' vocabulary indices
    torch.testing.assert_close(d["inputs"], d["embedding"].weight.detach()[torch.tensor(d["indices"])])
    before = w.png
    w.controls["step"].value = 3
    assert w.last_data["step"] == 3
    torch.testing.assert_close(w.last_data["h_t"], w.last_data["states"][3])
    assert w.png != before


def test_unroll_text_changes_tokens_and_step_range():
    w = rnn_unroll_demo(CORPUS)
    w.controls["step"].value = 8
    before = w.png
    w.controls["text"].value = "I grew up in Germany"
    assert w.last_data["tokens"] == ["i", "grew", "up", "in", "germany"]
    assert w.controls["step"].max == 4
    assert w.last_data["step"] == 4  # clamped to the new last step
    assert w.png != before
    torch.testing.assert_close(w.last_data["states"], _torch_states(w.last_data["cell"], w.last_data["inputs"]))
    # no words: a message, and the figure stays
    before = w.png
    w.controls["text"].value = "   "
    assert "sentence" in w.status.value
    assert w.png == before
    w.controls["text"].value = "hallo wie geht's"
    assert w.status.value == "" and w.png != before


def test_unroll_scale_zero_removes_memory():
    """With W_hh scaled to 0, h_t = tanh(W_ih x_t + b) depends on the current word only."""
    w = rnn_unroll_demo(CORPUS)
    w.controls["step"].value = w.controls["step"].max
    before = w.png
    w.controls["scale"].value = 0.0
    assert w.png != before
    assert torch.count_nonzero(w.last_data["cell"].weight_hh) == 0
    last_a = w.last_data["states"][-1]
    w.controls["text"].value = BAD  # the same last token "."
    torch.testing.assert_close(w.last_data["states"][-1], last_a)
    w.controls["scale"].value = 1.0
    assert not torch.allclose(w.last_data["states"][-1], last_a)


# ------------------------------------------------------------------------------------------------ gradient_flow_demo
def _torch_grad_norms(model, x: torch.Tensor) -> torch.Tensor:
    """||dL/dh_t|| for L = sum(h_{T-1}) with torch.nn cells and autograd (the reference for seqlib.bptt)."""
    lstm = model.mode == "LSTM"
    ref = (torch.nn.LSTMCell if lstm else torch.nn.RNNCell)(
        model.input_size, model.hidden_size, **({} if lstm else {"nonlinearity": model.nonlinearity})).double()
    ref.load_state_dict({k[:-3]: v for k, v in model.state_dict().items()}, strict=True)  # weight_ih_l0 -> weight_ih
    h = torch.zeros(x.shape[1], model.hidden_size, dtype=x.dtype)
    c = torch.zeros_like(h)
    states = []
    for x_t in x:
        if lstm:
            h, c = ref(x_t, (h, c))
        else:
            h = ref(x_t, h)
        h.retain_grad()
        states.append(h)
    states[-1].sum().backward()
    return torch.stack([s.grad.norm() for s in states])


def test_gradient_norms_match_autograd():
    w = gradient_flow_demo()
    d = w.last_data
    assert d["norms"].shape == (50,)
    torch.testing.assert_close(d["norms"], _torch_grad_norms(d["model"], d["inputs"]))
    assert d["spectral_radius"] == pytest.approx(1.0)


def test_larger_scale_gives_larger_early_gradients():
    w = gradient_flow_demo()
    small = w.last_data["norms"].clone()
    png = w.png
    w.controls["scale"].value = 1.8
    large = w.last_data["norms"]
    assert w.last_data["spectral_radius"] == pytest.approx(1.8)
    assert large[0] > 10 * small[0]
    assert w.png != png
    torch.testing.assert_close(large, _torch_grad_norms(w.last_data["model"], w.last_data["inputs"]))


def test_relu_identity_init_does_not_vanish_where_tanh_does():
    w = gradient_flow_demo()
    with w.hold():
        w.controls["init"].value = "identity"
        w.controls["scale"].value = 1.0
    d = w.last_data
    torch.testing.assert_close(d["model"].weight_hh_l0, torch.eye(32, dtype=torch.float64))
    assert torch.count_nonzero(d["model"].bias_hh_l0) == 0
    tanh_ratio = float(d["norms"][0] / d["norms"][-1])
    png = w.png
    w.controls["activation"].value = "relu"
    assert w.png != png
    relu_ratio = float(w.last_data["norms"][0] / w.last_data["norms"][-1])
    assert tanh_ratio < 1e-2  # tanh' < 1 shrinks the gradient at every step
    assert relu_ratio > 10 * tanh_ratio
    torch.testing.assert_close(w.last_data["norms"], _torch_grad_norms(w.last_data["model"], w.last_data["inputs"]))


def test_length_and_cell_controls():
    w = gradient_flow_demo()
    png = w.png
    w.controls["length"].value = 20
    assert w.last_data["norms"].shape == (20,) and w.png != png
    png = w.png
    w.controls["cell"].value = "LSTM"
    d = w.last_data
    assert w.controls["activation"].disabled
    assert d["model"].mode == "LSTM" and d["cell_norms"].shape == (20,)
    assert w.png != png
    torch.testing.assert_close(d["norms"], _torch_grad_norms(d["model"], d["inputs"]))
    w.controls["cell"].value = "RNN"
    assert not w.controls["activation"].disabled and w.last_data["cell_norms"] is None


def test_clip_rescales_the_total_gradient():
    w = gradient_flow_demo()
    w.controls["scale"].value = 1.5
    total = w.last_data["grad_norm"]
    assert w.last_data["clipped_norm"] == pytest.approx(total)
    # the reference: the total 2-norm of all parameter gradients, by autograd
    model = w.last_data["model"]
    model.zero_grad()
    out, _ = model(w.last_data["inputs"])
    out[-1].sum().backward()
    ref = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert total == pytest.approx(float(ref), rel=1e-9)
    png = w.png
    w.controls["clip"].value = 1.0
    assert w.last_data["grad_norm"] == pytest.approx(total)
    assert w.last_data["clipped_norm"] == pytest.approx(1.0, rel=1e-6)
    assert w.last_data["clip_factor"] == pytest.approx(1.0 / total, rel=1e-6)
    assert w.png != png


# ------------------------------------------------------------------------------------------------ lstm_gates_demo
@pytest.fixture(scope="module")
def small_lstm():
    from seqlib import WordTokenizer

    tok = WordTokenizer([GOOD, BAD, "The movie was great."], lowercase=True)
    torch.manual_seed(0)
    return SentimentLSTM(len(tok), 2, embedding_dim=5, hidden_dim=6, padding_idx=tok.vocab.pad_index).eval(), tok


def _torch_lstm_steps(model, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    ref = torch.nn.LSTMCell(model.lstm.input_size, model.lstm.hidden_size)
    ref.load_state_dict({k[:-3]: v for k, v in model.lstm.state_dict().items()}, strict=True)
    x = model.embedding.weight.detach()[torch.tensor(idx)]  # (T, E)
    h = c = torch.zeros(1, model.lstm.hidden_size)
    hs, cs = [], []
    with torch.no_grad():
        for x_t in x:
            h, c = ref(x_t.unsqueeze(0), (h, c))
            hs.append(h[0]), cs.append(c[0])
    return torch.stack(hs), torch.stack(cs)


def test_gates_match_torch_lstm(small_lstm):
    model, tok = small_lstm
    w = lstm_gates_demo(model, tok, sentences=[GOOD], units=3)
    d = w.last_data
    h, c = _torch_lstm_steps(model, d["indices"])
    torch.testing.assert_close(d["h"], h)
    torch.testing.assert_close(d["c"], c)
    g = d["gates"]
    c_prev = torch.cat([torch.zeros(1, c.shape[1]), c[:-1]])
    torch.testing.assert_close(g["forget"] * c_prev + g["input"] * g["cell"], c)  # C_t = f*C_{t-1} + i*C~_t
    torch.testing.assert_close(g["output"] * torch.tanh(c), h)  # h_t = o_t * tanh(C_t)
    for name in ("input", "forget", "output"):
        assert ((g[name] > 0) & (g[name] < 1)).all()
    # the last verdict is the classifier's output on the whole sentence
    with torch.no_grad():
        logits = model(torch.tensor(d["indices"]).unsqueeze(1), torch.tensor([len(d["indices"])]))
    torch.testing.assert_close(d["p_positive"][-1], logits.softmax(-1)[0, 1])


def test_gates_controls_change_the_figure(small_lstm):
    model, tok = small_lstm
    w = lstm_gates_demo(model, tok, sentences=[GOOD, BAD], units=3)
    assert len(w.last_data["units"]) == 3
    png = w.png
    w.controls["sentence"].value = BAD
    assert w.controls["text"].value == BAD
    assert w.last_data["tokens"][3] == "bad" and w.png != png
    png = w.png
    w.controls["units"].value = 5
    assert len(w.last_data["units"]) == 5 and w.png != png
    png = w.png
    w.controls["text"].value = "The soup was great."  # "soup" is not in the vocabulary: <unk>
    assert w.last_data["indices"][1] == tok.vocab.unk_index and w.png != png


def test_gates_demo_checks_its_arguments(small_lstm):
    model, tok = small_lstm
    with pytest.raises(TypeError, match="tokenizer"):
        lstm_gates_demo(model, sentences=[GOOD])
    with pytest.raises(TypeError, match=r"\.lstm"):
        lstm_gates_demo(torch.nn.Linear(2, 2), tok, sentences=[GOOD])
    with pytest.raises(TypeError, match="sentences must be a non-empty list of sentences"):
        lstm_gates_demo(model, tok)
    with pytest.raises(TypeError, match="sentences"):
        lstm_gates_demo(model, tok, sentences=GOOD)  # one string, not a list of them


def test_unroll_demo_needs_a_corpus():
    with pytest.raises(TypeError, match="corpus must be a non-empty list of sentences"):
        rnn_unroll_demo()
    with pytest.raises(TypeError, match="corpus"):
        rnn_unroll_demo([])
    w = rnn_unroll_demo(CORPUS, text="hallo wie geht's")
    assert w.last_data["tokens"] == ["hallo", "wie", "geht's"]


@pytest.mark.slow
@pytest.mark.part2
def test_default_gates_demo_trains_once_and_reads_negation(tmp_path, monkeypatch):
    """With model=None the demo trains a small sentiment LSTM once, caches it, and gets the lecture's pair right."""
    monkeypatch.setenv("SEQLIB_CACHE", str(tmp_path))
    w = lstm_gates_demo(sentences=[GOOD, BAD])
    assert (tmp_path / "models" / "sentiment_lstm_v2.pt").exists()
    assert w.last_data["prediction"] == "positive"
    w.controls["sentence"].value = BAD
    assert w.last_data["prediction"] == "negative"
    calls = []
    cache._MEMORY.clear()  # read the file, not the copy kept in memory
    again = cache.cached_model("sentiment_lstm_v2", lambda: SentimentLSTM(len(w.tokenizer), 2),
                                 lambda m: calls.append(m))
    assert calls == []  # loaded, not trained again
    for (name, a), b in zip(again.state_dict().items(), w.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
