"""Comparisons whose failure message is the feedback: types, shapes, dtypes, values within a tolerance.

A failed check raises :class:`GradingError` (an ``AssertionError``). In a notebook it displays as one line,
``AssertionError: <curated message>``, plus the student's own frames when their code raised: the hidden test
code of the cell never appears in the feedback. Everything here computes with the pristine references of
:mod:`seqcourse.kernel._pristine`.
"""

from __future__ import annotations

from ._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

from collections.abc import Sequence  # noqa: E402
from typing import NoReturn  # noqa: E402

import torch  # noqa: E402

from ._pristine import _NN, ATOL, RTOL, _np_unravel_index, _t, seal  # noqa: E402
from ._pristine import shape_str as _shape_str  # noqa: E402


class GradingError(AssertionError):
    """A failed check. In a notebook it shows its message and the student's own frames, never the test code."""

    def __init__(self, message: str, student_frames: Sequence[str] = (), exception: BaseException | None = None):
        super().__init__(message)
        self.student_frames = list(student_frames)
        self.exception = exception  # what the student's code raised, when that is the failure

    def _render_traceback_(self) -> list[str]:  # IPython uses this instead of the full traceback
        lines = []
        if self.student_frames:
            lines += ["Traceback (your code):", *[f.rstrip("\n") for f in self.student_frames]]
        return [*lines, f"AssertionError: {self.args[0]}"]


def fail(message: str, student_frames: Sequence[str] = (), exception: BaseException | None = None) -> NoReturn:
    """Fail the cell with ``message`` (the only thing the student sees)."""
    raise GradingError(message, student_frames, exception)


