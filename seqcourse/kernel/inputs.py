"""Reproducible inputs and torch.nn reference modules for the hidden tests.

Inputs come from private generators (the same on every machine, whatever the student's cells drew); references
are built from the torch.nn classes captured at import and run through their captured ``forward``.
"""

from __future__ import annotations

from ._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import math  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from ._pristine import _FORWARD, _NN, _t, seal  # noqa: E402
from ._pristine import shape_str as _shape_str  # noqa: E402
from .expect import fail  # noqa: E402


def _generator(seed: int) -> torch.Generator:
    g = _t.Generator()
    g.manual_seed(int(seed))
    return g


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64, scale: float = 1.0) -> torch.Tensor:
    """Normal noise from a private generator: the same on every machine, whatever the student's cells drew."""
    return _t.mul(_t.randn(*shape, generator=_generator(seed), dtype=dtype), scale)


def randint(high: int, shape: Sequence[int], seed: int, low: int = 0) -> torch.Tensor:
    """Integers in ``[low, high)`` (int64) from a private generator."""
    return _t.randint(low, high, tuple(shape), generator=_generator(seed), dtype=_t.long)


def torch_module(name: str, *args: Any, seed: int, dtype: torch.dtype = torch.float64, **kwargs: Any) -> nn.Module:
    """A torch.nn reference (``"LSTM"``, ``"MultiheadAttention"``, ...) with weights drawn from ``seed``.

    Built from the class captured at import, in ``dtype``, every parameter uniform in +-1/sqrt(fan) (as torch
    initialises recurrent layers) from a private generator; in training mode so no fast path is taken (use
    ``dropout=0``).
    """
    module = _NN[name](*args, **kwargs).to(dtype)
    g = _generator(seed)
    with _t.no_grad():
        for _, p in sorted(module.named_parameters()):
            fan = p.shape[-1] if p.dim() > 1 else p.shape[0]
            _t.uniform_(p, -1.0 / math.sqrt(fan), 1.0 / math.sqrt(fan), generator=g)
    return module


def randomise(module: object, seed: int) -> object:
    """Draw every parameter of the student's ``module`` from a private generator (in place; returns the module).

    Matrices are uniform in +-1/sqrt(fan_in), the weights of normalisation layers (1-D ``weight``) uniform in
    0.5..1.5 and biases uniform in +-0.5: no two parameters are alike, so using ``norm1`` where ``norm2`` belongs,
    or a bias of the wrong layer, changes the output (with torch's initialisation every LayerNorm is weight 1,
    bias 0, and such mistakes are invisible).
    """
    if not isinstance(module, _NN["Module"]):
        fail(f"expected an nn.Module, got {type(module).__name__}")
    g = _generator(seed)
    with _t.no_grad():
        for name, p in sorted(module.named_parameters()):
            if p.dim() > 1:
                bound = 1.0 / math.sqrt(p.shape[-1])
                _t.uniform_(p, -bound, bound, generator=g)
            elif name.rsplit(".", 1)[-1] == "weight":
                _t.uniform_(p, 0.5, 1.5, generator=g)
            else:
                _t.uniform_(p, -0.5, 0.5, generator=g)
    return module


def call(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """Run a reference module's captured ``forward`` (not ``module(...)``, which a student could patch)."""
    for cls in type(module).__mro__:
        if cls in _FORWARD:
            return _FORWARD[cls](module, *args, **kwargs)
    return module.forward(*args, **kwargs)


def params(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of a module's parameters by name (safe to hand to student code)."""
    return {name: _t.clone(_t.detach(p)) for name, p in module.named_parameters()}


def copy_weights(module: object, weights: dict[str, torch.Tensor]) -> None:
    """Copy ``weights`` (``{"fc.weight": tensor, ...}``) into the student's module, checking names and shapes."""
    if not isinstance(module, _NN["Module"]):
        fail(f"expected an nn.Module, got {type(module).__name__}")
    own = dict(module.named_parameters())
    cls = type(module).__name__
    for name, value in weights.items():
        if name not in own:
            fail(f"{cls} has no parameter `{name}`: keep the parameter names given in __init__ "
                 f"(yours are: {', '.join(sorted(own)) or 'none'})")
        p = own[name]
        if tuple(p.shape) != tuple(value.shape):
            fail(f"{cls}.{name} has shape {_shape_str(p.shape)} but torch.nn's is {_shape_str(value.shape)}")
        with _t.no_grad():
            _t.copy_(p, _t.to(_t.detach(value), dtype=p.dtype))


__all__ = ["call", "copy_weights", "params", "randint", "randn", "randomise", "torch_module"]


seal(__name__)
