"""Bringing hand-ins into the course: ``<student>/<assignment>/<notebook>.ipynb``, from a folder or a zip.

Hand-ins are copied into nbgrader's ``submitted/`` folder of the course (a student's new hand-in of an assignment
replaces the old one). Only notebooks and nbgrader's ``timestamp.txt`` are taken: any other file a student hands
in is listed but never copied, so nothing handed in can shadow a module the grader imports. Zips are read
defensively (no absolute paths, no ``..``, no links, bounded size); a zip may hold the student folders at its top
level or inside one enclosing folder.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .course import Course, valid_id

MAX_ZIP_BYTES = 2 * 2**30
MAX_ZIP_MEMBERS = 100_000
KEPT = ("timestamp.txt",)


@dataclass
class Handin:
    """One student's hand-in of one assignment, in the course's ``submitted/`` folder."""

    student: str
    assignment: str
    folder: Path
    notebooks: list[str]
    extra_files: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.student}/{self.assignment}"


def _extract_zip(path: Path, dest: Path) -> list[str]:
    """Extract the notebooks and timestamps of a zip safely; return the names of what was skipped."""
    skipped, total = [], 0
    with zipfile.ZipFile(path) as zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ValueError(f"{path.name}: more than {MAX_ZIP_MEMBERS} files in the zip")
        for info in members:
            name = info.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if info.is_dir():
                continue
            if (name.startswith("/") or ".." in parts or any(p.startswith(".") or p == "__MACOSX" for p in parts)
                    or stat.S_ISLNK(info.external_attr >> 16)):
                skipped.append(name)
                continue
            if not (name.endswith(".ipynb") or parts[-1] in KEPT):
                skipped.append(name)
                # keep the folder, so that a hand-in without its notebook is still seen (and graded as missing)
                dest.joinpath(*parts[:-1]).mkdir(parents=True, exist_ok=True)
                continue
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise ValueError(f"{path.name}: more than {MAX_ZIP_BYTES // 2**30} GiB once unpacked")
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    return skipped


def _class_root(root: Path, assignments: set[str]) -> Path:
    """The folder whose children are student folders (``root`` or its single sub-folder)."""
    def looks_like_class(d: Path) -> bool:
        return any(a.is_dir() and a.name in assignments for s in d.iterdir() if s.is_dir() for a in s.iterdir())

    if looks_like_class(root):
        return root
    children = [d for d in root.iterdir() if d.is_dir()]
    if len(children) == 1 and looks_like_class(children[0]):
        return children[0]
    return root


def scan(folder: Path, assignments: set[str]) -> tuple[list[Handin], list[str]]:
    """The hand-ins under ``folder`` (``<student>/<assignment>/``) and a list of problems found."""
    handins, problems = [], []
    if not folder.is_dir():
        return handins, [f"{folder} is not a folder"]
    for sdir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not valid_id(sdir.name):
            problems.append(f"{sdir.name!r} is not a valid student id (letters, digits, . _ - @ +): skipped")
            continue
        for adir in sorted(p for p in sdir.iterdir() if not p.name.startswith(".")):
            if not adir.is_dir():
                problems.append(f"{sdir.name}: stray file {adir.name!r} outside an assignment folder: skipped")
                continue
            if adir.name not in assignments:
                problems.append(f"{sdir.name}: unknown assignment {adir.name!r}: skipped")
                continue
            notebooks = sorted(p.stem for p in adir.glob("*.ipynb"))
            extra = sorted(str(p.relative_to(adir)) for p in adir.rglob("*")
                           if p.is_file() and p.suffix != ".ipynb" and p.name not in KEPT)
            handins.append(Handin(sdir.name, adir.name, adir, notebooks, extra))
    return handins, problems


def collect(course: Course, source: Path | str, assignments: list[str] | None = None) -> tuple[list[Handin], list[str]]:
    """Copy the hand-ins in ``source`` (a folder or a ``.zip``) into ``course/submitted`` and return them.

    Returns ``(handins, problems)``; ``handins`` point into ``course/submitted``.
    """
    source = Path(source).resolve()
    known = set(assignments or course.assignments())
    if source == course.submitted.resolve():
        return scan(source, known)
    with tempfile.TemporaryDirectory(prefix="collect-") as tmp:
        problems: list[str] = []
        if source.is_file() and zipfile.is_zipfile(source):
            skipped = _extract_zip(source, Path(tmp))
            root = _class_root(Path(tmp), known)
            if skipped:
                problems.append(f"{source.name}: {len(skipped)} file(s) that are not notebooks were not taken")
        elif source.is_dir():
            root = _class_root(source, known)
        else:
            raise FileNotFoundError(f"no such folder or zip file: {source}")
        found, scan_problems = scan(root, known)
        problems += scan_problems
        handins = []
        for h in found:
            dest = course.submitted / h.student / h.assignment
            staging = dest.with_name(dest.name + ".incoming")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for name in h.notebooks:
                shutil.copy2(h.folder / f"{name}.ipynb", staging / f"{name}.ipynb")
            for name in KEPT:
                if (h.folder / name).is_file():
                    shutil.copy2(h.folder / name, staging / name)
            shutil.rmtree(dest, ignore_errors=True)
            staging.rename(dest)
            handins.append(Handin(h.student, h.assignment, dest, h.notebooks, h.extra_files))
        return handins, problems
