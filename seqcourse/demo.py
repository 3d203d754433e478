"""The demo class: hand-ins generated from the release, the solutions and declared bug patches.

``seqcourse build`` and the tests (re)write the hand-ins into ``course/demo_submissions/`` (git-ignored) from the
assignments' sources:

- ``reference/<a>/<a>.ipynb``: the release with every solution cell filled in from the source (what a student who
  solved everything hands in);
- ``blank/<a>/<a>.ipynb``: the untouched release;
- ``bug-<what>/<a>/<a>.ipynb``: the reference with one realistic mistake (a text replacement in one solution
  cell), declared in the assignment's ``DEMO_BUGS`` (:mod:`seqcourse.kernel.assignments`) together with the graded
  cells it must lose.

``course/demo_submissions/expected.json`` is committed: ``{student: {assignment: {grade_id: expected_points}}}``
for every hand-in, the grades the build must reproduce. ``python -m seqcourse.demo --check`` fails when the
exercises or the bug declarations no longer give that table (an exercise's points changed, a bug no longer
applies); ``python -m seqcourse.demo --write-expected`` rewrites it after a deliberate change. The release is
made by ``nbgrader generate_assignment`` in a scratch course, so it is exactly what students receive.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from .course import Course
from .kernel.assignments import DEMO_BUGS, Bug
from .paths import jupyter_env

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def solution_code(source: str) -> str:
    """The answer a student writes: the source solution without the ``### BEGIN/END SOLUTION`` lines."""
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN, END))


def release(course: Course, assignments: list[str]) -> dict[str, nbformat.NotebookNode]:
    """The student versions, made by ``nbgrader generate_assignment`` in a scratch course (no gradebook)."""
    jupyter_env(course.build)
    with tempfile.TemporaryDirectory(prefix="seqcourse-release-") as tmp:
        root = Path(tmp)
        for name in assignments:
            shutil.copytree(course.source / name, root / "source" / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", name, "--no-db", "--force",
                            "--log-level=ERROR", f"--CourseDirectory.root={root}",
                            "--CourseDirectory.source_directory=source", "--CourseDirectory.release_directory=release"],
                           cwd=root, check=True, capture_output=True, text=True)
        return {name: nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4) for name in assignments}


def filled(released: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The release with every solution cell replaced by the source's solution."""
    answers = {_grade_id(c): solution_code(c.source) for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.from_dict(json.loads(json.dumps(released)))
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[_grade_id(cell)]
    return nb


def with_bug(nb: nbformat.NotebookNode, bug: Bug) -> nbformat.NotebookNode:
    """``nb`` with ``bug`` applied to its solution cell (the replaced text must occur exactly once)."""
    out = nbformat.from_dict(json.loads(json.dumps(nb)))
    cell = next(c for c in out.cells if _grade_id(c) == bug.cell)
    count = cell.source.count(bug.old)
    if count != 1:
        raise ValueError(f"bug patch for {bug.assignment}/{bug.cell} matches {count} times (expected once): "
                         f"{bug.old!r}; update DEMO_BUGS in seqcourse/kernel/assignments/{bug.assignment}.py "
                         f"after changing the exercise")
    cell.source = cell.source.replace(bug.old, bug.new)
    return out


def points(source: nbformat.NotebookNode) -> dict[str, float]:
    """Graded cells of a source notebook -> their points, in notebook order."""
    return {_grade_id(c): float(c.metadata["nbgrader"]["points"]) for c in source.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def expected_table(course: Course) -> dict[str, dict[str, dict[str, float]]]:
    """``{student: {assignment: {grade_id: points}}}`` that the declarations give (reference, blank, bugs)."""
    assignments = course.assignments()
    sources = {a: nbformat.read(course.source_notebook(a, a), as_version=4) for a in assignments}
    expected: dict[str, dict[str, dict[str, float]]] = {"reference": {}, "blank": {}}
    for a in assignments:
        expected["reference"][a] = points(sources[a])
        expected["blank"][a] = {gid: 0.0 for gid in expected["reference"][a]}
    for student, bug in DEMO_BUGS.items():
        if bug.assignment not in sources:
            continue
        table = points(sources[bug.assignment])
        unknown = set(bug.breaks) - set(table)
        if unknown:
            raise ValueError(f"{bug.assignment}: no graded cells named {sorted(unknown)}")
        expected.setdefault(student, {})[bug.assignment] = {gid: 0.0 if gid in bug.breaks else p
                                                            for gid, p in table.items()}
    return expected


def build(course: Course, out: Path | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Write the demo class's hand-ins into ``out`` (default ``course.demo``); return the expected grade table.

    Only the hand-in folders are replaced: ``expected.json`` and anything else in ``out`` stay.
    """
    out = Path(out or course.demo)
    assignments = course.assignments()
    sources = {a: nbformat.read(course.source_notebook(a, a), as_version=4) for a in assignments}
    expected = expected_table(course)
    released = release(course, assignments)
    submissions: dict[tuple[str, str], nbformat.NotebookNode] = {}
    for a in assignments:
        submissions["reference", a] = filled(released[a], sources[a])
        submissions["blank", a] = released[a]
    for student, bug in DEMO_BUGS.items():
        if bug.assignment in sources:
            submissions[student, bug.assignment] = with_bug(submissions["reference", bug.assignment], bug)
    for student in {s for s, _ in submissions}:
        shutil.rmtree(out / student, ignore_errors=True)
    for (student, a), nb in submissions.items():
        path = out / student / a / f"{a}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    return expected


def check_expected_file(course: Course) -> list[str]:
    """Differences between ``expected.json`` and what the declarations give (empty: up to date)."""
    path = course.demo / "expected.json"
    committed = json.loads(path.read_text()) if path.is_file() else {}
    fresh = expected_table(course)
    diffs = []
    for student in sorted(set(fresh) | set(committed)):
        for a in sorted(set(fresh.get(student, {})) | set(committed.get(student, {}))):
            want, have = fresh.get(student, {}).get(a), committed.get(student, {}).get(a)
            if want != have:
                diffs.append(f"{student}/{a}: the exercise and its DEMO_BUGS give {want}, expected.json says {have}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqcourse.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--course", default=None, help="the course root (default: found from the current folder)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail if expected.json is out of date")
    group.add_argument("--write-expected", action="store_true", help="rewrite expected.json from the declarations")
    args = parser.parse_args(argv)
    course = Course.load(args.course)
    if args.check:
        diffs = check_expected_file(course)
        for d in diffs:
            print(f"  {d}")
        print("expected.json is " + ("out of date (python -m seqcourse.demo --write-expected)" if diffs
                                     else "up to date"))
        return 1 if diffs else 0
    if args.write_expected:
        table = expected_table(course)
        (course.demo / "expected.json").write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        print(f"wrote {course.demo / 'expected.json'}")
        return 0
    expected = build(course)
    print(f"wrote {sum(len(v) for v in expected.values())} hand-ins of {len(expected)} students to {course.demo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
