"""The grading pipeline end to end on the fixture course (released, graded with two workers, feedback written once
per session by the ``graded_course`` fixture): what each hand-in scores, that nothing leaks, that tampering gains
nothing, and that broken hand-ins do not stop the batch."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "grading"))
import fixture_course as fc  # noqa: E402

from seqcourse.course import grading_template  # noqa: E402
from seqcourse.gradebook import check_gradebook, scores  # noqa: E402
from seqcourse.sanitize import find_leaks, hidden_lines, html_text, notebook_text  # noqa: E402

pytestmark = [pytest.mark.course, pytest.mark.slow]

CASES = [(a, s) for a, roster in fc.EXPECTED.items() for s, expected in roster.items() if expected is not None]


@pytest.mark.parametrize(("assignment", "student"), CASES, ids=[f"{a}-{s}" for a, s in CASES])
def test_every_handin_gets_exactly_its_expected_score(graded_course, assignment, student):
    recorded = scores(graded_course.course)[(student, assignment)]
    assert recorded == fc.EXPECTED[assignment][student]


def test_the_whole_class_is_recorded_and_the_gradebook_is_consistent(graded_course):
    recorded = scores(graded_course.course)
    for assignment, roster in fc.EXPECTED.items():
        for student in roster:
            assert (student, assignment) in recorded, f"{student}/{assignment} was lost"
    assert check_gradebook(graded_course.course) == []
    assert not [p for p in graded_course.report.problems if "recorded" in p or "gradebook" in p]


def test_max_scores_come_from_the_source_not_the_handin(graded_course):
    con = sqlite3.connect(graded_course.course.db_path)
    rows = dict(con.execute("SELECT base_cell.name, grade_cells.max_score FROM grade_cells "
                            "JOIN base_cell ON base_cell.id = grade_cells.id "
                            "JOIN notebook ON base_cell.notebook_id = notebook.id WHERE notebook.name = 'fx_basic'"))
    assert rows == {"test_add": 1.0, "test_mean": 2.0, "test_countdown": 1.0, "test_data_file": 1.0}
    outcome = graded_course.outcome("points", "fx_basic")  # this student set test_add's points to 100
    assert (outcome.score, outcome.max_score) == (2.0, 5.0)


def test_broken_handins_are_reported_per_student(graded_course):
    problems = {s: " ".join(graded_course.outcome(s, "fx_basic").problems)
                for s in ("timeout-loop", "sigint-loop", "os-exit", "kill-grader", "invalid-json", "missing-file")}
    assert "TimeoutError" in problems["timeout-loop"]
    assert "restarted" in problems["sigint-loop"]
    assert "KernelDied" in problems["os-exit"]
    if graded_course.report.sandbox:  # the kernel cannot see or signal the grader: it loses only its own cell
        assert scores(graded_course.course)[("kill-grader", "fx_basic")] == fc._score(test_add=0)
    else:  # without a sandbox it kills its grading process: that costs this hand-in only
        assert "killed by signal SIGKILL" in problems["kill-grader"]
    assert "not valid notebook JSON" in problems["invalid-json"]
    assert "no fx_basic.ipynb was handed in" in problems["missing-file"]
    assert graded_course.outcome("reference", "fx_basic").problems == []


def test_tampering_is_undone_and_flagged_for_review(graded_course):
    con = sqlite3.connect(graded_course.course.db_path)
    flagged = {s for (s,) in con.execute(
        "SELECT sa.student_id FROM submitted_notebook sn JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
        "WHERE sn.flagged = 1")}
    assert {"rebind-helpers", "transformer", "forge-partial", "fake-checks", "patch-softmax",
            "patch-comparisons"} <= flagged
    assert not {"reference", "blank", "plots", "stderr-noise"} & flagged
    flags = " ".join(graded_course.outcome("fake-checks", "fx_torch").flags)
    assert "undid tampering" in flags and "checks" in flags


def _autograded(gc, student, assignment) -> nbformat.NotebookNode:
    return nbformat.read(gc.course.autograded / student / assignment / f"{assignment}.ipynb", as_version=4)


def test_test_cells_are_graded_as_released_with_their_hidden_tests(graded_course):
    template = grading_template(graded_course.course, "fx_basic", "fx_basic")
    for student in ("edit-test", "delete-test", "moved-id", "flags"):
        nb = _autograded(graded_course, student, "fx_basic")
        tests = [(c.metadata.nbgrader.grade_id, c.source) for c in nb.cells
                 if c.metadata.get("nbgrader", {}).get("grade")]
        assert tests == [(c.metadata.nbgrader.grade_id, c.source) for c in template.cells
                         if c.metadata.get("nbgrader", {}).get("grade")], student


def test_no_hidden_test_in_any_feedback_page(graded_course):
    course = graded_course.course
    assert graded_course.feedback_error is None
    pages = sorted(course.feedback.rglob("*.html"))
    expected = {f"{s}/{a}" for a, roster in fc.EXPECTED.items() for s in roster}
    assert {f"{p.parent.parent.name}/{p.parent.name}" for p in pages} == expected
    for assignment in fc.EXPECTED:
        secret = hidden_lines(grading_template(course, assignment, assignment))
        assert secret
        # the autograded notebooks (instructor side) do hold the hidden tests: the feedback step removes them
        assert find_leaks(notebook_text(_autograded(graded_course, "reference", assignment)), secret)
        for page in course.feedback.glob(f"*/{assignment}/*.html"):
            body = page.read_text()
            assert find_leaks(html_text(body), secret) == [], page
            assert "BEGIN HIDDEN TESTS" not in body


def test_failure_messages_are_the_curated_ones(graded_course):
    page = html_text((graded_course.course.feedback / "edit-test" / "fx_basic" / "fx_basic.html").read_text())
    assert "AssertionError: add(1, 2) should be 3" in page
    assert "Traceback (most recent call last)" not in page and "---->" not in page
    torch_page = html_text((graded_course.course.feedback / "delegate-torch" / "fx_torch" / "fx_torch.html")
                           .read_text())
    assert "scaled_dot_product_attention" in torch_page and "earns no points" in torch_page
    # in the autograded notebooks too, a failed test's traceback is the message plus the student's own frames
    for student in ("edit-test", "exfiltrate", "os-exit", "patch-softmax"):
        for assignment in fc.EXPECTED:
            path = graded_course.course.autograded / student / assignment / f"{assignment}.ipynb"
            if not path.is_file():
                continue
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
                    for out in cell.outputs:
                        if out.output_type == "error":
                            assert "Traceback (most recent call last)" not in "".join(out.traceback)
                            assert not find_leaks("\n".join(out.traceback), hidden_lines(
                                grading_template(graded_course.course, assignment, assignment)))


def test_stderr_never_zeroes_a_test(graded_course):
    assert scores(graded_course.course)[("stderr-noise", "fx_basic")]["test_add"] == 1.0
    nb = _autograded(graded_course, "stderr-noise", "fx_basic")
    test_add = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add")
    streams = [o for o in test_add.outputs if o.output_type == "stream"]
    assert streams and all(o.name == "stdout" for o in streams)
    assert "debugging add" in "".join(o.text for o in streams)


def test_release_checked_both_ways(graded_course):
    lines = "\n".join(graded_course.release_report.lines)
    for assignment in fc.EXPECTED:
        assert f"source {assignment}/{assignment}: the solutions pass every test" in lines
        assert f"release {assignment}/{assignment}: every test fails on the stubs" in lines
        released = graded_course.course.release_notebook(assignment, assignment)
        secret = hidden_lines(grading_template(graded_course.course, assignment, assignment))
        assert find_leaks(released.read_text() + notebook_text(nbformat.read(released, as_version=4)), secret) == []


def test_grading_records_json_for_every_handin(graded_course):
    for assignment, roster in fc.EXPECTED.items():
        for student in roster:
            record = json.loads((graded_course.course.autograded / student / assignment / "grading.json").read_text())
            assert set(record["notebooks"]) == {assignment}
