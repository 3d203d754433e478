"""``seqcourse release``: the student versions of the assignments, checked both ways.

``release`` runs nbgrader's ``generate_assignment`` and then checks both directions, as nbgrader's docs course
does: every *source* notebook passes ``nbgrader validate`` (the solutions pass every test) and every *released*
notebook fails ``nbgrader validate --invert`` for every test (the stubs raise), and no hidden-test line is in a
released notebook. Validation runs in parallel worker processes with the grader's executor, in the sandbox when this
machine has one (the notebooks are the instructor's own, so without one it runs beside the grader): an assignment
that needs something the sandbox does not give its kernels fails here, before any student hands it in.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .course import DEFAULT_BUDGET, DEFAULT_CELL_TIMEOUT, Course, PipelineError, grading_template
from .gradebook import ensure_gradebook, forget_gradings
from .paths import jupyter_env
from .runner import Task, default_jobs, run_tasks
from .sandbox import probe
from .sanitize import LeakError, find_leaks, hidden_lines, notebook_text


def _api(course: Course):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    return NbGraderAPI(coursedir=CourseDirectory(config=course.config), config=course.config)


def submitters(course: Course, assignment: str) -> list[str]:
    """Students with a submission of ``assignment`` in the gradebook."""
    from nbgrader.api import MissingEntry

    with course.gradebook() as gb:
        try:
            return sorted(s.student.id for s in gb.find_assignment(assignment).submissions)
        except MissingEntry:
            return []


def reset_submissions(course: Course, assignment: str, students: list[str]) -> None:
    """Delete the gradebook records, autograded notebooks and feedback of ``students`` for ``assignment``."""
    with course.gradebook() as gb:
        for student in students:
            gb.remove_submission(assignment, student)
    forget_gradings(course, assignment, students)
    for student in students:
        for folder in (course.autograded, course.feedback):
            shutil.rmtree(folder / student / assignment, ignore_errors=True)


def generate(course: Course, assignment: str, reset: bool | list[str] = False) -> None:
    """``nbgrader generate_assignment --force`` for one assignment (fills the gradebook, writes ``release/``).

    nbgrader cannot add or remove cells of an assignment that has submissions. ``reset=True`` then deletes every
    submission of it (their grades are lost: grade them again); ``reset=[students]`` allows that only when all
    the submissions are those students' (the build passes the demo class). Otherwise :class:`PipelineError`.
    """
    jupyter_env(course.build)
    course.release.mkdir(parents=True, exist_ok=True)
    ensure_gradebook(course)
    result = _api(course).generate_assignment(assignment, force=True, create=True)
    log = (result.get("log") or "") + (result.get("error") or "")
    if not result.get("success") and "Cannot add or remove cells" in log:
        who = submitters(course, assignment)
        allowed = who if reset is True else [s for s in who if s in (reset or [])]
        if not reset or set(allowed) != set(who):
            others = sorted(set(who) - set(allowed))
            raise PipelineError(
                f"the cells of {assignment} changed since it was graded, and nbgrader cannot change an assignment "
                f"that has submissions ({len(who)}: {', '.join(others[:5])}{' ...' if len(others) > 5 else ''}). "
                f"`seqcourse release --reset {assignment}` deletes those grades (then grade again); "
                f"`make clean` starts the demo course afresh.")
        reset_submissions(course, assignment, who)
        result = _api(course).generate_assignment(assignment, force=True, create=True)
    if not result.get("success"):
        log = (result.get("log") or "").strip().splitlines()[-15:]
        raise PipelineError(f"nbgrader generate_assignment {assignment} failed:\n  " + "\n  ".join(log)
                            + ("\n" + result["error"] if result.get("error") else ""))


def check_release_leaks(course: Course, assignment: str) -> None:
    """Raise :class:`LeakError` if a hidden-test line of ``assignment`` is in its released notebooks."""
    with course.gradebook() as gb:
        for notebook in course.notebooks(assignment):
            template = grading_template(course, assignment, notebook, gb)
            path = course.release_notebook(assignment, notebook)
            leaks = find_leaks(notebook_text(nbformat.read(path, as_version=4)) + path.read_text(),
                               hidden_lines(template))
            if leaks:
                raise LeakError(f"{path}: hidden test lines are visible: {leaks[:3]}")


@dataclass
class ReleaseReport:
    assignments: list[str]
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def release(course: Course, assignments: list[str] | None = None, *, jobs: int | None = None, validate: bool = True,
            cell_timeout: float = DEFAULT_CELL_TIMEOUT, budget: float = DEFAULT_BUDGET, progress: bool | None = None,
            out: Callable[[str], None] = print, reset: bool | list[str] = False) -> ReleaseReport:
    """Generate the student versions of ``assignments`` (default: all) and check them (see the module docstring).

    ``reset``: see :func:`generate`. Raises :class:`PipelineError` listing every problem found.
    """
    jupyter_env(course.build)
    known = course.assignments()
    assignments = list(assignments or known)
    unknown = [a for a in assignments if a not in known]
    if unknown:
        raise PipelineError(f"no such assignment in {course.source}: {', '.join(unknown)}")
    report = ReleaseReport(assignments)
    for assignment in assignments:
        generate(course, assignment, reset)
        check_release_leaks(course, assignment)
        out(f"  released {assignment}: {', '.join(n + '.ipynb' for n in course.notebooks(assignment))}")
    if not validate or not assignments:
        return report
    tasks = []
    check = probe()
    box = check.sandbox.as_job() if check.works else None
    for assignment in assignments:
        data = [str(p) for p in course.data_files(assignment)]
        for notebook in course.notebooks(assignment):
            for invert, path in ((False, course.source_notebook(assignment, notebook)),
                                 (True, course.release_notebook(assignment, notebook))):
                job = {"kind": "validate", "path": str(path), "invert": invert, "data_files": data,
                       "data_dir": str(course.source / assignment), "cell_timeout": cell_timeout, "budget": budget,
                       "sandbox": box}
                label = f"{'release' if invert else 'source'} {assignment}/{notebook}"
                tasks.append(Task(label, job, label, hard_timeout=budget + 120))

    def on_result(task: Task, result: dict) -> None:
        if result.get("failed"):
            report.problems.append(f"{task.key}: validation could not run: {result['message']}")
            return
        res = result["results"]
        if res.get("type_changed"):
            report.problems.append(f"{task.key}: cell types differ from their nbgrader metadata")
        if res.get("changed"):
            report.problems.append(f"{task.key}: {len(res['changed'])} read-only cell(s) changed since release")
        if result["invert"]:
            passed = res.get("passed", [])
            if passed:
                first = passed[0]["source"].splitlines()[0] if passed[0]["source"] else ""
                report.problems.append(f"{task.key}: {len(passed)} test cell(s) pass with the stubs "
                                       f"(every test must fail on the released notebook), e.g. `{first}`")
            else:
                report.lines.append(f"  {task.key}: every test fails on the stubs "
                                    f"(nbgrader validate --invert) [{result['seconds']:.1f} s]")
        else:
            failed = res.get("failed", [])
            if failed:
                detail = failed[0].get("raw_error", "").strip().splitlines()
                report.problems.append(f"{task.key}: {len(failed)} test cell(s) fail with the solutions, e.g. "
                                       f"{detail[-1] if detail else '?'}")
            else:
                report.lines.append(f"  {task.key}: the solutions pass every test (nbgrader validate) "
                                    f"[{result['seconds']:.1f} s]")

    with tempfile.TemporaryDirectory(prefix="seqcourse-release-") as tmp:
        for i, task in enumerate(tasks):
            task.job["log"] = str(Path(tmp) / f"validate-{i}.log")
        run_tasks(tasks, jobs or default_jobs(), on_result, progress=progress, desc="validating")
    for line in sorted(report.lines):
        out(line)
    if report.problems:
        raise PipelineError("release checks failed:\n  " + "\n  ".join(report.problems))
    return report


__all__ = ["release", "ReleaseReport", "generate", "reset_submissions", "submitters"]
