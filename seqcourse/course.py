"""The nbgrader course on disk: its configuration, folders, assignments and grading templates.

A :class:`Course` is read from a course root holding ``nbgrader_config.py`` (``course/`` in this repository).
Everything the pipeline writes stays inside that root, in nbgrader's folders (``release/``, ``submitted/``,
``autograded/``, ``feedback/``, ``gradebook.db``) plus ``grades.csv`` and ``report/``.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .paths import build_dir, find_course, jupyter_env

DEFAULT_CELL_TIMEOUT = 60.0  #: seconds one cell may run
DEFAULT_BUDGET = 600.0  #: seconds a whole notebook may take


class PipelineError(RuntimeError):
    """A step of the pipeline failed in a way the instructor must fix (the message says how)."""


#: what a student or assignment id may look like (a path component, nothing that escapes a folder)
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


def valid_id(name: str) -> bool:
    """True when ``name`` can be used as a student, assignment or notebook id."""
    return bool(ID_PATTERN.match(name)) and ".." not in name


@dataclass
class Course:
    """An nbgrader course root and what its ``nbgrader_config.py`` says.

    Args:
        root: the course directory (holds ``nbgrader_config.py``); default: see :func:`seqcourse.paths.find_course`.
    """

    root: Path
    source: Path
    db_url: str
    course_id: str
    config: object  # traitlets Config

    @classmethod
    def load(cls, root: Path | str | None = None) -> Course:
        """Read ``root/nbgrader_config.py`` (as nbgrader does) and return the course it describes."""
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config.loader import PyFileConfigLoader

        root = find_course(root)
        jupyter_env(build_dir(root))
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        config.CourseDirectory.root = str(root)
        coursedir = CourseDirectory(config=config)
        source = Path(coursedir.source_directory)
        if not source.is_absolute():
            source = (root / source).resolve()
        db_url = coursedir.db_url or f"sqlite:///{root / 'gradebook.db'}"
        return cls(root=root, source=source, db_url=db_url, course_id=coursedir.course_id or "default_course",
                   config=config)

    # ------------------------------------------------------------------ folders
    @property
    def project(self) -> Path:
        """The folder around the course root: ``lectures/``, the assignments' sources, ``build/``."""
        return self.root.parent

    @property
    def build(self) -> Path:
        return build_dir(self.root)

    @property
    def lectures(self) -> Path:
        return self.project / "lectures"

    @property
    def site(self) -> Path:
        """The rendered lectures (``seqcourse build``)."""
        return self.root / "site"

    @property
    def demo(self) -> Path:
        """The demo class: ``expected.json`` (committed) and the hand-ins generated from the exercises."""
        return self.root / "demo_submissions"

    @property
    def release(self) -> Path:
        return self.root / "release"

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    @property
    def autograded(self) -> Path:
        return self.root / "autograded"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def grades_csv(self) -> Path:
        return self.root / "grades.csv"

    @property
    def db_path(self) -> Path:
        if not self.db_url.startswith("sqlite:///"):
            raise ValueError(f"the pipeline needs an sqlite gradebook, got db_url={self.db_url!r}")
        return Path(self.db_url[len("sqlite:///"):])

    # ------------------------------------------------------------------ assignments
    def assignments(self) -> list[str]:
        """Every assignment in the source folder (a sub-folder holding at least one notebook), sorted."""
        if not self.source.is_dir():
            return []
        return sorted(p.name for p in self.source.iterdir()
                      if p.is_dir() and valid_id(p.name) and any(p.glob("*.ipynb")))

    def notebooks(self, assignment: str) -> list[str]:
        """Names (without ``.ipynb``) of the notebooks of ``assignment``, sorted."""
        return sorted(p.stem for p in (self.source / assignment).glob("*.ipynb")
                      if not p.name.startswith("."))

    def source_notebook(self, assignment: str, notebook: str) -> Path:
        return self.source / assignment / f"{notebook}.ipynb"

    def release_notebook(self, assignment: str, notebook: str) -> Path:
        return self.release / assignment / f"{notebook}.ipynb"

    def data_files(self, assignment: str) -> list[Path]:
        """Files of the source assignment other than notebooks (data the notebooks read), as nbgrader copies them."""
        base = self.source / assignment
        out = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
            for name in filenames:
                if name.endswith(".ipynb") or name.startswith("."):
                    continue
                out.append(Path(dirpath) / name)
        return sorted(out)

    def gradebook(self):
        """An open nbgrader ``Gradebook`` on this course's database (use it as a context manager)."""
        from nbgrader.api import Gradebook

        return Gradebook(self.db_url, self.course_id)


def grading_template(course: Course, assignment: str, notebook: str, gb=None) -> nbformat.NotebookNode:
    """The notebook a submission is graded as: the released notebook with every locked cell's source as
    nbgrader recorded it at release (so hidden tests are back) and the recorded checksums and points.

    Raises ``LookupError`` when the assignment was not released (``seqcourse release`` first).
    """
    path = course.release_notebook(assignment, notebook)
    if not path.is_file():
        raise LookupError(f"{assignment}/{notebook}.ipynb is not released yet: run `seqcourse release {assignment}`")
    nb = nbformat.read(path, as_version=4)
    own = gb is None
    gb = gb or course.gradebook()
    try:
        record = gb.find_notebook(notebook, assignment)
        sources = {cell.name: cell for cell in record.source_cells}
        points = {cell.name: float(cell.max_score) for cell in record.grade_cells}
    finally:
        if own:
            gb.close()
    template = copy.deepcopy(nb)
    for cell in template.cells:
        meta = cell.metadata.get("nbgrader")
        if not meta or "grade_id" not in meta:
            continue
        rec = sources.get(meta["grade_id"])
        if rec is None:
            raise LookupError(f"cell {meta['grade_id']!r} of {assignment}/{notebook} is not in the gradebook: "
                              f"release the assignment again")
        if rec.locked:
            cell.source = rec.source
        meta["checksum"] = rec.checksum
        if meta["grade_id"] in points:
            meta["points"] = points[meta["grade_id"]]
    return template
