"""seqlib.distill: the distillation loss against F.kl_div / F.cross_entropy / F.mse_loss, its gradient, bad input,
and distill() on the sensor task against the same student trained on labels alone."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlib import distill_demo as E
from seqlib.classifiers import accuracy, train_classifier
from seqlib.distill import (
    TransferLoss,
    distill,
    distillation_gradient,
    distillation_loss,
    temperature_log_softmax,
    temperature_softmax,
)

pytestmark = pytest.mark.part4

F64 = torch.float64


def reference(s, t, y, T, alpha, reduction="mean", kind="kl", ignore_index=-100, mask=None):
    """The same loss built from torch's own functions."""
    if kind == "kl":
        soft = T * T * F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="none",
                                log_target=True).sum(-1)
    else:
        soft = F.mse_loss(s, t, reduction="none").mean(-1)
    valid = torch.ones(s.shape[:-1], dtype=torch.bool)
    if y is not None:
        valid &= y != ignore_index
        hard = F.cross_entropy(s.movedim(-1, 1), y, reduction="none", ignore_index=ignore_index)
        loss = alpha * soft + (1 - alpha) * hard
    else:
        loss = alpha * soft
    if mask is not None:
        valid &= mask
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / valid.sum()


def logits(*shape, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    s = (scale * torch.randn(*shape, generator=g, dtype=F64)).requires_grad_()
    t = scale * torch.randn(*shape, generator=g, dtype=F64)
    return s, t


# --------------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 4.0, 10.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_classification_mean_equals_kl_div_batchmean_plus_cross_entropy(T, alpha):
    s, t = logits(16, 6)
    y = torch.randint(0, 6, (16,), generator=torch.Generator().manual_seed(1))
    ours = distillation_loss(s, t, y, T, alpha)
    ref = alpha * T**2 * F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="batchmean",
                                  log_target=True) + (1 - alpha) * F.cross_entropy(s, y)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    (g_ours,), (g_ref,) = torch.autograd.grad(ours, s), torch.autograd.grad(ref, s)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(distillation_gradient(s, t, y, T, alpha), g_ref, rtol=1e-10, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 5), L=st.integers(1, 6), C=st.integers(1, 7), T=st.floats(0.25, 8.0),
       alpha=st.floats(0.0, 1.0), reduction=st.sampled_from(["mean", "sum", "none"]),
       kind=st.sampled_from(["kl", "mse"]), seed=st.integers(0, 2**16), per_step=st.booleans())
def test_per_step_with_padding_equals_reference(N, L, C, T, alpha, reduction, kind, seed, per_step):
    shape = (N, L, C) if per_step else (N, C)
    s, t = logits(*shape, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    y = torch.randint(0, C, shape[:-1], generator=g)
    y[torch.rand(shape[:-1], generator=g) < 0.3] = -100  # padding
    y.view(-1)[0] = 0  # at least one position counts
    ours = distillation_loss(s, t, y, T, alpha, reduction, kind=kind)
    ref = reference(s, t, y, T, alpha, reduction, kind)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    (g_ours,) = torch.autograd.grad(ours.sum(), s)
    (g_ref,) = torch.autograd.grad(ref.sum(), s)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-9, atol=1e-12)
    if reduction != "none":
        torch.testing.assert_close(distillation_gradient(s, t, y, T, alpha, reduction, kind=kind), g_ref,
                                   rtol=1e-9, atol=1e-12)
    assert bool((ours.detach()[y == -100] == 0).all()) if reduction == "none" else True


def test_padded_steps_change_nothing():
    """What sits in a padded step (its logits, its label) does not move the loss or the other gradients."""
    s, t = logits(3, 5, 4)
    y = torch.randint(0, 4, (3, 5), generator=torch.Generator().manual_seed(2))
    y[:, 3:] = -100
    base = distillation_loss(s, t, y, 2.0, 0.5)
    s2 = s.detach().clone()
    s2[:, 3:] = 100 * torch.randn(3, 2, 4, dtype=F64)
    s2.requires_grad_()
    torch.testing.assert_close(distillation_loss(s2, t, y, 2.0, 0.5), base)
    (grad,) = torch.autograd.grad(distillation_loss(s2, t, y, 2.0, 0.5), s2)
    assert bool((grad[:, 3:] == 0).all())
    # the ignore index can be any int, and a mask does the same without labels
    y7 = torch.where(y == -100, torch.full_like(y, 7), y)
    torch.testing.assert_close(distillation_loss(s, t, y7, 2.0, 0.5, ignore_index=7), base)
    mask = y != -100
    torch.testing.assert_close(distillation_loss(s, t, None, 2.0, 1.0, mask=mask), reference(s, t, None, 2.0, 1.0,
                                                                                              mask=mask))


