"""How fast the grader is: one submission of each assignment, a class graded with 1 and with 2 workers, and what
the grading sandbox costs per hand-in.

    .venv/bin/python benchmarks/bench_grading.py               # everything (about 6-10 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_grading.py --class-size 20 --rounds 1 --skip-single   # a quick look
    .venv/bin/python benchmarks/bench_grading.py --sandbox-only                              # 3. alone
    .venv/bin/python benchmarks/bench_grading.py --demo all --skip-class    # every demo hand-in, one at a time

1. *One submission*: the demo class's ``reference`` hand-in of every assignment in ``exercises/`` is graded alone
   (``--jobs 1``), from kernel start to the grade in the gradebook. Target: <= 30 s each on a 2-core CPU.
   ``--demo all`` grades every demo hand-in (the reference and each ``bug-*`` student, whose wrong answers make
   the diagnosis run) and prints the mean per hand-in.
2. *A class*: ``--class-size`` hand-ins (copies of the fixture course's quick students: honest, blank, tampered,
   stderr-writing, missing import, ...) are graded with ``--jobs 1`` and with ``--jobs 2``, ``--rounds`` times
   each, interleaved so that background load hits both alike; the best wall time of each is compared.
   Target: ``--jobs 2`` at least 1.8x faster than ``--jobs 1``.
3. *The sandbox's cost*: ``--sandbox-size`` of those hand-ins, and the demo ``reference`` hand-in of ``a1_rnn``
   (a torch kernel), graded with ``--jobs 1`` in the sandbox and without it (``--no-sandbox``), taking turns,
   ``--rounds`` times; the best time per hand-in of each is compared. Target: the sandbox costs at most 20 %.

Kernels run with one thread each (``OMP_NUM_THREADS=1`` ...), so two workers do not fight over the two cores; the
release and the start of the worker pool are not timed. Printed with the machine's load average, since a busy
machine slows both and squeezes the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "course"
EXERCISES = REPO / "exercises"
sys.path.insert(0, str(REPO / "tests" / "fixtures" / "grading"))

import fixture_course as fc  # noqa: E402

from seqcourse import demo as demo_class  # noqa: E402
from seqcourse.autograde import autograde  # noqa: E402
from seqcourse.course import Course  # noqa: E402
from seqcourse.gradebook import check_gradebook  # noqa: E402
from seqcourse.paths import jupyter_env  # noqa: E402
from seqcourse.release import release  # noqa: E402
from seqcourse.runner import Task, run_tasks  # noqa: E402
from seqcourse.sandbox import probe  # noqa: E402

QUICK_STUDENTS = ["reference", "blank", "stderr-noise", "edit-test", "delete-test", "points", "moved-id", "flags",
                  "rebind-helpers", "forge-partial", "transformer", "missing-import", "exfiltrate", "random"]


def load() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


def warm_pool() -> None:
    """Start the worker pool (the forkserver imports the grader once) outside the timings."""
    run_tasks([Task("warm", {"kind": "feedback", "pages": []}, "warm-up")], 1, lambda t, r: None, progress=False)


def single_submissions(tmp: Path, timeout: float, students: str = "reference") -> list[tuple[str, float, float, float]]:
    """Grade the demo hand-ins of every assignment (``students``: ``"reference"`` or ``"all"``), one at a time;
    return (assignment/student, s, score, max)."""
    root = tmp / "single"
    shutil.copytree(EXERCISES, root / "exercises")
    (root / "course").mkdir(parents=True)
    shutil.copy(COURSE / "nbgrader_config.py", root / "course" / "nbgrader_config.py")
    course = Course.load(root / "course")
    demo_class.build(course, root / "demo")
    who = ["reference"] if students == "reference" else sorted(p.name for p in (root / "demo").iterdir()
                                                                 if p.is_dir() and p.name != "blank")
    out = []
    for assignment in course.assignments():
        release(course, [assignment], validate=False, out=lambda s: None)
        for student in who:
            demo = root / "demo" / student
            if not (demo / assignment).is_dir():
                continue
            handin = tmp / "handin" / student
            shutil.rmtree(handin.parent, ignore_errors=True)
            shutil.copytree(demo / assignment, handin / assignment)
            start = time.perf_counter()
            report = autograde(course, handin.parent, assignments=[assignment], jobs=1, cell_timeout=timeout,
                               progress=False, out=lambda s: None)
            seconds = time.perf_counter() - start
            (outcome,) = report.outcomes
            out.append((f"{assignment}/{student}", seconds, outcome.score, outcome.max_score))
            print(f"  {assignment + '/' + student:44s} {seconds:6.1f} s   score {outcome.score:g}/"
                  f"{outcome.max_score:g}   ({load()})", flush=True)
    return out


def make_class(tmp: Path, size: int) -> tuple[Course, Path]:
    course = Course.load(fc.make_course(tmp / "class", ("fx_basic",)))
    release(course, validate=False, out=lambda s: None)
    one = fc.make_class(course.release, tmp / "one", {"fx_basic": QUICK_STUDENTS})
    handins = tmp / "handins"
    for i in range(size):
        student = QUICK_STUDENTS[i % len(QUICK_STUDENTS)]
        shutil.copytree(one / student, handins / f"{student}-{i:03d}")
    return course, handins


def grade_class(course: Course, handins: Path, jobs: int, timeout: float, sandbox: bool = True) -> float:
    shutil.rmtree(course.autograded, ignore_errors=True)
    start = time.perf_counter()
    report = autograde(course, handins, jobs=jobs, cell_timeout=timeout, progress=False, out=lambda s: None,
                       sandbox=sandbox)
    seconds = time.perf_counter() - start
    bad = [p for p in report.problems if "recorded" in p or "gradebook" in p]
    assert not bad and not check_gradebook(course), bad
    return seconds


def sandbox_cost(tmp: Path, size: int, rounds: int, timeout: float) -> list[tuple[str, float, float]]:
    """Seconds per hand-in with and without the sandbox: (what, sandboxed, bare), best of ``rounds``."""
    course, handins = make_class(tmp / "sandbox-class", size)
    rows = []
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for sandboxed in (False, True):
            seconds = grade_class(course, handins, 1, timeout, sandbox=sandboxed) / size
            times[sandboxed].append(seconds)
            print(f"  round {r + 1}, fixture class of {size}, {'sandbox' if sandboxed else 'no sandbox'}: "
                  f"{seconds:.2f} s per hand-in ({load()})", flush=True)
    rows.append((f"fixture assignment, {size} hand-ins", min(times[True]), min(times[False])))
    root = tmp / "sandbox-a1"
    shutil.copytree(EXERCISES / "a1_rnn", root / "exercises" / "a1_rnn")
    (root / "course").mkdir(parents=True)
    shutil.copy(COURSE / "nbgrader_config.py", root / "course" / "nbgrader_config.py")
    a1 = Course.load(root / "course")
    demo_class.build(a1, root / "demo")
    release(a1, ["a1_rnn"], validate=False, out=lambda s: None)
    handin = root / "handin"
    shutil.copytree(root / "demo" / "reference" / "a1_rnn", handin / "reference" / "a1_rnn")
    times = {True: [], False: []}
    for r in range(rounds):
        for sandboxed in (False, True):
            seconds = grade_class(a1, handin, 1, timeout, sandbox=sandboxed)
            times[sandboxed].append(seconds)
            print(f"  round {r + 1}, a1_rnn reference, {'sandbox' if sandboxed else 'no sandbox'}: {seconds:.2f} s "
                  f"({load()})", flush=True)
    rows.append(("a1_rnn reference (torch kernel)", min(times[True]), min(times[False])))
    print("\n| hand-in | no sandbox | sandbox | ratio | target |\n| --- | --- | --- | --- | --- |")
    for what, boxed, bare in rows:
        print(f"| {what} | {bare:.2f} s | {boxed:.2f} s | {boxed / bare:.2f}x | <= 1.20x |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class-size", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2, help="timings per worker count (the best one counts)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--skip-single", action="store_true", help="leave out the one-submission timings")
    parser.add_argument("--sandbox-size", type=int, default=14, help="hand-ins of the sandbox comparison")
    parser.add_argument("--sandbox-only", action="store_true", help="only the sandbox comparison")
    parser.add_argument("--skip-class", action="store_true", help="leave out the class timings")
    parser.add_argument("--demo", choices=("reference", "all"), default="reference",
                        help="which demo hand-ins the one-submission timings grade")
    args = parser.parse_args()
    jupyter_env()
    print(f"bench_grading: {os.cpu_count()} CPUs visible, {len(os.sched_getaffinity(0))} usable; {load()}")
    check = probe()
    print("\n".join(check.lines()))
    if not check.works:
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as name:
        tmp = Path(name)
        warm_pool()
        if args.sandbox_only:
            print("the sandbox's cost, --jobs 1:")
            sandbox_cost(tmp, args.sandbox_size, args.rounds, args.timeout)
            return 0
        if not args.skip_single:
            print(f"one submission (demo {args.demo} hand-ins), graded alone with --jobs 1:")
            single = single_submissions(tmp, args.timeout, args.demo)
            if single:
                worst = max(s for _, s, _, _ in single)
                mean = sum(s for _, s, _, _ in single) / len(single)
                print(f"  slowest: {worst:.1f} s (target <= 30 s): {'OK' if worst <= 30 else 'SLOWER THAN TARGET'}; "
                      f"mean {mean:.2f} s per hand-in over {len(single)}")
            else:
                print("  (no demo class in course/demo_submissions yet)")
        if args.skip_class:
            return 0
        course, handins = make_class(tmp, args.class_size)
        print(f"a class of {args.class_size} hand-ins of the fixture assignment ({len(QUICK_STUDENTS)} kinds):")
        times: dict[int, list[float]] = {1: [], 2: []}
        for r in range(args.rounds):
            for jobs in (1, 2):
                seconds = grade_class(course, handins, jobs, args.timeout)
                times[jobs].append(seconds)
                print(f"  round {r + 1}, --jobs {jobs}: {seconds:6.1f} s  "
                      f"({seconds / args.class_size:.2f} s per hand-in; {load()})", flush=True)
        best1, best2 = min(times[1]), min(times[2])
        ratio = best1 / best2
        print(f"  best --jobs 1: {best1:.1f} s, best --jobs 2: {best2:.1f} s -> speed-up {ratio:.2f}x "
              f"(target >= 1.8x): {'OK' if ratio >= 1.8 else 'BELOW TARGET'}")
        print("the sandbox's cost, --jobs 1:")
        sandbox_cost(tmp, args.sandbox_size, args.rounds, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
