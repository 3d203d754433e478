"""Executing and rendering notebooks headless (used by ``make course`` and the tests)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .paths import jupyter_env


def execute_notebook(path: Path, timeout: int = 600, cwd: Path | None = None) -> nbformat.NotebookNode:
    """Run every cell of the notebook at ``path`` in a fresh kernel and return the executed notebook.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first cell that fails.
    """
    jupyter_env()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd or Path(path).parent)}},
        store_widget_state=True,
    )
    client.execute()
    return nb


def render_html(nb: nbformat.NotebookNode, out: Path) -> Path:
    """Write an executed notebook as standalone HTML (widget state embedded, maths rendered offline)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out
