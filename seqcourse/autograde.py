"""``seqcourse autograde``: grade every hand-in, ``jobs`` at a time, and record the results.

Every hand-in is graded in its own worker process (:mod:`seqcourse.runner`, :mod:`seqcourse.worker`), its
kernels in the sandbox (:mod:`seqcourse.sandbox`): without a working sandbox ``autograde`` refuses to start and
says how to get one, unless asked to grade without (``sandbox=False``, ``--no-sandbox``), which it then says at
the start and the end of the run and records with every result. This process is the only one that writes the
gradebook, one transaction per submission (:mod:`seqcourse.gradebook`), as each result arrives, so an
interrupted batch keeps everything recorded so far.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .collect import collect
from .course import DEFAULT_BUDGET, DEFAULT_CELL_TIMEOUT, Course, PipelineError, grading_template
from .gradebook import check_gradebook, ensure_gradebook, record_result, snapshot
from .paths import jupyter_env
from .release import release
from .runner import Task, default_jobs, run_tasks
from .sandbox import DEFAULT_MEMORY, Sandbox, probe

#: the flag every result graded without a sandbox carries (grading.json, the gradebook's review flag)
UNSANDBOXED = "graded without a sandbox"
NO_SANDBOX_WARNING = ("WARNING: grading WITHOUT a sandbox (--no-sandbox): student code runs with your rights and can "
                      "read the solutions, change the gradebook and reach the network; every result is marked "
                      f"'{UNSANDBOXED}'")


@dataclass
class Outcome:
    """The grading of one hand-in, as recorded."""

    student: str
    assignment: str
    score: float
    max_score: float
    problems: list[str]
    flags: list[str]
    notes: list[str]
    seconds: float
    recorded: bool


@dataclass
class BatchReport:
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sandbox: str | None = None  #: the sandbox every kernel ran in (its label); ``None``: graded without one

    def by_student(self) -> dict[str, list[Outcome]]:
        out: dict[str, list[Outcome]] = {}
        for o in sorted(self.outcomes, key=lambda o: (o.student, o.assignment)):
            out.setdefault(o.student, []).append(o)
        return out


def _released(course: Course, assignment: str) -> bool:
    from nbgrader.api import MissingEntry

    if not all(course.release_notebook(assignment, n).is_file() for n in course.notebooks(assignment)):
        return False
    with course.gradebook() as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            return False
    return True


def _failed_result(task: Task, message: str) -> dict:
    job = task.job
    notebooks = {}
    for name, spec in job["notebooks"].items():
        template = nbformat.read(spec["template"], as_version=4)
        cells = {}
        for cell in template.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                cells[meta["grade_id"]] = {"kind": "test", "score": 0.0, "max_score": float(meta.get("points", 0)),
                                           "status": "error", "message": message, "needs_manual_grade": False}
        notebooks[name] = {"status": "error", "message": message, "cells": cells, "comments": {}, "notes": [],
                           "flags": [message], "restarts": 0, "seconds": 0.0, "autograded": None}
    sandbox = Sandbox.from_job(job.get("sandbox"))
    return {"kind": "grade", "student": job["student"], "assignment": job["assignment"], "notebooks": notebooks,
            "timestamp": job.get("timestamp"), "extra_files": job.get("extra_files", []), "failed": True,
            "sandbox": sandbox.label() if sandbox else None}


def _place_files(course: Course, result: dict) -> None:
    """Move the autograded notebooks into ``autograded/<student>/<assignment>/`` (replacing older ones)."""
    dest = course.autograded / result["student"] / result["assignment"]
    dest.mkdir(parents=True, exist_ok=True)
    keep = set()
    for name, res in result["notebooks"].items():
        if res.get("autograded"):
            staging = dest / f".{name}.ipynb.incoming"
            shutil.copyfile(res["autograded"], staging)
            os.replace(staging, dest / f"{name}.ipynb")
            keep.add(f"{name}.ipynb")
            res["autograded"] = str(dest / f"{name}.ipynb")
    for stale in dest.glob("*.ipynb"):
        if stale.name not in keep:
            stale.unlink()
    staging = dest / ".grading.json.incoming"
    staging.write_text(json.dumps(result, indent=1, sort_keys=True))
    os.replace(staging, dest / "grading.json")


def _timestamp(folder: Path) -> str | None:
    path = folder / "timestamp.txt"
    if path.is_file():
        text = path.read_text().strip()
        return text or None
    return None


def _summarise(result: dict) -> tuple[float, float, list[str], list[str], list[str]]:
    score = max_score = 0.0
    problems, flags, notes = [], [], []
    for name, res in result["notebooks"].items():
        if res["status"] != "graded":
            problems.append(res["message"])
        problems += [p.split(";")[0] for p in res.get("lost", [])]
        for gid, cell in res["cells"].items():
            max_score += cell["max_score"]
            score += cell["score"] or 0.0
            if cell["status"] in ("timeout", "memory", "died", "not-run"):
                problems.append(f"{gid}: {cell['message'].split(';')[0]}")
        if res.get("restarts"):
            problems.append(f"{name}: Python restarted {res['restarts']}x")
        flags += res.get("flags", [])
        notes += res.get("notes", [])
    if result.get("extra_files"):
        notes.append(f"ignored files handed in: {', '.join(result['extra_files'][:5])}")
    return score, max_score, list(dict.fromkeys(problems)), list(dict.fromkeys(flags)), list(dict.fromkeys(notes))


def require_sandbox(memory: int = DEFAULT_MEMORY) -> Sandbox:
    """The sandbox of this machine with ``memory`` bytes per kernel; :class:`PipelineError` naming the fix when
    there is none."""
    check = probe(memory=memory)
    if not check.works:
        raise PipelineError(f"no working sandbox on this machine, so no grading: {check.problem}; {check.fix}")
    return check.sandbox


def autograde(course: Course, submissions: Path | str | None = None, *, assignments: list[str] | None = None,
              students: list[str] | None = None, jobs: int | None = None,
              cell_timeout: float = DEFAULT_CELL_TIMEOUT, budget: float = DEFAULT_BUDGET,
              progress: bool | None = None, out: Callable[[str], None] = print,
              record: Callable[[Course, dict], None] | None = None, sandbox: bool | Sandbox = True,
              memory: int = DEFAULT_MEMORY) -> BatchReport:
    """Collect ``submissions`` (a folder or zip; default ``course/submitted``) and grade every hand-in.

    Returns a :class:`BatchReport`; nothing a hand-in does makes this raise. ``record`` (default
    :func:`seqcourse.gradebook.record_result`) is how a result reaches the gradebook. ``sandbox``: ``True``
    grades every kernel in this machine's sandbox with ``memory`` bytes each and raises :class:`PipelineError`
    (naming the fix) when there is none; a :class:`Sandbox` grades in that one; ``False`` grades without one.
    """
    box = (sandbox if isinstance(sandbox, Sandbox) else require_sandbox(memory)) if sandbox else None
    if box is None:
        out(NO_SANDBOX_WARNING)
    jupyter_env(course.build)
    ensure_gradebook(course)
    record = record or record_result
    start = time.monotonic()
    report = BatchReport(sandbox=box.label() if box else None)
    handins, problems = collect(course, submissions or course.submitted)
    report.problems += problems
    handins = [h for h in handins if (not assignments or h.assignment in assignments)
               and (not students or h.student in students)]
    for assignment in sorted({h.assignment for h in handins}):
        if not _released(course, assignment):
            out(f"  {assignment} was not released yet: releasing it first")
            release(course, [assignment], validate=False, out=out)
    if not handins:
        report.problems.append("no hand-ins found")
        return report

    with tempfile.TemporaryDirectory(prefix="seqcourse-grade-") as tmp_name:
        tmp = Path(tmp_name)
        db_url = snapshot(course, tmp / "gradebook-snapshot.db")
        templates: dict[tuple[str, str], str] = {}
        with course.gradebook() as gb:
            for assignment in sorted({h.assignment for h in handins}):
                for notebook in course.notebooks(assignment):
                    path = tmp / "templates" / assignment / f"{notebook}.ipynb"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    nbformat.write(grading_template(course, assignment, notebook, gb), path)
                    templates[(assignment, notebook)] = str(path)
        (tmp / "scratch").mkdir()
        tasks = []
        for h in handins:
            names = course.notebooks(h.assignment)
            job = {
                "kind": "grade", "student": h.student, "assignment": h.assignment, "db_url": db_url,
                "course_id": course.course_id,
                "notebooks": {n: {"template": templates[(h.assignment, n)],
                                  "path": str(h.folder / f"{n}.ipynb") if n in h.notebooks else None}
                              for n in names},
                "data_files": [str(p) for p in course.data_files(h.assignment)],
                "data_dir": str(course.source / h.assignment),
                "outdir": str(tmp / "out" / h.student / h.assignment), "scratch": str(tmp / "scratch"),
                "log": str(tmp / f"{h.student}--{h.assignment}.log"),
                "cell_timeout": cell_timeout, "budget": budget, "timestamp": _timestamp(h.folder),
                "sandbox": box.as_job() if box else None,
                "extra_files": h.extra_files + [f"{n}.ipynb" for n in h.notebooks if n not in names],
            }
            tasks.append(Task(h.key, job, h.key, hard_timeout=budget * max(1, len(names)) + 120))

        def on_result(task: Task, result: dict) -> None:
            if result.get("failed") and "notebooks" not in result:
                result = _failed_result(task, result["message"])
            if not result.get("sandbox"):
                for res in result["notebooks"].values():
                    res["flags"] = list(res.get("flags", [])) + [UNSANDBOXED]
            recorded = True
            try:
                _place_files(course, result)
                record(course, result)
            except Exception as exc:  # noqa: BLE001 - one submission that cannot be recorded stops nothing
                recorded = False
                report.problems.append(f"{task.key}: could not be recorded ({exc!r}); its previous grades are kept")
            score, max_score, probs, flags, notes = _summarise(result)
            report.outcomes.append(Outcome(result["student"], result["assignment"], score, max_score, probs, flags,
                                           notes, float(result.get("seconds", 0.0)), recorded))

        run_tasks(tasks, jobs or default_jobs(), on_result, progress=progress, desc="grading")
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp / "scratch")
    report.problems += [f"gradebook: {p}" for p in check_gradebook(course)]
    report.seconds = time.monotonic() - start
    return report


def summary_lines(report: BatchReport) -> list[str]:
    """One line per student: score per assignment, total, and what went wrong or needs review."""
    lines = []
    for student, outcomes in report.by_student().items():
        parts = [f"{o.assignment} {o.score:g}/{o.max_score:g}" for o in outcomes]
        total = sum(o.score for o in outcomes)
        total_max = sum(o.max_score for o in outcomes)
        extra = []
        for o in outcomes:
            if not o.recorded:
                extra.append(f"{o.assignment}: NOT RECORDED")
            extra += [f"{o.assignment}: {p}" for p in o.problems[:2]]
            if o.flags:
                extra.append(f"{o.assignment}: REVIEW ({'; '.join(o.flags[:2])})")
        line = f"  {student:<20} {'  '.join(parts)}  | total {total:g}/{total_max:g}"
        if extra:
            line += "  | " + "; ".join(extra)
        lines.append(line)
    return lines


__all__ = ["autograde", "require_sandbox", "summary_lines", "BatchReport", "Outcome", "NO_SANDBOX_WARNING",
           "UNSANDBOXED"]
