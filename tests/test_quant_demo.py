"""seqlib.quant_demo: the long-tailed quantization experiment, at toy sizes (the benchmark runs it at course sizes)."""

from __future__ import annotations

import pytest
import torch

from seqlib import quant_demo
from seqlib.climbq import ClassWiseCDFQuantize
from seqlib.data import sensor_long_tailed
from seqlib.qat import quantized_modules

pytestmark = pytest.mark.part4


@pytest.fixture(scope="module")
def setup():
    train, test = sensor_long_tailed([80, 30, 10, 4], test_per_class=10, seq_len=16, seed=0)
    torch.manual_seed(0)  # the initial weights
    model = quant_demo.train_classifier(quant_demo.SequenceClassifier(hidden_size=8), train, epochs=2, seed=0)
    return train, test, model


def test_float_training_is_seeded_and_class_balanced(setup):
    train, test, model = setup
    torch.manual_seed(0)
    again = quant_demo.train_classifier(quant_demo.SequenceClassifier(hidden_size=8), train, epochs=2, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                 strict=True))
    weights = quant_demo.balanced_class_weights(train.targets, 4)
    torch.testing.assert_close(weights * torch.tensor([80.0, 30, 10, 4]), torch.full((4,), float(weights[0] * 80)))
    assert float(weights.sum()) == pytest.approx(4.0)
    accuracy = quant_demo.per_class(model, test)
    assert accuracy.shape == (4,) and bool(((accuracy >= 0) & (accuracy <= 1)).all())


@pytest.mark.parametrize("scheme", quant_demo.SCHEMES)
def test_every_scheme_returns_a_quantized_copy(setup, scheme):
    train, test, model = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quant_demo.quantize_scheme(model, scheme, 2, train, qat_epochs=1, seed=0)
    assert not q.training and {n for n, _ in quantized_modules(q)} == {"lstm", "head"}
    assert q.lstm.weight_ih_l0.unique().numel() <= 4 and q.head.weight.unique().numel() <= 4
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    if scheme == "climbq":
        assert isinstance(q.head.input_quantizer, ClassWiseCDFQuantize)
    accuracy = quant_demo.per_class(q, test)
    assert accuracy.shape == (4,)
    if scheme in ("uniform", "cdf"):  # post-training: deterministic
        again = quant_demo.quantize_scheme(model, scheme, 2, train)
        assert torch.equal(quant_demo.per_class(again, test), accuracy)


def test_bad_input(setup):
    train, _, model = setup
    with pytest.raises(ValueError, match="scheme must be one of"):
        quant_demo.quantize_scheme(model, "nf4", 4, train)
    with pytest.raises(ValueError, match="bits must be from 2 to 16"):
        quant_demo.quantize_scheme(model, "uniform", 1, train)
    with pytest.raises(ValueError, match="every class needs training examples"):
        quant_demo.balanced_class_weights(torch.tensor([0, 0, 1]), 3)
