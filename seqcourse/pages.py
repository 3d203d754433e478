"""Feedback pages a student may read: scores and curated messages, never a hidden test.

nbgrader's ``generate_feedback`` renders the autograded notebook as it is, hidden tests included. Here every
feedback page is made from the autograded notebook with

- nbgrader's ``ClearHiddenTests`` applied to every cell (the hidden regions are gone from the source);
- test cells reduced to their curated error message (:mod:`seqcourse.outputs`): no traceback of a hidden
  line, no output printed by hidden code;
- nbgrader's ``GetGrades`` and feedback template, so it looks like nbgrader's feedback;
- no outputs of the student's own cells (they know what their code prints; showing it back would let code that
  ran after a test print that test's source, which IPython keeps in ``In``);
- a failed test shows its message first (the diagnosis, where the eye lands), then the student's own frames, and
  the message wraps instead of running off in a horizontally scrolling box;
- MathJax from the course's own copy (``feedback/_static/mathjax``, as the lecture site has it), never from a
  public CDN: the maths renders offline and behind a proxy, and opening a page tells no third party anything;

and then *checked*: the rendered page (tags stripped, entities decoded) is searched for every hidden-test line of
the assignment (except lines the student wrote in their own cells); a page that contains one is replaced by a
notice that the feedback is withheld. A notebook that could not be graded (missing, not a notebook) gets a short
page that says why. This module renders pages inside worker processes; :mod:`seqcourse.feedback` decides which
pages to make and runs the workers.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from .notebooks import mathjax_head
from .outputs import normalise_test_cell
from .paths import jupyter_env
from .sanitize import cell_kind, find_leaks, html_text

MAX_MESSAGE = 1200

#: what nbconvert's ``mathjax()`` macro writes (a script from cdnjs and its configuration)
_CDN_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_ANY_REMOTE_MATHJAX = re.compile(r"<script[^>]*src=\"https?://[^\"]*mathjax[^\"]*\"[^>]*>\s*</script>", re.I)
#: failure messages wrap (nbconvert's classic style keeps ``white-space: pre`` and scrolls sideways)
_FEEDBACK_CSS = """<style type="text/css">
div.output_error pre, div.output_subarea.output_error pre {
  white-space: pre-wrap; overflow-wrap: anywhere; word-break: normal; overflow-x: visible;
}
div.output_error { max-width: 100%; }
</style>
"""

def _exporter():
    import nbgrader
    from traitlets.config import Config

    base = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    c = Config()
    c.HTMLExporter.template_name = "feedback"
    c.HTMLExporter.extra_template_basedirs = [str(base / "templates")]
    c.HTMLExporter.extra_template_paths = [str(base / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    return HTMLExporter(config=c)


def student_view(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The autograded notebook as a student may see it: hidden tests cleared, test outputs reduced to messages
    (the message first, then the student's own frames)."""
    from nbgrader.preprocessors import ClearHiddenTests

    nb, _ = ClearHiddenTests(enforce_metadata=False).preprocess(nb, {})
    counts = {c.get("execution_count") for c in nb.cells
              if c.cell_type == "code" and cell_kind(c) in ("solution", "plain")} - {None}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell_kind(cell) == "test":
            normalise_test_cell(cell, counts)
            cell.outputs = [_message_first(_shorten(o)) for o in cell.outputs if o.get("output_type") == "error"]
        else:
            # the student knows what their own cells print; showing it back would let code that ran after a test
            # print that test's source (IPython keeps every executed cell in ``In``) into the feedback
            cell.outputs = []
    return nb


def _shorten(output):
    """Cap the text of an error a student's code may have written (its message reaches the feedback)."""
    output["evalue"] = str(output.get("evalue", ""))[:MAX_MESSAGE]
    output["traceback"] = [str(t)[:4 * MAX_MESSAGE] for t in output.get("traceback", [])][:12]
    return output


def _message_first(output):
    """``["Traceback (your code):", frames..., "AssertionError: ..."]`` -> the message, then the frames."""
    tb = list(output.get("traceback", []))
    if len(tb) > 1:
        output["traceback"] = [tb[-1], "", *tb[:-1]]
    return output


