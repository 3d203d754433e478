"""seqlib.data.imbalanced (long-tailed training set, balanced test set) and the per-class metrics of seqlib.train."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from seqlib.data import long_tailed_counts, sensor_long_tailed
from seqlib.train import confusion_matrix, per_class_accuracy, per_class_precision, per_class_recall, predict

pytestmark = pytest.mark.part4


def test_long_tailed_counts_follow_the_exponential_profile():
    counts = long_tailed_counts(2000, 100, 4)
    assert counts == [round(2000 * 100 ** (-k / 3)) for k in range(4)] == [2000, 431, 93, 20]
    assert long_tailed_counts(50, 1, 3) == [50, 50, 50]
    assert long_tailed_counts(10, 1000, 3) == [10, 1, 1]  # at least one window a class
    assert long_tailed_counts(7, 5, 1) == [7]
    with pytest.raises(ValueError, match="imbalance must be a number >= 1"):
        long_tailed_counts(100, 0.5, 3)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        long_tailed_counts(100, 10, 0)


def test_sensor_long_tailed_gives_an_imbalanced_train_and_a_balanced_test_set():
    train, test = sensor_long_tailed([60, 20, 5], classes=("walking", "running", "upstairs"), test_per_class=7,
                                     seq_len=16, seed=3)
    assert train.class_counts().tolist() == [60, 20, 5] and test.class_counts().tolist() == [7, 7, 7]
    assert train.inputs.shape == (85, 16, 3) and test.inputs.shape == (21, 16, 3)
    assert train.classes == test.classes == ("walking", "running", "upstairs")
    again, _ = sensor_long_tailed([60, 20, 5], classes=("walking", "running", "upstairs"), test_per_class=7,
                                  seq_len=16, seed=3)
    assert torch.equal(again.inputs, train.inputs)
    assert not any(torch.equal(test.inputs[i], train.inputs[j]) for i in range(5) for j in range(85))
    default, _ = sensor_long_tailed(n_max=40, imbalance=10, test_per_class=2, seq_len=8)
    assert default.class_counts().tolist() == long_tailed_counts(40, 10, 4)


def test_sensor_long_tailed_rejects_an_empty_class():
    with pytest.raises(ValueError, match=r"counts\[2\] \(class 'upstairs'\) must be at least 1"):
        sensor_long_tailed([10, 5, 0, 2])
    with pytest.raises(ValueError, match="one entry per class"):
        sensor_long_tailed([10, 5])
    with pytest.raises(ValueError, match="test_per_class must be a positive integer"):
        sensor_long_tailed([10, 5, 3, 2], test_per_class=0)


def test_confusion_matrix_recall_precision_and_accuracy_by_hand():
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    predictions = torch.tensor([0, 0, 1, 2, 1, 0, 2, 2])
    cm = confusion_matrix(predictions, targets, 3)
    assert cm.tolist() == [[2, 1, 1], [1, 1, 0], [0, 0, 2]]
    torch.testing.assert_close(per_class_recall(predictions, targets, 3), torch.tensor([0.5, 0.5, 1.0],
                                                                                       dtype=torch.float64))
    assert torch.equal(per_class_accuracy(predictions, targets, 3), per_class_recall(predictions, targets, 3))
    torch.testing.assert_close(per_class_precision(predictions, targets, 3),
                               torch.tensor([2 / 3, 1 / 2, 2 / 3], dtype=torch.float64))
    assert torch.isnan(per_class_precision(torch.zeros(3, dtype=torch.long), torch.tensor([0, 1, 2]), 3)[1])


def test_per_class_metrics_against_scikit_style_definitions_on_random_labels():
    g = torch.Generator().manual_seed(0)
    targets, predictions = torch.randint(0, 5, (400,), generator=g), torch.randint(0, 5, (400,), generator=g)
    recall = per_class_recall(predictions, targets, 5)
    for k in range(5):
        assert recall[k].item() == pytest.approx(float((predictions[targets == k] == k).float().mean()))
    balanced = torch.arange(4).repeat_interleave(50)
    preds = torch.randint(0, 4, (200,), generator=g)
    assert per_class_accuracy(preds, balanced, 4).mean().item() == pytest.approx(float((preds == balanced).float()
                                                                                       .mean()))


def test_metrics_bad_input():
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] have no examples"):
        per_class_recall(torch.tensor([0, 1]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="1-D integer tensor"):
        confusion_matrix(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 2]), 2)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(torch.tensor([0]), torch.tensor([0]), 0)


def test_predict_returns_argmax_and_targets_and_restores_the_mode():
    model = torch.nn.Linear(3, 4)
    model.train()
    x, y = torch.randn(10, 3), torch.randint(0, 4, (10,))
    predictions, targets = predict(model, DataLoader(TensorDataset(x, y), batch_size=4), device="cpu")
    assert torch.equal(predictions, model(x).argmax(1)) and torch.equal(targets, y) and model.training
    with pytest.raises(ValueError, match=r"logits of shape \(B, K\)"):
        predict(torch.nn.Flatten(0), DataLoader(TensorDataset(x, y), batch_size=4), device="cpu")
