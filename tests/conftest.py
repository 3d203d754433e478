"""Test-wide settings: Jupyter, IPython and matplotlib write into build/, never into $HOME; one torch thread."""

from __future__ import annotations

import os

import torch

from seqcourse.paths import jupyter_env

jupyter_env()
os.environ.setdefault("MPLBACKEND", "Agg")
# Small tensors on a shared 2-core machine: one thread per process avoids oversubscription.
torch.set_num_threads(1)


# --- grading pipeline: one fixture course, released and graded once per session (tests/test_grading_*.py) ---
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

GRADING_FIXTURES = Path(__file__).parent / "fixtures" / "grading"


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """The fixture course of tests/fixtures/grading: released, its whole class autograded, feedback written."""
    if str(GRADING_FIXTURES) not in sys.path:
        sys.path.insert(0, str(GRADING_FIXTURES))
    import graded

    return graded.build(tmp_path_factory.mktemp("graded-course"))
