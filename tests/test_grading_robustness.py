"""Nothing in the gradebook is lost or half-written, re-grading is safe and reproducible, a release with a broken
assignment is refused, and the ``seqcourse`` commands work on a graded course."""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "grading"))
import fixture_course as fc  # noqa: E402
from graded import SANDBOX  # noqa: E402

from seqcourse.autograde import autograde  # noqa: E402
from seqcourse.cli import check_expected, main  # noqa: E402
from seqcourse.course import (
    Course,  # noqa: E402
    PipelineError,  # noqa: E402
)
from seqcourse.gradebook import check_gradebook, record_result, scores, table_counts  # noqa: E402
from seqcourse.release import release  # noqa: E402
from seqcourse.report import CSV_COLUMNS  # noqa: E402
from seqcourse.runner import Task, run_tasks  # noqa: E402

pytestmark = pytest.mark.course

TIMEOUT = 6.0


def _copy(graded_course, dest: Path) -> Course:
    """An independent copy of the session's graded course (its config locates everything from its own folder)."""
    shutil.copytree(graded_course.course.root, dest / "course")
    shutil.copytree(graded_course.course.source, dest / "exercises")
    return Course.load(dest / "course")


def _result(course: Course, student: str, assignment: str = "fx_basic") -> dict:
    return json.loads((course.autograded / student / assignment / "grading.json").read_text())


# ------------------------------------------------------------------------------------------ transactions

@pytest.mark.slow
def test_a_result_that_fails_half_way_changes_nothing(graded_course, tmp_path):
    course = _copy(graded_course, tmp_path)
    before, counts = scores(course), table_counts(course)
    for student in ("reference", "a-new-student"):
        result = copy.deepcopy(_result(course, "blank"))
        result["student"] = student
        cells = result["notebooks"]["fx_basic"]["cells"]
        for cell in cells.values():
            cell["score"] = 0.5
        cells[sorted(cells)[-1]]["score"] = "explodes when written"  # the last write of the transaction fails
        with pytest.raises(Exception):  # noqa: B017 - whatever the database raises
            record_result(course, result)
    assert scores(course) == before  # the previous grades remain, the new student was not half-created
    assert table_counts(course) == counts
    assert check_gradebook(course) == []


CRASH_MID_TRANSACTION = """
import json, os, sys
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from seqcourse.course import Course
from seqcourse.gradebook import record_result

@event.listens_for(Engine, "connect")
def tiny_cache(dbapi_connection, record):
    dbapi_connection.execute("PRAGMA cache_size = 1")  # sqlite must spill changed pages to the file early

def crash(self):
    self.flush()  # every row of the submission is written ...
    # ... plus enough other changes in the same transaction that sqlite must spill pages into the database
    # file (a big batch would), and the process dies before the commit
    self.execute(text("UPDATE comment SET manual_comment = hex(randomblob(3000))"))
    self.flush()
    os._exit(9)

Session.commit = crash
record_result(Course.load(sys.argv[1]), json.loads(sys.argv[2]))
"""


@pytest.mark.slow
def test_a_grader_killed_mid_transaction_leaves_the_previous_grades(graded_course, tmp_path):
    course = _copy(graded_course, tmp_path)
    before, counts = scores(course), table_counts(course)
    result = _result(course, "blank")
    for cell in result["notebooks"]["fx_basic"]["cells"].values():
        cell["score"] = cell["max_score"]
    result["student"] = "reference-twin"
    for student in ("blank", "reference-twin"):  # an update and a new student
        result["student"] = student
        run = subprocess.run([sys.executable, "-c", CRASH_MID_TRANSACTION, str(course.root), json.dumps(result)])
        assert run.returncode == 9
        assert Path(f"{course.db_path}-journal").exists()  # sqlite's hot journal: the crash was mid-transaction
        assert check_gradebook(course) == []  # the reader rolls the journal back
        assert scores(course) == before and table_counts(course) == counts


@pytest.fixture(scope="module")
def regraded(graded_course, tmp_path_factory):
    """Re-grade part of the class on a copy; recording one student's result fails half-way on purpose."""
    course = _copy(graded_course, tmp_path_factory.mktemp("regrade"))
    before, counts = scores(course), table_counts(course)

    def record(course, result):
        if result["student"] == "blank":
            result = copy.deepcopy(result)
            cells = result["notebooks"]["fx_basic"]["cells"]
            for cell in cells.values():
                cell["score"] = 1.0
            cells[sorted(cells)[-1]]["score"] = "explodes when written"
        record_result(course, result)

    students = ["reference", "blank", "random", "os-exit", "stderr-noise"]
    report = autograde(course, graded_course.handins, assignments=["fx_basic"], students=students,
                       jobs=2, cell_timeout=TIMEOUT, budget=90, progress=False, out=lambda s: None,
                       record=record, sandbox=SANDBOX)
    return course, before, counts, report


@pytest.mark.slow
def test_one_submission_that_cannot_be_recorded_stops_nothing(regraded):
    course, before, _, report = regraded
    recorded = {o.student: o.recorded for o in report.outcomes}
    assert recorded == {"reference": True, "blank": False, "random": True, "os-exit": True, "stderr-noise": True}
    assert any("blank/fx_basic: could not be recorded" in p for p in report.problems)
    assert scores(course)[("blank", "fx_basic")] == before[("blank", "fx_basic")]
    assert check_gradebook(course) == []


@pytest.mark.slow
def test_regrading_is_idempotent_and_reproducible(regraded):
    course, before, counts, _ = regraded
    after = scores(course)
    for student in ("reference", "random", "os-exit", "stderr-noise"):
        assert after[(student, "fx_basic")] == before[(student, "fx_basic")], student
    assert table_counts(course) == counts  # no duplicate row anywhere


