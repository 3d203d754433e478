"""seqcourse.kernel.checks: tampering cannot fake a pass, delegation is caught, feedback names the right mistake."""

from __future__ import annotations

import builtins
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from seqcourse.kernel import checks

pytestmark = pytest.mark.course


def notebook(code: str) -> dict:
    """Run ``code`` in a fresh namespace that looks like a notebook's (``__name__ == "__main__"``)."""
    ns = {"__name__": "__main__", "torch": torch, "nn": nn, "F": F, "math": math, "checks": checks}
    exec(compile(code, "<cell>", "exec"), ns)
    return ns


def grading_error(fn, *args, **kwargs) -> str:
    with pytest.raises(checks.GradingError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------------------------------------------------
# Tampering: patching what a test relies on does not turn a wrong answer into a pass
# ---------------------------------------------------------------------------------------------------------
def always(value):
    return lambda *args, **kwargs: value


TAMPERING = [
    (torch, "allclose", always(True)),
    (torch, "equal", always(True)),
    (torch, "isclose", lambda a, b, *args, **kwargs: torch.ones_like(a, dtype=torch.bool)),
    (torch.testing, "assert_close", always(None)),
    (torch, "sub", lambda a, b, *args, **kwargs: torch.zeros_like(a)),
    (torch, "abs", lambda a, *args, **kwargs: torch.zeros_like(a)),
    (torch, "max", always(torch.tensor(0.0))),
    (torch, "amax", always(torch.tensor(0.0))),
    (torch, "all", always(torch.tensor(True))),
    (torch, "le", lambda a, b, *args, **kwargs: torch.ones_like(a, dtype=torch.bool)),
    (torch.Tensor, "__sub__", lambda a, b: torch.zeros_like(a)),
    (torch.Tensor, "__le__", lambda a, b: torch.ones_like(a, dtype=torch.bool)),
    (torch.Tensor, "abs", lambda a: torch.zeros_like(a)),
    (torch.Tensor, "max", always(torch.tensor(0.0))),
    (torch.Tensor, "detach", lambda a: torch.zeros(())),
    (torch.Tensor, "size", always(torch.Size([3]))),
    (np.testing, "assert_allclose", always(None)),
    (np.testing, "assert_array_equal", always(None)),
    (np, "allclose", always(True)),
    (builtins, "isinstance", always(True)),
    (builtins, "len", always(0)),
    (builtins, "abs", always(0.0)),
    (builtins, "max", always(0.0)),
    (builtins, "min", always(0.0)),
    (builtins, "all", always(True)),
    (builtins, "any", always(False)),
    (builtins, "float", always(0.0)),
    (builtins, "bool", always(True)),
    (builtins, "print", always(None)),
    (builtins, "AssertionError", type("Quiet", (Exception,), {})),
]


@pytest.mark.parametrize("owner, name, fake", TAMPERING,
                         ids=[f"{getattr(o, '__name__', o)}.{n}" for o, n, _ in TAMPERING])
def test_patched_library_cannot_fake_a_pass(monkeypatch, owner, name, fake):
    right = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    wrong = torch.tensor([1.0, 2.5, 3.0], dtype=torch.float64)

    def outcome(check, *args):  # nothing from pytest runs while the library is patched
        try:
            check(*args)
        except checks.GradingError:
            return "failed"
        except BaseException as exc:  # noqa: BLE001 (a crash is not a pass either)
            return f"crashed: {type(exc).__name__}"
        return "passed"

    monkeypatch.setattr(owner, name, fake)
    try:
        results = [outcome(checks.expect_close, "h_t", wrong, right), outcome(checks.expect_shape, "h_t", wrong, (4,))]
    finally:
        monkeypatch.undo()
    assert results == ["failed", "failed"]
    checks.expect_close("h_t", right, right)  # and the honest comparison still passes afterwards


def test_patched_torch_nn_does_not_corrupt_references(monkeypatch):
    x, h = checks.randn(2, 3, seed=1), checks.randn(2, 4, seed=2)
    honest = checks.torch_module("RNNCell", 3, 4, seed=0)
    expected = checks.call(honest, x, h)

    class Fake(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def forward(self, *args, **kwargs):
            return torch.zeros(2, 4, dtype=torch.float64)

    monkeypatch.setattr(nn, "RNNCell", Fake)
    monkeypatch.setattr(nn.RNNCell, "forward", Fake.forward)  # the fake's own forward; the captured one is intact
    ref = checks.torch_module("RNNCell", 3, 4, seed=0)
    assert type(ref).__name__ == "RNNCell" and type(ref) is not Fake
    torch.testing.assert_close(checks.call(ref, x, h), expected)


def test_a_torch_function_mode_is_refused():
    from torch.overrides import TorchFunctionMode

    class Liar(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    right = torch.ones(3, dtype=torch.float64)
    with Liar():
        message = grading_error(checks.expect_close, "out", right, right)
    assert "TorchFunctionMode" in message


def test_tensor_subclasses_and_non_tensors_are_refused():
    class Sneaky(torch.Tensor):
        pass

    right = torch.ones(3, dtype=torch.float64)
    assert "plain torch.Tensor" in grading_error(checks.expect_close, "out", right.as_subclass(Sneaky), right)
    assert "forget the `return`" in grading_error(checks.expect_close, "out", None, right)
    assert "tuple of 2 items" in grading_error(checks.expect_close, "out", (right, right), right)


def test_a_hint_is_advice_not_a_shape_name():
    """expect_close's hint goes with a value mismatch; a shape mismatch names the shape alone."""
    right = torch.ones(2, dtype=torch.float64)
    message = grading_error(checks.expect_close, "context", torch.ones(3), right, hint="mask is True for real tokens")
    assert message == "context should have shape = (2,), but yours has shape (3,)"
    message = grading_error(checks.expect_close, "context", right + 1, right, hint="mask is True for real tokens")
    assert message.endswith(". mask is True for real tokens")


def test_expect_equal_says_where_not_what():
    expected = torch.tensor([[3, 4, 5], [7, 8, 9]])
    message = grading_error(checks.expect_equal, "tokens", torch.tensor([[3, 4, 5], [7, 1, 9]]), expected)
    assert "1 of 6 entries differ" in message and "[1, 1]" in message
    assert "7, 8, 9" not in message and "[3, 4, 5]" not in message


def test_the_diagnosis_classes_are_read_only():
    """A student cell cannot replace the verdict (or a reference's mutation sites) to turn a failure into a pass."""
    from seqcourse.kernel.catalogue import Catalogue
    from seqcourse.kernel.mutations import Sites

    for cls, name in ((checks.Diagnosis, "verdict"), (checks.Diagnosis, "expect_close"), (Sites, "apply"),
                      (Catalogue, "sentence")):
        with pytest.raises(AttributeError):
            setattr(cls, name, lambda *args, **kwargs: None)
        with pytest.raises(AttributeError):
            delattr(cls, name)


def test_checks_module_is_read_only():
    with pytest.raises(AttributeError):
        checks.expect_close = lambda *args, **kwargs: None
    with pytest.raises(AttributeError):
        del checks.fail
    original = checks.__dict__["fail"]
    checks.__dict__["fail"] = None  # written behind its back; a grader can put the original back
    checks.fail = original
    assert checks.fail is original


# ---------------------------------------------------------------------------------------------------------
# Delegation guard
# ---------------------------------------------------------------------------------------------------------
DELEGATING = {
    "attribute": "def cell(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                 "    m = nn.RNNCell(3, 4).double()\n"
                 "    return m(x, h)\n",
    "import inside": "def cell(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                     "    from torch.nn import RNNCell\n"
                     "    return RNNCell(3, 4).double()(x, h)\n",
    "alias global": "R = nn.RNNCell\n"
                    "def cell(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                    "    return R(3, 4).double()(x, h)\n",
    "helper": "def helper(x, h):\n"
              "    return torch.rnn_tanh_cell(x, h, torch.ones(4, 3, dtype=x.dtype), torch.ones(4, 4, dtype=x.dtype))\n"
              "def cell(x, h, w_ih, w_hh, b_ih, b_hh):\n"
              "    return helper(x, h)\n",
    "default argument": "def cell(x, h, w_ih, w_hh, b_ih, b_hh, kernel=torch.rnn_tanh_cell):\n"
                        "    return kernel(x, h, w_ih, w_hh, b_ih, b_hh)\n",
    "hidden from the scan, swallowed": "def cell(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                                       "    try:\n"
                                       "        getattr(nn, 'RNN' + 'Cell')(3, 4)\n"
                                       "    except BaseException:\n"
                                       "        pass\n"
                                       "    return torch.tanh(x @ w_ih.T + h @ w_hh.T + b_ih + b_hh)\n",
    "seqlib": "import seqlib\n"
              "def cell(x, h, w_ih, w_hh, b_ih, b_hh):\n"
              "    return seqlib.RNNCell(3, 4).double()(x, h)\n",
}


@pytest.mark.parametrize("how", list(DELEGATING))
def test_delegation_is_caught_and_tripwires_restored(how):
    before = (nn.RNNCell.forward, nn.RNNCell.__init__, torch.rnn_tanh_cell, vars(nn.RNNCell).get("__init__"))
    ns = notebook(DELEGATING[how])
    args = (checks.randn(2, 3, seed=1), checks.randn(2, 4, seed=2), checks.randn(4, 3, seed=3),
            checks.randn(4, 4, seed=4), checks.randn(4, seed=5), checks.randn(4, seed=6))
    message = grading_error(checks.run_student, ns["cell"], *args, task="rnn")
    assert "is implemented by calling" in message and "no points" in message
    assert "RNNCell" in message or "rnn_tanh_cell" in message
    assert (nn.RNNCell.forward, nn.RNNCell.__init__, torch.rnn_tanh_cell, vars(nn.RNNCell).get("__init__")) == before
    cell = nn.RNNCell(3, 4)  # torch.nn works again
    assert cell(torch.randn(1, 3)).shape == (1, 4)


def test_manual_bptt_may_not_use_autograd():
    ns = notebook("def rnn_bptt(x, hs, w_hh, grad_hs, truncate=None):\n"
                  "    return torch.autograd.grad(hs.sum(), [w_hh])\n")
    message = grading_error(checks.run_student, ns["rnn_bptt"], None, None, None, None, task="bptt")
    assert "torch.autograd" in message and "by hand" in message
    ns = notebook("def rnn_bptt(loss):\n"
                  "    getattr(loss, 'back' + 'ward')()\n")
    leaf = torch.ones(2, requires_grad=True)
    message = grading_error(checks.run_student, ns["rnn_bptt"], (leaf * 2).sum(), task="bptt")
    assert "Tensor.backward" in message
    assert torch.Tensor.backward.__name__ == "backward" and "wire" not in repr(torch.Tensor.backward)
    (leaf * 2).sum().backward()  # restored
    assert leaf.grad is not None


def test_honest_code_passes_the_guard_and_references_run_inside_it():
    ns = notebook("def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):\n"
                  "    return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)\n"
                  "def rnn_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):\n"
                  "    h, out = h0, []\n"
                  "    for t in range(x.shape[0]):\n"
                  "        h = rnn_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)\n"
                  "        out.append(h)\n"
                  "    return torch.stack(out), h\n"
                  "def bad_rnn_cell(*args):\n"
                  "    raise RuntimeError('should have been swapped out')\n")
    ns["rnn_cell_backup"] = ns["rnn_cell"]
    ref = checks.torch_module("RNN", 3, 4, seed=0)
    w = checks.params(ref)
    x, h0 = checks.randn(5, 2, 3, seed=1), checks.randn(2, 4, seed=2)
    weights = (w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"])
    out = checks.run_student(ns["rnn_layer"], x, h0, *weights, task="rnn")
    checks.expect_close(("output", "h_n"), out, (checks.call(ref, x, h0[None])[0], checks.call(ref, x, h0[None])[1][0]))
    # uses=: the notebook's rnn_cell is swapped for the reference during the call, then put back
    ns["rnn_cell"] = ns["bad_rnn_cell"]
    ns["x"], ns["h0"], ns["weights"] = x, h0, weights
    exec("result = checks.run_student(rnn_layer, x, h0, *weights, task='rnn', uses=['rnn_cell'])", ns)
    checks.expect_close("output", ns["result"][0], checks.call(ref, x, h0[None])[0])
    assert ns["rnn_cell"] is ns["bad_rnn_cell"]


def test_student_errors_become_curated_feedback_without_test_code():
    ns = notebook("def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):\n"
                  "    # YOUR CODE HERE\n"
                  "    raise NotImplementedError()\n"
                  "def broken(x):\n"
                  "    return x @ torch.ones(7, 2, dtype=x.dtype)\n"
                  "def slow(x):\n"
                  "    while True:\n"
                  "        pass\n")
    message = grading_error(checks.run_student, ns["rnn_cell"], 1, 2, 3, 4)
    assert "not implemented yet" in message
    with pytest.raises(checks.GradingError) as info:
        checks.run_student(ns["broken"], torch.ones(2, 3), hint="check the weight's orientation")
    rendered = "\n".join(info.value._render_traceback_())
    assert "RuntimeError" in rendered and "weight's orientation" in rendered
    assert "x @ torch.ones(7, 2" in rendered or "<cell>" in rendered  # the student's own frame
    assert "run_student" not in rendered and "test_student_errors" not in rendered  # no test code
    assert rendered.splitlines()[-1].startswith("AssertionError: ")
    message = grading_error(checks.run_student, ns["slow"], 1, time_limit=0.3)
    assert "took longer than 0.3 s" in message


def test_gradient_flow_check_catches_a_detached_state():
    code = ("def layer(x, h0, w):\n"
            "    h = h0\n"
            "    for t in range(x.shape[0]):\n"
            "        h = torch.tanh(x[t] + h{cut} @ w.T)\n"
            "    return h\n")
    honest, cut = notebook(code.format(cut="")), notebook(code.format(cut=".detach()"))
    inputs = [checks.randn(4, 2, 3, seed=1), checks.randn(2, 3, seed=2), checks.randn(3, 3, seed=3, scale=0.5)]
    checks.expect_gradients_flow("layer", honest["layer"], inputs, ["x", "h0", "w"])
    message = grading_error(checks.expect_gradients_flow, "layer", cut["layer"], inputs, ["x", "h0", "w"])
    assert "graph" in message and any(f"respect to {name} " in message for name in ("x", "h0", "w"))


def test_setup_notebook_prints_warnings_on_stdout(capsys):
    import sys

    saved = (warnings.showwarning, sys.stderr, torch.get_num_threads())
    try:
        checks.setup_notebook(seed=3)
        warnings.warn("careful", UserWarning, stacklevel=1)
        sys.stderr.write("to stderr\n")
        first = torch.rand(1)
        checks.setup_notebook(seed=3)
        assert torch.equal(first, torch.rand(1))
        assert torch.get_num_threads() == 1
    finally:
        warnings.showwarning, sys.stderr = saved[0], saved[1]
        torch.set_num_threads(saved[2])
    out = capsys.readouterr()
    assert "UserWarning: careful" in out.out and "to stderr" in out.out and out.err == ""


def test_suspicious_lines():
    code = "x = 1\ntorch.allclose = lambda *a, **k: True\nchecks.fail = print\n# torch.equal = 1\ny = x == 2\n"
    assert checks.suspicious_lines(code) == ["torch.allclose = lambda *a, **k: True", "checks.fail = print"]


# ---------------------------------------------------------------------------------------------------------
# The diagnosis engine names the right mistake (the catalogues' self-test is tests/test_diagnosis.py)
# ---------------------------------------------------------------------------------------------------------
def diagnosed(name: str, fn, cases, what="out", **run) -> str:
    """The message when ``fn`` (a student's function) is checked on ``cases`` = [(args, expected)]."""
    def check():
        with checks.diagnosis(name) as d:
            for args, expected in cases:
                d.expect_close(what, d.run(fn, *args, **run), expected)

    return grading_error(check)


def rnn_cell_cases():
    cases = []
    for seed, (n, h_in, hidden) in enumerate([(5, 3, 4), (2, 4, 4)]):
        ref = checks.torch_module("RNNCell", h_in, hidden, seed=seed)
        w = checks.params(ref)
        x, h = checks.randn(n, h_in, seed=1 + seed), checks.randn(n, hidden, seed=2 + seed)
        cases.append(((x, h, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"]), checks.call(ref, x, h)))
    return cases


def test_rnn_cell_mistakes_are_named():
    ns = notebook("def transposed(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                  "    return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh + b_hh)\n"
                  "def no_bhh(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                  "    return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T)\n"
                  "def slightly_off(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                  "    return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh) + 1e-3\n")
    cases = rnn_cell_cases()
    assert "W_hh is transposed" in diagnosed("rnn_cell", ns["transposed"], cases, task="rnn")
    assert "forgot the bias b_hh" in diagnosed("rnn_cell", ns["no_bhh"], cases, task="rnn")
    message = diagnosed("rnn_cell", ns["slightly_off"], cases, task="rnn")
    assert "largest difference is 0.001" in message and "tolerance" in message


def test_a_mutation_must_reproduce_every_tested_input():
    """A mistake that agrees with a mutation on one input but not on another is not named after it."""
    ns = notebook("def sometimes(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                  "    w = w_hh if x.shape[0] == 5 else w_hh.T\n"
                  "    return torch.tanh(x @ w_ih.T + b_ih + h @ w + b_hh)\n")
    cases = rnn_cell_cases()
    assert "W_hh is transposed" in diagnosed("rnn_cell", ns["sometimes"], cases[:1], task="rnn")
    message = diagnosed("rnn_cell", ns["sometimes"], cases, task="rnn")
    assert "transposed" not in message and "does not match the reference" in message


def test_an_error_is_explained_by_the_mutation_that_raises_it():
    ns = notebook("def cell(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                  "    return torch.tanh(x @ w_ih + b_ih + h @ w_hh.T + b_hh)\n")
    message = diagnosed("rnn_cell", ns["cell"], rnn_cell_cases(), task="rnn")
    assert "raised RuntimeError" in message and "Likely cause: W_ih is transposed" in message


def test_hidden_inputs_stay_hidden():
    """A diagnosis says what is wrong, never the values of the hidden inputs or of the reference."""
    ns = notebook("def cell(x, h, w_ih, w_hh, b_ih, b_hh):\n"
                  "    return torch.sigmoid(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)\n")
    cases = rnn_cell_cases()
    message = diagnosed("rnn_cell", ns["cell"], cases, task="rnn")
    assert "sigmoid" in message
    for args, expected in cases:
        for value in (*args, expected):
            for number in value.flatten()[:5].tolist():
                assert f"{number:.3g}" not in message and f"{number:.4f}" not in message


@pytest.mark.parametrize("order", ["ifog", "figo", "igfo", "oifg"])
def test_lstm_gate_order_is_named(order):
    ref = checks.torch_module("LSTMCell", 3, 4, seed=0)
    w = checks.params(ref)
    x, h, c = checks.randn(2, 3, seed=1), checks.randn(2, 4, seed=2), checks.randn(2, 4, seed=3)
    ns = notebook(f"def lstm_cell(x, state, w_ih, w_hh, b_ih, b_hh):\n"
                  f"    h, c = state\n"
                  f"    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh\n"
                  f"    parts = dict(zip({order!r}, gates.chunk(4, -1)))\n"
                  f"    c_t = torch.sigmoid(parts['f']) * c + torch.sigmoid(parts['i']) * torch.tanh(parts['g'])\n"
                  f"    return torch.sigmoid(parts['o']) * torch.tanh(c_t), c_t\n")
    message = diagnosed("lstm_cell", ns["lstm_cell"], [((x, (h, c), *w.values()), checks.call(ref, x, (h, c)))],
                        what=("h_t", "c_t"), task="lstm")
    assert "gate order" in message and "i, f, g, o" in message and ", ".join(order) in message


def test_attention_mistakes_are_named():
    q, k, v = checks.randn(2, 4, 6, seed=1), checks.randn(2, 5, 6, seed=2), checks.randn(2, 5, 3, seed=3)
    ns = notebook("def unscaled(q, k, v, attn_mask=None, is_causal=False):\n"
                  "    weights = torch.softmax(q @ k.transpose(-2, -1), -1)\n"
                  "    return weights @ v, weights\n"
                  "def after(q, k, v, attn_mask=None, is_causal=False):\n"
                  "    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)\n"
                  "    if attn_mask is not None:\n"
                  "        weights = weights * attn_mask\n"
                  "    return weights @ v, weights\n"
                  "def multiplied(q, k, v, attn_mask=None, is_causal=False):\n"
                  "    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
                  "    weights = torch.softmax(scores * attn_mask if attn_mask is not None else scores, -1)\n"
                  "    return weights @ v, weights\n")
    expected = checks.reference("scaled_dot_product_attention")(q, k, v)
    assert "scale the scores by 1/sqrt(d_k)" in diagnosed(
        "scaled_dot_product_attention", ns["unscaled"], [((q, k, v), expected)], what=("output", "weights"))
    mask = checks.randn(4, 5, seed=4) > 0
    mask[:, 0] = True
    sdpa = checks.reference("scaled_dot_product_attention")

    def masked(fn, attn_mask):
        def check():
            with checks.diagnosis("scaled_dot_product_attention") as d:
                d.expect_close(("output", "weights"), d.run(fn, q, k, v, attn_mask=attn_mask),
                               sdpa(q, k, v, attn_mask=attn_mask))
        return grading_error(check)

    assert "the mask must be applied before the softmax" in masked(ns["after"], mask)
    message = masked(ns["multiplied"], checks.randn(4, 5, seed=5))
    assert "a float mask is added to the scores (before the softmax), not multiplied" in message


def test_clip_mistakes_are_named():
    ns = notebook("def clip_grad_norm_(parameters, max_norm, norm_type=2.0):\n"
                  "    grads = [p.grad for p in parameters]\n"
                  "    total = torch.linalg.vector_norm(torch.stack([g.norm(norm_type) for g in grads]), norm_type)\n"
                  "    for g in grads:\n"
                  "        g.mul_(max_norm / (total + 1e-6))\n"
                  "    return total\n")
    grads = [checks.randn(3, 4, seed=1), checks.randn(5, seed=2)]
    _, clipped = checks.clip_reference(grads, 100.0)

    def check():
        with checks.diagnosis("clip_grad_norm_") as d:
            _, mine = d.run(ns["clip_grad_norm_"], grads, 100.0, task="clip", compare=lambda out: out[1])
            d.expect_close("grads", checks.flat("g", mine), checks.flat("g", clipped))

    assert "capped at 1" in grading_error(check)


def test_bptt_mistakes_are_named():
    catalogue = checks.CATALOGUES["rnn_bptt"]
    variant = next(v for v in catalogue.variants(*checks.bptt_case(5)[0]) if v.key == "dL/dh0:delta_1")
    args, expected = checks.bptt_case(5)

    def check():
        with checks.diagnosis("rnn_bptt") as d:
            grads = d.run(catalogue.handin(variant), *args, compare=lambda grads: grads[4])
            d.expect_close("grad_h0", grads[4], expected[4])

    assert "h0 enters the first step through W_hh" in grading_error(check)


# ---------------------------------------------------------------------------------------------------------
# The references swapped in by ``uses=`` agree with torch.nn (outputs and gradients)
# ---------------------------------------------------------------------------------------------------------
@settings(max_examples=8, deadline=None)
@given(steps=st.integers(1, 5), batch=st.integers(1, 3), h_in=st.integers(1, 4), hidden=st.integers(1, 4),
       seed=st.integers(0, 1000))
def test_recurrent_references_match_torch(steps, batch, h_in, hidden, seed):
    for name, ref_name in (("RNN", "rnn_layer"), ("LSTM", "lstm_layer")):
        module = checks.torch_module(name, h_in, hidden, seed=seed)
        x = checks.randn(steps, batch, h_in, seed=seed + 1)
        weights = [p.detach().clone().requires_grad_() for p in checks.params(module).values()]
        if name == "RNN":
            h0 = checks.randn(batch, hidden, seed=seed + 2)
            out, h_n = checks.reference(ref_name)(x, h0, *weights)
            expected = checks.call(module, x, h0[None])
            torch.testing.assert_close((out, h_n), (expected[0], expected[1][0]))
        else:
            state = (checks.randn(batch, hidden, seed=seed + 2), checks.randn(batch, hidden, seed=seed + 3))
            out, (h_n, c_n) = checks.reference(ref_name)(x, state, *weights)
            expected = checks.call(module, x, (state[0][None], state[1][None]))
            torch.testing.assert_close((out, h_n, c_n), (expected[0], expected[1][0][0], expected[1][1][0]))
        ours = torch.autograd.grad(out.sum() + h_n.sum(), weights)
        theirs = torch.autograd.grad(expected[0].sum() + (expected[1] if name == "RNN" else expected[1][0]).sum(),
                                     list(module.parameters()))
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("truncate", [None, 1, 2, 3, 10])
def test_written_out_bptt_matches_autograd(truncate):
    args, expected = checks.bptt_case(11, steps=7, truncate=truncate)
    torch.testing.assert_close(checks.CATALOGUES["rnn_bptt"].correct(*args, truncate), expected)


def test_attention_references_match_torch():
    q, k, v = checks.randn(2, 3, 4, 6, seed=1), checks.randn(2, 3, 5, 6, seed=2), checks.randn(2, 3, 5, 7, seed=3)
    mask = checks.randn(4, 5, seed=4) > 0
    mask[:, 0] = True
    sdpa = checks.reference("scaled_dot_product_attention")
    for kwargs in ({}, {"attn_mask": mask}, {"attn_mask": checks.randn(4, 5, seed=5)}):
        torch.testing.assert_close(sdpa(q, k, v, **kwargs)[0], F.scaled_dot_product_attention(q, k, v, **kwargs))
    torch.testing.assert_close(sdpa(q, q, v[..., :4, :], is_causal=True)[0],
                               F.scaled_dot_product_attention(q, q, v[..., :4, :], is_causal=True))
    own = sdpa(q, k, v)[1]
    torch.testing.assert_close(checks.masked_from_own(own, v, attn_mask=mask), sdpa(q, k, v, attn_mask=mask))
    mha = checks.torch_module("MultiheadAttention", 8, 2, seed=0)
    w = checks.params(mha)
    query, key = checks.randn(4, 3, 8, seed=6), checks.randn(5, 3, 8, seed=7)
    args = (query, key, key, 2, w["in_proj_weight"], w["in_proj_bias"], w["out_proj.weight"], w["out_proj.bias"])
    catalogue = checks.CATALOGUES["multi_head_attention"]
    expected = checks.call(mha, query, key, key)
    torch.testing.assert_close(catalogue.correct(*args), expected)
    for variant in catalogue.variants(*args):  # every mutation that runs really differs from nn.MultiheadAttention
        try:
            out, weights = catalogue.mutant(variant)(*args)
        except RuntimeError:
            continue
        same = all(a.shape == b.shape and torch.allclose(a, b) for a, b in zip((out, weights), expected, strict=True))
        assert not same, variant.key


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_reference_matches_torch(norm_first):
    torch.manual_seed(0)
    layer = checks.reference("EncoderLayer")(8, 2, 16, dropout=0.0, norm_first=norm_first).double()
    x = checks.randn(3, 5, 8, seed=1)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] * 4 + [True]])
    expected = checks.call(checks.reference_encoder_layer(layer), x, src_key_padding_mask=padding)
    torch.testing.assert_close(layer(x, src_key_padding_mask=padding)[~padding], expected[~padding])
    checks.randomise(layer, seed=3)  # with torch's initialisation norm1 and norm2 are alike
    catalogue = checks.CATALOGUES["EncoderLayer.forward"]
    for variant in catalogue.variants(x, module=layer):  # every mutation really changes the block's output
        if variant.key == f"norm_first:{'pre' if norm_first else 'post'}-norm whatever the flag":
            continue  # this block's own formula
        assert not torch.allclose(catalogue.mutant(variant, layer)(x), layer(x)), variant.key


def test_positional_encoding_and_sampling_references():
    pe = checks.reference("positional_encoding")(6, 4, torch.float64)
    assert pe[3, 0] == pytest.approx(math.sin(3)) and pe[3, 1] == pytest.approx(math.cos(3))
    assert pe[3, 2] == pytest.approx(math.sin(3 / 10000 ** 0.5)) and pe[3, 3] == pytest.approx(math.cos(3 / 100))
    probs = checks.reference("next_token_distribution")(torch.tensor([[1.0, 3.0, 2.0, 0.0]]), 0.5, 2)
    expected = torch.softmax(torch.tensor([3.0, 2.0]) / 0.5, 0)
    torch.testing.assert_close(probs, torch.tensor([[0.0, expected[0], expected[1], 0.0]]))
