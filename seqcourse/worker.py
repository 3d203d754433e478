"""Grading one submission (or validating one notebook) inside a worker process.

A worker never writes to the course's gradebook: it reads the hand-in, rebuilds it on the grading template
(:func:`seqcourse.sanitize.canonicalize`), runs nbgrader's own sanitising preprocessors against a read-only
snapshot of the gradebook, executes it (:class:`seqcourse.execute.Executor`) in the sandbox
(:mod:`seqcourse.sandbox`, described by ``job["sandbox"]``; ``None`` only with ``--no-sandbox``), whose scratch
folder holds only the assignment's data files (never files handed in by the student, which could shadow
``seqlib`` or ``torch``), scores it with nbgrader's rules on the normalised outputs, writes the autograded
notebook into its own output folder and returns a plain ``dict``. The parent process records that result in the
gradebook in one transaction (:mod:`seqcourse.gradebook`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path

import nbformat

from .execute import Executor
from .outputs import strip_ansi
from .sandbox import HOME, Sandbox
from .sanitize import InvalidSubmission, canonicalize, cell_kind, hidden_lines, read_submission, review_flags

GRADER_VERSION = "1"


def _roles_for(nb: nbformat.NotebookNode) -> list[str]:
    roles = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            roles.append("markdown")
            continue
        kind = cell_kind(cell)
        roles.append({"plain": "student"}.get(kind, kind))
    return roles


def _nbgrader_sanitize(nb: nbformat.NotebookNode, job: dict, notebook: str) -> nbformat.NotebookNode:
    """nbgrader's autograde sanitisers (after our rebuild they have nothing left to fix; they stay as a check)."""
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        DeduplicateIds,
        OverwriteCells,
        OverwriteKernelspec,
    )

    resources = {"nbgrader": {"notebook": notebook, "assignment": job["assignment"], "student": job["student"],
                              "db_url": job["db_url"], "course_id": job.get("course_id", "default_course")}}
    for cls in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
        pp = cls(add_missing_cells=True) if cls is OverwriteCells else cls()
        nb, resources = pp.preprocess(nb, resources)
    return nb


def _data(job: dict) -> list[tuple[str, str]]:
    """``(file, path relative to the kernel's folder)`` of every data file of the assignment."""
    base = Path(job["data_dir"]) if job.get("data_dir") else None
    return [(str(Path(name)), str(Path(name).relative_to(base) if base else Path(name).name))
            for name in job.get("data_files", [])]


def _scratch(job: dict, prefix: str) -> Path:
    """Without a sandbox: a folder of the grader's holding copies of the data files, the kernel's working folder."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=job.get("scratch")))
    for src, rel in _data(job):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, work / rel)
    return work


def grade_notebook(job: dict, notebook: str, progress=None, on_kernel=None) -> dict:
    """Grade one notebook of a submission; never raises for anything the hand-in does."""
    spec = job["notebooks"][notebook]
    template = nbformat.read(spec["template"], as_version=4)
    res: dict = {"status": "graded", "message": "", "cells": {}, "comments": {}, "notes": [], "flags": [],
                 "restarts": 0, "seconds": 0.0, "autograded": None}
    grade_cells = [c for c in template.cells if cell_kind(c) in ("test", "manual", "task")]

    def zero_all(status: str, message: str) -> dict:
        res.update(status=status, message=message)
        for cell in grade_cells:
            meta = cell.metadata.nbgrader
            res["cells"][meta["grade_id"]] = {"kind": cell_kind(cell), "score": 0.0,
                                              "max_score": float(meta.get("points", 0)), "status": status,
                                              "message": message, "needs_manual_grade": False}
        return res

    path = spec.get("path")
    if not path or not Path(path).is_file():
        return zero_all("missing", f"no {notebook}.ipynb was handed in")
    try:
        submitted = read_submission(path)
    except InvalidSubmission as exc:
        return zero_all("invalid", f"{notebook}.ipynb could not be read: {exc}")
    canonical = canonicalize(submitted, template)
    nb = canonical.nb
    if job.get("db_url"):
        nb = _nbgrader_sanitize(nb, job, notebook)
    roles = _roles_for(nb)
    res["notes"] = canonical.notes
    res["flags"] = review_flags(nb, roles)
    sandbox = Sandbox.from_job(job.get("sandbox"))
    work = None if sandbox else _scratch(job, f"{job['student']}-{job['assignment']}-")
    try:
        executor = Executor(nb, roles, cwd=str(work) if work else HOME, cell_timeout=job["cell_timeout"],
                            budget=job["budget"], max_restarts=job.get("max_restarts", 3),
                            kernel_name=job.get("kernel_name", "python3"),
                            on_progress=(lambda d, t: progress(notebook, d, t)) if progress else None,
                            on_kernel=on_kernel, secret=hidden_lines(template), sandbox=sandbox, data=_data(job),
                            scratch=job.get("scratch"))
        report = asyncio.run(executor.run())
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    res["restarts"], res["seconds"] = report.restarts, round(report.seconds, 3)
    for outcome in report.outcomes.values():  # a lost answer or extra cell: said in the summary, too
        if outcome.status in ("timeout", "memory", "died") and not nb.cells[outcome.index].metadata.get(
                "nbgrader", {}).get("grade"):
            gid = nb.cells[outcome.index].metadata.get("nbgrader", {}).get("grade_id") or f"cell {outcome.index}"
            res.setdefault("lost", []).append(f"{gid}: {outcome.message}")
    guard_by_cell = {o.index: o.guard for o in report.outcomes.values()}
    for note in report.guard_notes:
        res["flags"].append(f"the grader undid tampering ({note})")

    from nbgrader.utils import compute_checksum, determine_grade

    for index, (cell, role) in enumerate(zip(nb.cells, roles, strict=True)):
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if not gid:
            continue
        if meta.get("grade"):
            score, max_score = determine_grade(cell)
            outcome = report.outcomes.get(index)
            guard_note = guard_by_cell.get(index, "ok")
            untrusted = guard_note.startswith("guard could not run") or guard_note.startswith("guard gave")
            if score is None:
                status = "manual"
            elif score >= max_score:
                status = "passed"
            else:
                status = outcome.status if outcome and outcome.status not in ("ok", "error") else "failed"
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            message = ""
            if status not in ("passed", "manual"):  # what the student sees: the curated last line
                message = strip_ansi(str(errors[-1]["traceback"][-1])) if errors and errors[-1].get("traceback") \
                    else (outcome.message if outcome else "")
            res["cells"][gid] = {
                "kind": role if role in ("test", "manual", "task") else cell_kind(cell),
                "score": None if score is None else float(score), "max_score": float(max_score), "status": status,
                "message": message, "needs_manual_grade": score is None or untrusted,
            }
        if meta.get("solution") or meta.get("task"):
            unchanged = meta.get("checksum") == compute_checksum(cell) and not meta.get("task")
            res["comments"][gid] = "No response." if unchanged else None
    res["flags"] = list(dict.fromkeys(res["flags"]))
    out = Path(job["outdir"]) / f"{notebook}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    res["autograded"] = str(out)
    return res


def grade_submission(job: dict, progress=None, on_kernel=None) -> dict:
    """Grade every notebook of one student's hand-in of one assignment."""
    start = time.monotonic()
    sandbox = Sandbox.from_job(job.get("sandbox"))
    result = {"kind": "grade", "student": job["student"], "assignment": job["assignment"], "notebooks": {},
              "timestamp": job.get("timestamp"), "extra_files": job.get("extra_files", []),
              "grader_version": GRADER_VERSION, "sandbox": sandbox.label() if sandbox else None}
    for notebook in job["notebooks"]:
        try:
            result["notebooks"][notebook] = grade_notebook(job, notebook, progress, on_kernel)
        except Exception as exc:  # noqa: BLE001 - reported for this notebook, never fatal for the batch
            result["notebooks"][notebook] = {"status": "error", "message": f"the grader failed: {exc!r}",
                                             "traceback": traceback.format_exc(), "cells": {}, "comments": {},
                                             "notes": [], "flags": [], "restarts": 0, "seconds": 0.0,
                                             "autograded": None}
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


