"""The graded exercises: notebook conventions, the release, and the demo class graded end to end.

The demo class (generated from the exercises by :mod:`seqcourse.demo`; its expected grades are
``course/demo_submissions/expected.json``) is graded once per session by the course's own pipeline
(``seqcourse.release``, ``seqcourse.autograde``, two workers) in a scratch copy of the course: the solutions pass
``nbgrader validate`` and the release fails it everywhere, the reference scores full marks, the blank release 0,
and every ``bug-*`` submission loses exactly the points of the part it breaks, with the curated message for its
mistake.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from seqcourse import demo
from seqcourse.kernel.assignments import DEMO_BUGS
from seqcourse.paths import jupyter_env

REPO = Path(__file__).resolve().parents[1]
EXERCISES = REPO / "exercises"
pytestmark = pytest.mark.course

ASSIGNMENTS = ("a1_rnn", "a2_bptt", "a3_lstm", "a4_attention", "a5_transformer")
DEMO = REPO / "course" / "demo_submissions"
EXPECTED = json.loads((DEMO / "expected.json").read_text())
SOURCES = {a: nbformat.read(EXERCISES / a / f"{a}.ipynb", as_version=4) for a in ASSIGNMENTS}
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def cells(a: str, *, grade: bool | None = None, solution: bool | None = None) -> list:
    out = []
    for cell in SOURCES[a].cells:
        meta = nbgrader_meta(cell)
        if grade is not None and meta.get("grade", False) != grade:
            continue
        if solution is not None and meta.get("solution", False) != solution:
            continue
        if (grade is not None or solution is not None) and not meta:
            continue
        out.append(cell)
    return out


# ---------------------------------------------------------------------------------------------------------
# Notebook conventions (fast)
# ---------------------------------------------------------------------------------------------------------
def test_one_source_notebook_per_assignment_in_lecture_order():
    folders = sorted(p.name for p in EXERCISES.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert folders == list(ASSIGNMENTS)
    for a in ASSIGNMENTS:
        assert sorted(p.name for p in (EXERCISES / a).glob("*.ipynb")) == [f"{a}.ipynb"]


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_nbgrader_metadata(a):
    nb = SOURCES[a]
    nbformat.validate(nb)
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        assert cell.cell_type == "code"
        assert meta["schema_version"] == 3 and meta["task"] is False
        assert set(meta) <= {"grade", "grade_id", "locked", "points", "schema_version", "solution", "task"}
        if meta["solution"]:
            assert (meta["grade"], meta["locked"]) == (False, False)
            assert cell.source.count("### BEGIN SOLUTION") == cell.source.count("### END SOLUTION") >= 1
        elif meta["grade"]:
            assert meta["locked"] is True and isinstance(meta["points"], int) and meta["points"] >= 1
            assert meta["grade_id"].startswith(a.split("_")[0] + "_")
        else:
            assert meta["locked"] is True  # read-only instructor cells (set-up, data, given code)


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_setup_cell_loads_checks_before_any_student_code(a):
    first_code = next(c for c in SOURCES[a].cells if c.cell_type == "code")
    meta = nbgrader_meta(first_code)
    assert meta["grade_id"] == "setup" and meta["locked"] and not meta["solution"] and not meta["grade"]
    source = first_code.source
    assert "import torch" in source and "from seqcourse.kernel import checks" in source
    assert "checks.setup_notebook(seed=" in source  # seeds, warnings to stdout


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_test_cells_show_a_shape_check_and_hide_the_real_checks(a):
    for cell in cells(a, grade=True):
        match = HIDDEN.search(cell.source)
        assert match, f"{nbgrader_meta(cell)['grade_id']} has no hidden tests"
        visible = cell.source[: match.start()]
        assert "expect_shape" in visible or "checks.expect(" in visible, nbgrader_meta(cell)["grade_id"]
        points = nbgrader_meta(cell)["points"]
        assert visible.startswith(f"# [{points} point{'s' if points > 1 else ''}]"), "points are announced"
        assert "assert " not in cell.source, "tests fail through checks (curated messages), not bare asserts"


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_intro_table_adds_up_to_the_points(a):
    intro = SOURCES[a].cells[0].source
    announced = [int(row.rsplit("|", 2)[-2]) for row in intro.splitlines() if re.match(r"\| \d \|", row)]
    assert sum(announced) == sum(nbgrader_meta(c)["points"] for c in cells(a, grade=True))


def test_expected_json_follows_the_exercises_and_their_bugs():
    """expected.json (committed) is what the exercises' points and the declared bugs give (run after an edit:
    ``python -m seqcourse.demo --check``)."""
    from seqcourse.course import Course

    assert demo.check_expected_file(Course.load(REPO / "course")) == []
    assert EXPECTED == demo.expected_table(Course.load(REPO / "course"))


@pytest.mark.slow
def test_demo_class_is_complete_and_consistent(graded):
    students = sorted(p.name for p in graded.handins.iterdir() if p.is_dir())
    assert sorted(EXPECTED) == students
    on_disk = {(s, a) for s in students for a in ASSIGNMENTS if (graded.handins / s / a / f"{a}.ipynb").exists()}
    assert on_disk == {(s, a) for s, table in EXPECTED.items() for a in table}
    for a in ASSIGNMENTS:
        full = {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"]) for c in cells(a, grade=True)}
        assert EXPECTED["reference"][a] == full
        assert EXPECTED["blank"][a] == dict.fromkeys(full, 0.0)
        bugs = [s for s, bug in DEMO_BUGS.items() if bug.assignment == a]
        assert len(bugs) >= 2, f"{a} needs at least two buggy submissions"
        for student in bugs:
            lost = {gid for gid, p in EXPECTED[student][a].items() if p < full[gid]}
            assert lost == set(DEMO_BUGS[student].breaks), student


@pytest.mark.slow
def test_demo_submissions_are_regenerated_from_the_exercises(graded):
    """reference = release + solutions, bug = reference + its patch (the release itself is compared below)."""
    for (student, a) in [(s, a) for s, table in EXPECTED.items() for a in table]:
        handed_in = nbformat.read(graded.handins / student / a / f"{a}.ipynb", as_version=4)
        blank = nbformat.read(graded.handins / "blank" / a / f"{a}.ipynb", as_version=4)
        want = blank if student == "blank" else demo.filled(blank, SOURCES[a])
        if student in DEMO_BUGS:
            want = demo.with_bug(want, DEMO_BUGS[student])
        assert [c.source for c in handed_in.cells] == [c.source for c in want.cells], (student, a)
        assert not any(c.get("outputs") for c in handed_in.cells)


# ---------------------------------------------------------------------------------------------------------
# Release and the demo class, graded once per session with the course's pipeline (seqcourse)
# ---------------------------------------------------------------------------------------------------------
JOBS = 2

#: a scratch copy of the course: the real nbgrader_config.py, with its own root, gradebook and our exercises
SCRATCH_CONFIG = """\
from pathlib import Path

