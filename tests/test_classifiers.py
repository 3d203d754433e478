"""seqlib.classifiers: the recurrent and the Transformer classifier against torch.nn twins, padding, the training
recipe (schedules, class weights, seeding), the measures."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqlib.classifiers import (
    RNNClassifier,
    TransformerClassifier,
    accuracy,
    as_tensors,
    balanced_class_weights,
    count_classes,
    count_parameters,
    cpu_latency,
    predict_logits,
    train_classifier,
)
from seqlib.data import sensor_activity
from seqlib.fastgrnn import FastGRNN
from seqlib.train import per_class_accuracy

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
    lambda: RNNClassifier(3, 8, vocab_size=15, padding_idx=0),
    lambda: RNNClassifier(3, 8, num_layers=2, bidirectional=True, vocab_size=15, embedding_dim=4),
    lambda: RNNClassifier(3, 6, bidirectional=True, cell="gru", pool="mean", vocab_size=15),
    lambda: RNNClassifier(3, 5, cell="rnn", vocab_size=15),
    lambda: RNNClassifier(3, 5, cell="fastgrnn", vocab_size=15),
    lambda: RNNClassifier(3, 5, cell="fastgrnn", pool="mean", vocab_size=15),
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


TWINS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize(("num_layers", "bidirectional", "pool"), [(1, False, "last"), (2, True, "last"),
                                                                     (1, False, "mean"), (2, True, "mean")])
def test_rnn_classifier_is_the_torch_layer_plus_a_linear_head(cell, num_layers, bidirectional, pool):
    torch.manual_seed(0)
    model = RNNClassifier(6, 5, num_layers, bidirectional, cell=cell, pool=pool, input_size=3).double()
    twin = TWINS[cell](3, 5, num_layers, batch_first=True, bidirectional=bidirectional).double()
    twin.load_state_dict(model.rnn.state_dict(), strict=True)
    x = torch.randn(4, 7, 3, dtype=torch.float64, requires_grad=True)
    out, state = twin(x)  # out: (N, L, D*H)
    h_n = state[0] if cell == "lstm" else state  # (num_layers * D, N, H)
    last = torch.cat([h_n[-2], h_n[-1]], dim=-1) if bidirectional else h_n[-1]
    expected = model.head(last if pool == "last" else out.mean(1))
    ours = model(x)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    (g1,), (g2,) = torch.autograd.grad(ours.sum(), x), torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-12)
    assert model.head.in_features == 5 * (2 if bidirectional else 1)


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_fastgrnn_classifier_reads_the_fastgrnn_layer(pool):
    torch.manual_seed(0)
    model = RNNClassifier(4, 6, cell="fastgrnn", pool=pool, input_size=3).double()
    assert isinstance(model.rnn, FastGRNN) and model.rnn.batch_first
    x = torch.randn(5, 9, 3, dtype=torch.float64)
    out, h_n = model.rnn(x)  # (N, L, H), (1, N, H)
    torch.testing.assert_close(h_n[0], out[:, -1])
    expected = model.head(out[:, -1] if pool == "last" else out.mean(1))
    torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.features(x), out[:, -1] if pool == "last" else out.mean(1))


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
        RNNClassifier(3, vocab_size=10, input_size=3)
    tok = RNNClassifier(3, 4, vocab_size=10)
    with pytest.raises(ValueError, match=r"token ids in \[0, vocab_size\) = \[0, 10\)"):
        tok(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match=r"int64 tokens of shape \(N, L\)"):
        tok(torch.randn(2, 5, 3))
    feat = TransformerClassifier(3, 8, 2, 1, input_size=3, max_len=8)
    with pytest.raises(ValueError, match="F = 3"):
        feat(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="max_len = 8"):
        feat(torch.randn(2, 9, 3))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, L\]"):
        feat(torch.randn(2, 5, 3), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"lengths must be an integer tensor of shape \(N,\)"):
        feat(torch.randn(2, 5, 3), torch.tensor([5]))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        feat([[0.0]])
    with pytest.raises(ValueError, match="cell must be one of"):
        RNNClassifier(3, cell="transformer", input_size=3)
    with pytest.raises(ValueError, match="pool must be one of"):
        RNNClassifier(3, pool="max", input_size=3)
    with pytest.raises(ValueError, match="one layer in one direction"):
        RNNClassifier(3, num_layers=2, cell="fastgrnn", input_size=3)
    with pytest.raises(ValueError, match="F = 3"):
        RNNClassifier(3, 4, cell="gru", input_size=3)(torch.randn(2, 5, 4))


def test_train_classifier_learns_and_repeats_with_a_seed():
    data = sensor_activity(300, 16, seed=0, classes=("sitting", "running"))
    test = sensor_activity(200, 16, seed=1, classes=("sitting", "running"))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = RNNClassifier(2, 4, input_size=3)
        history = train_classifier(model, data, epochs=3, batch_size=32, lr=2e-2, seed=3, progress=False,
                                   val_data=(test.inputs, test.targets))
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert len(history.train_loss) == 3 and len(history.val_loss) == 3 and len(history.step_loss) == 30
    assert history.train_loss[-1] < history.train_loss[0]
    assert accuracy(model, test) > 0.9  # two easy classes
    with pytest.raises(ValueError, match="lr must be a positive"):
        train_classifier(model, data, lr=0)
    with pytest.raises(TypeError, match="data must be a Dataset"):
        train_classifier(model, [1, 2, 3])
    with pytest.raises(ValueError, match="schedule must be one of"):
        train_classifier(model, data, schedule="step")
    with pytest.raises(TypeError, match="loss_fn or class_weights, not both"):
        train_classifier(model, data, loss_fn=F.cross_entropy, class_weights="balanced")


@pytest.mark.parametrize("schedule", ["cosine", "constant", "one_cycle"])
def test_schedules_step_after_every_optimiser_step(schedule):
    data = sensor_activity(50, 8, seed=0)
    torch.manual_seed(0)
    model = RNNClassifier(6, 4, cell="gru", input_size=3)
    history = train_classifier(model, data, epochs=3, batch_size=16, lr=0.01, schedule=schedule, progress=False)
    B = math.ceil(50 / 16)
    S = 3 * B
    assert len(history.lr) == S
    if schedule == "cosine":  # one rate per epoch, (1 + cos(pi e / E)) / 2 of lr
        expected = [0.01 * 0.5 * (1 + math.cos(math.pi * (s // B) / 3)) for s in range(S)]
        assert history.lr == pytest.approx(expected, rel=1e-12)
    elif schedule == "constant":
        assert history.lr == [0.01] * S
    else:  # torch's one-cycle policy over the S steps: up to about lr, then far below where it started
        optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=0.01)
        reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=S)
        expected = []
        for _ in range(S):
            expected.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            reference.step()
        assert history.lr == pytest.approx(expected, rel=1e-12)
        assert max(history.lr) > 0.009 and history.lr[-1] < history.lr[0] < 0.001


def test_class_weights_weigh_the_cross_entropy():
    data = sensor_activity(60, 8, seed=0, counts=[30, 20, 10], classes=("walking", "running", "sitting"))
    inputs, targets = as_tensors("data", data)
    assert count_classes(data) == 3 and count_classes((inputs, targets)) == 3
    weights = balanced_class_weights(targets, 3)
    torch.testing.assert_close(weights * torch.tensor([30.0, 20, 10]), torch.full((3,), float(weights[0] * 30)))
    assert float(weights.sum()) == pytest.approx(3.0)
    runs = []
    for kw in ({"class_weights": "balanced"}, {"class_weights": weights},
               {"loss_fn": lambda out, y: F.cross_entropy(out, y, weight=weights)}, {}):
        torch.manual_seed(0)
        model = RNNClassifier(3, 4, input_size=3)
        runs.append(train_classifier(model, data, epochs=2, batch_size=16, progress=False, **kw).step_loss)
    assert runs[0] == runs[1] == runs[2] and runs[3] != runs[0]
    with pytest.raises(ValueError, match="every class needs training examples"):
        balanced_class_weights(torch.tensor([0, 0, 2]), 3)
    with pytest.raises(ValueError, match="class_weights must be one of"):
        train_classifier(model, data, class_weights="inverse")


def test_measures():
    torch.manual_seed(0)
    model = RNNClassifier(6, 16, input_size=3)
    assert count_parameters(model) == 4 * 16 * (3 + 16) + 2 * 4 * 16 + 16 * 6 + 6
    x = sensor_activity(10, 8).inputs
    model.train()
    logits = predict_logits(model, x, batch_size=3)
    assert model.training and logits.shape == (10, 6) and not logits.requires_grad
    torch.testing.assert_close(logits, model.eval()(x))
    assert 0 < cpu_latency(model, x[0], repeats=3, warmup=1) < 1000
    with pytest.raises(ValueError, match="at least one sequence"):
        predict_logits(model, x[:0])
    data = sensor_activity(40, 8, seed=3)
    predictions = model.eval()(data.inputs).argmax(-1)
    assert accuracy(model, data, batch_size=7) == pytest.approx(float((predictions == data.targets).double().mean()))
    assert torch.equal(accuracy(model, (data.inputs, data.targets), per_class=True),
                       per_class_accuracy(predictions, data.targets, 6))
    with pytest.raises(ValueError, match="at least one item"):
        accuracy(model, (x[:0], torch.zeros(0, dtype=torch.long)))
