"""A small, readable training loop: ``fit`` a model, watch the loss and the gradient norm, checkpoint, resume.

::

    seed_everything(0)
    history = fit(model, train_loader, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), epochs=5,
                  val_loader=val_loader, clip_grad_norm=1.0, checkpoint_path="build/lm.pt")
    history.train_loss, history.val_loss, history.grad_norm

Batches. Every batch is a pair ``(inputs, targets)``. A tuple or list of inputs is unpacked into the call
(``model(*inputs)``, e.g. ``model(padded, lengths)``), a dict is passed as keywords, anything else is passed as
one argument; then ``loss = loss_fn(output, targets)`` must be a scalar tensor.

Devices. ``device="auto"`` picks CUDA if available, then Apple's MPS, then the CPU. The model is moved there
once, and every batch on the fly: tensors, ``PackedSequence`` objects and tuples/lists/dicts of them.

Gradient norms. After ``backward()`` the total 2-norm of all parameter gradients (over all parameters together,
*before* clipping) is recorded for every optimisation step in ``History.grad_norm``; ``History.epoch_grad_norm``
holds the mean over each epoch's steps. With ``clip_grad_norm=c`` the gradients are rescaled to norm at most
``c`` by ``seqlib.clip_grad_norm_`` before the optimiser step (concept C09).

Learning-rate schedules. ``scheduler=`` takes a ``torch.optim.lr_scheduler`` object (``OneCycleLR``, ``LambdaLR``,
...) whose ``step()`` runs after every optimiser step, for schedules counted in steps (warm-up, one-cycle, cosine);
``History.lr`` records the learning rate each step used (a scheduler's own state is not part of the checkpoint).
A fixed number of steps is a loader that yields that many batches, e.g. a ``DataLoader`` with
``RandomSampler(dataset, replacement=True, num_samples=steps * batch_size)``.

Callbacks. After each epoch (training, then validation), every callback is called as
``callback(epoch, history, model)`` with the 1-based number of the epoch just finished. A callback that returns
``True`` stops training after this epoch (the others still run, and the checkpoint is still written);
``None``/``False`` carries on. ``EarlyStopping`` is one. A callback may also change the optimiser (a learning-rate
schedule: ``lambda epoch, history, model: scheduler.step()``).

Checkpoints. With ``checkpoint_path`` the loop writes, after each epoch's callbacks, one file holding the model's
and the optimiser's state, the epoch number, the history and the random-number-generator states (Python,
NumPy, torch CPU and CUDA). ``load_checkpoint`` restores them all, so training on from a checkpoint gives the same
parameters as never having stopped (with a ``DataLoader`` that shuffles from the global torch RNG, the default;
a loader given its own ``generator=`` keeps that generator's state outside the checkpoint).
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

__all__ = ["History", "fit", "evaluate", "select_device", "to_device", "save_checkpoint", "load_checkpoint",
           "seed_everything", "EarlyStopping", "predict", "confusion_matrix", "per_class_accuracy", "per_class_recall",
           "per_class_precision"]

Callback = Callable[[int, "History", nn.Module], "bool | None"]


@dataclass
class History:
    """What ``fit`` recorded. Epoch lists have one entry per finished epoch, step lists one per optimiser step.

    Attributes:
        train_loss: per epoch, the mean training loss (batch losses weighted by batch size).
        val_loss: per epoch, the mean validation loss (empty without a ``val_loader``).
        step_loss: per step, the training loss of that batch.
        grad_norm: per step, the total gradient 2-norm before clipping.
        lr: per step, the learning rate of the optimiser's first parameter group during that step.
        epoch_grad_norm: per epoch, the mean of that epoch's ``grad_norm``.
        epoch_time: per epoch, seconds spent (training and validation).
        stopped_early: ``True`` if a callback stopped training.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_grad_norm: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Number of finished epochs."""
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(**{k: (list(v) if isinstance(v, list | tuple) else v) for k, v in data.items()})


# --------------------------------------------------------------------------------------------- devices


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else MPS if available, else CPU; other names are checked and returned.

    Raises ``ValueError`` for an unknown device name or a device this machine does not have.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, str | torch.device):
        raise TypeError(f"device must be 'auto', a device name such as 'cpu' or 'cuda:0', or a torch.device, "
                        f"but got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:<i>' or 'mps', but got {device!r}") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for, but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} was asked for, but there are {torch.cuda.device_count()} CUDA devices")
    elif dev.type == "mps":
        if not _mps_available():
            raise ValueError(f"device {device!r} was asked for, but MPS is not available on this machine")
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:<i>' or 'mps', but got {device!r}")
    return dev


def to_device(obj: Any, device: torch.device | str) -> Any:
    """Move tensors, ``PackedSequence`` objects and (nested) tuples, lists and dicts of them to ``device``."""
    if isinstance(obj, torch.Tensor | PackedSequence):
        return obj.to(device)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(to_device(o, device) for o in obj))
    if isinstance(obj, tuple | list):
        return type(obj)(to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------------------------- one step


def _split_batch(batch: Any, index: int) -> tuple[Any, Any]:
    if not isinstance(batch, tuple | list):
        raise TypeError(f"each batch must be a pair (inputs, targets), but batch {index} is a {type(batch).__name__}; "
                        f"make the dataset return (x, y) items")
    if len(batch) != 2:
        raise ValueError(f"each batch must be a pair (inputs, targets), but batch {index} has {len(batch)} elements; "
                         f"group the model's inputs in a tuple: ((x1, x2), y)")
    return batch[0], batch[1]


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, tuple | list) and not isinstance(inputs, PackedSequence):
        return model(*inputs)
    if isinstance(inputs, dict):
        return model(**inputs)
    return model(inputs)


def _batch_size(targets: Any) -> int:
    if isinstance(targets, PackedSequence):
        return int(targets.batch_sizes[0])
    if isinstance(targets, torch.Tensor):
        return int(targets.shape[0]) if targets.dim() > 0 else 1
    if isinstance(targets, tuple | list) and targets:
        return _batch_size(targets[0])
    return 1


def _loss(loss_fn: Callable[..., torch.Tensor], output: Any, targets: Any) -> torch.Tensor:
    loss = loss_fn(output, targets)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        what = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn(output, targets) must return a scalar tensor (use reduction='mean'), but got {what}")
    return loss


def _clip_function() -> Callable[..., torch.Tensor]:
    """``seqlib.clip_grad_norm_`` (the course's own), or torch's while seqlib.clip is not there."""
    if importlib.util.find_spec(f"{__package__}.clip") is not None:
        from .clip import clip_grad_norm_

        return clip_grad_norm_
    return torch.nn.utils.clip_grad_norm_  # pragma: no cover - only before seqlib/clip.py exists


def _grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach()) for g in grads]))


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Any], loss_fn: Callable[..., torch.Tensor],
             device: str | torch.device = "auto") -> float:
    """Mean loss of ``model`` over ``loader`` (batch losses weighted by batch size), in eval mode, without grad."""
    dev = select_device(device)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for i, batch in enumerate(loader):
            inputs, targets = _split_batch(batch, i)
            inputs, targets = to_device(inputs, dev), to_device(targets, dev)
            size = _batch_size(targets)
            total += float(_loss(loss_fn, _call(model, inputs), targets)) * size
            count += size
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the validation loader yielded no batches")
    return total / count


# --------------------------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict[str, Any]:
    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if _mps_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(_as_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and _mps_available():
        torch.mps.set_rng_state(state["mps"])


def _as_tuples(obj: Any) -> Any:
    return tuple(_as_tuples(o) for o in obj) if isinstance(obj, tuple | list) else obj


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    epoch: int = 0, history: History | None = None) -> None:
    """Write model and optimiser state, the epoch, the history and all RNG states to ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": int(epoch),
        "history": (history or History()).to_dict(),
        "rng": _rng_state(),
    }
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    *, restore_rng: bool = True) -> dict[str, Any]:
    """Restore a checkpoint written by ``fit``/``save_checkpoint`` into ``model`` (and ``optimizer``).

    Tensors are loaded onto the CPU and copied into the model's own parameters, wherever they live; the
    optimiser's state follows its parameters' device. With ``restore_rng`` the Python, NumPy and torch random
    generators are reset to their state when the checkpoint was written, so training continues exactly.

    Returns:
        ``{"epoch": int, "history": History}``; pass ``history=`` on to ``fit`` to keep one record.
    """
    if not Path(path).is_file():
        raise ValueError(f"path must be an existing checkpoint file, but {str(path)!r} does not exist")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(payload["model"])
    if optimizer is not None:
        if payload["optimizer"] is None:
            raise ValueError(f"the checkpoint {str(path)!r} holds no optimizer state")
        optimizer.load_state_dict(payload["optimizer"])
    if restore_rng:
        _set_rng_state(payload["rng"])
    return {"epoch": payload["epoch"], "history": History.from_dict(payload["history"])}


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every GPU) with ``seed``.

    Args:
        seed: the seed.
        deterministic: also ask torch for deterministic algorithms (``torch.use_deterministic_algorithms``),
            which makes GPU runs repeatable at some cost in speed.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, but got {type(seed).__name__}")
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


