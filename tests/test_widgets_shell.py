"""The one demo-widget shell (seqlib.widgets.shell.DemoWidget), driven the way a student drives a demo."""

from __future__ import annotations

import ipywidgets as widgets
import pytest
import torch
from matplotlib.figure import Figure

from seqlib.widgets.shell import DemoWidget, figure_png

pytestmark = pytest.mark.part1


def line_figure(n: int) -> Figure:
    fig = Figure(figsize=(3, 2))
    fig.subplots().plot(range(n))
    return fig


def counter_demo(**kw):
    """A demo whose figure is a line of ``n`` points; ``n < 1`` is refused with a ValueError."""
    calls = []

    def draw(values):
        calls.append((dict(values), torch.get_num_threads()))
        if values["n"] < 1:
            raise ValueError("n must be at least 1")
        return line_figure(values["n"]), {"n": values["n"], "label": values["label"]}

    controls = {"n": widgets.IntSlider(value=3, min=-2, max=10), "label": widgets.Text(value="a"),
                "other": widgets.Checkbox(value=False)}
    return DemoWidget(controls, draw, **kw), calls


def test_draws_once_on_construction_with_the_control_values():
    w, calls = counter_demo(title="<b>demo</b>")
    assert len(calls) == 1 and calls[0][0] == {"n": 3, "label": "a", "other": False} == w.values()
    assert w.last_data == {"n": 3, "label": "a"} and w.redraws == 1
    assert isinstance(w.figure, Figure) and w.png == w.image.value == figure_png(w.figure, w.dpi)
    assert w.png.startswith(b"\x89PNG") and w.image.layout.width == "300px"  # 3 inches at 100 dpi
    assert isinstance(w.children[0], widgets.HTML) and w.children[0].value == "<b>demo</b>"


def test_every_change_redraws_and_drawing_uses_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        w, calls = counter_demo()
        png = w.png
        w.controls["n"].value = 7
        assert w.last_data["n"] == 7 and w.redraws == 2 and w.png != png
        assert all(threads == 1 for _, threads in calls)
        assert torch.get_num_threads() == 2  # restored after drawing
    finally:
        torch.set_num_threads(before)


def test_hold_redraws_once_and_only_if_something_changed():
    w, calls = counter_demo()
    with w.hold():
        w.controls["n"].value = 5
        w.controls["label"].value = "b"
        assert len(calls) == 1  # nothing drawn inside the block
    assert len(calls) == 2 and w.last_data == {"n": 5, "label": "b"}
    with w.hold():
        pass
    assert len(calls) == 2
    with w.hold(), w.hold():  # nested: one redraw at the end of the outer block
        w.controls["n"].value = 6
    assert len(calls) == 3


def test_on_change_runs_before_the_redraw_and_may_set_controls():
    seen = []

    def sync(w, name):
        seen.append(name)
        if name == "label":
            w.controls["n"].value = len(w.controls["label"].value)

    w, calls = counter_demo(on_change=sync)
    w.controls["label"].value = "abcd"
    assert seen == ["label", "n"] and len(calls) == 2  # the change it made is drawn in the same redraw
    assert w.last_data == {"n": 4, "label": "abcd"}


def test_value_errors_are_shown_and_the_figure_stays():
    w, _ = counter_demo()
    png, data = w.png, w.last_data
    w.controls["n"].value = 0
    assert "n must be at least 1" in w.status.value
    assert w.png == png and w.last_data == data and w.redraws == 1
    w.controls["n"].value = 2
    assert w.status.value == "" and w.last_data["n"] == 2


def test_rows_extra_widgets_and_bad_arguments():
    w, _ = counter_demo()
    boxes = [c for c in w.children if isinstance(c, widgets.HBox)]
    assert [len(b.children) for b in boxes] == [3]  # three controls to a row by default
    note = widgets.HTML("under the figure")
    w, _ = counter_demo(rows=[["label"], ["n", "other"]], extra=(note,))
    boxes = [c for c in w.children if isinstance(c, widgets.HBox)]
    assert [b.children for b in boxes] == [(w.controls["label"],), (w.controls["n"], w.controls["other"])]
    assert w.children[-1] is note and w.extra == (note,)
    with pytest.raises(ValueError, match="rows name controls that do not exist"):
        counter_demo(rows=[["n", "missing"]])
    with pytest.raises(TypeError, match="draw must be a callable"):
        DemoWidget({}, None)
