"""The demo-widget shell every lecture demo is built on: rows of controls above a figure, redrawn on every change.

A demo is a dict of ipywidgets controls and a ``draw(values) -> (figure, data)`` callback: ``values`` is
``{name: control.value}``, the callback computes the numbers with seqlib, draws them with a :mod:`seqlib.viz`
function and returns the figure and the numbers. The shell shows the figure as a PNG and keeps the numbers, so a
test (or a curious student) can drive a demo without a browser:

- ``w.controls["step"].value = 3`` redraws; ``with w.hold(): ...`` changes several controls and redraws once;
- ``w.last_data`` holds the numbers behind the figure on screen, ``w.figure`` the figure, ``w.png`` its bytes;
- a ``ValueError`` raised by ``draw`` (e.g. a sentence without words) is shown as a message and the old figure
  stays.
"""

from __future__ import annotations

import contextlib
import html
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..threads import torch_threads

__all__ = ["DemoWidget", "DrawFn", "figure_png"]

#: ``draw(values) -> (figure, data)``: ``values`` is ``{name: control.value}``.
DrawFn = Callable[[dict[str, Any]], tuple[Figure, dict[str, Any]]]


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes (no pyplot, no global state)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class DemoWidget(widgets.VBox):
    """Controls above a figure (and optional extra widgets below it); any control change redraws the figure.

    Args:
        controls: ``{name: ipywidgets control}``; every control's ``value`` change triggers a redraw.
        draw: ``draw(values) -> (figure, data)`` with ``values = {name: control.value}``. It runs on one torch
            thread (demo-sized tensors are fastest there, and it never stalls on a busy machine). A ``ValueError``
            it raises is shown as a message above the figure, which stays as it was.
        title: a line of HTML above the controls (e.g. ``"<b>Attention</b>: softmax(QKᵀ/√d_k) V"``).
        rows: names of the controls per row. Default: three controls to a row, in the order of ``controls``.
        on_change: ``on_change(widget, name)`` runs before the redraw when control ``name`` changed; it may set
            other controls (they do not trigger redraws of their own).
        extra: widgets shown under the figure (e.g. an ``HTML`` box of generated text that ``draw`` fills in).
        dpi: resolution of the PNG; the image is shown at the figure's size at this resolution.

    Attributes:
        controls: the controls, by name. values(): ``{name: control.value}``.
        last_data: the ``data`` of the last successful draw. figure: its figure. png: its PNG bytes.
        image: the ``ipywidgets.Image`` showing the PNG. status: the ``ipywidgets.HTML`` message line.
        extra: the extra widgets. redraws: how many times the figure was drawn.
    """

    def __init__(self, controls: Mapping[str, widgets.ValueWidget], draw: DrawFn, *, title: str = "",
                 rows: Sequence[Sequence[str]] | None = None,
                 on_change: Callable[[DemoWidget, str], None] | None = None,
                 extra: Sequence[widgets.Widget] = (), dpi: int = 100) -> None:
        if not callable(draw):
            raise TypeError(f"draw must be a callable draw(values) -> (figure, data), but got {type(draw).__name__}")
        self.controls: dict[str, widgets.ValueWidget] = dict(controls)
        if rows is None:
            names = list(self.controls)
            rows = [names[k: k + 3] for k in range(0, len(names), 3)]
        missing = [n for row in rows for n in row if n not in self.controls]
        if missing:
            raise ValueError(f"rows name controls that do not exist: {missing}; the controls are {list(self.controls)}")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.image.add_class("seqcourse-demo-figure")
        self.status = widgets.HTML()
        self.extra = tuple(extra)
        boxes = [widgets.HBox([self.controls[n] for n in row], layout=widgets.Layout(flex_flow="row wrap"))
                 for row in rows]
        header = [widgets.HTML(title)] if title else []
        super().__init__([*header, *boxes, self.status, self.image, *self.extra])
        self.figure: Figure | None = None
        self.last_data: dict[str, Any] = {}
        self.redraws = 0
        self.dpi = dpi
        self._draw = draw
        self._on_change = on_change
        self._held = 0
        self._dirty = False
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self._changed(name), names="value")
        self.refresh()

    @property
    def png(self) -> bytes:
        """The PNG bytes currently shown."""
        return bytes(self.image.value)

    def values(self) -> dict[str, Any]:
        """``{name: control.value}``."""
        return {name: c.value for name, c in self.controls.items()}

    @contextlib.contextmanager
    def hold(self) -> Iterator[DemoWidget]:
        """Change several controls and redraw once, at the end: ``with w.hold(): w.controls[...].value = ...``.

        Nothing is redrawn if no control changed inside the block.
        """
        self._held += 1
        try:
            yield self
        finally:
            self._held -= 1
            if not self._held and self._dirty:
                self._dirty = False
                self.refresh()

    def _changed(self, name: str) -> None:
        with self.hold():
            self._dirty = True
            if self._on_change is not None:
                self._on_change(self, name)

    def refresh(self) -> None:
        """Draw the figure for the current control values."""
        try:
            with torch_threads(1):
                fig, data = self._draw(self.values())
        except ValueError as err:
            self.status.value = f"<span style='color:#b00020'>{html.escape(str(err))}</span>"
            return
        self.status.value = ""
        self.image.value = figure_png(fig, self.dpi)
        self.image.layout.width = f"{int(fig.get_figwidth() * self.dpi)}px"
        self.figure = fig
        self.last_data = data
        self.redraws += 1
