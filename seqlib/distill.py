r"""Knowledge distillation (C36-C37): a small student learns from a large teacher's logits, not only from labels.

A trained classifier knows more than its top answer. Its logits :math:`v` rank *every* class: a window of
"walking" that the teacher scores as a little like "going downstairs" and nothing like "sitting" tells a student
which classes resemble each other, something a one-hot label cannot say (Hinton, Vinyals and Dean, 2015, call it
*dark knowledge*). A softmax at temperature :math:`T` makes those small probabilities visible:

.. math::
    p_c^{(T)} = \frac{\exp(v_c / T)}{\sum_{k} \exp(v_k / T)}

:math:`T = 1` is the usual softmax, :math:`T \to \infty` makes every class equally likely, :math:`T \to 0` puts all
the mass on the largest logit. The student, with logits :math:`z` and softened distribution :math:`q^{(T)}`,
is trained on

.. math::
    \ell = \alpha \, T^2 \, \mathrm{KL}\big(p^{(T)} \,\big\|\, q^{(T)}\big) + (1 - \alpha)\, \mathrm{CE}(z, y),
    \qquad \mathrm{KL}(p \,\|\, q) = \sum_c p_c (\log p_c - \log q_c)

The factor :math:`T^2` keeps the soft term's gradient, :math:`\partial (T^2 \mathrm{KL}) / \partial z =
T\,(q^{(T)} - p^{(T)})`, on the scale of the hard term's :math:`\operatorname{softmax}(z) - \mathrm{onehot}(y)`, so
:math:`\alpha` means the same at every temperature. For large :math:`T` that gradient tends to
:math:`(z - v)/C` for zero-mean logits: matching softened distributions becomes matching logits. Tang et al.
(2019) train on that limit directly, the mean squared error of the logits (``kind="mse"``):

.. math::
    \ell_{\text{mse}} = \alpha \, \frac{1}{C} \sum_c (z_c - v_c)^2 + (1 - \alpha)\, \mathrm{CE}(z, y)

Everything works per example, logits ``(N, C)``, and per step, logits ``(N, L, C)`` (a tagger, a language model),
where padded steps are left out with ``target == ignore_index`` (or a boolean ``mask``).

:func:`distill` trains a student with this loss on a *transfer set*: the labelled data plus unlabelled inputs and
augmented copies of the labelled ones, each scored once by the teacher (:mod:`seqlib.transfer`). The loop is
:func:`seqlib.train.fit` through :func:`seqlib.classifiers.train_classifier`, the same recipe that trains the
label-only baseline.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from ._checks import (
    INT_DTYPES,
    check_choice,
    check_floating,
    check_probability,
    check_rank,
    check_same_device,
    check_same_dtype,
    check_tensor,
    shape_str,
)
from .classifiers import predict_logits, train_classifier
from .train import History
from .transfer import TransferSet, check_vocabulary, input_vocab_size, transfer_set

__all__ = ["temperature_softmax", "temperature_log_softmax", "distillation_loss", "distillation_gradient",
           "TransferLoss", "distill"]

_LOGITS = "(N, C) or (N, L, C)"


# --------------------------------------------------------------------------------------------- the softmax at T


def _check_temperature(temperature: object) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise TypeError(f"temperature must be a positive number (T > 0), but got {type(temperature).__name__}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive, finite number (T > 0), but got {temperature}; T = 1 is "
                         f"the usual softmax, larger T softens it")
    return float(temperature)


def temperature_log_softmax(logits: Tensor, temperature: float = 1.0, dim: int = -1) -> Tensor:
    r""":math:`\log p^{(T)}`, the log-softmax of ``logits / temperature`` along ``dim``, written out.

    .. math::
        \log p_c^{(T)} = \frac{v_c}{T} - m - \log \sum_k \exp\Big(\frac{v_k}{T} - m\Big),
        \qquad m = \max_k \frac{v_k}{T}

    Subtracting the largest scaled logit :math:`m` changes nothing in exact arithmetic but keeps every
    :math:`\exp` at most 1, so large logits never overflow.

    Args:
        logits: floating-point tensor :math:`(*, C)`.
        temperature: :math:`T > 0`. Default: ``1.0``.
        dim: the class dimension. Default: ``-1``.

    Outputs: a tensor of the shape of ``logits``.
    """
    check_tensor("logits", logits, "(*, C)")
    check_floating("logits", logits)
    z = logits / _check_temperature(temperature)
    z = z - z.amax(dim=dim, keepdim=True).detach()  # the shift cancels out, so no gradient flows through it
    return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))


def temperature_softmax(logits: Tensor, temperature: float = 1.0, dim: int = -1) -> Tensor:
    r""":math:`p^{(T)} = \operatorname{softmax}(v / T)` along ``dim`` (see :func:`temperature_log_softmax`).

    Args:
        logits: floating-point tensor :math:`(*, C)`.
        temperature: :math:`T > 0`; ``1`` is the usual softmax, larger is softer. Default: ``1.0``.
        dim: the class dimension. Default: ``-1``.

    Outputs: probabilities of the shape of ``logits``, summing to 1 along ``dim``.

    Examples::

        >>> temperature_softmax(torch.tensor([4.0, 2.0, 0.0]), temperature=1.0)
        tensor([0.8668, 0.1173, 0.0159])
        >>> temperature_softmax(torch.tensor([4.0, 2.0, 0.0]), temperature=4.0)
        tensor([0.5065, 0.3072, 0.1863])
    """
    return torch.exp(temperature_log_softmax(logits, temperature, dim))


# --------------------------------------------------------------------------------------------- the loss


def _check_logits(student_logits: object, teacher_logits: object) -> tuple[Tensor, Tensor]:
    s = check_tensor("student_logits", student_logits, _LOGITS)
    t = check_tensor("teacher_logits", teacher_logits, _LOGITS)
    for name, value in (("student_logits", s), ("teacher_logits", t)):
        check_floating(name, value)
        check_rank(name, value, (2, 3), _LOGITS)
    if t.dim() != s.dim() or t.shape[:-1] != s.shape[:-1]:
        expected = "(N, C)" if s.dim() == 2 else "(N, L, C)"
        raise ValueError(
            f"teacher_logits must have the shape of student_logits {expected} = {shape_str(s.shape)}, but got shape "
            f"{shape_str(t.shape)}: the teacher must score the same batch{'' if s.dim() == 2 else ' and steps'}")
    if t.shape[-1] != s.shape[-1]:
        raise ValueError(
            f"student_logits and teacher_logits must score the same C classes (the same vocabulary, in the same "
            f"order), but student_logits has C = {s.shape[-1]} and teacher_logits has C = {t.shape[-1]} "
            f"(shapes {shape_str(s.shape)} and {shape_str(t.shape)})")
    check_same_dtype("teacher_logits", t, s, "student_logits")
    check_same_device("teacher_logits", t, _LOGITS, s, "student_logits")
    return s, t


def _valid_positions(s: Tensor, target: object, mask: object, ignore_index: int, alpha: float) -> Tensor | None:
    """Bool ``(N,)`` / ``(N, L)``: the positions that count, or ``None`` for all of them."""
    batch = "(N,)" if s.dim() == 2 else "(N, L)"
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an int, but got {type(ignore_index).__name__}")
    valid = None
    if target is not None:
        y = check_tensor("target", target, batch)
        if y.dtype not in INT_DTYPES:
            raise TypeError(f"target must hold class indices {batch} (dtype torch.int64), but got dtype {y.dtype}; "
                            f"soft targets go in as teacher_logits")
        if y.shape != s.shape[:-1]:
            raise ValueError(f"target must have shape {batch} = {shape_str(s.shape[:-1])} to match student_logits "
                             f"{shape_str(s.shape)}, but got shape {shape_str(y.shape)}")
        valid = y != ignore_index
        bad = valid & ((y < 0) | (y >= s.shape[-1]))
        if bool(bad.any()):
            raise ValueError(f"target must hold class indices in [0, {s.shape[-1]}) or ignore_index = {ignore_index}, "
                             f"but got {int(y[bad][0])}")
    elif alpha < 1:
        raise ValueError(f"target is needed when alpha < 1: the hard-label term (1 - alpha) * CE uses the labels "
                         f"(alpha = {alpha}); pass alpha=1.0 to train on the teacher alone")
    if mask is not None:
        m = check_tensor("mask", mask, batch)
        if m.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor {batch} (True = the position counts), but got dtype {m.dtype}")
        if m.shape != s.shape[:-1]:
            raise ValueError(f"mask must have shape {batch} = {shape_str(s.shape[:-1])} to match student_logits "
                             f"{shape_str(s.shape)}, but got shape {shape_str(m.shape)}")
        valid = m if valid is None else valid & m
    return valid


def _soft_and_hard(s: Tensor, t: Tensor, target: Tensor | None, temperature: float, kind: str,
                   valid: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Per position: the soft term and the hard term (``None`` without a target), zero where not valid."""
    if kind == "kl":
        log_p = temperature_log_softmax(t, temperature)  # (*, C) teacher, softened
        log_q = temperature_log_softmax(s, temperature)  # (*, C) student, softened
        p = torch.exp(log_p)
        kl = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)  # (*,): 0 log 0 = 0
        soft = temperature**2 * kl
    else:
        soft = ((s - t) ** 2).mean(-1)  # (*,) mean squared error of the logits
    hard = None
    if target is not None:
        log_q1 = temperature_log_softmax(s, 1.0)  # (*, C) the student's own distribution, T = 1
        safe = torch.where(valid, target, torch.zeros_like(target)) if valid is not None else target
        hard = -log_q1.gather(-1, safe.long().unsqueeze(-1)).squeeze(-1)  # (*,) -log q_y
    if valid is not None:
        zero = torch.zeros((), dtype=s.dtype, device=s.device)
        soft = torch.where(valid, soft, zero)
        hard = torch.where(valid, hard, zero) if hard is not None else None
    return soft, hard


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor | None = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
    reduction: str = "mean",
    *,
    kind: str = "kl",
    ignore_index: int = -100,
    mask: Tensor | None = None,
) -> Tensor:
    r"""The distillation loss of a student against a teacher, mixed with the hard-label loss.

    .. math::
        \ell_i = \alpha\, T^2\, \mathrm{KL}\big(\operatorname{softmax}(v_i/T) \,\big\|\,
            \operatorname{softmax}(z_i/T)\big) + (1 - \alpha)\, \big(-\log \operatorname{softmax}(z_i)_{y_i}\big)

    for each position :math:`i` (an example, or an example's step), with ``kind="mse"`` the soft term
    :math:`\frac{1}{C}\sum_c (z_{i,c} - v_{i,c})^2` instead (Tang et al., 2019; the temperature then plays no part:
    :math:`T^2 \cdot \mathrm{MSE}(z/T, v/T) = \mathrm{MSE}(z, v)`). With ``reduction="mean"`` the :math:`\ell_i`
    are averaged over the positions that count, which for ``(N, C)`` logits is
    ``alpha * T**2 * F.kl_div(F.log_softmax(z / T, -1), F.log_softmax(v / T, -1), reduction="batchmean",
    log_target=True) + (1 - alpha) * F.cross_entropy(z, y)``.

    Args:
        student_logits: :math:`z`, float :math:`(N, C)` or :math:`(N, L, C)`.
        teacher_logits: :math:`v`, of the same shape and dtype (usually computed without gradient).
        target: the labels :math:`y`, int64 :math:`(N)` or :math:`(N, L)`, or ``None`` (then ``alpha`` must be 1).
            Positions where ``target == ignore_index`` (padding) are left out of both terms.
        temperature: :math:`T > 0`. Default: ``2.0``.
        alpha: :math:`\alpha \in [0, 1]`, the weight of the teacher's term. Default: ``0.5``.
        reduction: ``"mean"`` (over the positions that count), ``"sum"`` or ``"none"`` (the :math:`\ell_i`,
            zero where left out). Default: ``"mean"``.
        kind: ``"kl"`` (softened distributions) or ``"mse"`` (logits). Default: ``"kl"``.
        ignore_index: the label of padded positions. Default: ``-100`` (as ``F.cross_entropy``).
        mask: optional bool :math:`(N)` or :math:`(N, L)`, ``False`` where a position does not count (padding
            without labels).

    Outputs: a scalar, or :math:`(N)` / :math:`(N, L)` with ``reduction="none"``. Like ``F.cross_entropy``, the
    mean over no positions at all is ``nan``.

    Examples::

        >>> z, v = torch.randn(8, 6, requires_grad=True), torch.randn(8, 6)
        >>> y = torch.randint(0, 6, (8,))
        >>> loss = distillation_loss(z, v, y, temperature=4.0, alpha=0.9)
        >>> loss.backward()
    """
    s, t = _check_logits(student_logits, teacher_logits)
    temperature = _check_temperature(temperature)
    alpha = check_probability("alpha", alpha)
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    check_choice("kind", kind, ("kl", "mse"))
    valid = _valid_positions(s, target, mask, ignore_index, alpha)
    soft, hard = _soft_and_hard(s, t, target, temperature, kind, valid)
    loss = alpha * soft if hard is None else alpha * soft + (1 - alpha) * hard  # (N,) or (N, L)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    count = loss.numel() if valid is None else valid.sum()
    return loss.sum() / count


