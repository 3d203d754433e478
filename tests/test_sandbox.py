"""The grading sandbox itself: what a kernel in it sees, the probe behind ``seqcourse doctor``, the refusal to grade
without a sandbox and what ``--no-sandbox`` records. The attacks on it are in ``test_sandbox_attacks.py``.

Without a working sandbox these tests are skipped (with the probe's reason and fix), except under CI, where they
fail: CI installs bubblewrap (``.ci/run``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import seqlib

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "grading"))
import fixture_course as fc  # noqa: E402
from graded import require_sandbox  # noqa: E402

from seqcourse.cli import main  # noqa: E402
from seqcourse.course import Course  # noqa: E402
from seqcourse.execute import Executor  # noqa: E402
from seqcourse.gradebook import check_gradebook, record_result, sandboxes  # noqa: E402
from seqcourse.release import release  # noqa: E402
from seqcourse.sandbox import HOME, LIB, RUN, format_size, parse_size, probe  # noqa: E402

pytestmark = pytest.mark.course
REPO = Path(__file__).resolve().parents[1]


def test_sizes_read_and_print_like_the_command_line():
    assert parse_size("4G") == parse_size("4GiB") == parse_size("4g") == 4 << 30
    assert parse_size("1500M") == 1500 << 20 and parse_size("512k") == 512 << 10 and parse_size(123) == 123
    assert parse_size("1.5G") == 3 << 29
    for bad in ("", "4X", "G", "-1G"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)
    assert format_size(4 << 30) == "4 GiB" and format_size(3 << 29) == "1.5 GiB" and format_size(512 << 20) == "512 MiB"


def test_the_probe_starts_a_sandbox_and_says_what_it_isolates():
    sandbox = require_sandbox()
    text = "\n".join(probe().lines())
    for topic in ("files", "network", "processes", "memory", "user"):
        assert f"  {topic}" in text
    assert "works on this machine" in text and sandbox.version in text
    assert "4 GiB" in text and "no network" in sandbox.label()

def test_doctor_and_check_report_the_sandbox(capsys):
    require_sandbox()
    assert main(["doctor", "--memory", "2G"]) == 0
    out = capsys.readouterr().out
    assert "works on this machine" in out and ("2 GiB for the kernel" in out or "2 GiB of address space" in out)


def test_without_bubblewrap_the_probe_names_the_fix(monkeypatch):
    monkeypatch.setenv("SEQCOURSE_BWRAP", "/no/such/bwrap")
    probe.cache_clear()
    try:
        check = probe(memory=3 << 30)
        assert not check.works and "does not run" in check.problem and "apt-get install bubblewrap" in check.fix
        assert "--no-sandbox" in check.fix
    finally:
        probe.cache_clear()


INSPECT = r"""
import importlib.util, json, os, socket, sys
import seqlib, seqcourse.kernel
report = {"cwd": os.getcwd(), "home": os.environ.get("HOME"), "pid": os.getpid(), "ppid": os.getppid(),
          "seqlib": seqlib.__file__, "kernel": seqcourse.kernel.__file__,
          "env": sorted(os.environ), "data": open("data/values.txt").read(),
          "nets": [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]],
          "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
          "run": sorted(os.listdir("/run/kernel")), "root": sorted(os.listdir("/")),
          "pipeline": importlib.util.find_spec("seqcourse.autograde") is not None}
for name, path in (("data_write", "data/values.txt"), ("prefix_write", os.path.join(sys.prefix, "x.py")),
                   ("lib_write", os.path.join(os.path.dirname(seqlib.__file__), "x.py"))):
    try:
        open(path, "a").write("x")
        report[name] = "written"
    except OSError as exc:
        report[name] = type(exc).__name__
