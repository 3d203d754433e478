"""Checks shared by the figure tests (``test_viz*.py``; imported by them, not collected as tests).

``no_pyplot_figures`` is an autouse fixture: importing it into a test module applies it to every test there.
"""

from __future__ import annotations

import io

import pytest
from matplotlib.figure import Figure


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """The functions never register figures with pyplot (nothing for the caller to close)."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def renders(fig: Figure) -> None:
    """The figure draws to a PNG without error."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
