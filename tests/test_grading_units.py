"""The grader's building blocks, without kernels: the rebuild of a hand-in on its template, output rules, the leak
scanner, collecting zips. Each test would fail if the guarantee it names were dropped."""

from __future__ import annotations

import copy
import io
import json
import stat
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "grading"))
import fixture_course as fc  # noqa: E402

from seqcourse.collect import collect, scan  # noqa: E402
from seqcourse.course import Course  # noqa: E402
from seqcourse.outputs import curate_error, normalise_test_cell  # noqa: E402
from seqcourse.sanitize import (  # noqa: E402
    InvalidSubmission,
    canonicalize,
    cell_kind,
    find_leaks,
    hidden_lines,
    html_text,
    read_submission,
    strip_hidden,
)

pytestmark = pytest.mark.course


def _template() -> nbformat.NotebookNode:
    """What ``grading_template`` makes of the fixture: the source with solutions replaced by stubs."""
    nb = fc.source_notebook()
    for cell in nb.cells:
        if cell_kind(cell) == "solution":
            head = cell.source.split("    ### BEGIN SOLUTION")[0]
            cell.source = head + "    # YOUR CODE HERE\n    raise NotImplementedError()"
    return nb


def _released(template: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(template)
    for cell in nb.cells:
        cell.source = strip_hidden(cell.source)
    return nb


def _by_id(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _test_cells(nb):
    return [c.metadata.nbgrader.grade_id for c in nb.cells if cell_kind(c) == "test"]


# ------------------------------------------------------------------------------------------ the rebuild

def test_rebuild_restores_edited_and_deleted_tests():
    template = _template()
    sub = _released(template)
    _by_id(sub, "test_add").source = "pass"
    _by_id(sub, "test_mean").source = ""
    sub.cells.remove(_by_id(sub, "test_countdown"))
    can = canonicalize(sub, template)
    for gid in ("test_add", "test_mean", "test_countdown", "test_data_file"):
        assert _by_id(can.nb, gid).source == _by_id(template, gid).source  # hidden tests included
    assert _test_cells(can.nb) == _test_cells(template)
    assert any("deleted" in n for n in can.notes) and any("edited" in n for n in can.notes)


def test_rebuild_ignores_points_flags_and_moved_ids():
    template = _template()
    sub = _released(template)
    test = _by_id(sub, "test_add")
    test.metadata.nbgrader.update(points=100, grade=False, solution=True, locked=False)
    answer = _by_id(sub, "add")
    answer.metadata.nbgrader.update(grade=True, points=50)
    sub.cells.remove(test)
    sub.cells.insert(0, new_code_cell("pass", metadata=copy.deepcopy(test.metadata)))  # the id moved to the top
    sub.cells.append(new_code_cell("x = 1", metadata=copy.deepcopy(_by_id(sub, "test_mean").metadata)))
    can = canonicalize(sub, template)
    meta = {c.metadata.nbgrader.grade_id: c.metadata.nbgrader for c in can.nb.cells if "nbgrader" in c.metadata}
    assert meta == {c.metadata.nbgrader.grade_id: c.metadata.nbgrader for c in template.cells
                    if "nbgrader" in c.metadata}
    # test cells sit where the template puts them, with its source; the second claim is an ordinary cell
    assert _test_cells(can.nb) == _test_cells(template)
    assert _by_id(can.nb, "test_add").source == _by_id(template, "test_add").source
    assert "x = 1" in [c.source for c, r in zip(can.nb.cells, can.roles, strict=True) if r == "student"]
    assert sum(1 for c in can.nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_mean") == 1


def test_rebuild_keeps_answers_and_extra_cells_in_place():
    template = _template()
    sub = _released(template)
    _by_id(sub, "add").source = "def add(a, b):\n    return helper(a) + b"
    index = sub.cells.index(_by_id(sub, "add"))
    sub.cells.insert(index, new_code_cell("def helper(x):\n    return x"))  # a helper just before the answer
    sub.cells.insert(0, new_code_cell("import builtins"))  # a cell above the setup cell runs after it
    sub.cells.remove(_by_id(sub, "mean"))
    can = canonicalize(sub, template)
    sources = [c.source for c in can.nb.cells]
    assert sources.index("def helper(x):\n    return x") < sources.index("def add(a, b):\n    return helper(a) + b")
    assert sources.index(_by_id(template, "setup").source) < sources.index("import builtins")
    assert can.unanswered == ["mean"]  # a deleted answer is graded as the stub
    assert _by_id(can.nb, "mean").source == _by_id(template, "mean").source
    nbformat.validate(can.nb)


def test_unreadable_submissions_are_reported(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text('{"cells": [')
    with pytest.raises(InvalidSubmission, match="not valid notebook JSON"):
        read_submission(bad)
    bad.write_text('{"hello": 1}')
    with pytest.raises(InvalidSubmission, match="no list of cells"):
        read_submission(bad)
    with pytest.raises(InvalidSubmission, match="cannot read"):
        read_submission(tmp_path / "missing.ipynb")


# ------------------------------------------------------------------------------------------ outputs

def _test_cell(outputs) -> nbformat.NotebookNode:
    cell = copy.deepcopy(_by_id(fc.source_notebook(), "test_add"))
    cell.outputs = outputs
    return cell


def test_stderr_and_execute_results_do_not_score():
    from nbgrader.utils import determine_grade

    warn = new_output("stream", name="stderr", text="UserWarning: something\n")
    forged = new_output("execute_result", data={"text/plain": "1.0"}, execution_count=3)
    error = new_output("error", ename="AssertionError", evalue="add(1, 2) should be 3", traceback=["..."])
    assert determine_grade(_test_cell([warn]))[0] == 0  # what nbgrader alone does to a warning
    assert determine_grade(_test_cell([forged, error]))[0] == 1.0  # ... and to a forged result
    cell = _test_cell([warn])
    normalise_test_cell(cell)
    assert determine_grade(cell)[0] == 1.0 and cell.outputs[0].name == "stdout"
    cell = _test_cell([forged, error])
    normalise_test_cell(cell)
    assert determine_grade(cell)[0] == 0.0


def test_tracebacks_keep_the_message_and_student_frames_only():
    hidden = "for a_, b_, want_ in HIDDEN_CASES_ADD_7F3A:"
    tb = ["\x1b[31m----\x1b[39m", "AssertionError   Traceback (most recent call last)",
          f"\x1b[36mCell In[7], line 4\x1b[39m\n----> 4 {hidden}\n",
          "Cell In[5], line 2, in add\n----> 2 return a - b\n",
          "AssertionError: add must also work"]
    out = new_output("error", ename="AssertionError", evalue="add must also work", traceback=tb)
    curate_error(out, student_counts={5}, secret={hidden})
    text = "\n".join(out.traceback)
    assert hidden not in text and "Cell In[7]" not in text
    assert "Cell In[5]" in text and out.traceback[-1].endswith("add must also work")
    # an error message that repeats a hidden line (code that printed `In`) loses its message
    out = new_output("error", ename="ValueError", evalue=f"x\n{hidden}\n", traceback=tb[:1] + tb[-1:])
    curate_error(out, student_counts=set(), secret={hidden})
    assert hidden not in json.dumps(out)


def test_leak_scanner_sees_through_html():
    template = fc.source_notebook()
    secret = hidden_lines(template)
    assert "HIDDEN_CASES_ADD_7F3A = [(2.5, 0.25, 2.75), (-7, 7, 0)]" in secret
    assert not any(line in strip_hidden(c.source) for c in template.cells for line in secret)
    page = ('<span class="n">HIDDEN_CASES_ADD_7F3A</span> <span class="o">=</span> [(<span class="mf">2.5</span>, '
            '0.25, 2.75), (-7, 7, 0)]')
    assert find_leaks(html_text(page), secret) == ["HIDDEN_CASES_ADD_7F3A = [(2.5, 0.25, 2.75), (-7, 7, 0)]"]
    assert find_leaks("nothing to see", secret) == []


# ------------------------------------------------------------------------------------------ collecting

def _course(tmp_path) -> Course:
    return Course.load(fc.make_course(tmp_path, ("fx_basic",)))


def test_collect_zip_is_defensive(tmp_path):
    course = _course(tmp_path)
    buf = io.BytesIO()
    nb = json.dumps(fc.source_notebook())
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handins/alice/fx_basic/fx_basic.ipynb", nb)  # inside one enclosing folder
        zf.writestr("handins/alice/fx_basic/seqlib/grading/checks.py", "print('pwned')")  # would shadow a module
        zf.writestr("handins/bob/fx_basic/notes.txt", "forgot the notebook")
        zf.writestr("handins/../../escape.ipynb", nb)
        zf.writestr("__MACOSX/handins/._alice", "junk")
        link = zipfile.ZipInfo("handins/carol/fx_basic/fx_basic.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    (tmp_path / "class.zip").write_bytes(buf.getvalue())
    handins, problems = collect(course, tmp_path / "class.zip")
    assert {h.key: h.notebooks for h in handins} == {"alice/fx_basic": ["fx_basic"], "bob/fx_basic": []}
    assert not (tmp_path / "escape.ipynb").exists() and not (tmp_path.parent / "escape.ipynb").exists()
    assert not (course.submitted / "alice" / "fx_basic" / "seqlib").exists()
    assert sorted(p.name for p in (course.submitted / "alice" / "fx_basic").iterdir()) == ["fx_basic.ipynb"]
    assert problems


def test_collect_replaces_older_handins_and_reports_strays(tmp_path):
    course = _course(tmp_path)
    src = tmp_path / "in"
    (src / "alice" / "fx_basic").mkdir(parents=True)
    (src / "alice" / "fx_basic" / "fx_basic.ipynb").write_text("{}")
    (src / "alice" / "a_typo").mkdir()
    (src / "bad id!").mkdir()
    collect(course, src)
    (course.submitted / "alice" / "fx_basic" / "old.ipynb").write_text("{}")
    handins, problems = collect(course, src)
    assert [h.key for h in handins] == ["alice/fx_basic"]
    assert not (course.submitted / "alice" / "fx_basic" / "old.ipynb").exists()
    assert any("unknown assignment 'a_typo'" in p for p in problems)
    assert any("not a valid student id" in p for p in problems)
    assert [h.key for h in scan(course.submitted, {"fx_basic"})[0]] == ["alice/fx_basic"]


def test_markdown_and_plain_cells_roles():
    template = _template()
    template.cells.insert(2, new_markdown_cell("more words"))
    sub = _released(template)
    sub.cells.insert(3, new_markdown_cell("my own notes"))
    can = canonicalize(sub, template)
    assert can.roles.count("test") == 4 and can.roles.count("solution") == 3 and can.roles.count("locked") == 1
    assert len(can.roles) == len(can.nb.cells)
    markdown = sorted(c.source for c in can.nb.cells if c.cell_type == "markdown")
    assert markdown == sorted([c.source for c in template.cells if c.cell_type == "markdown"] + ["my own notes"])
