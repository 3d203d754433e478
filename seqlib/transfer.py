r"""The transfer set of distillation: the inputs a student imitates its teacher on, scored by the teacher once (C37).

A student learns the teacher's function only where it is shown the teacher's answers. With a few hundred labelled
sequences that is a few hundred points; Tang et al. (2019) widen the *transfer set* with perturbed copies of the
labelled examples, which need no labels because the teacher scores them. Their three rules, applied here to a
batch ``x`` of token sequences ``(N, L)`` or of feature sequences ``(N, L, F)`` (a sensor's readings):

1. **masking** — each step, with probability ``mask_prob``, becomes ``mask_value`` (the ``[MASK]`` token; for
   features a constant reading, by default the sequence's own mean, which carries no information of its own);
2. **replacement** — each step not masked, with probability ``replace_prob``, takes the value of the same step
   of another sequence of the batch, drawn uniformly (a replacement from the data's own distribution at that
   position; Tang et al. draw a word of the same part of speech);
3. **n-gram sampling** — then, with probability ``ngram_prob`` per sequence, only a random window of ``n``
   consecutive steps is kept, ``n`` uniform in ``ngram_range``, and every other step is masked (Tang et al. keep
   the n-gram alone; masking the rest keeps the shape of the batch).

A step is masked when :math:`u < p_{mask}` and replaced when :math:`p_{mask} \le u < p_{mask} + p_{replace}`, with
one :math:`u \sim U(0, 1)` per step, so the two never hit the same step. Padded steps (beyond ``lengths``) are
never changed. Tang et al. use :math:`p_{mask} = p_{replace} = 0.1`, :math:`p_{ng} = 0.25`, ``n`` in 1..5, and
twenty copies of every example.

:func:`transfer_set` puts the labelled items, their augmented copies (:func:`augmented_copies`) and any unlabelled
sequences together and runs the teacher over them once; the :class:`TransferSet` keeps the logits, so training
the student never calls the teacher again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ._checks import INT_DTYPES, check_lengths, check_probability, check_tensor, shape_str
from .classifiers import as_tensors, predict_logits
from .embedding import Embedding

__all__ = ["augment", "augmented_copies", "TransferSet", "transfer_set", "input_vocab_size", "check_vocabulary"]

_X = "(N, L) tokens or (N, L, F) features"


def _check_ngram_range(ngram_range: object) -> tuple[int, int]:
    ok = (isinstance(ngram_range, Sequence) and len(ngram_range) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in ngram_range))
    if not ok or not 1 <= ngram_range[0] <= ngram_range[1]:  # type: ignore[index]
        raise ValueError(f"ngram_range must be a pair of ints (n_min, n_max) with 1 <= n_min <= n_max, "
                         f"but got {ngram_range!r}")
    return int(ngram_range[0]), int(ngram_range[1])  # type: ignore[index]


def _check_lengths(lengths: object, n: int, L: int) -> Tensor:
    """``lengths`` checked (:func:`seqlib._checks.check_lengths`) as int64 on the CPU; all ``L`` if ``None``."""
    if lengths is None:
        return torch.full((n,), L, dtype=torch.int64)
    return check_lengths("lengths", lengths, n, L).long().cpu()


def _mask_fill(x: Tensor, mask_value: object, valid: Tensor) -> Tensor:
    """What a masked step becomes: ``(N, L)`` for tokens, ``(N, L, F)`` for features (broadcast)."""
    if not x.is_floating_point():
        if isinstance(mask_value, bool) or not isinstance(mask_value, int):
            raise TypeError(f"mask_value must be the int id of the mask token for token inputs (e.g. "
                            f"vocab['<mask>']), but got {type(mask_value).__name__}")
        return torch.full_like(x, mask_value)
    if mask_value is None or mask_value == "mean":
        w = valid.unsqueeze(-1).to(x.dtype)  # (N, L, 1)
        mean = (x * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)  # (N, 1, F) mean of the valid steps
        return mean.expand_as(x)
    if isinstance(mask_value, int | float) and not isinstance(mask_value, bool):
        return torch.full_like(x, float(mask_value))
    if isinstance(mask_value, Tensor) and mask_value.shape == x.shape[-1:]:
        return mask_value.to(x).expand_as(x)
    raise TypeError(f"mask_value must be 'mean', a number or a tensor of shape (F,) = ({x.shape[-1]},) for feature "
                    f"inputs, but got {mask_value!r}")


def augment(
    x: Tensor,
    *,
    mask_prob: float = 0.1,
    replace_prob: float = 0.1,
    ngram_prob: float = 0.25,
    ngram_range: tuple[int, int] = (1, 5),
    mask_value: int | float | str | Tensor | None = None,
    lengths: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""One perturbed copy of each sequence of ``x`` by the three rules of the module docstring.

    Args:
        x: int64 tokens :math:`(N, L)` or float features :math:`(N, L, F)`; not changed.
        mask_prob: :math:`p_{mask}`, per step. Default: ``0.1``.
        replace_prob: :math:`p_{replace}`, per step; ``mask_prob + replace_prob <= 1``. Default: ``0.1``.
        ngram_prob: :math:`p_{ng}`, per sequence. Default: ``0.25``.
        ngram_range: ``(n_min, n_max)``, the window length is uniform in it (cut to the sequence's length).
            Default: ``(1, 5)``.
        mask_value: for tokens the id of the mask token (required); for features ``"mean"`` (default: each
            sequence's mean over its valid steps), a number or an :math:`(F)` tensor.
        lengths: int64 :math:`(N)`, the valid steps of right-padded sequences. Default: all :math:`L`.
        generator: a seeded :class:`torch.Generator` for repeatable copies. Default: torch's global one.

    Outputs: a new tensor of the shape and dtype of ``x``.
    """
    check_tensor("x", x, _X)
    if x.dim() != (2 if x.dtype in INT_DTYPES else 3) or not (x.dtype in INT_DTYPES or x.is_floating_point()):
        raise ValueError(f"x must be integer tokens (N, L) or floating-point features (N, L, F), but got dtype "
                         f"{x.dtype} and shape {shape_str(x.shape)}")
    mask_prob = check_probability("mask_prob", mask_prob)
    replace_prob = check_probability("replace_prob", replace_prob)
    ngram_prob = check_probability("ngram_prob", ngram_prob)
    if mask_prob + replace_prob > 1:
        raise ValueError(f"mask_prob + replace_prob must be at most 1, but got {mask_prob} + {replace_prob}")
    n_min, n_max = _check_ngram_range(ngram_range)
    N, L = x.shape[:2]
    lengths = _check_lengths(lengths, N, L)
    if N == 0:
        return x.clone()
    g = {"generator": generator}
    steps = torch.arange(L)  # (L,)
    valid = steps[None, :] < lengths[:, None]  # (N, L) real steps, not padding
    needs_fill = mask_prob > 0 or ngram_prob > 0
    fill = _mask_fill(x.cpu(), mask_value, valid) if needs_fill else x.cpu()

    u = torch.rand(N, L, **g)  # (N, L) one draw per step
    masked = valid & (u < mask_prob)
    donor = torch.randint(0, N, (N,), **g)  # (N,) the sequence each one borrows from
    replaced = valid & (u >= mask_prob) & (u < mask_prob + replace_prob) & valid[donor]
    # n-gram sampling: keep steps [start, start + n) of the chosen sequences, mask the rest
    n = torch.minimum(torch.randint(n_min, n_max + 1, (N,), **g), lengths)  # (N,)
    start = (torch.rand(N, **g) * (lengths - n + 1)).long()  # (N,) uniform in [0, length - n]
    window = (steps[None, :] >= start[:, None]) & (steps[None, :] < (start + n)[:, None])  # (N, L)
    chosen = torch.rand(N, **g) < ngram_prob  # (N,)
    masked = masked | (valid & chosen[:, None] & ~window)

    out = x.cpu().clone()
    if x.dim() == 3:
        replaced, masked = replaced.unsqueeze(-1), masked.unsqueeze(-1)  # (N, L, 1) broadcast over features
    out = torch.where(replaced, x.cpu()[donor], out)
    out = torch.where(masked, fill, out)
    return out.to(x.device)


