"""seqlib.quant_demo: the long-tailed quantization experiment, at toy sizes (the benchmark runs it at course sizes)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqlib import quant_demo
from seqlib.classifiers import RNNClassifier, accuracy, balanced_class_weights, train_classifier
from seqlib.climbq import ClassWiseCDFQuantize
from seqlib.data import sensor_long_tailed
from seqlib.qat import quantized_modules

pytestmark = pytest.mark.part4


@pytest.fixture(scope="module")
def setup():
    train, test = sensor_long_tailed([80, 30, 10, 4], test_per_class=10, seq_len=16, seed=0)
    model = quant_demo.float_classifier(train, hidden_size=8, epochs=2, seed=0)
    return train, test, model


def test_float_training_is_seeded_and_class_balanced(setup):
    train, test, model = setup
    assert isinstance(model, RNNClassifier) and model.cell == "lstm" and model.pool == "mean" and not model.training
    again = quant_demo.float_classifier(train, hidden_size=8, epochs=2, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                 strict=True))
    # the same as the shared recipe with the class-balanced cross-entropy written out
    torch.manual_seed(0)
    twin = quant_demo.build_classifier(4, 8)
    weight = balanced_class_weights(train.targets, 4)
    train_classifier(twin, train, loss_fn=lambda out, y: F.cross_entropy(out, y, weight=weight), epochs=2, lr=1e-2,
                     batch_size=64, clip_grad_norm=1.0, seed=0, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values(),
                                                 strict=True))
    per_class = accuracy(model, test, per_class=True)
    assert per_class.shape == (4,) and bool(((per_class >= 0) & (per_class <= 1)).all())
    assert float(per_class.mean()) == pytest.approx(accuracy(model, test))  # a balanced test set


@pytest.mark.parametrize("scheme", quant_demo.SCHEMES)
def test_every_scheme_returns_a_quantized_copy(setup, scheme):
    train, test, model = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quant_demo.quantize_scheme(model, scheme, 2, train, qat_epochs=1, seed=0)
    assert not q.training and {n for n, _ in quantized_modules(q)} == {"rnn", "head"}
    assert q.rnn.weight_ih_l0.unique().numel() <= 4 and q.head.weight.unique().numel() <= 4
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    if scheme == "climbq":
        assert isinstance(q.head.input_quantizer, ClassWiseCDFQuantize)
    per_class = accuracy(q, test, per_class=True)
    assert per_class.shape == (4,)
    if scheme in ("uniform", "cdf"):  # post-training: deterministic
        again = quant_demo.quantize_scheme(model, scheme, 2, train)
        assert torch.equal(accuracy(again, test, per_class=True), per_class)
    else:  # QAT: seeded (the weight observers' buffers follow every forward pass, so compare the parameters)
        again = quant_demo.quantize_scheme(model, scheme, 2, train, qat_epochs=1, seed=0)
        assert all(torch.equal(a, b) for a, b in zip(q.parameters(), again.parameters(), strict=True))


def test_bad_input(setup):
    train, _, model = setup
    with pytest.raises(ValueError, match="scheme must be one of"):
        quant_demo.quantize_scheme(model, "nf4", 4, train)
    with pytest.raises(ValueError, match="bits must be from 2 to 16"):
        quant_demo.quantize_scheme(model, "uniform", 1, train)
    with pytest.raises(ValueError, match="every class needs training examples"):
        balanced_class_weights(torch.tensor([0, 0, 1]), 3)
