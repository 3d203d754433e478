"""The gradebook has one writer: the parent process, one transaction per submission.

sqlite does not like concurrent writers, and a grading worker may die at any moment (a student's code can kill
it). So workers only ever *read* a snapshot of the gradebook (:func:`snapshot`), and the parent records each
worker's result with :func:`record_result`, which writes the student, the submission and every grade and comment
of it in a single transaction: it either lands whole or not at all (a failure rolls it back, and the previous
grades stay). Re-recording a submission updates its rows in place (no duplicates), and keeps manual scores as
nbgrader does (a cell with a manual score is marked for review instead of overwritten).

Next to nbgrader's tables, ``seqcourse_grading`` records for every submission how it was last graded: in which
sandbox (``NULL``: graded without one) and by which grader version.

No kernel can reach the gradebook (it is outside the sandbox), and nothing here writes a manual score: those come
from the formgrader only. :func:`check_gradebook` lists any inconsistency (used by the tests and by
``seqcourse autograde`` at the end), manual scores above a cell's points included.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from .course import Course


def _alembic_head() -> str:
    """The schema revision nbgrader's migrations end at (read in-process: nbgrader itself runs the ``alembic``
    program for this, which takes seconds)."""
    import nbgrader
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    base = Path(nbgrader.__file__).parent
    cfg = Config(str(base / "alembic.ini"))
    cfg.set_main_option("script_location", str(base / "alembic"))
    (head,) = ScriptDirectory.from_config(cfg).get_heads()
    return head


GRADING_TABLE = ("CREATE TABLE IF NOT EXISTS seqcourse_grading (assignment VARCHAR(128) NOT NULL, "
                 "student VARCHAR(128) NOT NULL, sandbox TEXT, grader_version VARCHAR(32), "
                 "PRIMARY KEY (assignment, student))")


def ensure_gradebook(course: Course) -> None:
    """Create the course's gradebook (nbgrader's schema, stamped with its migration head) if it does not exist."""
    from nbgrader.api import Base
    from sqlalchemy import create_engine, text

    path = course.db_path
    if path.exists():
        con = sqlite3.connect(path)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            stamped = "alembic_version" in tables and con.execute(
                "SELECT COUNT(*) FROM alembic_version").fetchone()[0] > 0
            if stamped and "seqcourse_grading" not in tables:
                with con:
                    con.execute(GRADING_TABLE)
        finally:
            con.close()
        if stamped:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(course.db_url)
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as conn:
            conn.execute(text(GRADING_TABLE))
            conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)"))
            if conn.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar() == 0:
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": _alembic_head()})
    finally:
        engine.dispose()


def snapshot(course: Course, dest: Path) -> str:
    """Copy the gradebook to ``dest`` (consistently, with sqlite's backup API) and return a read-only URL to it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(course.db_path)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    os.chmod(dest, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return f"sqlite:///file:{dest}?mode=ro&uri=true"


def _ensure_structure(gb, submission) -> None:
    """Give ``submission`` a notebook row for every notebook, a grade for every graded cell and a comment for every
    answer cell of its assignment (also after a re-release added cells), as ``Gradebook.add_submission`` does."""
    from nbgrader.api import Comment, Grade, SubmittedNotebook

    have = {nb.notebook.name: nb for nb in submission.notebooks}
    for notebook in submission.assignment.notebooks:
        snb = have.get(notebook.name)
        if snb is None:
            snb = SubmittedNotebook(notebook=notebook, assignment=submission)
            gb.db.add(snb)
        graded = {g.cell_id for g in snb.grades}
        commented = {c.cell_id for c in snb.comments}
        for cell in list(notebook.grade_cells) + list(notebook.task_cells):
            if cell.id not in graded:
                gb.db.add(Grade(cell_id=cell.id, notebook=snb))
                graded.add(cell.id)
        for cell in list(notebook.solution_cells) + list(notebook.task_cells):
            if cell.id not in commented:
                gb.db.add(Comment(cell_id=cell.id, notebook=snb))
                commented.add(cell.id)
    gb.db.flush()


def record_result(course: Course, result: dict) -> None:
    """Write one worker result (see :mod:`seqcourse.worker`) into the gradebook, in one transaction."""
    from nbgrader.api import MissingEntry, Student, SubmittedAssignment
    from nbgrader.utils import parse_utc
    from sqlalchemy import text

    student_id, assignment_id = result["student"], result["assignment"]
    with course.gradebook() as gb:
        db = gb.db
        try:
            student = db.get(Student, student_id)
            if student is None:
                student = Student(id=student_id)
                db.add(student)
            assignment = gb.find_assignment(assignment_id)
            try:
                submission = gb.find_submission(assignment_id, student_id)
            except MissingEntry:
                submission = SubmittedAssignment(assignment=assignment, student=student)
                db.add(submission)
            if result.get("timestamp"):
                submission.timestamp = parse_utc(result["timestamp"])
            db.flush()
            _ensure_structure(gb, submission)
            for snb in submission.notebooks:
                res = result["notebooks"].get(snb.notebook.name) or {"status": "missing", "cells": {},
                                                                      "comments": {}, "flags": []}
                snb.flagged = bool(res.get("flags"))
                for grade in snb.grades:
                    info = res["cells"].get(grade.cell.name)
                    score = float(info["score"]) if info and info.get("score") is not None else None
                    if info is None:  # nothing ran (grader error): no points, nothing to review
                        score = 0.0
                    grade.auto_score = score
                    grade.needs_manual_grade = bool(grade.manual_score is not None or score is None
                                                    or (info or {}).get("needs_manual_grade", False))
                for comment in snb.comments:
                    comment.auto_comment = res.get("comments", {}).get(comment.cell.name)
            db.execute(text(GRADING_TABLE))
            db.execute(text("INSERT INTO seqcourse_grading (assignment, student, sandbox, grader_version) "
                            "VALUES (:a, :s, :box, :v) ON CONFLICT (assignment, student) DO UPDATE SET "
                            "sandbox = excluded.sandbox, grader_version = excluded.grader_version"),
                       {"a": assignment_id, "s": student_id, "box": result.get("sandbox"),
                        "v": str(result.get("grader_version", ""))})
            db.commit()
        except BaseException:
            db.rollback()
            raise
        finally:
            gb.engine.dispose()


def _connect(course: Course) -> sqlite3.Connection:
    """A connection for reading. Not ``mode=ro``: after a crash mid-transaction sqlite must be able to roll back
    the hot journal it left, which takes write access (only SELECTs are run)."""
    if not course.db_path.is_file():
        raise FileNotFoundError(f"no gradebook yet: {course.db_path}")
    return sqlite3.connect(course.db_path, timeout=60)


def check_gradebook(course: Course) -> list[str]:
    """Inconsistencies in the gradebook (empty when it is sound): sqlite integrity, duplicate or half-written
    submissions (a graded cell without a score that does not ask for manual grading), missing grade rows."""
    problems = []
    con = _connect(course)
    try:
        (ok,) = con.execute("PRAGMA integrity_check").fetchone()
        if ok != "ok":
            problems.append(f"sqlite integrity check: {ok}")
        for a, s, n in con.execute("SELECT assignment_id, student_id, COUNT(*) FROM submitted_assignment "
                                   "GROUP BY assignment_id, student_id HAVING COUNT(*) > 1"):
            problems.append(f"{n} submissions of assignment {a} by {s}")
        for nb_id, cell_id, n in con.execute("SELECT notebook_id, cell_id, COUNT(*) FROM grade "
                                             "GROUP BY notebook_id, cell_id HAVING COUNT(*) > 1"):
            problems.append(f"{n} grades for cell {cell_id} of submitted notebook {nb_id}")
        rows = con.execute(
            "SELECT st.id, a.name, n.name, bc.name FROM grade g "
            "JOIN submitted_notebook sn ON g.notebook_id = sn.id "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
            "JOIN assignment a ON sa.assignment_id = a.id JOIN student st ON sa.student_id = st.id "
            "JOIN notebook n ON sn.notebook_id = n.id JOIN base_cell bc ON g.cell_id = bc.id "
            "WHERE g.auto_score IS NULL AND g.manual_score IS NULL AND g.needs_manual_grade = 0")
        for student, assignment, notebook, cell in rows:
            problems.append(f"{student}/{assignment}/{notebook}: cell {cell} has no score")
        missing = con.execute(
            "SELECT sa.student_id, a.name, n.name, bc.name FROM submitted_notebook sn "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN assignment a ON sa.assignment_id = a.id "
            "JOIN notebook n ON sn.notebook_id = n.id JOIN base_cell bc ON bc.notebook_id = n.id "
            "JOIN grade_cells gc ON gc.id = bc.id "
            "WHERE NOT EXISTS (SELECT 1 FROM grade g WHERE g.notebook_id = sn.id AND g.cell_id = gc.id)")
        for student, assignment, notebook, cell in missing:
            problems.append(f"{student}/{assignment}/{notebook}: no grade row for cell {cell}")
        above = con.execute(
            "SELECT sa.student_id, a.name, bc.name, g.manual_score, gc.max_score FROM grade g "
            "JOIN submitted_notebook sn ON g.notebook_id = sn.id "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN assignment a ON sa.assignment_id = a.id "
            "JOIN base_cell bc ON g.cell_id = bc.id JOIN grade_cells gc ON gc.id = g.cell_id "
            "WHERE g.manual_score > gc.max_score")
        for student, assignment, cell, manual, max_score in above:
            problems.append(f"{student}/{assignment}: cell {cell} has a manual score of {manual:g} above its "
                            f"{max_score:g} points")
    finally:
        con.close()
    return problems


def scores(course: Course) -> dict[tuple[str, str], dict[str, float | None]]:
    """``{(student, assignment): {grade_id: score}}`` for every recorded submission (manual score wins)."""
    con = _connect(course)
    try:
        out: dict = {}
        for student, assignment, cell, auto, manual in con.execute(
                "SELECT sa.student_id, a.name, bc.name, g.auto_score, g.manual_score FROM grade g "
                "JOIN submitted_notebook sn ON g.notebook_id = sn.id "
                "JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
                "JOIN assignment a ON sa.assignment_id = a.id JOIN base_cell bc ON g.cell_id = bc.id"):
            out.setdefault((student, assignment), {})[cell] = manual if manual is not None else auto
        return out
    finally:
        con.close()


def forget_gradings(course: Course, assignment: str, students: list[str]) -> None:
    """Drop the ``seqcourse_grading`` rows of submissions that were deleted."""
    con = sqlite3.connect(course.db_path, timeout=60)
    try:
        with con:
            con.execute(GRADING_TABLE)
            con.executemany("DELETE FROM seqcourse_grading WHERE assignment = ? AND student = ?",
                            [(assignment, s) for s in students])
    finally:
        con.close()


def sandboxes(course: Course) -> dict[tuple[str, str], str | None]:
    """``{(student, assignment): sandbox}`` of every graded submission (``None``: graded without a sandbox)."""
    con = _connect(course)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'seqcourse_grading'").fetchone():
            return {}
        return {(s, a): box for a, s, box in con.execute("SELECT assignment, student, sandbox FROM seqcourse_grading")}
    finally:
        con.close()


def table_counts(course: Course) -> dict[str, int]:
    """Row count of every table (the idempotency test compares two runs)."""
    con = _connect(course)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {name: con.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}
    finally:
        con.close()
