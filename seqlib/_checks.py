"""Argument checks that fail with messages a student can act on.

Every public module validates its inputs with these helpers, so a wrong shape, dtype or type raises a
``ValueError``/``TypeError`` that names the argument, the expected shape in symbols (``(L, N, H_in)``)
and what was received.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

#: The integer dtypes accepted for token ids, class indices and lengths.
INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def shape_str(shape: Sequence[int]) -> str:
    """``torch.Size([2, 3])`` -> ``'(2, 3)'``."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_tensor(name: str, value: object, expected: str | None = None) -> torch.Tensor:
    """Raise ``TypeError`` unless ``value`` is a tensor; ``expected`` describes its shape in symbols."""
    if not isinstance(value, torch.Tensor):
        what = f" of shape {expected}" if expected else ""
        raise TypeError(f"{name} must be a torch.Tensor{what}, but got {type(value).__name__}")
    return value


def check_floating(name: str, value: torch.Tensor) -> None:
    """Raise ``TypeError`` unless ``value`` holds floating-point numbers."""
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float32 or float64), but got dtype {value.dtype}")


def check_rank(name: str, value: torch.Tensor, ranks: Sequence[int], expected: str) -> None:
    """Raise ``ValueError`` unless ``value.dim()`` is in ``ranks``; ``expected`` is e.g. ``"(L, N, H_in)"``."""
    if value.dim() not in ranks:
        raise ValueError(
            f"{name} must have shape {expected} ({' or '.join(f'{r}-D' for r in ranks)}), "
            f"but got a {value.dim()}-D tensor of shape {shape_str(value.shape)}"
        )


def check_size(name: str, value: torch.Tensor, dim: int, size: int, symbol: str, expected: str) -> None:
    """Raise ``ValueError`` unless ``value.shape[dim] == size``."""
    if value.shape[dim] != size:
        raise ValueError(
            f"{name} must have shape {expected} with {symbol} = {size}, "
            f"but got shape {shape_str(value.shape)} ({symbol} = {value.shape[dim]})"
        )


def check_shape(name: str, value: torch.Tensor, shape: Sequence[int], expected: str) -> None:
    """Raise ``ValueError`` unless ``value.shape == shape``; ``expected`` names the symbols."""
    if tuple(value.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {expected} = {shape_str(shape)}, but got shape {shape_str(value.shape)}"
        )


def check_same_dtype(name: str, value: torch.Tensor, other: torch.Tensor, other_name: str) -> None:
    """Raise ``TypeError`` unless two tensors share a dtype."""
    if value.dtype != other.dtype:
        raise TypeError(
            f"{name} has dtype {value.dtype} but {other_name} has dtype {other.dtype}; "
            f"convert one of them, e.g. {name}.to({other_name}.dtype)"
        )


def check_positive_int(name: str, value: object) -> int:
    """Raise unless ``value`` is a positive ``int`` (``bool`` excluded)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, but got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, but got {value}")
    return value


def check_int_range(name: str, value: object, low: int, high: int) -> int:
    """Raise unless ``value`` is an ``int`` from ``low`` to ``high`` (both included; ``bool`` excluded)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int from {low} to {high}, but got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, but got {value}")
    return value


def check_positive_float(name: str, value: object, allow_zero: bool = False) -> float:
    """Raise unless ``value`` is a finite number > 0 (>= 0 with ``allow_zero``); ``bool`` excluded."""
    what = "non-negative" if allow_zero else "positive"
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be a {what} float, but got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {what}, finite float, but got {value}")
    return float(value)


def check_probability(name: str, value: object) -> float:
    """Raise unless ``value`` is a number in [0, 1]."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be a float in [0, 1], but got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], but got {value}")
    return float(value)


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, but got {value!r}")


def check_bool(name: str, value: object) -> bool:
    """Raise ``TypeError`` unless ``value`` is a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, but got {type(value).__name__} ({value!r})")
    return value


def check_dtype_match(name: str, value: torch.Tensor, expected: str, ref: torch.Tensor, ref_name: str) -> None:
    """Raise ``TypeError`` unless ``value`` (of shape ``expected``) has the dtype of ``ref`` (e.g. a weight)."""
    if value.dtype != ref.dtype:
        raise TypeError(
            f"{name} (shape {expected}) has dtype {value.dtype} but {ref_name} has dtype {ref.dtype}; "
            f"they must match: convert {name} with {name}.to({ref.dtype}) or the module with .to({value.dtype})"
        )


def check_same_device(name: str, value: torch.Tensor, expected: str, ref: torch.Tensor, ref_name: str) -> None:
    """Raise ``ValueError`` unless ``value`` (of shape ``expected``) is on the device of ``ref``."""
    if value.device != ref.device:
        raise ValueError(
            f"{name} (shape {expected}) is on device {value.device} but {ref_name} is on {ref.device}; "
            f"move one of them, e.g. {name}.to({str(ref.device)!r})"
        )


def check_lengths(name: str, lengths: object, n: int, length: int, symbol: str = "L") -> torch.Tensor:
    """Raise unless ``lengths`` is an integer tensor ``(N,)`` of valid steps in ``[1, length]``; return it.

    ``symbol`` names the padded length in the message (``L`` for inputs, ``S`` for a source sequence).
    """
    value = check_tensor(name, lengths, "(N,)")
    if value.dtype not in INT_DTYPES or tuple(value.shape) != (n,):
        raise ValueError(f"{name} must be an integer tensor of shape (N,) = ({n},), but got dtype {value.dtype} "
                         f"and shape {shape_str(value.shape)}")
    if n and (int(value.min()) < 1 or int(value.max()) > length):
        raise ValueError(f"{name} must lie in [1, {symbol}] = [1, {length}], but got values from {int(value.min())} "
                         f"to {int(value.max())}")
    return value