def distillation_gradient(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor | None = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
    reduction: str = "mean",
    *,
    kind: str = "kl",
    ignore_index: int = -100,
    mask: Tensor | None = None,
) -> Tensor:
    r"""The gradient of :func:`distillation_loss` with respect to ``student_logits``, from its closed form.

    .. math::
        \frac{\partial \ell_i}{\partial z_i} = \alpha\, T \big(q_i^{(T)} - p_i^{(T)}\big)
            + (1 - \alpha) \big(q_i^{(1)} - \mathrm{onehot}(y_i)\big)

    with :math:`q^{(T)} = \operatorname{softmax}(z/T)` and :math:`p^{(T)} = \operatorname{softmax}(v/T)`; for
    ``kind="mse"`` the first term is :math:`\alpha\,\frac{2}{C}(z_i - v_i)`. With ``reduction="mean"`` every row is
    divided by the number of positions that count; left-out positions get zero.

    Args:
        the arguments of :func:`distillation_loss`; ``reduction`` is ``"mean"`` or ``"sum"``.

    Outputs: a tensor of the shape of ``student_logits`` (it equals what autograd computes).
    """
    s, t = _check_logits(student_logits, teacher_logits)
    temperature = _check_temperature(temperature)
    alpha = check_probability("alpha", alpha)
    check_choice("reduction", reduction, ("mean", "sum"))
    check_choice("kind", kind, ("kl", "mse"))
    valid = _valid_positions(s, target, mask, ignore_index, alpha)
    s, t = s.detach(), t.detach()
    if kind == "kl":
        soft = temperature * (temperature_softmax(s, temperature) - temperature_softmax(t, temperature))  # (*, C)
    else:
        soft = 2.0 / s.shape[-1] * (s - t)
    grad = alpha * soft
    if target is not None:
        safe = torch.where(valid, target, torch.zeros_like(target)) if valid is not None else target
        onehot = torch.zeros_like(s).scatter_(-1, safe.long().unsqueeze(-1), 1.0)  # (*, C)
        grad = grad + (1 - alpha) * (temperature_softmax(s, 1.0) - onehot)
    if valid is not None:
        grad = grad * valid.unsqueeze(-1)
    if reduction == "mean":
        grad = grad / (grad.shape[:-1].numel() if valid is None else valid.sum())
    return grad


