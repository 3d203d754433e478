"""The diagnosis engine: when a student's result is wrong, find the mistake that reproduces it.

Every graded function has a :class:`Catalogue`, declared next to its reference in ``assignments/aN_*.py``: the
reference written with mutation sites (:mod:`seqcourse.kernel.mutations`), what each site is in the lecture's
terms, and the sentences of the variants that need their own words. Its *mutations* are generated: one per variant
of every site the reference visits on the tested inputs (an activation swapped, an operand transposed, a term
dropped, a softmax over another dimension, a state not carried, a mask inverted ...).

A hidden test records its calls of the student's function in a :class:`Diagnosis` and checks through it::

    with checks.diagnosis("rnn_cell") as d:
        for ...:
            mine = d.run(rnn_cell, x, h, w_ih, w_hh, b_ih, b_hh, task="rnn")   # run_student, recorded
            d.expect_close("rnn_cell's h_t", mine, checks.call(ref, x, h))

When the block ends and a check has failed, every mutation of the catalogue is run on the inputs of *every*
recorded call (copies taken before the student's code ran, the same global random state, the same ``uses=``
helpers), and the mutations that reproduce the student's results on all of them, within the tolerance, are the
feedback: ``rnn_cell's h_t: W_hh is transposed: ...``. When none does, the first failed check's own message is.
When the student's code raises, the mutations that raise the same error are named after it (``Likely cause:``).
Messages say what is wrong, never the hidden inputs' values.

A catalogue's ``observe`` says what of a call is compared: by default its result; ``clip_grad_norm_`` is observed
through the gradients it changes in place, a training loop through what it did (:mod:`seqcourse.kernel.training`).
"""

from __future__ import annotations

from ._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

import contextlib  # noqa: E402
import copy  # noqa: E402
import io  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from ._pristine import _NN, ATOL, RTOL, Sealed, _t, seal, seal_class  # noqa: E402
from .catalogue import Catalogue  # noqa: E402
from .delegation import resolve_uses, run_student, substituted, user_namespace  # noqa: E402
from .expect import GradingError, _close, expect_equal, fail, mismatch  # noqa: E402
from .mutations import Variant  # noqa: E402

#: at most this many mutations are named when several reproduce the student's results
MAX_NAMED = 2
#: open :func:`tracing` lists (the self-test collects the mutations that apply to the hidden tests' inputs)
_TRACES: list[list] = []


def _snapshot(obj: Any) -> Any:
    """A copy that the student's code cannot change: tensors (and their ``.grad``), containers, modules, generators."""
    if isinstance(obj, _t.Tensor):
        out = _t.clone(_t.detach(obj))
        if obj.requires_grad and obj.is_leaf:
            _t.requires_grad_(out)
        if obj.is_leaf and obj.grad is not None:
            out.grad = _t.clone(obj.grad)
        return out
    if isinstance(obj, tuple | list):
        return type(obj)(_snapshot(x) for x in obj)
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, _NN["Module"]):
        return copy.deepcopy(obj)
    if isinstance(obj, _t.Generator):
        g = _t.Generator()
        g.set_state(obj.get_state())
        return g
    return obj


