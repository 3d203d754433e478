"""``seqcourse feedback``: a feedback page for every autograded hand-in, rendered in parallel and checked for leaks.

MathJax for the pages' maths is copied once into ``feedback/_static/mathjax`` (hand that folder out with the pages:
they load it by a relative path and nothing from a network).

The pages themselves are made by :mod:`seqcourse.pages`; a page that would have shown a hidden-test line is
replaced by a notice that the feedback is withheld, and the step fails with :class:`LeakError` once every page
is written.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .course import grading_template
from .notebooks import install_mathjax
from .pages import problem_page
from .runner import Task, default_jobs, run_tasks
from .sanitize import LeakError, hidden_lines


def feedback_jobs(course, assignments: list[str] | None = None, students: list[str] | None = None):
    """The feedback pages to make: ``(pages to render, [(path, html)] pages to write directly)``."""
    jobs, pages, hidden_cache = [], [], {}
    if not course.autograded.is_dir():
        return jobs, pages
    mathjax = install_mathjax(course.feedback / "_static")  # the pages' maths, from the course's own files
    with course.gradebook() as gb:
        for sdir in sorted(p for p in course.autograded.iterdir() if p.is_dir()):
            if students and sdir.name not in students:
                continue
            for adir in sorted(p for p in sdir.iterdir() if p.is_dir()):
                if (assignments and adir.name not in assignments) or adir.name not in course.assignments():
                    continue
                result = {}
                if (adir / "grading.json").is_file():
                    result = json.loads((adir / "grading.json").read_text())
                for notebook in course.notebooks(adir.name):
                    key = (adir.name, notebook)
                    if key not in hidden_cache:
                        hidden_cache[key] = sorted(hidden_lines(grading_template(course, adir.name, notebook, gb)))
                    out = course.feedback / sdir.name / adir.name / f"{notebook}.html"
                    graded = adir / f"{notebook}.ipynb"
                    if graded.is_file():
                        jobs.append({"student": sdir.name, "assignment": adir.name,
                                     "notebook": notebook, "autograded": str(graded), "out": str(out),
                                     "db_url": course.db_url, "hidden": hidden_cache[key],
                                     "mathjax_url": os.path.relpath(course.feedback, out.parent) + "/" + mathjax})
                    else:
                        res = result.get("notebooks", {}).get(notebook, {})
                        max_score = sum(c.get("max_score", 0) for c in res.get("cells", {}).values())
                        pages.append((out, problem_page(sdir.name, adir.name, notebook,
                                                        res.get("message") or "it was not handed in", max_score)))
    return jobs, pages


def write_feedback(course, assignments=None, students=None, *, jobs: int | None = None, progress=None,
                   out=print) -> list[Path]:
    """Write ``feedback/<student>/<assignment>/<notebook>.html`` for every autograded hand-in (in parallel).

    Raises :class:`LeakError` when a page would have shown a hidden-test line (that page is replaced by a notice
    that the feedback is withheld, and every other page is written).
    """
    written, leaks, failures = [], [], []
    with tempfile.TemporaryDirectory(prefix="seqcourse-feedback-") as tmp:
        to_render, pages = feedback_jobs(course, assignments, students)
        for path, body in pages:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
            written.append(path)

        def on_result(task, result):
            if result.get("failed"):
                failures.append(f"{task.key}: {result['message']}")
                return
            for page in result["pages"]:
                if page.get("error"):
                    failures.append(f"{page['out']}: {page['error']}")
                elif page["leaks"]:
                    leaks.append(f"{page['out']}: {page['leaks'][:3]}")
                else:
                    written.append(Path(page["out"]))

        n = max(1, min(jobs or default_jobs(), len(to_render)))
        chunks = [to_render[i::n] for i in range(n)]
        tasks = [Task(f"feedback-{i}", {"kind": "feedback", "pages": chunk, "log": str(Path(tmp) / f"{i}.log")},
                      f"{len(chunk)} page(s)", hard_timeout=60 + 30 * len(chunk))
                 for i, chunk in enumerate(chunks) if chunk]
        run_tasks(tasks, n, on_result, progress=progress, desc="feedback")
    if failures:
        out("  feedback could not be made for:\n    " + "\n    ".join(failures))
    if leaks:
        raise LeakError("feedback would have shown hidden tests; these pages were withheld (a notice was written "
                        "instead):\n  " + "\n  ".join(leaks))
    return sorted(written)