def expect(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` is ``True`` (a real bool, computed by the test)."""
    if condition is not True:
        fail(message)


def expect_tensor(what: str, value: object) -> torch.Tensor:
    """Fail unless ``value`` is a plain ``torch.Tensor`` (or ``nn.Parameter``); return it detached, float64."""
    if type(value) not in (_t.Tensor, _NN["Parameter"]):
        if isinstance(value, _t.Tensor):
            fail(f"{what} must be a plain torch.Tensor, not a {type(value).__name__}")
        if isinstance(value, tuple | list):
            fail(f"{what} must be a torch.Tensor, but you returned a {type(value).__name__} of "
                 f"{len(value)} items: check what your function returns (and in which order)")
        fail(f"{what} must be a torch.Tensor, but you returned {type(value).__name__}"
             + (" (did you forget the `return`?)" if value is None else ""))
    out = _t.detach(value)
    return _t.to(out, dtype=_t.float64) if _t.is_floating_point(out) else out


def expect_shape(what: str, actual: object, shape: Sequence[int], hint: str = "") -> None:
    """Fail unless ``actual`` is a tensor of exactly ``shape``; ``hint`` names the symbols, e.g. ``"(L, N, H)"``."""
    tensor = expect_tensor(what, actual)
    got = tuple(int(s) for s in _t.size(tensor))
    if got != tuple(shape):
        sym = f" {hint}" if hint else ""
        fail(f"{what} should have shape{sym} = {_shape_str(shape)}, but yours has shape {_shape_str(got)}")


def _max_error(actual: torch.Tensor, expected: torch.Tensor) -> tuple[float, tuple[int, ...]]:
    diff = _t.abs(_t.sub(actual, expected))
    diff = _t.where(_t.isnan(diff), _t.full((), float("inf"), dtype=diff.dtype), diff)
    flat = _t.reshape(diff, (-1,))
    index = int(_t.item(_t.argmax(flat)))
    unravelled = tuple(int(i) for i in _np_unravel_index(index, tuple(_t.size(diff)))) if _t.dim(diff) else ()
    return float(_t.item(flat[index])), unravelled


def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> bool:
    """Elementwise |a - e| <= atol + rtol*|e| with NaN/inf in the same places; computed with captured ops."""
    if tuple(_t.size(actual)) != tuple(_t.size(expected)):
        return False
    with _t.DisableTorchFunction():
        finite = _t.isfinite(expected)
        # where the reference is inf or NaN, the student's value must be the same inf or NaN
        same = _t.isclose(actual, expected, rtol=0.0, atol=0.0, equal_nan=True)
        if not bool(_t.item(_t.all(_t.where(finite, True, same)))):
            return False
        zero = _t.zeros((), dtype=_t.float64)
        a, e = _t.where(finite, actual, zero), _t.where(finite, expected, zero)
        bound = _t.add(_t.mul(_t.abs(e), rtol), atol)
        return bool(_t.item(_t.all(_t.le(_t.abs(_t.sub(a, e)), bound))))


def _no_tampering() -> None:
    if _t.len_function_stack() or _t.len_dispatch_stack():
        fail("a TorchFunctionMode/TorchDispatchMode is still active: grading needs plain torch")


def mismatch(what: str | tuple[str, ...], actual: object, expected: torch.Tensor | tuple[torch.Tensor, ...], *,
             rtol: float = RTOL, atol: float = ATOL, hint: str = "") -> tuple[str, str] | None:
    """``None`` when ``actual`` matches ``expected`` (see :func:`expect_close`), else ``(name, message)``: the name of
    the first output that differs and the feedback for it. A wrong type or shape raises :class:`GradingError` at
    once."""
    _no_tampering()
    several = isinstance(expected, tuple | list)
    names = tuple(what) if several else (what,)
    wanted = [_t.to(_t.detach(e), dtype=_t.float64) for e in (expected if several else (expected,))]
    given = tuple(actual) if several else (actual,)
    if len(given) != len(wanted):
        fail(f"{names[0]}: expected {len(wanted)} outputs, got {len(given)}")
    for name, value, ref in zip(names, given, wanted, strict=True):
        expect_shape(name, value, tuple(_t.size(ref)))
    mine = [expect_tensor(name, value) for name, value in zip(names, given, strict=True)]
    ok = [_close(m, e, rtol, atol) for m, e in zip(mine, wanted, strict=True)]
    if all(ok):
        return None
    name = names[ok.index(False)]
    m, e = mine[ok.index(False)], wanted[ok.index(False)]
    tail = f". {hint}" if hint else ""
    if not bool(_t.item(_t.all(_t.isfinite(m)))) and bool(_t.item(_t.all(_t.isfinite(e)))):
        return name, f"{name} contains NaN or inf where the reference is finite{tail}"
    err, where = _max_error(m, e)
    at = f" at index {list(where)}" if where else ""
    return name, (f"{name} does not match the reference: the largest difference is {err:.3g}{at}, more than the "
                  f"tolerance |yours - reference| <= {atol:g} + {rtol:g}*|reference|{tail}")


def expect_close(what: str | tuple[str, ...], actual: object, expected: torch.Tensor | tuple[torch.Tensor, ...], *,
                 rtol: float = RTOL, atol: float = ATOL, hint: str = "") -> None:
    """Fail unless ``actual`` matches ``expected`` within ``|a - e| <= atol + rtol*|e|`` (compared in float64).

    ``what``, ``actual`` and ``expected`` may be tuples, to check several outputs together (``("output",
    "h_n")``). The feedback gives the largest error, where, the tolerance, and ``hint``; a
    :func:`seqcourse.kernel.diagnose.diagnosis` names the mistake instead, when a mutation of the reference
    reproduces the student's results.
    """
    found = mismatch(what, actual, expected, rtol=rtol, atol=atol, hint=hint)
    if found is not None:
        fail(found[1])


def expect_dtype(what: str, actual: object, dtype: torch.dtype, hint: str = "") -> None:
    """Fail unless the tensor ``actual`` has ``dtype``."""
    tensor = actual if isinstance(actual, _t.Tensor) else expect_tensor(what, actual)
    if tensor.dtype != dtype:
        fail(f"{what} should have dtype {dtype}, but yours has dtype {tensor.dtype}" + (f": {hint}" if hint else ""))


def _describe(template: object) -> str:
    if isinstance(template, tuple):
        return "(" + ", ".join(_describe(t) for t in template) + ")"
    return str(template)


def unpack(what: str, value: object, template: tuple) -> list[object]:
    """Check that ``value`` has the nested tuple structure of ``template`` and return its leaves in order.

    ``unpack("lstm_layer's result", result, ("output", ("h_n", "c_n")))`` -> ``[output, h_n, c_n]``.
    """
    if not isinstance(value, tuple | list) or len(value) != len(template):
        got = f"a {type(value).__name__}" + (f" of {len(value)} items" if isinstance(value, tuple | list) else "")
        fail(f"{what} should be a tuple {_describe(template)}, but is {got}")
    leaves: list[object] = []
    for part, shape in zip(value, template, strict=True):
        leaves += unpack(what, part, shape) if isinstance(shape, tuple) else [part]
    return leaves


def flat(what: str, tensors: Sequence[object]) -> torch.Tensor:
    """All ``tensors`` flattened into one float64 vector (a missing one, e.g. a ``.grad`` of None, fails)."""
    parts = []
    for i, value in enumerate(tensors):
        if value is None:
            fail(f"{what}: entry {i} is None")
        parts.append(_t.reshape(expect_tensor(f"{what} [{i}]", value), (-1,)))
    return _t.cat(parts)


def accuracy(what: str, logits: Sequence[object], labels: Sequence[torch.Tensor]) -> float:
    """Fraction of rows whose argmax matches the label, over batches of student ``logits`` (N, C)."""
    correct = total = 0
    for batch_logits, batch_labels in zip(logits, labels, strict=True):
        n = int(_t.size(batch_labels, 0))
        mine = expect_tensor(what, batch_logits)
        if _t.dim(mine) != 2 or int(_t.size(mine, 0)) != n:
            fail(f"{what} should have shape (N, C) = ({n}, C), but has shape {_shape_str(_t.size(mine))}")
        correct += int(_t.item(_t.sum(_t.eq(_t.argmax(mine, -1), batch_labels))))
        total += n
    return correct / max(total, 1)


def expect_equal(what: str, actual: object, expected: torch.Tensor, hint: str = "") -> None:
    """Fail unless the integer tensor ``actual`` equals ``expected`` exactly (the message says where, not the values:
    those may be a hidden test's)."""
    expect_shape(what, actual, tuple(_t.size(expected)))
    mine = expect_tensor(what, actual)
    tail = f". {hint}" if hint else ""
    if mine.dtype != expected.dtype:
        fail(f"{what} should have dtype {expected.dtype}, but yours has dtype {mine.dtype}{tail}")
    if not _t.equal(mine, expected):
        wrong = _t.reshape(_t.ne(mine, expected), (-1,))
        first = int(_t.item(_t.argmax(_t.to(wrong, dtype=_t.long))))
        where = tuple(int(i) for i in _np_unravel_index(first, tuple(_t.size(mine)))) if _t.dim(mine) else ()
        count = int(_t.item(_t.sum(wrong)))
        fail(f"{what} is not what it should be: {count} of {int(_t.numel(mine))} entries differ (the first at "
             f"index {list(where)}){tail}")


__all__ = ["ATOL", "GradingError", "RTOL", "accuracy", "expect", "expect_close", "expect_dtype", "expect_equal",
           "expect_shape", "expect_tensor", "fail", "flat", "mismatch", "unpack"]


seal(__name__)
