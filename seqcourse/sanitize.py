"""What a submission is allowed to contribute, and what must never reach a student.

The grader never trusts the structure or metadata of a handed-in notebook. :func:`canonicalize` rebuilds it
from the grading template (the released notebook with hidden tests restored, see
:func:`seqcourse.course.grading_template`): every nbgrader cell comes from the template, with its grade
id, points, checksum and position; only the *answers* (the source of solution cells) and the student's own
extra cells come from the submission. So an edited, emptied, deleted, re-flagged or moved test cell, a grade
id put on another cell, or changed points gain nothing.

:func:`hidden_lines` and :func:`find_leaks` check that no line of a hidden test reaches a released notebook or
a feedback file.
"""

from __future__ import annotations

import copy
import html
import json
import re
from dataclasses import dataclass, field

import nbformat

BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
#: shortest hidden line the leak check looks for (shorter ones, like ``)`` or ``else:``, are not evidence)
MIN_LEAK_CHARS = 12
#: largest notebook file the grader reads
MAX_NOTEBOOK_BYTES = 20 * 2**20


class InvalidSubmission(ValueError):
    """The handed-in file is not a notebook the grader can read."""


class LeakError(RuntimeError):
    """Hidden-test source was found where a student could read it."""


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def cell_kind(cell) -> str:
    """``"test"`` (autograded test), ``"manual"`` (manually graded answer), ``"solution"``, ``"locked"``
    (read-only instructor cell), ``"task"``, or ``"plain"`` (no nbgrader metadata)."""
    meta = nbgrader_meta(cell)
    if not meta.get("grade_id"):
        return "plain"
    if meta.get("task"):
        return "task"
    if meta.get("solution"):
        return "manual" if meta.get("grade") else "solution"
    if meta.get("grade"):
        return "test"
    return "locked" if meta.get("locked") else "plain"


