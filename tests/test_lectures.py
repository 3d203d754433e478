"""Every lecture notebook executes headless, top to bottom, without an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqcourse.notebooks import execute_notebook

LECTURES = sorted((Path(__file__).resolve().parents[1] / "lectures").glob("[0-9][0-9]_*.ipynb"))

pytestmark = [pytest.mark.lectures, pytest.mark.slow]


def test_five_lectures_in_syllabus_order():
    assert [p.name[:3] for p in LECTURES] == ["01_", "02_", "03_", "04_", "05_"]


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_lecture_executes(path, tmp_path):
    nb = execute_notebook(path, timeout=600, cwd=path.parent)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
