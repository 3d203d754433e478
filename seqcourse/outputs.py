"""What the outputs of a graded test cell may say, and how they are scored.

nbgrader scores a test cell from its outputs (:func:`nbgrader.utils.determine_grade`): an ``error`` output or
*any* ``stderr`` stream scores 0, an ``execute_result`` is read as partial credit. Neither is safe here:

- a torch warning or a debugging ``print(..., file=sys.stderr)`` in the student's code must not zero a test, so
  stderr streams of test cells become stdout (:func:`neutralise_stderr`);
- a student's function can publish an ``execute_result`` from inside a test (``get_ipython().displayhook(1.0)``)
  and so claim partial credit; test cells score all or nothing, so ``execute_result`` outputs of test cells become
  ``display_data`` (:func:`neutralise_results`);
- the traceback of a failed hidden assert shows the hidden lines: test-cell errors keep only the curated message
  (``AssertionError: <text>``) and the frames that lie in the student's own cells (:func:`curate_error`).

:class:`NormaliseTestOutputs` applies the same rules as an nbgrader preprocessor, so that ``course/nbgrader_config.py``
makes plain ``nbgrader autograde`` safe too.
"""

from __future__ import annotations

import re

from nbformat import NotebookNode
from nbformat.v4 import new_output

from .sanitize import cell_kind, hidden_regions

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FRAME = re.compile(r"^\s*Cell In\s*\[(\d+)\], line \d+")
RED, RESET = "\x1b[0;31m", "\x1b[0m"


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def error_line(ename: str, evalue: str) -> str:
    """The one line a student sees for a failed check: the exception type and its curated message.

    ``GradingError`` (:mod:`seqcourse.kernel.checks`) is an ``AssertionError`` and reads as one, as in the notebook.
    """
    ename = "AssertionError" if ename == "GradingError" else ename
    evalue = (evalue or "").strip()
    return f"{RED}{ename}{RESET}: {evalue}" if evalue else f"{RED}{ename}{RESET} (the check gave no message)"


def _mentions(entry: str, secret: set[str]) -> bool:
    plain = re.sub(r"[ \t]+", " ", strip_ansi(entry))
    return any(re.sub(r"[ \t]+", " ", line) in plain for line in secret)


def curate_error(output: NotebookNode, student_counts: set[int], secret: set[str] = frozenset()) -> None:
    """Reduce an ``error`` output of a test cell to its message plus the frames in the student's own code.

    IPython frames (``Cell In[k], line n``) are kept only when ``k`` is one of ``student_counts`` (the execution
    counts of the student's cells in the same kernel): the test cell's own frame, which shows its hidden lines,
    and the frames of instructor cells are dropped, as are library frames. A traceback already curated by
    :mod:`seqcourse.kernel.checks` (``Traceback (your code):`` + the student's frames) keeps its frames. Either
    way, no entry that contains one of the ``secret`` lines (the cell's hidden tests) survives.
    """
    tb = [str(entry) for entry in output.get("traceback", [])]
    frames = []
    if tb and strip_ansi(tb[0]).startswith("Traceback (your code)"):
        frames = [e for e in tb[1:-1] if "seqcourse/kernel/" not in e]
    else:
        for entry in tb[1:-1]:
            match = _FRAME.match(strip_ansi(entry))
            if match and int(match.group(1)) in student_counts:
                frames.append(entry)
    frames = [e for e in frames if not _mentions(e, secret)]
    last = error_line(output.get("ename", "Error"), output.get("evalue", ""))
    if _mentions(last, secret):
        output["evalue"] = ""
        last = error_line(output.get("ename", "Error"), "")
    output["traceback"] = ["Traceback (your code):", *frames, last] if frames else [last]


def neutralise_stderr(cell: NotebookNode) -> None:
    """Turn the stderr streams of a cell into stdout (nbgrader would score any stderr as a failure)."""
    merged = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            name = "stdout"
            if merged and merged[-1].get("output_type") == "stream" and merged[-1].get("name") == name:
                merged[-1]["text"] += out.get("text", "")
                continue
            out["name"] = name
        merged.append(out)
    cell["outputs"] = merged


def neutralise_results(cell: NotebookNode) -> None:
    """Turn ``execute_result`` outputs into ``display_data`` (no partial credit from a test cell's output)."""
    outs = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "execute_result":
            out = new_output("display_data", data=out.get("data", {}), metadata=out.get("metadata", {}))
        outs.append(out)
    cell["outputs"] = outs


def normalise_test_cell(cell: NotebookNode, student_counts: set[int] | None = None,
                        secret: set[str] | None = None) -> None:
    """Apply every rule above to one test cell (``student_counts``: see :func:`curate_error`; ``secret``: hidden
    lines of the whole notebook, on top of the cell's own, that no error message may repeat)."""
    neutralise_stderr(cell)
    neutralise_results(cell)
    secret = set(secret or ()) | {line.strip() for line in hidden_regions(str(cell.get("source", "")))
                                  if len(line.strip()) >= 6}
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            curate_error(out, student_counts or set(), secret)


def test_cell_score(cell: NotebookNode) -> tuple[float, float]:
    """(score, max score) of a normalised test cell: all the points unless it has an error output."""
    points = float(cell.metadata["nbgrader"].get("points", 0))
    failed = any(out.get("output_type") == "error" for out in cell.get("outputs", []))
    return (0.0 if failed else points), points


def _nbgrader_preprocessor_base():
    from nbgrader.preprocessors import NbGraderPreprocessor

    return NbGraderPreprocessor


class NormaliseTestOutputs(_nbgrader_preprocessor_base()):
    """nbgrader preprocessor: the rules of this module for every autograded test cell of a notebook."""

    def preprocess(self, nb, resources):
        counts = {c.get("execution_count") for c in nb.cells
                  if c.cell_type == "code" and cell_kind(c) in ("solution", "plain")} - {None}
        for cell in nb.cells:
            if cell.cell_type == "code" and cell_kind(cell) == "test":
                normalise_test_cell(cell, counts)
        return nb, resources
