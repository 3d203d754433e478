"""Where seqlib keeps what it builds once (corpora, trained demo models), and a cache of trained models.

One policy for every cache of seqlib, whether it is installed from a checkout (editable) or from a wheel:

1. ``$SEQLIB_CACHE`` when that environment variable is set (``make``, the tests and ``seqcourse`` set it to the
   course's ``build/cache``, so a checkout keeps its caches inside its build tree);
2. else ``$XDG_CACHE_HOME/seqlib``;
3. else ``~/.cache/seqlib``.

The package's own install location is never written to.

A lecture widget that needs a trained model calls::

    model = cached_model("sentiment_lstm", build_fn, train_fn)

The first call builds the model, trains it and saves its ``state_dict``; every later call (in the same
process, another kernel or another test run) builds the same architecture and loads the saved weights,
which takes milliseconds. Nothing is downloaded: "training" always means the seeded ``train_fn`` you pass.
The state_dicts live in ``cache_dir() / "models"``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from .threads import torch_threads

__all__ = ["cache_dir", "cached_model", "model_path"]

M = TypeVar("M", bound=nn.Module)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_MEMORY: dict[tuple[str, str], dict[str, torch.Tensor]] = {}


def cache_dir() -> Path:
    """The folder seqlib caches in (see the module docstring for the order of choices); not created here."""
    env = os.environ.get("SEQLIB_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "seqlib"


def model_path(name: str, folder: str | os.PathLike[str] | None = None) -> Path:
    """Where ``cached_model(name, ...)`` keeps its state_dict: ``<folder>/<name>.pt``, by default in
    ``cache_dir() / "models"``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be a file-name-safe string such as 'sentiment_lstm_v1', but got {name!r}")
    return (Path(folder) if folder is not None else cache_dir() / "models") / f"{name}.pt"


def cached_model(
    name: str,
    build_fn: Callable[[], M],
    train_fn: Callable[[M], object],
    *,
    folder: str | os.PathLike[str] | None = None,
    seed: int = 0,
    retrain: bool = False,
    num_threads: int | None = 1,
) -> M:
    """Build a model, and train it only if no cached weights exist; return it in ``eval()`` mode.

    Args:
        name: cache key and file name (``<folder>/<name>.pt``). Put a version in it
            (``"sentiment_lstm_v2"``) when ``build_fn`` or ``train_fn`` changes.
        build_fn: ``() -> nn.Module``, builds the untrained architecture. Called on every use.
        train_fn: ``(model) -> anything``, trains the model in place. Called only when no cache exists
            (or the cached weights no longer fit the architecture). It should be seeded and short.
        folder: where the state_dict is kept; default ``cache_dir() / "models"``.
        seed: ``torch.manual_seed(seed)`` runs before ``build_fn`` and before ``train_fn``, so the trained
            weights do not depend on what ran earlier in the session.
        retrain: ignore any cached weights and train again.
        num_threads: torch's intra-op threads while ``train_fn`` runs (restored afterwards). Small demo models
            train fastest on one thread, especially on a busy machine; ``None`` keeps the current setting.

    Returns:
        The model returned by ``build_fn`` with trained weights loaded, in eval mode, on the CPU.

    The state_dict is written to a temporary file and renamed into place, so two processes training at
    once never leave a half-written file; the last one to finish wins.
    """
    path = model_path(name, folder)
    if not callable(build_fn):
        raise TypeError(f"build_fn must be a callable () -> nn.Module, but got {type(build_fn).__name__}")
    if not callable(train_fn):
        raise TypeError(f"train_fn must be a callable (model) -> None, but got {type(train_fn).__name__}")
    torch.manual_seed(seed)
    model = build_fn()
    if not isinstance(model, nn.Module):
        raise TypeError(f"build_fn must return an nn.Module, but it returned {type(model).__name__}")

    key = (str(path.resolve()), type(model).__qualname__)
    state = None if retrain else _MEMORY.get(key)
    if state is None and not retrain and path.exists():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a corrupt or foreign file: train again and overwrite it
            state = None
    if state is not None:
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, KeyError):  # the architecture changed since the cache was written
            state = None
    if state is None:
        model.train()
        torch.manual_seed(seed)
        with torch_threads(num_threads):
            train_fn(model)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        _save_atomic(state, path)
    _MEMORY[key] = state
    return model.eval()


def _save_atomic(state: dict[str, torch.Tensor], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
