"""The exercises check their own grader: edited solutions and catalogue mutations, graded in this process.

``seqcourse autograde`` grades a hand-in in a fresh kernel through nbgrader. Checking the grader itself needs
hundreds of gradings (every mutation of every catalogue, a corpus of realistic mistakes, a corpus of correct
rewrites), so :func:`grade` runs an exercise's source notebook in one namespace of this process, the way the
grading kernel does: the setup cell, the given cells, the solutions (with text edits, or with a graded function
replaced), and the test cells *with* their hidden tests, each seeded from its grade id like the grader's guard. It
reports every test cell's points and message (the ``AssertionError`` a student would read).

Used by ``tests/test_diagnosis.py`` (every catalogue entry is named when it is handed in; correct rewrites keep full
marks; realistic mistakes lose points and are named) and ``benchmarks/bench_diagnosis.py`` (the measured rates).
The real pipeline stays the judge: the demo class is graded by nbgrader in ``tests/test_exercises.py``.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import nbformat

EXERCISES = Path(__file__).resolve().parents[1] / "exercises"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


@dataclass(frozen=True)
class Edit:
    """``old`` -> ``new`` in the solution cell ``cell`` (``old`` must occur exactly once)."""

    cell: str
    old: str
    new: str


@dataclass(frozen=True)
class CellResult:
    """One graded cell: the points it earned of ``points``, and the message a student reads when it failed."""

    grade_id: str
    score: float
    points: float
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.score < self.points


def _meta(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


@lru_cache(maxsize=8)
def _load(path: str) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def notebook(assignment: str, source: Path = EXERCISES) -> nbformat.NotebookNode:
    """The source notebook of ``assignment`` (read once)."""
    return _load(str(Path(source) / assignment / f"{assignment}.ipynb"))


def solution_code(source: str) -> str:
    """A solution cell's code without the ``### BEGIN/END SOLUTION`` lines (what a student hands in)."""
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN, END))


def owned_cells(assignment: str, solution: str, source: Path = EXERCISES) -> list[str]:
    """The graded cells that follow the solution cell ``solution``, up to the next solution cell (its tests)."""
    out, inside = [], False
    for cell in notebook(assignment, source).cells:
        meta = _meta(cell)
        if meta.get("solution"):
            inside = meta.get("grade_id") == solution
        elif inside and meta.get("grade"):
            out.append(meta["grade_id"])
    return out


def _apply(code: str, edits: Sequence[Edit], cell: str) -> str:
    for edit in edits:
        if edit.cell != cell:
            continue
        count = code.count(edit.old)
        if count != 1:
            raise ValueError(f"edit of {cell} matches {count} times (expected once): {edit.old!r}")
        code = code.replace(edit.old, edit.new)
    return code


def _install(namespace: dict, replace: Mapping[str, Any], defined: Iterable[str]) -> None:
    """Put the replacements whose name (``f`` or ``Class.method``) the cell just defined into the namespace."""
    for name, value in replace.items():
        owner, _, attr = name.partition(".")
        if owner in defined and owner in namespace:
            if attr:
                setattr(namespace[owner], attr, value)
            else:
                namespace[owner] = value


def _seed(label: str) -> None:
    """The grader's per-cell seed (seqcourse.kernel.guard.before_cell)."""
    import random

    import numpy
    import torch

    seed = zlib.crc32(label.encode()) % 2**31
    random.seed(seed)
    numpy.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def grade(assignment: str, *, edits: Sequence[Edit] = (), replace: Mapping[str, Any] | None = None,
          cells: Iterable[str] | None = None, source: Path = EXERCISES) -> dict[str, CellResult]:
    """Grade ``assignment``'s solutions, with ``edits`` applied and the graded functions in ``replace`` swapped
    in (``{"rnn_cell": fn, "EncoderLayer.forward": fn}``), in this process; ``cells``: the test cells to run
    (default: all). Returns ``{grade_id: CellResult}`` in notebook order."""
    import torch

    nb = notebook(assignment, source)
    wanted = None if cells is None else set(cells)
    replace = dict(replace or {})
    namespace: dict[str, Any] = {"__name__": "__main__"}
    results: dict[str, CellResult] = {}
    saved = (sys.stderr, warnings.showwarning, torch.get_num_threads(), torch.get_rng_state())
    unused = {e.cell for e in edits} - {_meta(c).get("grade_id") for c in nb.cells}
    if unused:
        raise ValueError(f"{assignment} has no solution cells {sorted(unused)}")
    try:
        with warnings.catch_warnings():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                meta = _meta(cell)
                gid = meta.get("grade_id")
                if meta.get("grade") and wanted is not None and gid not in wanted:
                    continue
                code = cell.source
                if meta.get("solution"):
                    code = _apply(solution_code(code), edits, gid)
                _seed(gid or f"cell-{index}")
                before = set(namespace)
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        exec(compile(code, f"<{gid or index}>", "exec"), namespace)  # noqa: S102 - the exercise
                    error = ""
                except AssertionError as exc:  # GradingError: the curated message
                    error = str(exc) or type(exc).__name__
                except Exception as exc:  # noqa: BLE001 - what the student would see
                    error = f"{type(exc).__name__}: {exc}"
                if meta.get("solution") or not meta.get("grade"):
                    if error and not meta.get("solution"):
                        raise RuntimeError(f"{assignment}: the read-only cell {gid or index} failed: {error}")
                    _install(namespace, replace, set(namespace) - before | _defined(code))
                    continue
                points = float(meta.get("points", 0))
                results[gid] = CellResult(gid, 0.0 if error else points, points, error)
    finally:
        sys.stderr, warnings.showwarning = saved[0], saved[1]
        torch.set_num_threads(saved[2])
        torch.set_rng_state(saved[3])
    return results


def _defined(code: str) -> set[str]:
    """Top-level names a cell defines (``def``/``class``), also when it redefines one that existed before."""
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}


def first_failure(results: Mapping[str, CellResult]) -> CellResult | None:
    """The first graded cell that lost points (what the student reads first), or ``None``."""
    return next((r for r in results.values() if r.failed), None)


__all__ = ["CellResult", "Edit", "first_failure", "grade", "notebook", "owned_cells", "solution_code"]