# --------------------------------------------------------------------------------------------- callbacks


class EarlyStopping:
    """Stop when ``monitor`` (``"val_loss"`` or ``"train_loss"``) has not improved by ``min_delta`` for
    ``patience`` epochs. ``best`` and ``best_epoch`` record the best value seen."""

    def __init__(self, patience: int = 3, min_delta: float = 0.0, monitor: str = "val_loss") -> None:
        if monitor not in ("val_loss", "train_loss"):
            raise ValueError(f"monitor must be 'val_loss' or 'train_loss', but got {monitor!r}")
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive int, but got {patience!r}")
        self.patience, self.min_delta, self.monitor = patience, float(min_delta), monitor
        self.best, self.best_epoch = math.inf, 0

    def __call__(self, epoch: int, history: History, model: nn.Module) -> bool:
        values = getattr(history, self.monitor)
        if not values:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which fit did not record (no val_loader?)")
        if values[-1] < self.best - self.min_delta:
            self.best, self.best_epoch = values[-1], epoch
        return epoch - self.best_epoch >= self.patience


# --------------------------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    loss_fn: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    val_loader: Iterable[Any] | None = None,
    clip_grad_norm: float | None = None,
    device: str | torch.device = "auto",
    checkpoint_path: str | os.PathLike[str] | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    history: History | None = None,
    scheduler: Any = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return what happened (see the module docstring for the details).

    Each step: ``optimizer.zero_grad()``, ``output = model(*inputs)``, ``loss = loss_fn(output, targets)``,
    ``loss.backward()``, record the gradient norm, clip it to ``clip_grad_norm``, ``optimizer.step()``, then
    ``scheduler.step()`` if a scheduler is given.

    Args:
        model: the ``nn.Module`` to train (moved to ``device``).
        train_loader: an iterable of ``(inputs, targets)`` batches, usually a ``DataLoader``.
        loss_fn: ``loss_fn(output, targets) -> scalar tensor``.
        optimizer: a ``torch.optim.Optimizer`` over the model's parameters.
        epochs: number of epochs to run (``>= 1``).
        val_loader: batches to compute ``History.val_loss`` on after each epoch (in eval mode, without grad).
        clip_grad_norm: if given, the maximal total gradient 2-norm (``seqlib.clip_grad_norm_``).
        device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:<i>"``, ``"mps"``.
        checkpoint_path: write a checkpoint there after every epoch (``load_checkpoint`` reads it).
        callbacks: ``callback(epoch, history, model)`` after every epoch; returning ``True`` stops training.
        progress: show a ``tqdm.auto`` progress bar (a widget in Jupyter, text in a terminal).
        history: a ``History`` to continue (e.g. ``load_checkpoint(...)["history"]``): epochs are numbered on.
        scheduler: a learning-rate scheduler of ``optimizer`` (anything with ``step()``), stepped after every
            optimiser step; ``None``: the learning rate stays as the optimiser has it (or as a callback sets it).

    Returns:
        The :class:`History`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, but got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, but got {type(optimizer).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(output, targets), but got {type(loss_fn).__name__}")
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        raise TypeError(f"epochs must be an int, but got {type(epochs).__name__}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, but got {epochs}")
    if clip_grad_norm is not None:
        if not isinstance(clip_grad_norm, int | float) or isinstance(clip_grad_norm, bool):
            raise TypeError(f"clip_grad_norm must be a positive float or None, but got {type(clip_grad_norm).__name__}")
        if not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be positive, but got {clip_grad_norm}")
    if isinstance(callbacks, str) or not isinstance(callbacks, Sequence) or not all(map(callable, callbacks)):
        raise TypeError("callbacks must be a sequence of callables callback(epoch, history, model)")
    if not hasattr(train_loader, "__iter__"):
        raise TypeError(f"train_loader must be an iterable of (inputs, targets) batches, "
                        f"but got {type(train_loader).__name__}")
    if history is not None and not isinstance(history, History):
        raise TypeError(f"history must be a History or None, but got {type(history).__name__}")
    if scheduler is not None:
        if not callable(getattr(scheduler, "step", None)):
            raise TypeError("scheduler must be a learning-rate scheduler with a step() method (e.g. "
                            f"torch.optim.lr_scheduler.OneCycleLR) or None, but got {type(scheduler).__name__}")
        if getattr(scheduler, "optimizer", optimizer) is not optimizer:
            raise ValueError("scheduler must schedule the optimizer passed to fit, but it was built for another one")

    dev = select_device(device)
    model.to(dev)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    clip = _clip_function() if clip_grad_norm is not None else None
    history = history if history is not None else History()
    first_epoch = history.epochs + 1
    from tqdm.auto import tqdm  # imported on use: ``import seqlib`` stays light

    for epoch in range(first_epoch, first_epoch + epochs):
        start = time.perf_counter()
        model.train()
        total, count, norms = 0.0, 0, []
        try:
            total_batches = len(train_loader)  # type: ignore[arg-type]
        except TypeError:
            total_batches = None
        bar = tqdm(total=total_batches, desc=f"epoch {epoch}/{first_epoch + epochs - 1}", disable=not progress,
                   leave=True, dynamic_ncols=True, unit="batch")
        for i, batch in enumerate(train_loader):
            inputs, targets = _split_batch(batch, i)
            inputs, targets = to_device(inputs, dev), to_device(targets, dev)
            optimizer.zero_grad(set_to_none=True)
            loss = _loss(loss_fn, _call(model, inputs), targets)
            loss.backward()
            if clip is not None:
                norm = clip(params, clip_grad_norm)
            else:
                norm = _grad_norm(params)
            history.lr.append(float(optimizer.param_groups[0]["lr"]))
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step_loss, step_norm = float(loss.detach()), float(norm)
            history.step_loss.append(step_loss)
            history.grad_norm.append(step_norm)
            norms.append(step_norm)
            size = _batch_size(targets)
            total += step_loss * size
            count += size
            bar.set_postfix(loss=f"{step_loss:.4f}", grad_norm=f"{step_norm:.3g}", refresh=False)
            bar.update(1)
        if count == 0:
            bar.close()
            raise ValueError("train_loader yielded no batches")
        history.train_loss.append(total / count)
        history.epoch_grad_norm.append(sum(norms) / len(norms))
        summary = {"train_loss": f"{history.train_loss[-1]:.4f}"}
        if val_loader is not None:
            history.val_loss.append(evaluate(model, val_loader, loss_fn, dev))
            summary["val_loss"] = f"{history.val_loss[-1]:.4f}"
        history.epoch_time.append(time.perf_counter() - start)
        bar.set_postfix(summary)
        bar.close()
        stop = False
        for callback in callbacks:
            stop = bool(callback(epoch, history, model)) or stop
        history.stopped_early = stop
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, optimizer, epoch, history)
        if stop:
            break
    return history


