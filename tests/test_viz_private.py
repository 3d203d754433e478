"""seqlib.viz.private: each figure draws exactly the data it was given (from the library's own functions) and
rejects bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_checks import no_pyplot_figures, renders  # noqa: F401 (an autouse fixture)

from seqlib import lut, viz
from seqlib.fixedpoint_rnn import FixedPointRNN
from seqlib.secure_rnn import secure_inference
from seqlib.sensor_models import build_sensor_classifier, fixed_point_accuracy

pytestmark = pytest.mark.part4


def test_function_error():
    curves = {m: lut.function_error(m, 8, points=301) for m in ("sigmoid_lut", "sigmoid_generic")}
    fig = viz.plot_function_error(curves, title="sigmoid")
    left, right = fig.get_axes()
    exact, *approx = left.get_lines()
    np.testing.assert_array_equal(exact.get_ydata(), curves["sigmoid_lut"]["exact"].numpy())
    for line, c in zip(approx, curves.values(), strict=True):
        np.testing.assert_array_equal(line.get_xdata(), c["x"].numpy())
        np.testing.assert_array_equal(line.get_ydata(), c["approx"].numpy())
    err = right.get_lines()[1].get_ydata()
    positive = curves["sigmoid_generic"]["error"].numpy()
    np.testing.assert_array_equal(err[positive > 0], positive[positive > 0])
    assert right.get_yscale() == "log" and fig.get_suptitle() == "sigmoid"
    renders(fig)
    with pytest.raises(ValueError, match="'x', 'approx' and 'error'"):
        viz.plot_function_error({"a": {"x": [1.0]}})
    with pytest.raises(ValueError, match="non-empty mapping"):
        viz.plot_function_error({})


def test_error_vs_bits():
    errors = {m: {f: float(lut.function_error(m, f, points=201)["max_error"]) for f in (4, 8, 12)}
              for m in ("tanh_lut", "tanh_generic")}
    fig = viz.plot_error_vs_bits(errors)
    (ax,) = fig.get_axes()
    lines = ax.get_lines()
    assert len(lines) == 3  # two methods and the ulp line
    for line, per_bits in zip(lines, errors.values(), strict=False):
        np.testing.assert_array_equal(line.get_xdata(), [4, 8, 12])
        np.testing.assert_array_equal(line.get_ydata(), [per_bits[f] for f in (4, 8, 12)])
    np.testing.assert_array_equal(lines[2].get_ydata(), 2.0 ** -np.array([4.0, 8.0, 12.0]))
    assert ax.get_yscale() == "log"
    renders(fig)
    with pytest.raises(TypeError, match="mapping"):
        viz.plot_error_vs_bits({"a": [1.0, 2.0]})


def test_accuracy_vs_bits_and_communication():
    torch.manual_seed(0)
    model = build_sensor_classifier("fastgrnn", hidden_size=3, num_classes=6).eval()
    x, y = torch.randn(20, 6, 3), torch.randint(0, 6, (20,))
    acc = fixed_point_accuracy(model, x, y, frac_bits=(4, 8), digit_bits=(4, 8))
    fig = viz.plot_accuracy_vs_bits(acc, float_accuracy=0.5)
    (ax,) = fig.get_axes()
    d4, d8, float_line = ax.get_lines()
    np.testing.assert_array_equal(d4.get_xdata(), [4, 8])
    np.testing.assert_array_equal(d8.get_ydata(), [acc[(4, 8)], acc[(8, 8)]])
    np.testing.assert_array_equal(float_line.get_ydata(), [0.5, 0.5])
    renders(fig)
    with pytest.raises(ValueError, match="pairs"):
        viz.plot_accuracy_vs_bits({8: 0.9})

    fx = FixedPointRNN.from_float(model, frac_bits=8, bits=16, digit_bits=4)
    report = secure_inference(fx, x[:2, :3]).report
    fig = viz.plot_communication(report, title="bytes")
    (ax,) = fig.get_axes()
    by_op = report.by("op")
    widths = [p.get_width() for p in ax.patches]
    np.testing.assert_allclose(widths, [d["online_bytes"] / 2 / 1e3 for d in by_op.values()])
    assert [t.get_text() for t in ax.get_yticklabels()] == list(by_op)
    renders(fig)
    grouped = viz.plot_communication({"LUT": {"sigmoid": 800.0, "trunc": 50.0}, "generic": {"sigmoid": 1400.0}},
                                     unit=1)
    (ax,) = grouped.get_axes()
    assert sorted(p.get_width() for p in ax.patches) == [0.0, 50.0, 800.0, 1400.0]
    with pytest.raises(TypeError, match="mapping"):
        viz.plot_communication(3.0)
