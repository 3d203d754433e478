"""``seqcourse``: the instructor's command line.

``seqcourse build`` is what ``make course`` runs: it executes every lecture and renders it to ``course/site/``,
releases every assignment, grades the demo class in ``course/demo_submissions/``, writes their feedback, exports
the grades to ``course/grades.csv``, prints the grade table and writes the report. The steps one by one:

    seqcourse release [ASSIGNMENT ...]          student versions in course/release/, checked both ways
    seqcourse collect SOURCE                    hand-ins (folder or .zip) into course/submitted/
    seqcourse autograde [--submissions SOURCE]  grade every hand-in, N at a time (--jobs N), each in the sandbox
    seqcourse feedback                          course/feedback/<student>/<assignment>/<notebook>.html
    seqcourse grades                            course/grades.csv (nbgrader's export format) and the grade table
    seqcourse report                            course/report/: mean, histogram, most-failed tests per assignment
    seqcourse check [--sandbox]                 is the gradebook consistent? (and the sandbox, with --sandbox)
    seqcourse doctor                            does the grading sandbox work here, and what does it isolate?
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from .paths import jupyter_env


def build_lectures(course) -> int:
    """Execute every lecture notebook and render it to ``course/site``; return the number built."""
    from .notebooks import execute_notebook, render_html

    lectures = sorted(course.lectures.glob("[0-9][0-9]_*.ipynb"))
    if not lectures:
        print(f"seqcourse: no lectures in {course.lectures} yet; nothing to execute.")
        return 0
    for path in lectures:
        start = time.perf_counter()
        nb = execute_notebook(path)
        out = render_html(nb, course.site / (path.stem + ".html"))
        print(f"  lecture {path.name:40s} executed in {time.perf_counter() - start:5.1f} s -> {out}")
    return len(lectures)


# ------------------------------------------------------------------------------------------ steps

def _course(args: argparse.Namespace):
    from .course import Course

    return Course.load(args.course)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if getattr(args, "no_progress", False) else None


def cmd_release(args: argparse.Namespace) -> int:
    from .release import release

    course = _course(args)
    print(f"seqcourse release: {', '.join(args.assignments) or 'every assignment'}")
    release(course, args.assignments or None, jobs=args.jobs, validate=not args.no_validate,
            cell_timeout=args.timeout, progress=_progress(args), reset=args.reset)
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from .collect import collect

    course = _course(args)
    handins, problems = collect(course, args.source)
    for p in problems:
        print(f"  warning: {p}")
    for h in handins:
        missing = [n for n in course.notebooks(h.assignment) if n not in h.notebooks]
        print(f"  {h.key}: {len(h.notebooks)} notebook(s)" + (f", missing {', '.join(missing)}" if missing else ""))
    print(f"seqcourse collect: {len(handins)} hand-in(s) in {course.submitted}")
    return 0


def _autograde(course, args, submissions, sandbox=None) -> int:
    from .autograde import NO_SANDBOX_WARNING, autograde, summary_lines

    if sandbox is None:
        sandbox = not args.no_sandbox
    report = autograde(course, submissions, assignments=args.assignment or None, students=args.student or None,
                       jobs=args.jobs, cell_timeout=args.timeout, budget=args.budget, progress=_progress(args),
                       sandbox=sandbox, memory=args.memory)
    for line in summary_lines(report):
        print(line)
    for p in report.problems:
        print(f"  warning: {p}")
    from .runner import default_jobs

    print(f"seqcourse autograde: {len(report.outcomes)} hand-in(s) graded in {report.seconds:.1f} s "
          f"with {args.jobs or default_jobs()} worker(s), "
          + (f"each kernel in the sandbox ({report.sandbox})" if report.sandbox else "WITHOUT a sandbox"))
    if not report.sandbox:
        print(NO_SANDBOX_WARNING)
    bad = [p for p in report.problems if p.startswith("gradebook:") or "could not be recorded" in p]
    return 1 if bad else 0


def cmd_autograde(args: argparse.Namespace) -> int:
    course = _course(args)
    print(f"seqcourse autograde: {args.submissions or course.submitted}")
    return _autograde(course, args, args.submissions)


def cmd_feedback(args: argparse.Namespace) -> int:
    from .feedback import write_feedback

    course = _course(args)
    written = write_feedback(course, args.assignment or None, args.student or None, jobs=args.jobs,
                             progress=_progress(args))
    print(f"seqcourse feedback: {len(written)} page(s) in {course.feedback} (no hidden test in any of them)")
    return 0


def cmd_grades(args: argparse.Namespace) -> int:
    from .report import export_grades, grade_table

    course = _course(args)
    path = export_grades(course)
    print(f"seqcourse grades: {path}")
    for line in grade_table(course, path):
        print(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import export_grades, write_report

    course = _course(args)
    export_grades(course)
    path = write_report(course)
    print(f"seqcourse report: {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .gradebook import check_gradebook, sandboxes

    course = _course(args)
    problems = check_gradebook(course) if course.db_path.exists() else ["no gradebook yet"]
    for p in problems:
        print(f"  {p}")
    print("seqcourse check: " + ("the gradebook is consistent" if not problems else f"{len(problems)} problem(s)"))
    if course.db_path.exists():
        bare = sorted(f"{s}/{a}" for (s, a), box in sandboxes(course).items() if not box)
        if bare:
            print(f"seqcourse check: {len(bare)} submission(s) graded without a sandbox: {', '.join(bare[:10])}"
                  + (" ..." if len(bare) > 10 else ""))
    status = 1 if problems else 0
    if args.sandbox:
        status = max(status, cmd_doctor(args))
    return status


def cmd_doctor(args: argparse.Namespace) -> int:
    from .sandbox import DEFAULT_MEMORY, probe

    check = probe(memory=getattr(args, "memory", None) or DEFAULT_MEMORY)
    for line in check.lines():
        print(line)
    return 0 if check.works else 1


def check_expected(course, path: Path) -> list[str]:
    """Compare the recorded scores with ``expected.json`` of the demo class; return the differences.

    Accepted shapes: ``{student: {assignment: total}}`` or ``{student: {assignment: {grade_id: score}}}``, also
    wrapped as ``{"students": {...}}``; a total may be ``{"score": x}`` or ``{"min": a, "max": b}``.
    """
    from .gradebook import scores

    data = json.loads(path.read_text())
    data = data.get("students", data) if isinstance(data, dict) else {}
    recorded = scores(course)
    diffs = []
    for student, per in data.items():
        if not isinstance(per, dict):
            continue
        for assignment, want in per.items():
            got = recorded.get((student, assignment))
            if got is None:
                diffs.append(f"{student}/{assignment}: expected a grade, none recorded")
                continue
            total = sum(v or 0.0 for v in got.values())
            if isinstance(want, int | float):
                if abs(total - want) > 1e-6:
                    diffs.append(f"{student}/{assignment}: expected {want:g}, got {total:g}")
            elif isinstance(want, dict) and ("min" in want or "max" in want or "score" in want):
                lo, hi = want.get("min", want.get("score", -1e9)), want.get("max", want.get("score", 1e9))
                if not lo - 1e-6 <= total <= hi + 1e-6:
                    diffs.append(f"{student}/{assignment}: expected {lo:g}..{hi:g}, got {total:g}")
            elif isinstance(want, dict):
                for gid, value in want.items():
                    if isinstance(value, int | float) and abs((got.get(gid) or 0.0) - value) > 1e-6:
                        diffs.append(f"{student}/{assignment}/{gid}: expected {value:g}, got {got.get(gid)}")
    return diffs


def cmd_build(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    course = _course(args)
    jupyter_env(course.build)
    if not args.skip_lectures:
        print("seqcourse build: lectures")
        build_lectures(course)
    if not course.assignments():
        print("seqcourse build: no assignments in exercises/ yet; nothing to release.")
        return 0
    from . import demo as demo_class_module
    from .feedback import write_feedback
    from .release import release
    from .report import export_grades, grade_table, write_report
    from .sandbox import probe

    sandbox = not args.no_sandbox
    if sandbox and not probe(memory=args.memory).works:
        check = probe(memory=args.memory)
        print(f"seqcourse build: no grading sandbox on this machine ({check.problem}); the demo class (generated "
              f"from the exercises, no student code) is graded without one. To grade students: {check.fix}")
        sandbox = False
    demo = course.demo
    step = time.perf_counter()
    print(f"seqcourse build: the demo class's hand-ins, from the exercises ({demo})")
    demo_class_module.build(course)
    print(f"  ({time.perf_counter() - step:.1f} s)")
    step = time.perf_counter()
    print("seqcourse build: release")
    demo_class = sorted(p.name for p in demo.iterdir() if p.is_dir()) if demo.is_dir() else []
    # an exercise whose cells changed since the last build: the demo class's old grades may go (they are
    # regraded below), nobody else's
    release(course, jobs=args.jobs, cell_timeout=args.timeout, progress=_progress(args), reset=demo_class)
    print(f"  ({time.perf_counter() - step:.1f} s)")
    status = 0
    if demo.is_dir() and any(demo.iterdir()):
        step = time.perf_counter()
        print(f"seqcourse build: autograde the demo class ({demo})")
        status = _autograde(course, args, demo, sandbox=sandbox)
        print(f"  ({time.perf_counter() - step:.1f} s)")
        step = time.perf_counter()
        print("seqcourse build: feedback")
        written = write_feedback(course, jobs=args.jobs, progress=_progress(args))
        print(f"  {len(written)} page(s) in {course.feedback} ({time.perf_counter() - step:.1f} s)")
    else:
        print("seqcourse build: no demo class in course/demo_submissions; nothing to grade.")
    path = export_grades(course)
    print(f"seqcourse build: grades -> {path}")
    for line in grade_table(course, path):
        print(line)
    print("seqcourse build: report")
    write_report(course)
    expected = demo / "expected.json"
    if expected.is_file():
        diffs = check_expected(course, expected)
        if diffs:
            print("seqcourse build: the demo class did not get the expected scores:\n  " + "\n  ".join(diffs))
            status = 1
        else:
            print(f"seqcourse build: the demo class got the scores in {expected.relative_to(course.root)}")
    print(f"seqcourse build: done in {time.perf_counter() - t0:.1f} s")
    return status


# ------------------------------------------------------------------------------------------ parser

def _size(text: str) -> int:
    from .sandbox import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_sandbox(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", default="4G", metavar="SIZE", type=_size,
                   help="memory of each grading kernel, e.g. 4G or 1500M (default 4G); a cell over it scores 0")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade even without a working sandbox (student code then runs with your rights; every "
                        "result is marked as graded without a sandbox)")


def _add_common(p: argparse.ArgumentParser, *, jobs: bool = True, timeout: bool = False) -> None:
    if jobs:
        p.add_argument("--jobs", "-j", type=int, default=None, help="parallel workers (default: the number of cores)")
    if timeout:
        p.add_argument("--timeout", type=float, default=60.0, help="seconds one cell may run (default 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(argv: list[str] | None = None) -> int:
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        print("seqcourse: the instructor's tools are not installed: pip install 'seqlib[instructor]' "
              "(in a checkout: pip install -e '.[lectures,instructor,test]', or run make course)", file=sys.stderr)
        return 2
    from .course import PipelineError
    from .sanitize import LeakError

    parser = argparse.ArgumentParser(prog="seqcourse", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[6:]))
    parser.add_argument("--course", default=None,
                        help="the course root, the folder holding nbgrader_config.py (default: $SEQCOURSE_ROOT, or "
                             "found from the current folder upwards)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build the whole course (what `make course` runs)")
    _add_common(p, timeout=True)
    p.add_argument("--budget", type=float, default=600.0, help=argparse.SUPPRESS)
    p.add_argument("--skip-lectures", action="store_true", help="leave out the lecture step")
    _add_sandbox(p)
    p.set_defaults(func=cmd_build, assignment=None, student=None)

    p = sub.add_parser("release", help="generate and check the student versions")
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT")
    p.add_argument("--no-validate", action="store_true", help="skip the validate / validate --invert checks")
    p.add_argument("--reset", action="store_true",
                   help="if an assignment's cells changed since it was graded, delete its grades (grade again after)")
    _add_common(p, timeout=True)
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("collect", help="copy hand-ins (folder or .zip of <student>/<assignment>/) into submitted/")
    p.add_argument("source")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("autograde", help="grade every hand-in in parallel")
    p.add_argument("--submissions", default=None, metavar="DIR_OR_ZIP",
                   help="<student>/<assignment>/<notebook>.ipynb, as a folder or a zip (default: course/submitted)")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--student", action="append", help="only this student (repeatable)")
    p.add_argument("--budget", type=float, default=600.0, help="seconds a whole notebook may take (default 600)")
    _add_sandbox(p)
    _add_common(p, timeout=True)
    p.set_defaults(func=cmd_autograde)

    p = sub.add_parser("feedback", help="HTML feedback for every autograded hand-in")
    p.add_argument("--assignment", action="append")
    p.add_argument("--student", action="append")
    _add_common(p)
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("grades", help="export course/grades.csv and print the grade table")
    p.set_defaults(func=cmd_grades)
    p = sub.add_parser("report", help="per-assignment statistics and plots in course/report/")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("check", help="check that the gradebook is consistent")
    p.add_argument("--sandbox", action="store_true", help="also check the grading sandbox (as `seqcourse doctor`)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("doctor", help="does the grading sandbox work on this machine, and what does it isolate?")
    p.add_argument("--memory", default="4G", metavar="SIZE", type=_size,
                   help="memory of each grading kernel (default 4G)")
    p.set_defaults(func=cmd_doctor)

    args = parser.parse_args(argv)

    def on_term(signum, frame):  # `kill` / a job scheduler: stop like Ctrl-C (workers and kernels are killed)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return args.func(args)
    except (PipelineError, LeakError, FileNotFoundError, LookupError) as exc:
        print(f"seqcourse {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"seqcourse {args.command}: interrupted; every result recorded so far is kept", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