def source_text(cell) -> str:
    src = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(src, list):
        src = "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def strip_hidden(source: str) -> str:
    """``source`` without its ``### BEGIN/END HIDDEN TESTS`` regions (what the released notebook shows)."""
    out, hidden = [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            hidden = True
        elif END_HIDDEN in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


def hidden_regions(source: str) -> list[str]:
    """The lines inside hidden-test regions of ``source``."""
    out, hidden = [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            hidden = True
        elif END_HIDDEN in line:
            hidden = False
        elif hidden:
            out.append(line)
    return out


def hidden_lines(template: nbformat.NotebookNode) -> set[str]:
    """Distinctive hidden-test lines of a grading template: stripped, at least ``MIN_LEAK_CHARS`` long, not a
    comment and not found anywhere in the visible text of the notebook (so finding one elsewhere proves a leak)."""
    visible = "\n".join(_norm(strip_hidden(source_text(cell))) for cell in template.cells)
    found = set()
    for cell in template.cells:
        for line in hidden_regions(source_text(cell)):
            line = line.strip()
            if len(line) >= MIN_LEAK_CHARS and not line.startswith("#") and _norm(line) not in visible:
                found.add(line)
    return found


_TAG = re.compile(r"<[^>]+>")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def html_text(text: str) -> str:
    """The text a reader sees in an HTML page (tags removed, entities decoded): syntax highlighting splits code
    into many ``<span>``s, so a leak check must look at this, not at the raw HTML."""
    return html.unescape(_TAG.sub("", text))


def _norm(text: str) -> str:
    return re.sub(r"[ \t]+", " ", _ANSI.sub("", text))


def find_leaks(text: str, lines: set[str]) -> list[str]:
    """Hidden lines (from :func:`hidden_lines`) that occur in ``text`` (whitespace runs compared as one space)."""
    hay = _norm(text)
    return sorted(line for line in lines if _norm(line) in hay)


def notebook_text(nb) -> str:
    """Everything a reader of a notebook file can see: sources, outputs, tracebacks (JSON-decoded)."""
    parts = []
    for cell in nb.get("cells", []):
        parts.append(source_text(cell))
        for out in cell.get("outputs", []) or []:
            parts.append(json.dumps(out, ensure_ascii=False))
            for key in ("text", "evalue"):
                if isinstance(out.get(key), str):
                    parts.append(out[key])
            for tb in out.get("traceback", []) or []:
                parts.append(str(tb))
            for value in (out.get("data") or {}).values():
                parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ reading a hand-in

def read_submission(path) -> nbformat.NotebookNode:
    """Read a handed-in notebook; raise :class:`InvalidSubmission` with a plain reason when it cannot be read."""
    try:
        raw = open(path, "rb").read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as exc:
        raise InvalidSubmission(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise InvalidSubmission(f"the notebook is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSubmission(f"the file is not valid notebook JSON ({exc})") from None
    if isinstance(data, dict) and data.get("nbformat") == 3 and "worksheets" in data:
        try:  # a notebook saved by a very old Jupyter
            data = dict(nbformat.convert(nbformat.from_dict(data), 4))
        except Exception as exc:  # noqa: BLE001
            raise InvalidSubmission(f"an old (version 3) notebook that cannot be converted ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells", None), list):
        raise InvalidSubmission("the file is JSON but not a Jupyter notebook (no list of cells)")
    cells = []
    for cell in data["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") in ("code", "markdown", "raw"):
            cells.append(cell)
    data["cells"] = cells
    return nbformat.from_dict(data)


# ------------------------------------------------------------------------------------------ the rebuild

@dataclass
class Canonical:
    """A rebuilt submission and what the rebuild noticed."""

    nb: nbformat.NotebookNode
    #: tampering or damage that the rebuild undid (one short sentence each)
    notes: list[str] = field(default_factory=list)
    #: solution grade ids for which the submission had no answer (the stub was used)
    unanswered: list[str] = field(default_factory=list)
    #: grade id -> kind (test/manual/solution/locked/task), in template order
    kinds: dict[str, str] = field(default_factory=dict)
    #: per cell of ``nb``: "test", "manual", "solution", "locked", "task", "student" (extra cell) or "markdown"
    roles: list[str] = field(default_factory=list)


def canonicalize(submitted: nbformat.NotebookNode, template: nbformat.NotebookNode) -> Canonical:
    """Rebuild ``submitted`` on ``template`` (see the module docstring). The result is a valid notebook."""
    tcells = template.cells
    index_of = {}
    for i, cell in enumerate(tcells):
        gid = nbgrader_meta(cell).get("grade_id")
        if gid and cell_kind(cell) != "plain":
            index_of[gid] = i
    template_markdown = {source_text(c).strip() for c in tcells
                         if c.cell_type == "markdown" and cell_kind(c) == "plain"}
    notes: list[str] = []
    claims: dict[str, dict] = {}
    extras: dict[int | None, list[dict]] = {}
    anchor: int | None = None
    for cell in submitted.get("cells", []):
        gid = nbgrader_meta(cell).get("grade_id")
        if isinstance(gid, str) and gid in index_of and gid not in claims:
            claims[gid] = cell
            tcell = tcells[index_of[gid]]
            kind = cell_kind(tcell)
            if cell_kind(cell) != kind:
                notes.append(f"cell {gid!r} had its nbgrader flags changed (ignored)")
            if kind in ("test", "manual") and nbgrader_meta(cell).get("points") != nbgrader_meta(tcell).get("points"):
                notes.append(f"cell {gid!r} had its points changed (ignored)")
            if kind in ("test", "locked") and source_text(cell).strip() != strip_hidden(source_text(tcell)).strip():
                notes.append(f"read-only cell {gid!r} was edited (restored)")
            if index_of[gid] < (anchor if anchor is not None else -1):
                notes.append(f"cell {gid!r} was moved (put back in place)")
            anchor = index_of[gid]
            continue
        if isinstance(gid, str) and gid in claims:
            notes.append(f"a second cell claimed grade id {gid!r} (treated as the student's own cell)")
        elif isinstance(gid, str) and gid:
            notes.append(f"a cell claimed unknown grade id {gid!r} (treated as the student's own cell)")
        if cell.get("cell_type") == "markdown" and source_text(cell).strip() in template_markdown:
            continue  # the template's own text, which the rebuild puts back in its place
        if cell.get("cell_type") in ("code", "markdown"):
            extras.setdefault(anchor, []).append(cell)

    first_answer = next((i for i, c in enumerate(tcells) if cell_kind(c) in ("solution", "manual")), len(tcells))
    out_cells, roles, unanswered, kinds = [], [], [], {}
    counter = 0

    def add_extra(cell: dict) -> None:
        nonlocal counter
        counter += 1
        src = source_text(cell)
        if cell.get("cell_type") == "code":
            new = nbformat.v4.new_code_cell(src)
            roles.append("student")
        else:
            new = nbformat.v4.new_markdown_cell(src)
            roles.append("markdown")
        new["id"] = f"student-{counter}"
        out_cells.append(new)

    for i, tcell in enumerate(tcells):
        if i == first_answer:
            for cell in extras.pop(None, []):
                add_extra(cell)
        kind = cell_kind(tcell)
        gid = nbgrader_meta(tcell).get("grade_id")
        if kind == "plain":
            if tcell.cell_type == "markdown":
                out_cells.append(copy.deepcopy(tcell))
                roles.append("markdown")
            # an unlocked code cell without nbgrader metadata belongs to the student: their copy (if any) is
            # among the extras, at the place they left it
        else:
            kinds[gid] = kind
            new = copy.deepcopy(tcell)
            if kind in ("solution", "manual", "task"):
                if gid in claims:
                    new.source = source_text(claims[gid])
                elif kind != "task":
                    unanswered.append(gid)
                    notes.append(f"the answer cell {gid!r} was missing (graded as unanswered)")
            elif gid not in claims:
                notes.append(f"read-only cell {gid!r} was deleted (restored)")
            out_cells.append(new)
            roles.append(kind if new.cell_type == "code" or kind in ("manual", "task") else "markdown")
        for cell in extras.pop(i, []):
            add_extra(cell)
    for cell in extras.pop(None, []):  # a template with no answer cells at all
        add_extra(cell)

    nb = copy.deepcopy(template)
    nb.cells = out_cells
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    return Canonical(nb=nb, notes=_dedupe(notes), unanswered=unanswered, kinds=kinds, roles=roles)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ------------------------------------------------------------------------------------------ review flags

_SUSPICIOUS = [
    (r"\bget_ipython\s*\(", "talks to the IPython shell"),
    (r"\bsys\.modules\b", "edits sys.modules"),
    (r"\b(?:import builtins|__builtins__)\b", "touches builtins"),
    (r"\b(?:input_transformers|ast_transformers|set_custom_exc|showtraceback|displayhook|excepthook)\b",
     "changes how cells are run or errors are shown"),
    (r"\b(?:torch|np|numpy)\.testing\.\w+\s*=(?!=)", "replaces a testing helper"),
    (r"\b(?:allclose|isclose|equal|assert_close|array_equal|assert_allclose)\s*=(?!=)",
     "replaces a comparison function"),
    (r"\bsetattr\s*\(\s*(?:torch|np|numpy|math|checks|builtins)\b", "patches a library with setattr"),
    (r"\bchecks\b\s*=(?!=)|\bseqlib\.grading\b", "touches the grader's checks"),
    (r"\b(?:ctypes|gc\.get_referents|gc\.get_objects|sys\._getframe|inspect\.stack)\b", "inspects the interpreter"),
    (r"\bos\.(?:kill|killpg|_exit|fork)\b|\bsignal\.signal\b|\bsubprocess\b", "kills, forks or runs processes"),
    (r"\bgradebook\b|\bthreading\.Thread\b", "starts threads or touches the gradebook"),
]


def review_flags(nb: nbformat.NotebookNode, roles: list[str]) -> list[str]:
    """Static hints that a submission tries to tamper with the grader (for a human to look at; never a penalty)."""
    found = []
    for cell, role in zip(nb.cells, roles, strict=True):
        if role not in ("solution", "student", "manual"):
            continue
        src = source_text(cell)
        for pattern, why in _SUSPICIOUS:
            if re.search(pattern, src):
                found.append(why)
    return _dedupe(found)
