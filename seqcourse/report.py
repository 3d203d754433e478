"""Grades out of the gradebook: nbgrader's CSV export, the grade table, and a per-assignment report.

- :func:`export_grades` writes ``course/grades.csv`` with nbgrader's ``CsvExportPlugin`` (the columns
  ``nbgrader export`` writes: assignment, duedate, timestamp, student_id, last_name, first_name, email,
  raw_score, late_submission_penalty, score, max_score).
- :func:`grade_table` is that CSV as a student x assignment table.
- :func:`write_report` writes ``course/report/report.md`` and one score histogram per assignment
  (``course/report/<assignment>.png``): mean, median, spread, and the tests most often failed with the message
  students saw most often.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import Counter
from pathlib import Path

from .course import Course

CSV_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
               "raw_score", "late_submission_penalty", "score", "max_score"]


def export_grades(course: Course, dest: Path | None = None) -> Path:
    """``nbgrader export`` into ``course/grades.csv`` (or ``dest``)."""
    from nbgrader.plugins.export import CsvExportPlugin

    dest = Path(dest or course.grades_csv)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.incoming")
    with course.gradebook() as gb:
        CsvExportPlugin(to=str(staging)).export(gb)
    staging.replace(dest)
    return dest


def read_grades(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def grade_table(course: Course, path: Path | None = None) -> list[str]:
    """The exported grades as text lines: one row per student, one column per assignment, and the total."""
    rows = read_grades(Path(path or course.grades_csv))
    assignments = sorted({r["assignment"] for r in rows})
    students = sorted({r["student_id"] for r in rows})
    cell = {(r["student_id"], r["assignment"]): r for r in rows}
    width = max([len("student")] + [len(s) for s in students])
    colw = [max(len(a), 9) for a in assignments]
    header = "  ".join(a.rjust(w) for a, w in zip(assignments, colw, strict=True))
    lines = ["  " + "student".ljust(width) + "  " + header + "  " + "total".rjust(11)]
    maxima = {a: float(next(r["max_score"] for r in rows if r["assignment"] == a) or 0) for a in assignments}
    for s in students:
        parts, total = [], 0.0
        for a, w in zip(assignments, colw, strict=True):
            r = cell.get((s, a))
            score = float(r["score"]) if r and r["score"] else 0.0
            total += score
            handed_in = (course.autograded / s / a).is_dir() or bool(r and r["timestamp"])
            parts.append((f"{score:g}/{maxima[a]:g}" if handed_in else "-").rjust(w))
        lines.append("  " + s.ljust(width) + "  " + "  ".join(parts) + "  "
                     + f"{total:g}/{sum(maxima.values()):g}".rjust(11))
    return lines


def _failures(course: Course, assignment: str) -> tuple[Counter, dict[str, Counter], int]:
    """How often each test of ``assignment`` was failed, and with which messages (from the grading records)."""
    failed: Counter = Counter()
    messages: dict[str, Counter] = {}
    n = 0
    for record in sorted(course.autograded.glob(f"*/{assignment}/grading.json")):
        result = json.loads(record.read_text())
        n += 1
        for res in result.get("notebooks", {}).values():
            for gid, cell in res.get("cells", {}).items():
                if cell.get("score") is not None and cell["score"] < cell.get("max_score", 0):
                    failed[gid] += 1
                    messages.setdefault(gid, Counter())[(cell.get("message") or "no message").split("\n")[0]] += 1
    return failed, messages, n


def write_report(course: Course, out=print) -> Path:
    """Write ``course/report/report.md`` and the histograms; print a few lines per assignment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_grades(course.grades_csv) if course.grades_csv.is_file() else read_grades(export_grades(course))
    folder = course.report_dir
    folder.mkdir(parents=True, exist_ok=True)
    md = ["# Grades report", ""]
    for assignment in sorted({r["assignment"] for r in rows}):
        subset = [r for r in rows if r["assignment"] == assignment
                  and ((course.autograded / r["student_id"] / assignment).is_dir() or r["timestamp"])]
        max_score = float(next(r["max_score"] for r in rows if r["assignment"] == assignment) or 0)
        scores = [float(r["score"] or 0) for r in subset]
        md += [f"## {assignment}", ""]
        if not scores:
            md += ["No graded submissions.", ""]
            out(f"  {assignment}: no graded submissions")
            continue
        mean, median = statistics.fmean(scores), statistics.median(scores)
        spread = statistics.pstdev(scores) if len(scores) > 1 else 0.0
        pct = 100 * mean / max_score if max_score else 0.0
        fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
        bins = min(20, max(5, int(max_score) + 1)) if max_score else 5
        ax.hist(scores, bins=bins, range=(0, max_score or 1), color="#4c72b0", edgecolor="white")
        ax.axvline(mean, color="#c44e52", linestyle="--", label=f"mean {mean:.2f}")
        ax.set(xlabel=f"score (out of {max_score:g})", ylabel="students", title=f"{assignment}: {len(scores)} graded")
        ax.legend(frameon=False)
        png = folder / f"{assignment}.png"
        fig.savefig(png, dpi=100)
        plt.close(fig)
        failed, messages, n = _failures(course, assignment)
        md += [f"- graded submissions: {len(scores)}", f"- mean: {mean:.2f} / {max_score:g} ({pct:.0f} %)",
               f"- median: {median:g}; standard deviation: {spread:.2f}; min {min(scores):g}, max {max(scores):g}",
               "", f"![{assignment} scores]({png.name})", "", "Most-failed tests:", "",
               "| test | failed by | most common message |", "| --- | --- | --- |"]
        top = failed.most_common(5)
        for gid, count in top:
            msg, _ = messages[gid].most_common(1)[0]
            md.append(f"| `{gid}` | {count}/{n} | {msg.replace('|', '/')[:120]} |")
        if not top:
            md.append("| (none) | | |")
        md.append("")
        worst = ", ".join(f"{gid} ({count}/{n})" for gid, count in top[:3]) or "none"
        out(f"  {assignment}: {len(scores)} graded, mean {mean:.2f}/{max_score:g} ({pct:.0f} %), "
            f"median {median:g}; most failed: {worst}")
    path = folder / "report.md"
    path.write_text("\n".join(md) + "\n")
    return path