# --------------------------------------------------------------------------------------------- distill


class TransferLoss:
    r"""The loss :func:`distill` trains with, for a batch ``(x, (teacher_logits, target, labelled))``:

    .. math::
        \alpha \cdot \text{soft}(\text{all rows}) + (1 - \alpha) \cdot \text{CE}(\text{the labelled rows})

    each averaged over the rows (and the unpadded steps) it covers. Called with a plain target tensor (a
    validation set of ``(x, y)``) it is the cross-entropy.
    """

    def __init__(self, temperature: float = 2.0, alpha: float = 0.5, kind: str = "kl", ignore_index: int = -100):
        self.temperature = _check_temperature(temperature)
        self.alpha = check_probability("alpha", alpha)
        check_choice("kind", kind, ("kl", "mse"))
        self.kind, self.ignore_index = kind, ignore_index

    def __call__(self, logits: Tensor, targets: Tensor | tuple[Tensor, Tensor, Tensor]) -> Tensor:
        if isinstance(targets, Tensor):
            return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=self.ignore_index)
        teacher_logits, target, labelled = targets
        rows = labelled.view(-1, *([1] * (target.dim() - 1)))  # (N,) or (N, 1)
        mask = ~rows | (target != self.ignore_index)  # unlabelled rows count everywhere, labelled ones where unpadded
        soft = distillation_loss(logits, teacher_logits, None, self.temperature, 1.0, kind=self.kind, mask=mask)
        if self.alpha == 1 or not bool(labelled.any()):
            return self.alpha * soft
        hard = distillation_loss(logits[labelled], teacher_logits[labelled], target[labelled], self.temperature,
                                 0.0, ignore_index=self.ignore_index)
        return self.alpha * soft + (1 - self.alpha) * hard