exec(compile(Path({config!r}).read_text(), {config!r}, "exec"))
c.CourseDirectory.source_directory = {source!r}
"""


@dataclass
class Graded:
    release: dict[str, Path] = field(default_factory=dict)
    release_lines: list[str] = field(default_factory=list)
    release_problems: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    messages: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    outcomes: dict[tuple[str, str], object] = field(default_factory=dict)
    handins: Path = Path()


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> Graded:
    """Release every assignment (validating sources and releases), then autograde the whole demo class."""
    from seqcourse.autograde import autograde
    from seqcourse.course import Course, PipelineError
    from seqcourse.release import release
    from seqcourse.sandbox import probe

    jupyter_env()
    root = tmp_path_factory.mktemp("seqcourse")
    (root / "nbgrader_config.py").write_text(
        SCRATCH_CONFIG.format(config=str(REPO / "course" / "nbgrader_config.py"), source=str(EXERCISES)))
    course = Course.load(root)
    assert course.root == root and course.source == EXERCISES and str(root) in course.db_url
    result = Graded()
    try:
        release(course, list(ASSIGNMENTS), jobs=JOBS, progress=False, out=result.release_lines.append)
    except PipelineError as exc:  # reported by the tests below, which then fail
        result.release_problems.append(str(exc))
    result.release = {a: course.release / a / f"{a}.ipynb" for a in ASSIGNMENTS}
    result.handins = handins = root / "demo_submissions"
    assert demo.build(course, handins) == EXPECTED, "expected.json is out of date: python -m seqcourse.demo --check"
    # in the grading sandbox when this machine has one (the demo class is generated, trusted code)
    batch = autograde(course, handins, jobs=JOBS, progress=False, out=lambda line: None, sandbox=probe().works)
    for outcome in batch.outcomes:
        result.outcomes[outcome.student, outcome.assignment] = outcome
        record = json.loads((course.autograded / outcome.student / outcome.assignment / "grading.json").read_text())
        for notebook in record["notebooks"].values():
            for gid, cell in notebook["cells"].items():
                result.scores.setdefault(outcome.student, {}).setdefault(outcome.assignment, {})[gid] = cell["score"]
                if cell["message"]:
                    result.messages.setdefault(outcome.student, {}).setdefault(outcome.assignment, {})[gid] = \
                        cell["message"]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_source_passes_validate_and_release_fails_it(graded, a):
    assert not graded.release_problems, graded.release_problems
    lines = [line for line in graded.release_lines if f" {a}/" in line]
    assert any("the solutions pass every test (nbgrader validate)" in line for line in lines), lines
    assert any("every test fails on the stubs (nbgrader validate --invert)" in line for line in lines), lines


@pytest.mark.slow
@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_release_contains_no_hidden_tests_and_no_solutions(graded, a):
    released = nbformat.read(graded.release[a], as_version=4)
    text = "\n".join(c.source for c in released.cells)
    assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    released_lines = set(text.splitlines())
    public = {line for c in SOURCES[a].cells for line in HIDDEN.sub("", c.source).splitlines()}
    for cell in cells(a, grade=True):
        for line in HIDDEN.search(cell.source).group(1).splitlines():
            if len(line.strip()) > 25 and line not in public:  # a distinctive line of hidden test code
                assert line not in released_lines, line
    for cell in cells(a, solution=True):
        assert cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].strip() not in text
    blank = nbformat.read(graded.handins / "blank" / a / f"{a}.ipynb", as_version=4)
    assert [c.source for c in blank.cells] == [c.source for c in released.cells], "blank = the release"


@pytest.mark.slow
@pytest.mark.parametrize("student, a", [(s, a) for s, table in EXPECTED.items() for a in table])
def test_demo_class_scores(graded, student, a):
    assert graded.scores[student][a] == EXPECTED[student][a]
    outcome = graded.outcomes[student, a]
    assert outcome.recorded and not outcome.problems and not outcome.flags, (outcome.problems, outcome.flags)


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(DEMO_BUGS))
def test_bug_feedback_names_the_mistake(graded, student):
    bug = DEMO_BUGS[student]
    messages = graded.messages.get(student, {}).get(bug.assignment, {})
    assert set(messages) == set(bug.breaks)
    message = messages[bug.breaks[0]]
    assert bug.says in message, message
    assert "HIDDEN" not in message and "checks." not in message and "run_student" not in message


@pytest.mark.slow
def test_blank_feedback_says_not_implemented(graded):
    for a in ASSIGNMENTS:
        assert set(graded.messages["blank"][a]) == set(EXPECTED["blank"][a]), "every test fails on the release"
        for gid, message in graded.messages["blank"][a].items():
            assert "not implemented yet" in message or "is not defined" in message, (gid, message)