# --------------------------------------------------------------------------------------------- per-class metrics


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable[Any], device: str | torch.device = "auto") -> tuple[torch.Tensor,
                                                                                                   torch.Tensor]:
    """``(predictions, targets)``, both ``(N,)`` int64 on the CPU: the arg-max class of ``model``'s ``(B, K)`` logits
    over every ``(inputs, targets)`` batch of ``loader``, in eval mode, without grad."""
    dev = select_device(device)
    was_training = model.training
    model.eval()
    predictions, targets = [], []
    try:
        for i, batch in enumerate(loader):
            inputs, target = _split_batch(batch, i)
            logits = _call(model, to_device(inputs, dev))
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
                shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                raise ValueError(f"predict needs the model to return logits of shape (B, K), but got {shape}")
            predictions.append(logits.argmax(dim=1).cpu())
            targets.append(torch.as_tensor(target).reshape(-1).cpu())
    finally:
        model.train(was_training)
    if not predictions:
        raise ValueError("the loader yielded no batches")
    return torch.cat(predictions), torch.cat(targets).long()


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(K, K)`` int64 counts: entry ``[i, j]`` is how many examples of class ``i`` were predicted as ``j``."""
    for name, value in (("predictions", predictions), ("targets", targets)):
        if not isinstance(value, torch.Tensor) or value.dim() != 1 or value.is_floating_point():
            what = f"shape {tuple(value.shape)}, dtype {value.dtype}" if isinstance(value, torch.Tensor) else \
                type(value).__name__
            raise ValueError(f"{name} must be a 1-D integer tensor of class indices (N,), but got {what}")
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions and targets must have the same shape (N,), but got {tuple(predictions.shape)} "
                         f"and {tuple(targets.shape)}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, but got {num_classes!r}")
    for name, value in (("predictions", predictions), ("targets", targets)):
        if value.numel() and (int(value.min()) < 0 or int(value.max()) >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes - 1}], but got values from {int(value.min())} to "
                             f"{int(value.max())}")
    index = targets.long() * num_classes + predictions.long()  # (N,) flat index of (true, predicted)
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_recall(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    r"""``(K,)`` recall of each class, :math:`TP_k / (TP_k + FN_k)`: the fraction of class :math:`k`'s examples that
    were predicted as :math:`k`. A class without examples in ``targets`` raises (its recall is undefined)."""
    cm = confusion_matrix(predictions, targets, num_classes)
    support = cm.sum(1)  # (K,) examples of each class
    if bool((support == 0).any()):
        empty = (support == 0).nonzero().flatten().tolist()
        raise ValueError(f"class(es) {empty} have no examples in targets, so their recall is undefined; evaluate on "
                         f"a test set that holds every class (e.g. a balanced one)")
    return cm.diagonal().double() / support.double()


def per_class_accuracy(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    r"""``(K,)`` accuracy on each class's own examples, the measure of the long-tailed literature ("class-wise
    accuracy"). It is the class's recall (:func:`per_class_recall`); on a balanced test set the mean over classes is
    the overall accuracy, and its minimum is the worst-class accuracy."""
    return per_class_recall(predictions, targets, num_classes)


def per_class_precision(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    r"""``(K,)`` precision of each class, :math:`TP_k / (TP_k + FP_k)`; ``nan`` for a class never predicted."""
    cm = confusion_matrix(predictions, targets, num_classes)
    predicted = cm.sum(0).double()  # (K,) how often each class was predicted
    return torch.where(predicted > 0, cm.diagonal().double() / predicted.clamp(min=1), torch.nan)