def distill(
    student: nn.Module,
    teacher: nn.Module,
    data: Dataset | tuple[Tensor, Tensor] | TransferSet,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    kind: str = "kl",
    unlabelled: Tensor | None = None,
    copies: int = 0,
    augment: dict[str, Any] | None = None,
    ignore_index: int = -100,
    seed: int = 0,
    **train: Any,
) -> History:
    r"""Train ``student`` to imitate ``teacher`` on a transfer set (and to fit the labels, with weight
    :math:`1 - \alpha`), with the loop and the recipe of the label-only baseline.

    The teacher runs once over the transfer set (:func:`seqlib.transfer.transfer_set`); training then reads its
    cached logits, so an epoch costs what an epoch of label-only training costs on as many items.

    Args:
        student: the model to train (in place), ``student(x) -> logits`` over the teacher's classes.
        teacher: the trained teacher (not changed).
        data: the labelled items (a ``Dataset`` of ``(x, y)`` or ``(inputs, targets)``), or a ready
            :class:`~seqlib.transfer.TransferSet` (then ``unlabelled``, ``copies`` and ``augment`` must be left out).
        temperature: :math:`T > 0` of the soft term. Default: ``2.0``.
        alpha: weight :math:`\alpha \in [0, 1]` of the soft term; ``1`` ignores the labels. Default: ``0.5``.
        kind: ``"kl"`` (softened distributions, Hinton et al.) or ``"mse"`` (logits, Tang et al.). Default: ``"kl"``.
        unlabelled: more input sequences without labels, scored by the teacher.
        copies: augmented copies of every labelled item. Default: ``0``.
        augment: the rules of :func:`seqlib.transfer.augment` for the copies (``mask_prob``, ``replace_prob``,
            ``ngram_prob``, ``ngram_range``, ``mask_value``).
        ignore_index: the target of padded steps and unlabelled rows. Default: ``-100``.
        seed: seeds the augmentation and training (:func:`seqlib.train.seed_everything`).
        **train: ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``clip_grad_norm``, ``val_data``, ``device``,
            ``progress``, ``checkpoint_path``, ``callbacks`` of :func:`seqlib.classifiers.train_classifier`.

    Returns:
        The :class:`~seqlib.train.History` of :func:`seqlib.train.fit`.

    Raises:
        ValueError: the student and the teacher read different vocabularies or score different classes, or a bad
            ``temperature``/``alpha``/``kind``.
    """
    for name, model in (("student", student), ("teacher", teacher)):
        if not isinstance(model, nn.Module):
            raise TypeError(f"{name} must be a torch.nn.Module, but got {type(model).__name__}")
    TransferLoss(temperature, alpha, kind, ignore_index)  # check the loss's settings before any work
    if "loss_fn" in train:
        raise TypeError("distill builds its own loss from temperature, alpha and kind; do not pass loss_fn")
    vs, vt = input_vocab_size(student), input_vocab_size(teacher)
    if vs is not None and vt is not None and vs != vt:
        raise ValueError(f"vocabulary mismatch: the student reads {vs} input tokens but the teacher reads {vt}; "
                         f"distillation needs both to read the same token ids (build the student with "
                         f"vocab_size={vt})")
    if isinstance(data, TransferSet):
        if unlabelled is not None or copies or augment:
            raise ValueError("data is already a TransferSet: build it with unlabelled, copies and augment instead "
                             "of passing them to distill")
        transfer = data
    else:
        transfer = transfer_set(teacher, data, unlabelled=unlabelled, copies=copies, seed=seed,
                                ignore_index=ignore_index, **(augment or {}))
    loss_fn = TransferLoss(temperature, alpha, kind, transfer.ignore_index)
    check_vocabulary("student", student, transfer.inputs, (augment or {}).get("mask_value"))
    probe = predict_logits(student, transfer.inputs[:2])  # the student must score the teacher's classes
    _check_logits(probe.to(transfer.teacher_logits.dtype), transfer.teacher_logits[:2])
    return train_classifier(student, transfer, loss_fn=loss_fn, seed=seed, **train)
