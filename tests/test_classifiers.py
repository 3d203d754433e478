"""seqlib.classifiers: the teacher's and the student's architectures, padding, the training recipe, the measures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqlib.classifiers import (
    LSTMClassifier,
    TransformerClassifier,
    accuracy,
    count_parameters,
    cpu_latency,
    predict_logits,
    train_classifier,
)
from seqlib.data import sensor_activity

pytestmark = pytest.mark.part4


def padded_tokens(n=5, L=9, vocab=15, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, L + 1, (n,), generator=g)
    lengths[0] = L
    x = torch.randint(1, vocab, (n, L), generator=g)
    x[torch.arange(L)[None, :] >= lengths[:, None]] = 0
    return x, lengths


@pytest.mark.parametrize("make", [
    lambda: TransformerClassifier(3, 16, 2, 2, vocab_size=15, padding_idx=0, dropout=0.0),
    lambda: LSTMClassifier(3, 8, vocab_size=15, padding_idx=0),
    lambda: LSTMClassifier(3, 8, num_layers=2, bidirectional=True, vocab_size=15, embedding_dim=4),
])
def test_padded_batch_equals_each_sequence_alone(make):
    torch.manual_seed(0)
    model = make().double().eval()
    x, lengths = padded_tokens()
    batch = model(x, lengths)
    assert batch.shape == (5, 3) and batch.dtype == torch.float64
    for i in range(len(x)):
        alone = model(x[i:i + 1, :lengths[i]])
        torch.testing.assert_close(batch[i:i + 1], alone, rtol=1e-10, atol=1e-12)
    # what sits in the padding does not matter
    x2 = x.clone()
    x2[torch.arange(9)[None, :] >= lengths[:, None]] = 7
    torch.testing.assert_close(model(x2, lengths), batch, rtol=1e-10, atol=1e-12)


def test_lstm_classifier_is_torch_lstm_plus_a_linear_head():
    torch.manual_seed(0)
    model = LSTMClassifier(6, 5, input_size=3, bidirectional=True).double()
    twin = nn.LSTM(3, 5, batch_first=True, bidirectional=True).double()
    twin.load_state_dict(model.rnn.state_dict(), strict=True)
    x = torch.randn(4, 7, 3, dtype=torch.float64, requires_grad=True)
    _, (h_n, _) = twin(x)
    expected = model.head(torch.cat([h_n[0], h_n[1]], dim=-1))
    ours = model(x)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    (g1,), (g2,) = torch.autograd.grad(ours.sum(), x), torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-12)


def test_transformer_classifier_is_torch_encoder_plus_mean_pool():
    torch.manual_seed(0)
    model = TransformerClassifier(4, 16, 4, 2, 32, dropout=0.0, input_size=3, max_len=20).double().eval()
    layer = nn.TransformerEncoderLayer(16, 4, 32, 0.0, activation="gelu", batch_first=True, norm_first=True)
    twins = [layer.double() for layer in (layer, nn.TransformerEncoderLayer(16, 4, 32, 0.0, activation="gelu",
                                                                           batch_first=True, norm_first=True))]
    for ours, theirs in zip(model.layers, twins, strict=True):
        theirs.load_state_dict(ours.state_dict(), strict=True)
        theirs.eval()
    x = torch.randn(3, 11, 3, dtype=torch.float64)
    h = model.input_proj(x) + model.pos_encoding.pe[:11]
    for theirs in twins:
        h = theirs(h)
    expected = model.head(nn.functional.layer_norm(h, (16,), model.norm.weight, model.norm.bias).mean(1))
    torch.testing.assert_close(model(x), expected, rtol=1e-9, atol=1e-11)


def test_feature_and_token_inputs_are_checked():
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        TransformerClassifier(3)
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        LSTMClassifier(3, vocab_size=10, input_size=3)
    tok = LSTMClassifier(3, 4, vocab_size=10)
    with pytest.raises(ValueError, match=r"token ids in \[0, vocab_size\) = \[0, 10\)"):
        tok(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match=r"int64 tokens of shape \(N, L\)"):
        tok(torch.randn(2, 5, 3))
    feat = TransformerClassifier(3, 8, 2, 1, input_size=3, max_len=8)
    with pytest.raises(ValueError, match="F = 3"):
        feat(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="max_len = 8"):
        feat(torch.randn(2, 9, 3))
    with pytest.raises(ValueError, match=r"lengths must be in \[1, L\]"):
        feat(torch.randn(2, 5, 3), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"lengths must be an int64 tensor of shape \(N,\)"):
        feat(torch.randn(2, 5, 3), torch.tensor([5]))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        feat([[0.0]])


def test_train_classifier_learns_and_repeats_with_a_seed():
    data = sensor_activity(300, 16, seed=0, classes=("sitting", "running"))
    test = sensor_activity(200, 16, seed=1, classes=("sitting", "running"))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = LSTMClassifier(2, 4, input_size=3)
        history = train_classifier(model, data, epochs=3, batch_size=32, lr=2e-2, seed=3, progress=False,
                                   val_data=(test.inputs, test.targets))
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert len(history.train_loss) == 3 and len(history.val_loss) == 3 and len(history.step_loss) == 30
    assert history.train_loss[-1] < history.train_loss[0]
    assert accuracy(model, test) > 0.9  # two easy classes
    with pytest.raises(ValueError, match="lr must be a positive number"):
        train_classifier(model, data, lr=0)
    with pytest.raises(TypeError, match="data must be a Dataset"):
        train_classifier(model, [1, 2, 3])


def test_measures():
    torch.manual_seed(0)
    model = LSTMClassifier(6, 16, input_size=3)
    assert count_parameters(model) == 4 * 16 * (3 + 16) + 2 * 4 * 16 + 16 * 6 + 6
    x = sensor_activity(10, 8).inputs
    model.train()
    logits = predict_logits(model, x, batch_size=3)
    assert model.training and logits.shape == (10, 6) and not logits.requires_grad
    torch.testing.assert_close(logits, model.eval()(x))
    assert 0 < cpu_latency(model, x[0], repeats=3, warmup=1) < 1000
    with pytest.raises(ValueError, match="at least one sequence"):
        predict_logits(model, x[:0])