def augmented_copies(x: Tensor, copies: int, *, seed: int = 0, lengths: Tensor | None = None,
                     **rules: object) -> tuple[Tensor, Tensor]:
    r"""``copies`` perturbed copies of every sequence (Tang et al.'s :math:`n_{iter}`), drawn from one seed.

    Args:
        x: tokens :math:`(N, L)` or features :math:`(N, L, F)`.
        copies: how many copies of each sequence (``>= 0``).
        seed: seed of the local generator (the global RNG is not touched).
        lengths: as :func:`augment`.
        **rules: ``mask_prob``, ``replace_prob``, ``ngram_prob``, ``ngram_range``, ``mask_value`` of :func:`augment`.

    Outputs: (inputs, source)
        - **inputs**: :math:`(\text{copies} \cdot N, L[, F])`, copy-major (the first :math:`N` are copy 1).
        - **source**: int64 :math:`(\text{copies} \cdot N)`, the row of ``x`` each copy was made from.
    """
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
        raise ValueError(f"copies must be an int >= 0, but got {copies!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, but got {type(seed).__name__}")
    check_tensor("x", x, _X)
    g = torch.Generator().manual_seed(seed)
    outs = [augment(x, lengths=lengths, generator=g, **rules) for _ in range(copies)]  # type: ignore[arg-type]
    source = torch.arange(x.shape[0]).repeat(copies)  # (copies * N,)
    if not outs:
        return x[:0].clone(), source
    return torch.cat(outs), source