open("scratch.txt", "w").write("mine")
report["scratch"] = open("scratch.txt").read()
print("REPORT" + json.dumps(report))
"""


def test_a_sandboxed_kernel_sees_its_own_folder_and_nothing_of_the_course(tmp_path, monkeypatch):
    sandbox = require_sandbox()
    data = tmp_path / "exercise" / "data" / "values.txt"
    data.parent.mkdir(parents=True)
    data.write_text("1 2 3\n")
    monkeypatch.setenv("SEQCOURSE_SECRET_TOKEN", "instructor-only")
    nb = new_notebook(cells=[new_code_cell(INSPECT)])
    executor = Executor(nb, ["student"], cwd=HOME, cell_timeout=60, sandbox=sandbox, guard=False,
                        data=[(str(data), "data/values.txt")], scratch=str(tmp_path))
    report = asyncio.run(executor.run())
    assert report.outcomes[0].status == "ok", nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    seen = json.loads(text.split("REPORT", 1)[1])
    assert seen["cwd"] == seen["home"] == HOME and seen["scratch"] == "mine" and seen["data"] == "1 2 3\n"
    assert seen["pid"] == 2 and seen["ppid"] == 1 and seen["procs"] == [1, 2]  # its own PID namespace
    assert seen["nets"] == ["lo"]  # its own network namespace
    assert seen["data_write"] == seen["prefix_write"] == seen["lib_write"] == "OSError"  # read-only (EROFS)
    if Path(seqlib.__file__).resolve().is_relative_to(REPO):  # an editable install
        assert seen["seqlib"].startswith(LIB) and seen["kernel"].startswith(LIB)
        assert not seen["pipeline"]  # only seqcourse.kernel of the checkout, not the instructor's pipeline
    assert "SEQCOURSE_SECRET_TOKEN" not in seen["env"] and "SEQCOURSE_ROOT" not in seen["env"]
    assert "OMP_NUM_THREADS" in seen["env"] and "SEQCOURSE_GRADING" in seen["env"]
    assert set(seen["run"]) == {"connection.json", *(f"kernel-{i}" for i in range(1, 6))}  # Unix sockets, no TCP
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("sqk-")]  # the grader's kernel folder is gone
    assert RUN == "/run/kernel"


@pytest.fixture(scope="module")
def small_course(tmp_path_factory) -> Course:
    root = tmp_path_factory.mktemp("sandbox-cli")
    course = Course.load(fc.make_course(root, ("fx_basic",)))
    release(course, validate=False, out=lambda s: None)
    fc.make_class(course.release, root / "handins", {"fx_basic": ["reference"]})
    return course


def _autograde_cli(course: Course, capsys, *extra: str) -> tuple[int, str, str]:
    """``seqcourse autograde`` (in this process: the grader's worker pool is already warm)."""
    status = main(["--course", str(course.root), "autograde", "--submissions", str(course.root.parent / "handins"),
                   "--jobs", "1", "--timeout", "30", "--no-progress", *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def no_bwrap(monkeypatch):
    """A machine without bubblewrap."""
    monkeypatch.setenv("SEQCOURSE_BWRAP", "/no/such/bwrap")
    probe.cache_clear()
    yield
    monkeypatch.delenv("SEQCOURSE_BWRAP", raising=False)
    probe.cache_clear()


def test_autograde_refuses_without_a_sandbox_and_names_the_fix(small_course, no_bwrap, capsys):
    status, out, err = _autograde_cli(small_course, capsys)
    assert status == 1
    assert "no working sandbox" in err and "apt-get install bubblewrap" in err and "--no-sandbox" in err
    assert not (small_course.autograded / "reference").exists()  # nothing was graded


@pytest.mark.slow
def test_no_sandbox_grades_warns_twice_and_marks_every_result(small_course, no_bwrap, capsys):
    status, out, err = _autograde_cli(small_course, capsys, "--no-sandbox")
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[1].startswith("WARNING: grading WITHOUT a sandbox") and lines[-1] == lines[1]  # top and bottom
    assert "fx_basic 5/5" in out and "graded without a sandbox" in out
    record = json.loads((small_course.autograded / "reference" / "fx_basic" / "grading.json").read_text())
    assert record["sandbox"] is None and "graded without a sandbox" in record["notebooks"]["fx_basic"]["flags"]
    assert sandboxes(small_course) == {("reference", "fx_basic"): None}
    con = sqlite3.connect(small_course.db_path)
    assert con.execute("SELECT flagged FROM submitted_notebook").fetchall() == [(1,)]
    assert main(["--course", str(small_course.root), "check"]) == 0
    assert "1 submission(s) graded without a sandbox: reference/fx_basic" in capsys.readouterr().out
    os.environ.pop("SEQCOURSE_BWRAP", None)
    probe.cache_clear()
    if probe().works:  # graded again in the sandbox: the mark goes, the label of the sandbox is recorded
        status, out, err = _autograde_cli(small_course, capsys)
        assert status == 0 and "WITHOUT" not in out, out + err
        (label,) = sandboxes(small_course).values()
        assert label == probe().sandbox.label()
        assert con.execute("SELECT flagged FROM submitted_notebook").fetchall() == [(0,)]


def test_a_manual_score_above_the_points_is_reported(tmp_path):
    course = Course.load(fc.make_course(tmp_path, ("fx_basic",)))
    release(course, validate=False, out=lambda s: None)
    cells = {gid: {"kind": "test", "score": 0.0, "max_score": float(points), "status": "failed", "message": "",
                   "needs_manual_grade": False} for gid, (points, _) in fc.TESTS.items()}
    notebook = {"status": "graded", "cells": cells, "comments": {}, "flags": []}
    record_result(course, {"student": "alice", "assignment": "fx_basic", "sandbox": "test",
                           "notebooks": {"fx_basic": notebook}})
    assert check_gradebook(course) == []
    con = sqlite3.connect(course.db_path)
    with con:
        con.execute("UPDATE grade SET manual_score = 99")  # what a kernel without a sandbox could do
    problems = check_gradebook(course)
    assert len(problems) == len(fc.TESTS) and all("manual score of 99 above" in p for p in problems)


def test_a_notebook_written_by_the_grader_is_valid(tmp_path):
    # the kernels' IPC transport changes nothing in what nbclient records
    sandbox = require_sandbox()
    nb = new_notebook(cells=[new_code_cell("print(6 * 7)")])
    asyncio.run(Executor(nb, ["student"], cwd=HOME, sandbox=sandbox, guard=False, scratch=str(tmp_path)).run())
    nbformat.validate(nb)
    assert nb.cells[0].outputs[0]["text"] == "42\n"


def test_without_cgroups_an_allocation_over_the_cap_is_a_memory_limit_and_grading_goes_on(tmp_path):
    # the rlimit fallback (a laptop without root): RLIMIT_AS per process, the failed allocation stops the cell
    sandbox = dataclasses.replace(require_sandbox(), cgroup=None, memory=2 << 30)
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("hoard = b'x' * (6 << 30)\ny = 2"),
                             new_code_cell("print(x, 'y' in globals())")])
    report = asyncio.run(Executor(nb, ["student"] * 3, cwd=HOME, sandbox=sandbox, guard=False,
                                  scratch=str(tmp_path)).run())
    assert [report.outcomes[i].status for i in range(3)] == ["ok", "memory", "ok"]
    assert "memory limit (2 GiB)" in report.outcomes[1].message and report.restarts == 1
    assert nb.cells[2].outputs[0]["text"] == "1 False\n"  # a fresh kernel replayed the cell before, not the hog
    assert "rlimit" in sandbox.label() and any("RLIMIT_AS" in text for _, text in sandbox.isolation())