@pytest.mark.slow
def test_killing_the_grader_mid_batch_loses_nothing(tmp_path):
    course = Course.load(fc.make_course(tmp_path, ("fx_basic",)))
    release(course, validate=False, out=lambda s: None)
    students = ["reference", "blank", "edit-test", "points"]
    handins = fc.make_class(course.release, tmp_path / "handins", {"fx_basic": students})
    cmd = [str(Path(sys.executable).with_name("seqcourse")), "--course", str(course.root), "autograde",
           "--submissions", str(handins), "--jobs", "2", "--timeout", str(TIMEOUT), "--no-progress"] \
        + ([] if SANDBOX else ["--no-sandbox"])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if course.db_path.exists() and scores(course):
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the grader and its workers, whatever they were doing
        proc.wait()
    partial = scores(course)
    assert check_gradebook(course) == []
    for (student, _), cells in partial.items():  # whatever was recorded is whole
        assert set(cells) == set(fc.EXPECTED["fx_basic"][student])
        assert all(v is not None for v in cells.values())
    # running the batch again completes it, without duplicates
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=300).returncode == 0
    final = scores(course)
    assert {s: final[(s, "fx_basic")] for s in students} == {s: fc.EXPECTED["fx_basic"][s] for s in students}
    assert table_counts(course)["submitted_assignment"] == len(students)
    assert check_gradebook(course) == []


# ------------------------------------------------------------------------------------------ release

def _fake_result(student: str, score: float) -> dict:
    cells = {gid: {"kind": "test", "score": score, "max_score": float(points), "status": "passed", "message": "",
                   "needs_manual_grade": False} for gid, (points, _) in fc.TESTS.items()}
    return {"student": student, "assignment": "fx_basic", "notebooks": {"fx_basic": {
        "status": "graded", "cells": cells, "comments": {}, "flags": []}}}


def test_changed_cells_need_an_explicit_reset_of_other_peoples_grades(tmp_path):
    course = Course.load(fc.make_course(tmp_path, ("fx_basic",)))
    release(course, validate=False, out=lambda s: None)
    record_result(course, _fake_result("alice", 1.0))
    record_result(course, _fake_result("bob", 0.0))
    path = course.source_notebook("fx_basic", "fx_basic")
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_data_file"]
    nbformat.write(nb, path)
    with pytest.raises(PipelineError, match="--reset fx_basic"):
        release(course, validate=False, out=lambda s: None)
    with pytest.raises(PipelineError, match="bob"):  # the demo-class reset touches nobody else
        release(course, validate=False, out=lambda s: None, reset=["alice"])
    assert set(scores(course)) == {("alice", "fx_basic"), ("bob", "fx_basic")}
    release(course, validate=False, out=lambda s: None, reset=True)
    assert scores(course) == {} and check_gradebook(course) == []


@pytest.mark.slow
def test_release_refuses_an_assignment_that_is_not_checked_both_ways(tmp_path):
    course = Course.load(fc.make_course(tmp_path, ("fx_basic",)))
    path = course.source_notebook("fx_basic", "fx_basic")
    nb = nbformat.read(path, as_version=4)
    mean = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "mean")
    mean.source = mean.source.replace("sum(xs) / len(xs)", "sum(xs)")  # the solution is wrong
    meta = copy.deepcopy(next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add")
                         .metadata)
    meta["nbgrader"]["grade_id"] = "test_free_point"
    nb.cells.append(nbformat.v4.new_code_cell("assert True", metadata=meta))  # passes on the stubs
    nbformat.write(nb, path)
    with pytest.raises(PipelineError) as err:
        release(course, jobs=2, cell_timeout=TIMEOUT, progress=False, out=lambda s: None)
    message = str(err.value)
    assert "source fx_basic/fx_basic: 2 test cell(s) fail with the solutions" in message
    assert "release fx_basic/fx_basic: 1 test cell(s) pass with the stubs" in message


# ------------------------------------------------------------------------------------------ commands

@pytest.mark.slow
def test_grades_report_and_check_commands(graded_course, tmp_path, capsys):
    course = _copy(graded_course, tmp_path)
    assert main(["--course", str(course.root), "grades"]) == 0
    table = capsys.readouterr().out
    with open(course.grades_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == CSV_COLUMNS  # nbgrader's export format
    reference = {r["assignment"]: float(r["score"]) for r in rows if r["student_id"] == "reference"}
    assert reference == {"fx_basic": 5.0, "fx_torch": 2.0}
    assert "reference" in table and "7/7" in table
    assert main(["--course", str(course.root), "report"]) == 0
    report = (course.report_dir / "report.md").read_text()
    assert "## fx_basic" in report and "test_add" in report and (course.report_dir / "fx_basic.png").stat().st_size
    assert main(["--course", str(course.root), "check"]) == 0
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"reference": {"fx_basic": 5, "fx_torch": {"test_attention": 2}},
                                    "blank": {"fx_basic": {"min": 0, "max": 0}}, "points": {"fx_basic": 4}}))
    assert check_expected(course, expected) == ["points/fx_basic: expected 4, got 2"]


def test_runner_reports_progress_and_survives_empty_jobs(capsys):
    seen = []
    run_tasks([Task(f"t{i}", {"kind": "feedback", "pages": []}, f"job {i}") for i in range(3)], 2,
              lambda task, result: seen.append((task.key, result["pages"])), progress=True, desc="testing")
    assert sorted(seen) == [("t0", []), ("t1", []), ("t2", [])]
    assert "testing" in capsys.readouterr().err