def offline_maths(body: str, mathjax_url: str) -> str:
    """The page with nbconvert's MathJax (from cdnjs) replaced by the course's own copy at ``mathjax_url``, and the
    styles that wrap failure messages."""
    head = mathjax_head(mathjax_url)
    body, found = _CDN_MATHJAX.subn(lambda _: head, body, count=1)
    body = _ANY_REMOTE_MATHJAX.sub("", body)
    extra = _FEEDBACK_CSS if found else _FEEDBACK_CSS + head
    return body.replace("</head>", extra + "</head>", 1)


def render_feedback(page: dict, exporter=None) -> dict:
    """Render one feedback page (see :func:`feedback_jobs`); a page that would leak becomes a withheld notice."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    out = Path(page["out"])
    nb = nbformat.read(page["autograded"], as_version=4)
    nb = student_view(nb)
    # a line the student wrote in their own cells is theirs to see again (it tells them nothing new)
    own = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and cell_kind(c) in ("solution", "plain"))
    secret = {line for line in page["hidden"] if not find_leaks(own, {line})}
    resources = {"nbgrader": {"notebook": page["notebook"], "assignment": page["assignment"],
                              "student": page["student"], "db_url": page["db_url"]},
                 "metadata": {"name": page["notebook"]}, "config_dir": jupyter_env()["JUPYTER_CONFIG_DIR"]}
    nb, resources = GetGrades().preprocess(nb, resources)
    nb, resources = CSSHTMLHeaderPreprocessor().preprocess(nb, resources)
    body, _ = (exporter or _exporter()).from_notebook_node(nb, resources)
    body = offline_maths(body, page.get("mathjax_url", "_static/mathjax/MathJax.js"))
    leaks = find_leaks(html_text(body), secret) + find_leaks(body, secret)
    if leaks:
        body = withheld_page(page["student"], page["assignment"], page["notebook"])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.incoming")
    staging.write_text(body, encoding="utf-8")
    os.replace(staging, out)
    return {"out": str(out), "leaks": sorted(set(leaks))}


def render_batch(job: dict, progress=None) -> dict:
    """Worker job ``kind="feedback"``: render ``job["pages"]`` with one exporter (its templates load once)."""
    exporter = _exporter()
    results = []
    for i, page in enumerate(job["pages"]):
        try:
            results.append(render_feedback(page, exporter))
        except Exception as exc:  # noqa: BLE001 - one broken notebook does not stop the others
            results.append({"out": page["out"], "leaks": [], "error": repr(exc)})
        if progress:
            progress("feedback", i + 1, len(job["pages"]))
    return {"kind": "feedback", "pages": results}


def problem_page(student: str, assignment: str, notebook: str, message: str, max_score: float) -> str:
    """A small feedback page for a notebook that could not be graded."""
    esc = html.escape
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(assignment)} / {esc(notebook)}</title>"
            f"</head><body style='font-family: sans-serif; max-width: 50em; margin: 2em auto'>"
            f"<h1>{esc(assignment)} / {esc(notebook)}.ipynb</h1>"
            f"<p><b>Score: 0 / {max_score:g}</b></p><p>This notebook could not be graded: {esc(message)}.</p>"
            f"<p>Hand in <code>{esc(assignment)}/{esc(notebook)}.ipynb</code>, the notebook you were given, with your "
            f"answers filled in.</p><p><small>Student: {esc(student)}</small></p></body></html>")


def withheld_page(student: str, assignment: str, notebook: str) -> str:
    """What a student gets instead of a page that would have shown hidden-test lines."""
    esc = html.escape
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(assignment)} / {esc(notebook)}</title>"
            f"</head><body style='font-family: sans-serif; max-width: 50em; margin: 2em auto'>"
            f"<h1>{esc(assignment)} / {esc(notebook)}.ipynb</h1><p>Your feedback for this notebook is withheld: "
            f"it would have shown parts of the hidden tests. Your instructor has been told; your grade is not "
            f"affected by this page.</p><p><small>Student: {esc(student)}</small></p></body></html>")


