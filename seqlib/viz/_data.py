"""The checks every figure runs on its data: numbers of a given shape, non-empty mappings, one or several settings.

Each figure function takes plain data (tensors, arrays, lists; a dict ``{label: values}`` for several settings) and
turns it into numpy arrays here, so that a wrong shape or type fails with the same clear message in every module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

ArrayLike = object  # a torch.Tensor, a numpy array or a sequence of numbers


def as_array(name: str, values: ArrayLike, ndims: int | Sequence[int], shape: str, *, dtype: type | None = float,
             nonempty: bool = False, finite: bool = False) -> np.ndarray:
    """``values`` as a floating-point numpy array with one of ``ndims`` dimensions (tensors are detached and moved
    to the CPU); ``shape`` names the expected shape in symbols, e.g. ``"(T, N)"``.

    ``dtype=None`` keeps a tensor's or an array's floating-point type (matplotlib colours float32 data in float32);
    ``nonempty`` rejects an array without values, ``finite`` one holding ``nan`` or ``inf``.
    """
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()  # type: ignore[union-attr]
    try:
        array = np.asarray(values, dtype=dtype)
        if not np.issubdtype(array.dtype, np.floating):
            array = array.astype(float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers (a tensor, an array or a list) of shape {shape}, "
                        f"but got {type(values).__name__}") from None
    if array.ndim not in ((ndims,) if isinstance(ndims, int) else tuple(ndims)):
        raise ValueError(f"{name} must have shape {shape}, but got shape {array.shape}")
    if nonempty and array.size == 0:
        raise ValueError(f"{name} must have shape {shape} and must not be empty, but got shape {array.shape}")
    if finite and not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite numbers, but got {array}")
    return array


def as_mapping(name: str, value: object, expected: str = "") -> Mapping:
    """``value`` if it is a non-empty mapping: ``TypeError`` for another type, ``ValueError`` for an empty one;
    ``expected`` describes its items, e.g. ``"{scheme: {bits: accuracies}}"``."""
    what = f" {expected}" if expected else ""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a non-empty mapping{what}, but got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must be a non-empty mapping{what}, but got an empty one")
    return value


def settings(name: str, data: Mapping[str, ArrayLike] | ArrayLike, ndim: int = 1,
             shape: str = "(T,)") -> dict[str, np.ndarray]:
    """A dict ``{label: array}`` of one or several settings; a single array becomes ``{"": array}``."""
    if isinstance(data, Mapping):
        return {str(label): as_array(f"{name}[{label!r}]", values, ndim, shape)
                for label, values in as_mapping(name, data, "{label: values}").items()}
    return {"": as_array(name, data, ndim, shape)}