# --------------------------------------------------------------------------------------------- the scored set


def input_vocab_size(model: nn.Module) -> int | None:
    """The number of input tokens ``model`` reads: its ``vocab_size`` attribute, else the rows of its first
    embedding; ``None`` for a model of feature inputs."""
    size = getattr(model, "vocab_size", None)
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    for module in model.modules():
        if isinstance(module, Embedding | nn.Embedding):
            return int(module.num_embeddings)
    return None


def check_vocabulary(name: str, model: nn.Module, inputs: Tensor, mask_value: object) -> None:
    """Token inputs (and the mask token) must lie inside ``model``'s vocabulary."""
    vocab = input_vocab_size(model)
    if inputs.is_floating_point() or vocab is None or inputs.numel() == 0:
        return
    top = int(inputs.max())
    if isinstance(mask_value, int) and not isinstance(mask_value, bool):
        top = max(top, mask_value)
    if top >= vocab or int(inputs.min()) < 0:
        raise ValueError(f"vocabulary mismatch: the {name} reads token ids in [0, {vocab}), but the transfer set "
                         f"holds ids up to {top} (the inputs and mask_value must use the {name}'s vocabulary)")


class TransferSet(Dataset):
    r"""The inputs a student is distilled on, each with the teacher's logits, computed once.

    Rows come in three groups, in this order: the ``n_labelled`` labelled items, ``n_augmented`` perturbed copies
    of them (:func:`augmented_copies`) and ``n_unlabelled`` unlabelled sequences. Only the first
    group has targets; the others hold ``ignore_index``.

    Attributes:
        inputs: :math:`(M, L)` tokens or :math:`(M, L, F)` features.
        teacher_logits: :math:`(M, C)` (or :math:`(M, L, C)` for a per-step teacher), without gradient.
        targets: int64 :math:`(M)` (or :math:`(M, L)`), ``ignore_index`` where there is no label.
        labelled: bool :math:`(M)`, ``True`` for the labelled items.
        n_labelled, n_augmented, n_unlabelled: the sizes of the three groups.

    Items: ``(x, (teacher_logits, target, labelled))``, what :func:`seqlib.distill.distill`'s loss reads.
    """

    def __init__(self, inputs: Tensor, teacher_logits: Tensor, targets: Tensor, labelled: Tensor,
                 n_augmented: int = 0, ignore_index: int = -100) -> None:
        if not len(inputs) == len(teacher_logits) == len(targets) == len(labelled):
            raise ValueError(f"inputs, teacher_logits, targets and labelled must have one row per item, but got "
                             f"{len(inputs)}, {len(teacher_logits)}, {len(targets)} and {len(labelled)} rows")
        self.inputs, self.teacher_logits, self.targets, self.labelled = inputs, teacher_logits, targets, labelled
        self.ignore_index = ignore_index
        self.n_labelled = int(labelled.sum())
        self.n_augmented = int(n_augmented)
        self.n_unlabelled = len(inputs) - self.n_labelled - self.n_augmented

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        return self.inputs[index], (self.teacher_logits[index], self.targets[index], self.labelled[index])


