"""Grading "backpropagation through your code works" apart from "your values are right"."""

from __future__ import annotations

from ._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

from collections.abc import Callable, Iterable, Sequence  # noqa: E402

import torch  # noqa: E402

from ._pristine import _t, seal  # noqa: E402
from .delegation import run_student  # noqa: E402
from .expect import fail  # noqa: E402
from .inputs import randn  # noqa: E402


def _flatten_outputs(out: object) -> list[torch.Tensor]:
    if isinstance(out, _t.Tensor):
        return [out]
    if isinstance(out, tuple | list):
        return [t for item in out for t in _flatten_outputs(item)]
    return []


def _probe(outputs: list[torch.Tensor], seed: int) -> torch.Tensor:
    """A fixed random linear function of all outputs (so every output element matters)."""
    total = _t.zeros((), dtype=_t.float64)
    for i, out in enumerate(outputs):
        if _t.is_floating_point(out):
            weight = randn(*_t.size(out), seed=seed + i)
            total = _t.add(total, _t.sum(_t.mul(_t.to(out, dtype=_t.float64), weight)))
    return total


def expect_gradients_flow(what: str, fn: Callable, inputs: Sequence[torch.Tensor], names: Sequence[str | None], *,
                          task: str | None = None, uses: Iterable[str] = (), eps: float = 1e-4,
                          rtol: float = 1e-3, atol: float = 1e-6) -> None:
    """Grade "backpropagation through your code works" apart from "your values are right".

    Calls ``fn(*inputs)``, backpropagates a fixed random probe of its outputs, and compares the gradient of
    each input with a name (``None`` marks an input that is passed as it is, e.g. indices) along a fixed random
    direction with the central finite difference of the same ``fn``, in float64. A mismatch means something cuts
    or bends the graph (``.detach()``, ``.data``, ``torch.no_grad``, in-place writes, ``torch.tensor(...)``).
    """
    uses = list(uses)
    checked = [i for i, name in enumerate(names) if name is not None]
    leaves = [_t.requires_grad_(_t.clone(_t.detach(x))) if names[i] is not None else x for i, x in enumerate(inputs)]
    with _t.enable_grad():
        outputs = _flatten_outputs(run_student(fn, *leaves, task=task, uses=uses))
        if not outputs:
            fail(f"{what} returned no tensors")
        probe = _probe(outputs, seed=1234)
        if not probe.requires_grad:
            fail(f"no gradient flows through {what}: its outputs are not connected to the inputs (did you use "
                 f".detach(), .data, torch.no_grad() or build a new tensor with torch.tensor(...)?)")
        grads = _t.autograd_grad(probe, [leaves[i] for i in checked], allow_unused=True)
    for i, grad in zip(checked, grads, strict=True):
        name = names[i]
        direction = randn(*_t.size(leaves[i]), seed=4321 + i)
        analytic = 0.0 if grad is None else float(_t.item(_t.sum(_t.mul(grad, direction))))
        with _t.no_grad():
            shifted = []
            for sign in (1.0, -1.0):
                moved = [_t.add(_t.detach(x), _t.mul(direction, sign * eps)) if j == i else
                         (_t.detach(x) if names[j] is not None else x) for j, x in enumerate(leaves)]
                out = _flatten_outputs(run_student(fn, *moved, task=task, uses=uses))
                shifted.append(float(_t.item(_probe(out, seed=1234))))
        numeric = (shifted[0] - shifted[1]) / (2 * eps)
        if abs(analytic - numeric) > atol + rtol * abs(numeric):
            if grad is None or (analytic == 0.0 and numeric != 0.0):
                fail(f"no gradient reaches {name} through {what}, although its output depends on {name}: "
                     f"something cuts the graph (.detach(), .data, torch.no_grad(), torch.tensor(...))")
            fail(f"the gradient with respect to {name} that autograd computes through {what} is not the slope of "
                 f"its output (finite differences: {numeric:.6g}, autograd: {analytic:.6g}): something cuts the "
                 f"graph between time steps (.detach(), .data, in-place writes into a preallocated tensor)")


__all__ = ["expect_gradients_flow"]


seal(__name__)