def _same(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """``a`` reproduces ``b``: the same structure, tensors of the same shape within the tolerance, equal otherwise."""
    if isinstance(b, _t.Tensor):
        if not isinstance(a, _t.Tensor) or tuple(_t.size(a)) != tuple(_t.size(b)):
            return False
        with _t.no_grad():
            return _close(_t.to(_t.detach(a), dtype=_t.float64), _t.to(_t.detach(b), dtype=_t.float64), rtol, atol)
    if isinstance(b, tuple | list):
        return isinstance(a, tuple | list) and len(a) == len(b) and all(
            _same(x, y, rtol, atol) for x, y in zip(a, b, strict=True))
    if isinstance(b, dict):
        return isinstance(a, dict) and set(a) == set(b) and all(_same(a[k], b[k], rtol, atol) for k in b)
    if isinstance(b, float) and isinstance(a, int | float):
        return abs(a - b) <= atol + rtol * abs(b)
    return type(a) is type(b) and a == b


@seal_class
@dataclass
class _Run(metaclass=Sealed):
    """One recorded call: the inputs as they were before the student's code ran, and what it gave."""

    args: tuple
    kwargs: dict
    rng: torch.Tensor
    module: object
    namespace: dict
    uses: dict
    compare: Callable[[Any], Any] | None = None
    observed: Any = None
    error: BaseException | None = None  # what the student's code raised (then a mutation must raise the same)


@seal_class
class Diagnosis(metaclass=Sealed):
    """Records the calls of one graded function and its checks; names the mutation behind a failure.

    Use it as a context manager (the verdict comes when the block ends) or call :meth:`verdict` yourself.
    """

    def __init__(self, catalogue: Catalogue, *, rtol: float = RTOL, atol: float = ATOL, budget: float = 15.0):
        self.catalogue, self.rtol, self.atol, self.budget = catalogue, rtol, atol, budget
        self.runs: list[_Run] = []
        self.failures: list[tuple[str | None, str]] = []

    def __enter__(self) -> Diagnosis:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.verdict()
        elif isinstance(exc, GradingError) and not getattr(exc, "explained", False) and self.runs:
            found = self._explain(self.runs)  # a check that failed at once (a wrong shape, a visible test)
            if found:
                raise _explained(exc, found) from None
        return False

    # ------------------------------------------------------------------------------------------ recording
    def run(self, fn: Callable[..., Any], *args: Any, task: str | None = None, uses: Any = (),
            time_limit: float | None = 20.0, hint: str = "", compare: Callable[[Any], Any] | None = None,
            **kwargs: Any) -> Any:
        """``run_student(fn, *args, **kwargs)``, recorded (for a method's catalogue ``fn`` is the student's module).

        Returns what the catalogue observes of the call (by default the result). ``compare`` picks the part of the
        observation a mutation must reproduce (default: all of it; e.g. ``lambda grads: grads[4]`` when the cell
        grades dL/dh0 alone). When the student's code raises, the failure names the mutations that raise the same
        error.
        """
        run = _Run(_snapshot(args), _snapshot(kwargs), _t.get_rng_state(), fn if self.catalogue.method else None,
                   user_namespace(), resolve_uses(uses), compare)

        def student(*a: Any, **k: Any) -> Any:
            return run_student(fn, *a, task=task, uses=uses, time_limit=time_limit, hint=hint, **k)

        try:
            observed = self.catalogue.observed(student, *args, **kwargs)
        except GradingError as err:
            if err.exception is None or isinstance(err.exception, NotImplementedError):
                raise
            run.error = err.exception
            found = self._explain([*self.runs, run])
            if not found:
                raise
            message = str(err.args[0])
            if hint and message.endswith(f" {hint}"):  # the cause replaces the general hint
                message = message[: -len(hint) - 1]
            raise _explained(GradingError(message, err.student_frames, err.exception), found) from None
        run.observed = _snapshot(_pick(run, observed))
        self.runs.append(run)
        return observed

    # ------------------------------------------------------------------------------------------ checks
    def expect_close(self, what: str | tuple[str, ...], actual: Any, expected: Any, *, rtol: float | None = None,
                     atol: float | None = None, hint: str = "") -> None:
        """:func:`~seqcourse.kernel.expect.expect_close`, with the verdict deferred to the end of the block."""
        try:
            found = mismatch(what, actual, expected, rtol=self.rtol if rtol is None else rtol,
                             atol=self.atol if atol is None else atol, hint=hint)
        except GradingError as err:  # a wrong type or shape: a mutation may still explain it
            name = what[0] if isinstance(what, tuple) else what
            found = (name, str(err.args[0]))
        if found is not None:
            self.failures.append(found)

    def expect_equal(self, what: str, actual: Any, expected: Any, hint: str = "") -> None:
        """:func:`~seqcourse.kernel.expect.expect_equal` (integer tensors), with the verdict deferred."""
        try:
            expect_equal(what, actual, expected, hint)
        except GradingError as err:
            self.failures.append((what, str(err.args[0])))

    def expect(self, condition: bool, message: str, what: str | None = None) -> None:
        """Record a failed check unless ``condition`` is ``True``; ``what`` names the output (``None``: none)."""
        if condition is not True:
            self.failures.append((what, message))

    def verdict(self) -> None:
        """Pass if every check passed; otherwise fail, naming the mutations that reproduce every recorded call."""
        if _TRACES:
            keys = list({v.key: v for run in self.runs for v in self._variants(run)}.values())
            for trace in _TRACES:
                trace.append((self.catalogue.name, keys))
        if not self.failures:
            return
        name, message = self.failures[0]
        found = self._explain(self.runs)
        if found:
            fail(f"{name}: {found}" if name else found)
        fail(message)

    # ------------------------------------------------------------------------------------------ the search
    def _explain(self, runs: list[_Run]) -> str:
        """The sentences of the mutations that reproduce all ``runs`` (their results, or the error a run raised)."""
        if not runs:
            return ""
        saved = _t.get_rng_state()
        start = time.monotonic()
        named: list[str] = []
        try:
            candidates: dict[str, Variant] = {}
            for run in runs:
                for variant in self._variants(run):
                    candidates.setdefault(variant.key, variant)
            for variant in candidates.values():
                if time.monotonic() - start > self.budget:
                    break
                if all(self._reproduces(variant, run) for run in runs):
                    text = self.catalogue.sentence(variant)
                    if text not in named:
                        named.append(text)
                    if len(named) == MAX_NAMED:
                        break
        finally:
            _t.set_rng_state(saved)
        return " Or: ".join(named)

    def _variants(self, run: _Run) -> list[Variant]:
        try:
            with self._context(run):
                return self.catalogue.variants(*_snapshot(run.args), module=run.module, **_snapshot(run.kwargs))
        except Exception:  # noqa: BLE001 - the reference cannot run on these inputs: nothing to offer
            return []

    def _reproduces(self, variant: Variant, run: _Run) -> bool:
        mutant = self.catalogue.mutant(variant, run.module)
        try:
            with self._context(run):
                got = self.catalogue.observed(mutant, *_snapshot(run.args), **_snapshot(run.kwargs))
        except Exception as exc:  # noqa: BLE001 - a mutation that raises reproduces only an error like it
            return run.error is not None and type(exc) is type(run.error) and str(exc) == str(run.error)
        if run.error is not None:
            return False
        try:
            return _same(_pick(run, got), run.observed, self.rtol, self.atol)
        except Exception:  # noqa: BLE001 - a mutation whose result cannot even be picked apart reproduces nothing
            return False

    @contextlib.contextmanager
    def _context(self, run: _Run):
        _t.set_rng_state(run.rng)
        with substituted(run.namespace, run.uses), contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield


def _pick(run: _Run, observed: Any) -> Any:
    return run.compare(observed) if run.compare else observed


def _explained(err: GradingError, cause: str) -> GradingError:
    """``err`` with the mutations that explain it: "<its message>. Likely cause: <cause>"."""
    out = GradingError(f"{str(err.args[0]).rstrip('.')}. Likely cause: {cause}", err.student_frames, err.exception)
    out.explained = True
    return out


@contextlib.contextmanager
def tracing():
    """Collect ``(catalogue name, [the variants that apply to its recorded calls])`` for every diagnosis that comes to
    its verdict meanwhile (the self-test enumerates each catalogue on the hidden tests' own inputs)."""
    found: list = []
    _TRACES.append(found)
    try:
        yield found
    finally:
        _TRACES.remove(found)


def diagnosis(name: str, *, rtol: float = RTOL, atol: float = ATOL) -> Diagnosis:
    """A :class:`Diagnosis` with the catalogue of the graded function ``name`` (see ``CATALOGUES``)."""
    from .assignments import CATALOGUES

    if name not in CATALOGUES:
        raise KeyError(f"no catalogue for {name!r}; known: {', '.join(sorted(CATALOGUES))}")
    return Diagnosis(CATALOGUES[name], rtol=rtol, atol=atol)


__all__ = ["Catalogue", "Diagnosis", "MAX_NAMED", "diagnosis", "tracing"]  # Catalogue: re-exported from .catalogue


seal(__name__)