def transfer_set(
    teacher: nn.Module,
    data: Dataset | tuple[Tensor, Tensor],
    *,
    unlabelled: Tensor | None = None,
    copies: int = 0,
    seed: int = 0,
    batch_size: int = 256,
    ignore_index: int = -100,
    **rules: Any,
) -> TransferSet:
    r"""Build a :class:`TransferSet`: the labelled data, ``copies`` augmented copies of it and ``unlabelled``
    inputs, all scored by ``teacher`` once (eval mode, no gradients).

    Args:
        teacher: the trained teacher, ``teacher(x) -> logits``.
        data: the labelled items, a ``Dataset`` of ``(x, y)`` or a pair of tensors ``(inputs, targets)``.
        unlabelled: more inputs without labels, :math:`(U, L)` or :math:`(U, L, F)` like ``data``'s.
        copies: perturbed copies of each labelled item (Tang et al.'s :math:`n_{iter}`). Default: ``0``.
        seed: seed of the perturbations.
        batch_size: sequences per forward pass of the teacher.
        ignore_index: the target of rows without a label. Default: ``-100``.
        **rules: ``mask_prob``, ``replace_prob``, ``ngram_prob``, ``ngram_range``, ``mask_value`` of
            :func:`augment`.

    Returns:
        The :class:`TransferSet`, its inputs and logits on the CPU (the teacher runs where it lives).

    Raises:
        ValueError: token ids (or ``mask_value``) outside the teacher's vocabulary, or ``unlabelled`` sequences of
            another shape than the labelled ones.
    """
    inputs, targets = as_tensors("data", data)
    if unlabelled is not None:
        check_tensor("unlabelled", unlabelled, "(U, L) or (U, L, F), like the labelled inputs")
        if unlabelled.shape[1:] != inputs.shape[1:] or unlabelled.dtype != inputs.dtype:
            raise ValueError(f"unlabelled must be sequences like the labelled inputs, shape (U, "
                             f"{', '.join(map(str, inputs.shape[1:]))}) and dtype {inputs.dtype}, but got shape "
                             f"{shape_str(unlabelled.shape)} and dtype {unlabelled.dtype}")
    augmented, _ = augmented_copies(inputs, copies, seed=seed, **rules)
    parts = [inputs, augmented] + ([unlabelled] if unlabelled is not None else [])
    all_inputs = torch.cat(parts)
    check_vocabulary("teacher", teacher, all_inputs, rules.get("mask_value"))
    logits = predict_logits(teacher, all_inputs, batch_size).detach()
    extra = len(all_inputs) - len(inputs)
    all_targets = torch.cat([targets, torch.full((extra, *targets.shape[1:]), ignore_index, dtype=torch.int64)])
    labelled = torch.arange(len(all_inputs)) < len(inputs)
    return TransferSet(all_inputs, logits, all_targets, labelled, n_augmented=len(augmented),
                       ignore_index=ignore_index)