def test_all_positions_ignored_gives_nan_like_cross_entropy():
    s, t = logits(2, 3)
    s, y = s.detach(), torch.full((2,), -100)
    assert math.isnan(float(distillation_loss(s, t, y, 2.0, 0.5)))
    assert math.isnan(float(F.cross_entropy(s, y)))
    assert float(distillation_loss(s, t, y, 2.0, 0.5, reduction="sum")) == 0.0


def test_mse_kind_is_tang_logit_matching_and_ignores_temperature():
    s, t = logits(10, 5)
    for T in (0.5, 1.0, 7.0):
        torch.testing.assert_close(distillation_loss(s, t, None, T, 1.0, kind="mse"), F.mse_loss(s, t))


def test_high_temperature_limit_is_logit_matching():
    """T^2 KL -> (1 / 2C) sum_c (centred z - centred v)^2 as T grows (Hinton et al., 2015, section 2.1)."""
    s, t = logits(6, 5, scale=1.0)
    s, t = s.detach(), t

    def centred(z):
        return z - z.mean(-1, keepdim=True)

    limit = 0.5 * ((centred(s) - centred(t)) ** 2).mean()
    errors = [abs(float(distillation_loss(s, t, None, T, 1.0)) - float(limit)) for T in (10.0, 100.0, 1000.0)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3 * float(limit)


def test_soft_term_vanishes_for_a_perfect_student_and_is_positive_otherwise():
    s, t = logits(5, 4)
    s = s.detach()
    assert float(distillation_loss(t.clone(), t, None, 3.0, 1.0)) == pytest.approx(0.0, abs=1e-15)
    assert float(distillation_loss(t + 5.0, t, None, 3.0, 1.0)) == pytest.approx(0.0, abs=1e-12)  # shift-invariant
    assert float(distillation_loss(s, t, None, 3.0, 1.0)) > 0


def test_temperature_softmax():
    z = torch.tensor([[4.0, 2.0, 0.0], [1000.0, 999.0, -1000.0]], dtype=F64)
    for T in (0.1, 1.0, 3.0):
        torch.testing.assert_close(temperature_softmax(z, T), F.softmax(z / T, -1))
        torch.testing.assert_close(temperature_log_softmax(z, T), F.log_softmax(z / T, -1))
    assert torch.isfinite(temperature_log_softmax(z, 0.01)).all()  # no overflow at large logits / small T
    flat = temperature_softmax(z[:1], 1e6)
    torch.testing.assert_close(flat, torch.full_like(flat, 1 / 3), rtol=0, atol=1e-5)
    sharp = temperature_softmax(z[:1], 1e-3)
    torch.testing.assert_close(sharp, torch.tensor([[1.0, 0.0, 0.0]], dtype=F64))
    torch.testing.assert_close(temperature_softmax(z.T, 2.0, dim=0), F.softmax(z.T / 2.0, 0))


def test_soft_gradient_is_on_the_same_scale_at_every_temperature():
    """The T^2 factor: the soft gradient is T (q_T - p_T), which tends to (z - v) / C, not to zero."""
    s, t = logits(4, 6, scale=0.5)
    norms = [float(distillation_gradient(s, t, None, T, 1.0).norm()) for T in (2.0, 20.0, 200.0)]
    assert max(norms) / min(norms) < 1.5


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("T", [0, 0.0, -1.0, float("inf"), float("nan")])
def test_temperature_must_be_positive(T):
    s, t = logits(2, 3)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        distillation_loss(s, t, None, T, 1.0)
    with pytest.raises(ValueError, match="temperature"):
        temperature_softmax(t, T)


@pytest.mark.parametrize("T", ["2", None, True, torch.tensor(2.0)])
def test_temperature_must_be_a_number(T):
    s, t = logits(2, 3)
    with pytest.raises(TypeError, match="temperature"):
        distillation_loss(s, t, None, T, 1.0)


@pytest.mark.parametrize("alpha", [-0.1, 1.01, 2])
def test_alpha_must_be_in_unit_interval(alpha):
    s, t = logits(2, 3)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        distillation_loss(s, t, torch.tensor([0, 1]), 2.0, alpha)
    with pytest.raises(ValueError, match="alpha"):
        TransferLoss(2.0, alpha)


@pytest.mark.parametrize("s_shape,t_shape", [((4, 3), (5, 3)), ((2, 5, 3), (2, 4, 3)), ((2, 5, 3), (2, 3)),
                                             ((6, 3), (2, 3, 3))])
def test_shape_mismatch_between_student_and_teacher(s_shape, t_shape):
    s, t = torch.randn(*s_shape), torch.randn(*t_shape)
    with pytest.raises(ValueError, match="teacher_logits must have the shape of student_logits"):
        distillation_loss(s, t, None, 2.0, 1.0)


@pytest.mark.parametrize("s_shape,t_shape", [((4, 3), (4, 5)), ((2, 5, 30), (2, 5, 31))])
def test_vocabulary_mismatch_between_student_and_teacher(s_shape, t_shape):
    s, t = torch.randn(*s_shape), torch.randn(*t_shape)
    with pytest.raises(ValueError, match=rf"same C classes.*C = {s_shape[-1]}.*C = {t_shape[-1]}"):
        distillation_loss(s, t, None, 2.0, 1.0)


def test_bad_logits_targets_and_options():
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    y = torch.tensor([0, 1, 2, 0])
    with pytest.raises(TypeError, match="student_logits must be a torch.Tensor"):
        distillation_loss(s.tolist(), t, y)
    with pytest.raises(TypeError, match="floating-point"):
        distillation_loss(torch.ones(4, 3, dtype=torch.int64), t, y)
    with pytest.raises(ValueError, match=r"\(N, C\) or \(N, L, C\)"):
        distillation_loss(torch.randn(4), torch.randn(4), None, 2.0, 1.0)
    with pytest.raises(TypeError, match="dtype"):
        distillation_loss(s, t.double(), y)
    with pytest.raises(TypeError, match="class indices"):
        distillation_loss(s, t, y.float())
    with pytest.raises(ValueError, match=r"target must have shape \(N,\) = \(4,\)"):
        distillation_loss(s, t, y[:3])
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        distillation_loss(s, t, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="target is needed when alpha < 1"):
        distillation_loss(s, t, None, 2.0, 0.5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        distillation_loss(s, t, y, reduction="batchmean")
    with pytest.raises(ValueError, match="kind must be one of"):
        distillation_loss(s, t, y, kind="l2")
    with pytest.raises(TypeError, match="mask must be a bool"):
        distillation_loss(s, t, y, mask=torch.ones(4))
    with pytest.raises(ValueError, match="mask must have shape"):
        distillation_loss(s, t, y, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        distillation_loss(s, t, y, ignore_index=None)
    with pytest.raises(ValueError, match="reduction"):
        distillation_gradient(s, t, y, reduction="none")


# --------------------------------------------------------------------------------------------- distill


def test_transfer_loss_mixes_soft_over_all_rows_with_hard_over_labelled_rows():
    s, t = logits(6, 4)
    y = torch.tensor([0, 1, 2, -100, -100, -100])
    labelled = torch.tensor([True, True, True, False, False, False])
    loss = TransferLoss(3.0, 0.25)(s, (t, y, labelled))
    expected = 0.25 * distillation_loss(s, t, None, 3.0, 1.0) + 0.75 * F.cross_entropy(s[:3], y[:3])
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(TransferLoss(3.0, 1.0, "mse")(s, (t, y, labelled)), F.mse_loss(s, t))
    torch.testing.assert_close(TransferLoss(3.0, 0.25)(s, y.clamp(min=0)), F.cross_entropy(s, y.clamp(min=0)))
    # all rows labelled: exactly the distillation loss
    y_all = torch.tensor([0, 1, 2, 3, 0, 1])
    torch.testing.assert_close(TransferLoss(2.0, 0.4)(s, (t, y_all, torch.ones(6, dtype=torch.bool))),
                               distillation_loss(s, t, y_all, 2.0, 0.4))
    # per step: padded steps of labelled rows are left out of both terms, unlabelled rows count everywhere
    s3, t3 = logits(2, 3, 4)
    y3 = torch.tensor([[1, 2, -100], [-100, -100, -100]])
    loss = TransferLoss(2.0, 0.5)(s3, (t3, y3, torch.tensor([True, False])))
    mask = torch.tensor([[True, True, False], [True, True, True]])
    expected = 0.5 * reference(s3, t3, None, 2.0, 1.0, mask=mask) + 0.5 * F.cross_entropy(s3[0, :2], y3[0, :2])
    torch.testing.assert_close(loss, expected)


def test_demo_models_and_splits_are_as_documented():
    assert sum(p.numel() for p in E.build_teacher().parameters()) == 17_478
    assert sum(p.numel() for p in E.build_student().parameters()) == 1_446
    splits = E.sensor_splits(n_labelled=12, n_unlabelled=10, n_test=8, n_teacher=9, seq_len=E.SEQ_LEN)
    assert {k: len(v) for k, v in splits.items()} == {"teacher_train": 9, "labelled": 12, "unlabelled": 10, "test": 8}
    firsts = [v.inputs[0] for v in splits.values()]
    assert all(not torch.equal(a, b) for i, a in enumerate(firsts) for b in firsts[i + 1:])  # disjoint draws
    again = E.sensor_splits(n_labelled=12, n_unlabelled=10, n_test=8, n_teacher=9)
    assert torch.equal(again["labelled"].inputs, splits["labelled"].inputs)
    assert splits["test"].inputs.shape == (8, E.SEQ_LEN, 3)
    with pytest.raises(ValueError, match="method must be one of"):
        E.run_student("teacher_labels")
    torch.manual_seed(0)
    teacher = E.build_teacher().eval()  # untrained: only the plumbing is under test here
    run = E.run_student("augmented", 1, teacher=teacher, splits=splits, steps=2, batch_size=8, copies=1,
                        temperature=8.0, kind="kl", alpha=0.9)
    assert run["steps"] == 3  # one epoch of (12 + 12 copies) windows in batches of 8
    assert 0 <= run["accuracy"] <= 1 and run["model"].hidden_size == 16
    with pytest.raises(TypeError, match="overrides"):
        E.run_student("labels", teacher=teacher, splits=splits, temperature=2.0)
    with pytest.raises(TypeError, match="overrides"):
        E.run_student("soft", teacher=teacher, splits=splits, lr_decay=2.0)


@pytest.mark.slow
def test_distilled_student_beats_the_same_student_on_labels_alone():
    """The lecture's claim at a small scale, measured here: 60 labelled windows, 300 steps, three seeds.

    Every student has the same architecture, initial weights (per seed), optimiser, schedule and number of steps;
    the distilled one learns from the shipped teacher's logits on 2000 unlabelled windows instead of the labels.
    """
    teacher = E.sensor_teacher()
    splits = E.sensor_splits(n_labelled=60, n_unlabelled=2000, n_test=500)
    teacher_accuracy = accuracy(teacher, splits["test"])
    assert teacher_accuracy > 0.9
    transfer = E.method_transfer_set("unlabelled", teacher, splits)
    labels, distilled = [], []
    for seed in (0, 1, 2):
        kw = {"teacher": teacher, "splits": splits, "steps": 300, "batch_size": 128}
        labels.append(E.run_student("labels", seed, **kw)["accuracy"])
        distilled.append(E.run_student("unlabelled", seed, transfer=transfer, **kw)["accuracy"])
    gains = [d - b for d, b in zip(distilled, labels, strict=True)]
    assert all(g > 0 for g in gains), (labels, distilled)
    assert statistics.mean(gains) > 0.05, (labels, distilled)
    assert max(labels) < teacher_accuracy - 0.2  # the teacher is clearly better than the student on few labels


def test_distill_with_alpha_zero_is_the_label_only_recipe_and_repeats():
    data = E.sensor_splits(n_labelled=40, n_unlabelled=1, n_test=1, n_teacher=1, seq_len=12)["labelled"]
    torch.manual_seed(0)
    teacher = E.build_teacher(seq_len=12).eval()
    weights = []
    for run in ("labels", "distill", "distill"):
        torch.manual_seed(1)
        student = E.build_student(4)
        kw = {"epochs": 2, "batch_size": 16, "lr": 1e-2, "seed": 5, "progress": False}
        if run == "labels":
            train_classifier(student, data, **kw)
        else:
            history = distill(student, teacher, data, alpha=0.0, **kw)
        weights.append(student.state_dict())
    for k in weights[0]:
        torch.testing.assert_close(weights[1][k], weights[0][k], rtol=1e-5, atol=1e-6)
        assert torch.equal(weights[1][k], weights[2][k])
    assert len(history.train_loss) == 2 and len(history.step_loss) == 6
    with pytest.raises(TypeError, match="do not pass loss_fn"):
        distill(student, teacher, data, loss_fn=F.cross_entropy)
    with pytest.raises(TypeError, match="teacher must be a torch.nn.Module"):
        distill(student, "teacher", data)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        distill(student, teacher, data, temperature=0.0)