# ------------------------------------------------------------------------------------------ validation

def validate_notebook(job: dict, progress=None, on_kernel=None) -> dict:
    """``nbgrader validate`` (or ``--invert``) of one notebook, executed with the grader's executor."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput
    from nbgrader.validator import Validator

    sandbox = Sandbox.from_job(job.get("sandbox"))
    executor_options = {"cell_timeout": job["cell_timeout"], "budget": job["budget"],
                        "kernel_name": job.get("kernel_name", "python3"), "sandbox": sandbox, "data": _data(job)}

    class GradingValidator(Validator):
        def _preprocess(self, nb):
            resources: dict = {}
            for cls in (CheckCellMetadata, ClearOutput):
                nb, resources = cls(parent=self).preprocess(nb, resources)
            work = None if sandbox else _scratch(job, "validate-")
            try:
                executor = Executor(nb, _roles_for(nb), cwd=str(work) if work else HOME, on_kernel=on_kernel,
                                    on_progress=(lambda d, t: progress(Path(job["path"]).stem, d, t))
                                    if progress else None, **executor_options)
                asyncio.run(executor.run())
            finally:
                if work is not None:
                    shutil.rmtree(work, ignore_errors=True)
            return nb

    validator = GradingValidator(invert=job.get("invert", False))
    start = time.monotonic()
    results = validator.validate(job["path"])
    return {"kind": "validate", "path": job["path"], "invert": job.get("invert", False), "results": results,
            "seconds": round(time.monotonic() - start, 3)}


# ------------------------------------------------------------------------------------------ process entry

def run_job(job: dict, conn) -> None:
    """Entry point of a worker process: run ``job`` and send ``("result", dict)`` (or ``("error", text)``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business: it stops us cleanly
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    if job.get("log"):  # our output and the kernels' (they inherit it) go to a log, not over the progress bars
        fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)

    def send(*msg) -> None:
        try:
            conn.send(msg)
        except (BrokenPipeError, OSError):
            pass

    def progress(notebook: str, done: int, total: int) -> None:
        send("progress", notebook, done, total)

    def on_kernel(pid: int) -> None:
        send("kernel", pid)

    try:
        if job["kind"] == "grade":
            send("result", grade_submission(job, progress, on_kernel))
        elif job["kind"] == "validate":
            send("result", validate_notebook(job, progress, on_kernel))
        elif job["kind"] == "feedback":
            from .pages import render_batch

            send("result", render_batch(job, progress))
        else:
            raise ValueError(f"unknown job kind {job['kind']!r}")
    except BaseException:  # noqa: BLE001 - the parent reports it
        send("error", traceback.format_exc())
    finally:
        try:
            conn.close()
        except OSError:
            pass
