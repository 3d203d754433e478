"""Checks that run inside an assignment's kernel: pristine references, feedback in the lecture's words, a guard.

Every assignment's first, read-only cell runs ``from seqlib.grading import checks`` before any student code,
then ``checks.setup_notebook()``. The graded test cells call only the functions below, so a student cell that
monkeypatches ``torch.allclose``, ``torch.testing.assert_close``, ``numpy.testing``, builtins such as
``isinstance`` or ``abs``, or rebinds ``torch.nn.LSTM``, cannot turn a wrong answer into a pass: everything
this module uses was captured when it was imported (its functions even see a private copy of ``builtins``).

A failed check raises :class:`GradingError` (an ``AssertionError``). In a notebook it displays as one line,
``AssertionError: <curated message>``, plus the student's own frames when their code raised: the hidden test
code of the cell never appears in the feedback.

Test-cell API
-------------
``setup_notebook(seed=0, threads=1)``
    Seeds ``random``/numpy/torch, prints warnings to stdout and sends ``sys.stderr`` to stdout (nbgrader scores a
    cell that writes to stderr as failed), and uses one torch thread (tiny tensors; predictable on busy graders).
``run_student(fn, *args, task=None, uses=(), time_limit=20.0, hint="", **kwargs)``
    Calls the student's function, class or module. ``task`` names a delegation guard (``TASKS``: ``"rnn"``,
    ``"embedding"``, ``"bptt"``, ``"clip"``, ``"lstm"``, ``"attention"``, ``"transformer"``, ``"lm"``,
    ``"sampling"``): the student's code (and the notebook helpers it calls) is scanned, and during the call the
    torch.nn / seqlib entry points that would do the exercise for the student are replaced by tripwires (always
    restored). ``uses`` names notebook helpers (e.g. ``"rnn_cell"``) swapped for correct ``REFERENCES`` during
    the call, so each part is graded on its own (a mistake in ``rnn_cell`` costs points once, not again in
    ``rnn_layer``). The released stub's ``NotImplementedError``, an exception, a tripwire or the time limit become
    a :class:`GradingError` with a curated message.
``expect(condition, message)``, ``fail(message)``
``expect_tensor(what, value)`` -> detached float64 copy; ``expect_shape(what, actual, shape, hint="")``
``expect_close(what, actual, expected, *, rtol=RTOL, atol=ATOL, diagnoses=None, hint="")``
    ``what``/``actual``/``expected`` may be tuples of several outputs. ``diagnoses`` maps a curated message to
    what a known mistake returns (from the ``*_mistakes`` functions); when the student's output matches one, that
    message is the feedback; otherwise a generic one with the largest error, where, and the tolerance.
``expect_equal(what, actual, expected)`` (integer tensors), ``accuracy(what, logits_batches, label_batches)``
``unpack(what, value, ("output", ("h_n", "c_n")))`` -> leaves, checking the returned structure;
``flat(what, tensors)`` -> one float64 vector
``expect_gradients_flow(what, fn, inputs, names, task=None, uses=())``
    Backpropagates through the student's ``fn`` and compares each named input's gradient with finite differences
    of the same ``fn`` (float64): grades "gradients flow" apart from "values are right".
``randn(*shape, seed, scale=1.0)``, ``randint(high, shape, seed, low=0)``: inputs from a private generator, so
    grading never depends on the global random stream.
``torch_module(name, *args, seed, **kwargs)``, ``call(module, *args)``, ``params(module)``,
``copy_weights(module, {name: tensor})``: torch.nn references (float64, reproducible weights) built from classes
    captured at import and run through their captured ``forward``; copying weights into a student's module.
``reference(name)`` / ``REFERENCES``: correct versions of the exercises' helpers (for ``uses=``).
Per-exercise references and known mistakes (each ``*_mistakes`` returns ``{message: wrong_output}``):
    A1 ``rnn_cell_mistakes``, ``rnn_layer_mistakes``, ``classifier_mistakes``;
    A2 ``bptt_case``, ``bptt_reference``, ``bptt_mistakes``, ``with_grads``, ``clip_reference``,
    ``clip_norm_mistakes``, ``clip_scaling_mistakes``, ``grad_norms_reference``, ``grad_norms_mistakes``;
    A3 ``lstm_cell_mistakes``, ``lstm_layer_mistakes``;
    A4 ``sdpa_mistakes``, ``masked_from_own``, ``mask_mistakes``, ``mha_mistakes``, ``additive_mistakes``;
    A5 ``positional_encoding_mistakes``, ``reference_encoder_layer``, ``encoder_layer_mistakes``,
    ``reference_lm_logits``, ``lm_mistakes``, ``next_token_mistakes``, ``fake_lm``.
Self-consistency: some edge cases are graded against the student's *own* function (masking against their own
unmasked weights, padding against the unpadded sequence, one sample against a batch of one), so that they grade
the edge case alone.

The guard and the captured references defend against casual tampering from student cells, not against an
attacker with arbitrary code execution in the same process; ``suspicious_lines(source)`` lists student lines
that touch the grading machinery, for the pipeline to flag for a human.
"""

from __future__ import annotations

import builtins as _builtins_module

# A private copy of builtins: functions below keep the originals even if a student patches ``builtins``.
globals()["__builtins__"] = dict(vars(_builtins_module))

import dis  # noqa: E402
import itertools  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Iterable, Sequence  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

__all__ = [
    "ATOL", "GradingError", "REFERENCES", "RTOL", "TASKS", "accuracy", "additive_mistakes", "bptt_case",
    "bptt_mistakes", "bptt_reference", "call", "classifier_mistakes", "clip_norm_mistakes", "clip_reference",
    "clip_scaling_mistakes", "copy_weights", "encoder_layer_mistakes", "expect", "expect_close", "expect_equal",
    "expect_gradients_flow", "expect_shape", "expect_tensor", "fail", "fake_lm", "flat", "grad_norms_mistakes",
    "grad_norms_reference", "lm_mistakes", "lstm_cell_mistakes", "lstm_layer_mistakes", "mask_mistakes",
    "masked_from_own", "mha_mistakes", "next_token_mistakes", "params", "positional_encoding_mistakes", "randint",
    "randn", "reference", "reference_encoder_layer", "reference_lm_logits", "rnn_cell_mistakes", "rnn_layer_mistakes",
    "run_student", "sdpa_mistakes", "setup_notebook", "suspicious_lines", "torch_module", "unpack", "with_grads",
]

RTOL = 1e-5
ATOL = 1e-6

# --------------------------------------------------------------------------------------------------------
# Pristine references, captured at import (before any student cell runs)
# --------------------------------------------------------------------------------------------------------
_t = types.SimpleNamespace(
    Tensor=torch.Tensor, Generator=torch.Generator, float64=torch.float64, bool=torch.bool, long=torch.long,
    equal=torch.equal, isclose=torch.isclose, abs=torch.abs, sub=torch.sub, add=torch.add, mul=torch.mul,
    div=torch.div, argmax=torch.argmax, isfinite=torch.isfinite, isnan=torch.isnan, all=torch.all, sum=torch.sum,
    where=torch.where, zeros=torch.zeros, ones=torch.ones, zeros_like=torch.zeros_like, ones_like=torch.ones_like,
    full=torch.full, arange=torch.arange, randn=torch.randn, randint=torch.randint, stack=torch.stack, cat=torch.cat,
    matmul=torch.matmul, tanh=torch.tanh, sigmoid=torch.sigmoid, relu=torch.relu, exp=torch.exp, sin=torch.sin,
    cos=torch.cos, softmax=torch.softmax, tril=torch.tril, triu=torch.triu, topk=torch.topk,
    masked_fill=torch.masked_fill, transpose=torch.transpose, reshape=torch.reshape, unsqueeze=torch.unsqueeze,
    squeeze=torch.squeeze, remainder=torch.remainder, eq=torch.eq, permute=torch.permute, le=torch.le,
    flip=torch.flip, chunk=torch.chunk, pow=torch.pow, linalg_vector_norm=torch.linalg.vector_norm,
    no_grad=torch.no_grad, enable_grad=torch.enable_grad, manual_seed=torch.manual_seed,
    autograd_grad=torch.autograd.grad, vf_rnn_tanh=torch._VF.rnn_tanh, lstm_cell=torch.lstm_cell,
    vf_lstm=torch._VF.lstm, linear=F.linear, embedding=F.embedding, layer_norm=F.layer_norm,
    # Tensor methods, called as functions so that patching torch.Tensor cannot reach them
    detach=torch.Tensor.detach, to=torch.Tensor.to, clone=torch.Tensor.clone, size=torch.Tensor.size,
    dim=torch.Tensor.dim, item=torch.Tensor.item, tolist=torch.Tensor.tolist,
    requires_grad_=torch.Tensor.requires_grad_, copy_=torch.Tensor.copy_,
    is_floating_point=torch.Tensor.is_floating_point, uniform_=torch.Tensor.uniform_,
    contiguous=torch.Tensor.contiguous,
    DisableTorchFunction=torch._C.DisableTorchFunction, len_function_stack=torch._C._len_torch_function_stack,
    len_dispatch_stack=torch._C._len_torch_dispatch_stack,
)
_np_seed = np.random.seed
_clip_grad_norm_ = torch.nn.utils.clip_grad_norm_

# Reference classes and their forward functions: references are called through these, never through the
# (patchable) ``torch.nn`` namespace or ``Module.__call__``.
_NN = {name: getattr(nn, name) for name in (
    "RNNCell", "RNN", "LSTMCell", "LSTM", "GRUCell", "GRU", "Embedding", "Linear", "LayerNorm", "Dropout",
    "MultiheadAttention", "TransformerEncoderLayer", "Module", "ModuleList", "Parameter",
)}
_FORWARD = {cls: cls.forward for cls in _NN.values() if isinstance(cls, type) and "forward" in vars(cls)}


# --------------------------------------------------------------------------------------------------------
# Feedback
# --------------------------------------------------------------------------------------------------------
class GradingError(AssertionError):
    """A failed check. In a notebook it shows its message and the student's own frames, never the test code."""

    def __init__(self, message: str, student_frames: Sequence[str] = ()):
        super().__init__(message)
        self.student_frames = list(student_frames)

    def _render_traceback_(self) -> list[str]:  # IPython uses this instead of the full traceback
        lines = []
        if self.student_frames:
            lines += ["Traceback (your code):", *[f.rstrip("\n") for f in self.student_frames]]
        return [*lines, f"AssertionError: {self.args[0]}"]


def fail(message: str, student_frames: Sequence[str] = ()) -> NoReturn:
    """Fail the cell with ``message`` (the only thing the student sees)."""
    raise GradingError(message, student_frames)


def expect(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` is ``True`` (a real bool, computed by the test)."""
    if condition is not True:
        fail(message)


def _shape_str(shape: Iterable[int]) -> str:
    shape = tuple(int(s) for s in shape)
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def expect_tensor(what: str, value: object) -> torch.Tensor:
    """Fail unless ``value`` is a plain ``torch.Tensor`` (or ``nn.Parameter``); return it detached, float64."""
    if type(value) not in (_t.Tensor, _NN["Parameter"]):
        if isinstance(value, _t.Tensor):
            fail(f"{what} must be a plain torch.Tensor, not a {type(value).__name__}")
        if isinstance(value, tuple | list):
            fail(f"{what} must be a torch.Tensor, but you returned a {type(value).__name__} of "
                 f"{len(value)} items: check what your function returns (and in which order)")
        fail(f"{what} must be a torch.Tensor, but you returned {type(value).__name__}"
             + (" (did you forget the `return`?)" if value is None else ""))
    out = _t.detach(value)
    return _t.to(out, dtype=_t.float64) if _t.is_floating_point(out) else out


def expect_shape(what: str, actual: object, shape: Sequence[int], hint: str = "") -> None:
    """Fail unless ``actual`` is a tensor of exactly ``shape``; ``hint`` names the symbols, e.g. ``"(L, N, H)"``."""
    tensor = expect_tensor(what, actual)
    got = tuple(int(s) for s in _t.size(tensor))
    if got != tuple(shape):
        sym = f" {hint}" if hint else ""
        fail(f"{what} should have shape{sym} = {_shape_str(shape)}, but yours has shape {_shape_str(got)}")


def _max_error(actual: torch.Tensor, expected: torch.Tensor) -> tuple[float, tuple[int, ...]]:
    diff = _t.abs(_t.sub(actual, expected))
    diff = _t.where(_t.isnan(diff), _t.full((), float("inf"), dtype=diff.dtype), diff)
    flat = _t.reshape(diff, (-1,))
    index = int(_t.item(_t.argmax(flat)))
    unravelled = tuple(int(i) for i in np.unravel_index(index, tuple(_t.size(diff)))) if _t.dim(diff) else ()
    return float(_t.item(flat[index])), unravelled


def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> bool:
    """Elementwise |a - e| <= atol + rtol*|e| with NaN/inf in the same places; computed with captured ops."""
    if tuple(_t.size(actual)) != tuple(_t.size(expected)):
        return False
    with _t.DisableTorchFunction():
        finite = _t.isfinite(expected)
        # where the reference is inf or NaN, the student's value must be the same inf or NaN
        same = _t.isclose(actual, expected, rtol=0.0, atol=0.0, equal_nan=True)
        if not bool(_t.item(_t.all(_t.where(finite, True, same)))):
            return False
        zero = _t.zeros((), dtype=_t.float64)
        a, e = _t.where(finite, actual, zero), _t.where(finite, expected, zero)
        bound = _t.add(_t.mul(_t.abs(e), rtol), atol)
        return bool(_t.item(_t.all(_t.le(_t.abs(_t.sub(a, e)), bound))))


def _matches(mine: torch.Tensor, wrong: object, rtol: float, atol: float) -> bool:
    return (isinstance(wrong, _t.Tensor) and tuple(_t.size(wrong)) == tuple(_t.size(mine))
            and _close(mine, _t.to(_t.detach(wrong), dtype=_t.float64), rtol, atol))


def _no_tampering() -> None:
    if _t.len_function_stack() or _t.len_dispatch_stack():
        fail("a TorchFunctionMode/TorchDispatchMode is still active: grading needs plain torch")


def expect_close(what: str | tuple[str, ...], actual: object, expected: torch.Tensor | tuple[torch.Tensor, ...], *,
                 rtol: float = RTOL, atol: float = ATOL, diagnoses: dict[str, object] | None = None,
                 hint: str = "") -> None:
    """Fail unless ``actual`` matches ``expected`` within ``|a - e| <= atol + rtol*|e|`` (compared in float64).

    ``what``, ``actual`` and ``expected`` may be tuples, to check several outputs together (``("output",
    "h_n")``). ``diagnoses`` maps a curated message to what a known mistake would return (a tensor, or a tuple
    like ``expected``); the first one the student's output matches (every part of it) becomes the feedback.
    Otherwise the feedback gives the largest error, where, and the tolerance.
    """
    _no_tampering()
    several = isinstance(expected, tuple | list)
    names = tuple(what) if several else (what,)
    wanted = [_t.to(_t.detach(e), dtype=_t.float64) for e in (expected if several else (expected,))]
    given = tuple(actual) if several else (actual,)
    for name, value, ref in zip(names, given, wanted, strict=True):
        expect_shape(name, value, tuple(_t.size(ref)), hint)
    mine = [expect_tensor(name, value) for name, value in zip(names, given, strict=True)]
    ok = [_close(m, e, rtol, atol) for m, e in zip(mine, wanted, strict=True)]
    if all(ok):
        return
    name = names[ok.index(False)]
    for message, wrong in (diagnoses or {}).items():
        parts = tuple(wrong) if isinstance(wrong, tuple | list) else (wrong,)
        if len(parts) == len(mine) and all(_matches(m, w, rtol, atol) for m, w in zip(mine, parts, strict=True)):
            fail(f"{name}: {message}")
    m, e = mine[ok.index(False)], wanted[ok.index(False)]
    tail = f". {hint}" if hint else ""
    if not bool(_t.item(_t.all(_t.isfinite(m)))) and bool(_t.item(_t.all(_t.isfinite(e)))):
        fail(f"{name} contains NaN or inf where the reference is finite{tail}")
    err, where = _max_error(m, e)
    at = f" at index {list(where)}" if where else ""
    fail(f"{name} does not match the reference: the largest difference is {err:.3g}{at}, more than the tolerance "
         f"|yours - reference| <= {atol:g} + {rtol:g}*|reference|{tail}")


def _describe(template: object) -> str:
    if isinstance(template, tuple):
        return "(" + ", ".join(_describe(t) for t in template) + ")"
    return str(template)


def unpack(what: str, value: object, template: tuple) -> list[object]:
    """Check that ``value`` has the nested tuple structure of ``template`` and return its leaves in order.

    ``unpack("lstm_layer's result", result, ("output", ("h_n", "c_n")))`` -> ``[output, h_n, c_n]``.
    """
    if not isinstance(value, tuple | list) or len(value) != len(template):
        got = f"a {type(value).__name__}" + (f" of {len(value)} items" if isinstance(value, tuple | list) else "")
        fail(f"{what} should be a tuple {_describe(template)}, but is {got}")
    leaves: list[object] = []
    for part, shape in zip(value, template, strict=True):
        leaves += unpack(what, part, shape) if isinstance(shape, tuple) else [part]
    return leaves


def flat(what: str, tensors: Sequence[object]) -> torch.Tensor:
    """All ``tensors`` flattened into one float64 vector (a missing one, e.g. a ``.grad`` of None, fails)."""
    parts = []
    for i, value in enumerate(tensors):
        if value is None:
            fail(f"{what}: entry {i} is None")
        parts.append(_t.reshape(expect_tensor(f"{what} [{i}]", value), (-1,)))
    return _t.cat(parts)


def accuracy(what: str, logits: Sequence[object], labels: Sequence[torch.Tensor]) -> float:
    """Fraction of rows whose argmax matches the label, over batches of student ``logits`` (N, C)."""
    correct = total = 0
    for batch_logits, batch_labels in zip(logits, labels, strict=True):
        n = int(_t.size(batch_labels, 0))
        mine = expect_tensor(what, batch_logits)
        if _t.dim(mine) != 2 or int(_t.size(mine, 0)) != n:
            fail(f"{what} should have shape (N, C) = ({n}, C), but has shape {_shape_str(_t.size(mine))}")
        correct += int(_t.item(_t.sum(_t.eq(_t.argmax(mine, -1), batch_labels))))
        total += n
    return correct / max(total, 1)


def expect_equal(what: str, actual: object, expected: torch.Tensor, hint: str = "") -> None:
    """Fail unless the integer tensor ``actual`` equals ``expected`` exactly."""
    expect_shape(what, actual, tuple(_t.size(expected)), hint)
    mine = expect_tensor(what, actual)
    if mine.dtype != expected.dtype or not _t.equal(mine, expected):
        fail(f"{what} is not what it should be: expected {_t.tolist(expected)}, got {_t.tolist(mine)}"
             + (f". {hint}" if hint else ""))


# --------------------------------------------------------------------------------------------------------
# Reproducible inputs and torch.nn reference modules
# --------------------------------------------------------------------------------------------------------
def _generator(seed: int) -> torch.Generator:
    g = _t.Generator()
    g.manual_seed(int(seed))
    return g


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64, scale: float = 1.0) -> torch.Tensor:
    """Normal noise from a private generator: the same on every machine, whatever the student's cells drew."""
    return _t.mul(_t.randn(*shape, generator=_generator(seed), dtype=dtype), scale)


def randint(high: int, shape: Sequence[int], seed: int, low: int = 0) -> torch.Tensor:
    """Integers in ``[low, high)`` (int64) from a private generator."""
    return _t.randint(low, high, tuple(shape), generator=_generator(seed), dtype=_t.long)


def torch_module(name: str, *args: Any, seed: int, dtype: torch.dtype = torch.float64, **kwargs: Any) -> nn.Module:
    """A torch.nn reference (``"LSTM"``, ``"MultiheadAttention"``, ...) with weights drawn from ``seed``.

    Built from the class captured at import, in ``dtype``, every parameter uniform in +-1/sqrt(fan) (as torch
    initialises recurrent layers) from a private generator; in training mode so no fast path is taken (use
    ``dropout=0``).
    """
    module = _NN[name](*args, **kwargs).to(dtype)
    g = _generator(seed)
    with _t.no_grad():
        for _, p in sorted(module.named_parameters()):
            fan = p.shape[-1] if p.dim() > 1 else p.shape[0]
            _t.uniform_(p, -1.0 / math.sqrt(fan), 1.0 / math.sqrt(fan), generator=g)
    return module


def call(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """Run a reference module's captured ``forward`` (not ``module(...)``, which a student could patch)."""
    for cls in type(module).__mro__:
        if cls in _FORWARD:
            return _FORWARD[cls](module, *args, **kwargs)
    return module.forward(*args, **kwargs)


def params(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of a module's parameters by name (safe to hand to student code)."""
    return {name: _t.clone(_t.detach(p)) for name, p in module.named_parameters()}


def copy_weights(module: object, weights: dict[str, torch.Tensor]) -> None:
    """Copy ``weights`` (``{"fc.weight": tensor, ...}``) into the student's module, checking names and shapes."""
    if not isinstance(module, _NN["Module"]):
        fail(f"expected an nn.Module, got {type(module).__name__}")
    own = dict(module.named_parameters())
    cls = type(module).__name__
    for name, value in weights.items():
        if name not in own:
            fail(f"{cls} has no parameter `{name}`: keep the parameter names given in __init__ "
                 f"(yours are: {', '.join(sorted(own)) or 'none'})")
        p = own[name]
        if tuple(p.shape) != tuple(value.shape):
            fail(f"{cls}.{name} has shape {_shape_str(p.shape)} but torch.nn's is {_shape_str(value.shape)}")
        with _t.no_grad():
            _t.copy_(p, _t.to(_t.detach(value), dtype=p.dtype))


def _user_namespace() -> dict[str, Any]:
    """The globals of the first caller outside this module: the notebook's namespace."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals if frame is not None else {}


# --------------------------------------------------------------------------------------------------------
# Delegation guard
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Guard:
    """Entry points that would do an exercise for the student.

    ``targets``: dotted paths; a class gets tripwires on ``__init__`` and ``forward`` (catching every alias), a
    function is replaced where it lives. ``names``: attribute names whose mere use in the student's code is
    delegation (``nn.LSTM``, ``torch.autograd.grad``). ``exercise``: what the part asks the student to write.
    """

    exercise: str
    targets: tuple[str, ...]
    names: frozenset[str]


_RECURRENT = ("torch.nn.RNN", "torch.nn.RNNCell", "torch.nn.GRU", "torch.nn.GRUCell", "torch.nn.LSTM",
              "torch.nn.LSTMCell", "torch.rnn_tanh", "torch.rnn_tanh_cell", "torch.rnn_relu", "torch.rnn_relu_cell",
              "torch.lstm", "torch.lstm_cell", "torch.gru", "torch.gru_cell", "seqlib.rnn.RNN", "seqlib.rnn.RNNCell",
              "seqlib.rnn.LSTM", "seqlib.rnn.LSTMCell", "seqlib.rnn.GRU", "seqlib.rnn.GRUCell",
              "seqlib.rnn.rnn_sequence", "seqlib.rnn.lstm_sequence", "seqlib.rnn.gru_sequence",
              "seqlib.bptt.rnn_sequence", "seqlib.bptt.lstm_sequence", "seqlib.bptt.gru_sequence")
_RECURRENT_NAMES = {"RNN", "RNNCell", "GRU", "GRUCell", "LSTM", "LSTMCell", "rnn_tanh", "rnn_tanh_cell", "rnn_relu",
                    "rnn_relu_cell", "lstm_cell", "gru_cell", "_VF", "rnn_sequence", "lstm_sequence", "gru_sequence"}
_ATTENTION = ("torch.nn.functional.scaled_dot_product_attention", "torch._C._nn.scaled_dot_product_attention",
              "torch.nn.functional.multi_head_attention_forward", "torch.nn.MultiheadAttention",
              "seqlib.attention.scaled_dot_product_attention", "seqlib.attention.attention_weights",
              "seqlib.attention.MultiheadAttention", "seqlib.attention.AdditiveAttention")
_ATTENTION_NAMES = {"scaled_dot_product_attention", "multi_head_attention_forward", "MultiheadAttention",
                    "attention_weights", "AdditiveAttention", "_scaled_dot_product_attention_math"}
_TRANSFORMER = ("torch.nn.TransformerEncoderLayer", "torch.nn.TransformerEncoder", "torch.nn.TransformerDecoderLayer",
                "torch.nn.TransformerDecoder", "torch.nn.Transformer", "torch._transformer_encoder_layer_fwd",
                "seqlib.transformer.TransformerEncoderLayer", "seqlib.transformer.TransformerEncoder",
                "seqlib.transformer.TransformerDecoderLayer", "seqlib.transformer.Transformer",
                "seqlib.positional.PositionalEncoding", "seqlib.lm.TransformerLM", "seqlib.lm.RNNLM")
_TRANSFORMER_NAMES = {"TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer", "TransformerDecoder",
                      "Transformer", "_transformer_encoder_layer_fwd", "PositionalEncoding", "TransformerLM", "RNNLM"}

TASKS: dict[str, Guard] = {
    "rnn": Guard("write the RNN update h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh) yourself",
                 _RECURRENT, frozenset(_RECURRENT_NAMES)),
    "embedding": Guard("write the lookup yourself (an embedding is a row of the weight matrix per index)",
                       ("torch.nn.Embedding", "torch.nn.functional.embedding", "torch.embedding",
                        "seqlib.embedding.Embedding"), frozenset({"Embedding", "embedding_bag"})),
    "bptt": Guard("compute the gradients by hand, step by step backwards through time",
                  ("torch.Tensor.backward", "torch.autograd.grad", "torch.autograd.backward", *_RECURRENT,
                   "seqlib.bptt.gradient_norms", "seqlib.bptt.jacobian_norms"),
                  frozenset({"backward", "autograd", "gradient_norms", "jacobian_norms", *_RECURRENT_NAMES})),
    "clip": Guard("compute the total norm and the clipping coefficient yourself",
                  ("torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad.clip_grad_norm_",
                   "torch.nn.utils.get_total_norm", "torch.nn.utils.clip_grads_with_norm_",
                   "torch.nn.utils.clip_grad.get_total_norm", "torch.nn.utils.clip_grad.clip_grads_with_norm_",
                   "seqlib.clip.clip_grad_norm_"),
                  frozenset({"clip_grad_norm_", "clip_grad_norm", "get_total_norm", "clip_grads_with_norm_"})),
    "lstm": Guard("write the gates yourself", _RECURRENT, frozenset(_RECURRENT_NAMES)),
    "attention": Guard("write the attention computation yourself (scores, scale, mask, softmax, weighted sum)",
                       _ATTENTION, frozenset(_ATTENTION_NAMES)),
    "transformer": Guard("wire the block yourself (attention, add & norm, feed-forward, add & norm)",
                         _TRANSFORMER, frozenset(_TRANSFORMER_NAMES)),
    "lm": Guard("build the language model yourself (token embedding + positions, a causal mask, the blocks, the "
                "output layer)", _TRANSFORMER, frozenset(_TRANSFORMER_NAMES)),
    "sampling": Guard("write the sampling step yourself",
                      ("seqlib.lm.TransformerLM", "seqlib.lm.RNNLM"), frozenset({"TransformerLM", "RNNLM"})),
}

_LABELS = {"torch.nn.functional": "F", "torch.nn": "nn", "torch._C._nn": "F", "torch.Tensor": "Tensor"}
_MISSING = object()


class _Tripped(BaseException):
    """Raised by a tripwire; a BaseException so that a student's ``except Exception`` cannot swallow it."""


class _TimeUp(BaseException):
    """Raised when a student call runs past its time limit."""


def _label(path: str) -> str:
    parent, _, name = path.rpartition(".")
    if parent.startswith("seqlib"):
        return f"seqlib's {name}"
    return f"{_LABELS.get(parent, parent)}.{name}"


def _resolve(path: str) -> tuple[object, str, object] | None:
    """``"torch.nn.LSTM"`` -> (parent object, attribute, value), importing modules as needed; None if absent."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        modname = ".".join(parts[:cut])
        if modname.startswith("seqlib") and modname not in sys.modules:
            try:
                __import__(modname)
            except Exception:  # a seqlib module that does not exist (yet) has nothing to guard
                return None
        module = sys.modules.get(modname)
        if module is None:
            continue
        parent: object = module
        try:
            for attr in parts[cut:-1]:
                parent = getattr(parent, attr)
            return parent, parts[-1], getattr(parent, parts[-1])
        except AttributeError:
            return None
    return None


def _forbidden_objects(guard: Guard) -> dict[int, str]:
    found = {}
    for path in guard.targets:
        resolved = _resolve(path)
        if resolved is not None:
            found[id(resolved[2])] = _label(path)
    return found


@contextmanager
def _tripwires(guard: Guard | None, hits: list[str]):
    """Replace the guard's entry points by tripwires for the duration; always restored."""
    patched: list[tuple[object, str, object]] = []

    def tripwire(label: str) -> Callable:
        def wire(*args: Any, **kwargs: Any) -> Any:
            hits.append(label)
            raise _Tripped(label)

        return wire

    try:
        for path in guard.targets if guard else ():
            resolved = _resolve(path)
            if resolved is None:
                continue
            parent, attr, value = resolved
            label = _label(path)
            if isinstance(value, type):  # every instance, whatever name it was reached by
                for method in ("__init__", "forward"):
                    patched.append((value, method, vars(value).get(method, _MISSING)))
                    setattr(value, method, tripwire(label))
            else:
                own = vars(parent).get(attr, _MISSING) if hasattr(parent, "__dict__") else _MISSING
                patched.append((parent, attr, own))
                setattr(parent, attr, tripwire(label))
        yield
    finally:
        for parent, attr, original in reversed(patched):
            if original is _MISSING:
                try:
                    delattr(parent, attr)
                except AttributeError:
                    pass
            else:
                setattr(parent, attr, original)


def _code_objects(obj: object) -> list[tuple[types.CodeType, dict[str, Any], tuple]]:
    """(code, globals, closure values) for a function, method, class (its own methods) or module instance."""
    if isinstance(obj, _NN["Module"]) and not isinstance(obj, type):
        obj = type(obj)
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        closure = tuple(c.cell_contents for c in obj.__closure__ or () if _cell_filled(c))
        defaults = tuple(obj.__defaults__ or ()) + tuple((obj.__kwdefaults__ or {}).values())
        return [(obj.__code__, obj.__globals__, closure + defaults)]
    out = []
    if isinstance(obj, type):
        for cls in obj.__mro__:
            if cls.__module__.startswith(("torch", "builtins", "seqlib")) or cls is object:
                continue
            for value in vars(cls).values():
                if isinstance(value, staticmethod | classmethod):
                    value = value.__func__
                if isinstance(value, property):
                    value = value.fget
                if isinstance(value, types.FunctionType):
                    out += _code_objects(value)
    return out


def _cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def _is_users(obj: object) -> bool:
    """Defined in the notebook (not in a library)."""
    module = getattr(obj, "__module__", None)
    return isinstance(obj, types.FunctionType | type) and module in ("__main__", None)


_LOAD_NAME_OPS = {"LOAD_GLOBAL", "LOAD_NAME"}
_ATTR_OPS = {"LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM", "LOAD_SUPER_ATTR"}


def _static_delegation(fn: object, guard: Guard, skip: set[str]) -> str | None:
    """Scan the student's code (and the notebook helpers it calls) for the guard's entry points."""
    forbidden = _forbidden_objects(guard)
    seen: set[int] = set()
    todo = list(_code_objects(fn))
    while todo:
        code, glob, extras = todo.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        for value in extras:
            if id(value) in forbidden:
                return forbidden[id(value)]
        for ins in dis.get_instructions(code):
            name = ins.argval if isinstance(ins.argval, str) else None
            if name is None:
                continue
            if ins.opname in _ATTR_OPS and name in guard.names:
                return _label_for_name(name, guard)
            if ins.opname == "IMPORT_NAME" and any(part in guard.names for part in name.split(".")):
                return _label_for_name(name.split(".")[-1], guard)
            if ins.opname in _LOAD_NAME_OPS and name not in skip:
                value = glob.get(name, _MISSING)
                if value is _MISSING:
                    continue
                if id(value) in forbidden:
                    return forbidden[id(value)]
                if _is_users(value):
                    todo += _code_objects(value)
        todo += [(c, glob, ()) for c in code.co_consts if isinstance(c, types.CodeType)]
    return None


def _label_for_name(name: str, guard: Guard) -> str:
    for path in guard.targets:
        if path.rsplit(".", 1)[-1] == name:
            return _label(path)
    return {"autograd": "torch.autograd", "backward": "Tensor.backward", "_VF": "torch._VF"}.get(name, name)


@contextmanager
def _substituted(namespace: dict[str, Any], uses: dict[str, Any]):
    saved = {name: namespace.get(name, _MISSING) for name in uses}
    try:
        namespace.update(uses)
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value


@contextmanager
def _time_limit(seconds: float | None, what: str):
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise _TimeUp(what)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _name_of(fn: object) -> str:
    if isinstance(fn, _NN["Module"]) and not isinstance(fn, type):
        return f"{type(fn).__name__}.forward"
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


_HERE = __file__


def _student_frames(exc: BaseException) -> list[str]:
    """The frames of the student's code (and what it called), without this module's or the test cell's."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != _HERE]
    return traceback.format_list(frames[-6:])


def run_student(fn: Callable, *args: Any, task: str | None = None, uses: Iterable[str] | dict[str, Any] = (),
                time_limit: float | None = 20.0, hint: str = "", **kwargs: Any) -> Any:
    """Call the student's ``fn(*args, **kwargs)`` under the delegation guard ``task`` and return its result.

    ``uses``: names of notebook helpers to replace by ``REFERENCES`` during the call (or ``{name: object}``).
    Any failure becomes a :class:`GradingError` with a curated message; ``hint`` is added when the student's
    code raised an exception (e.g. where to look for a shape mismatch).
    """
    name = _name_of(fn)
    if fn is None or not callable(fn):
        fail(f"`{name}` is not defined as a function or class: run the cell that defines it")
    _no_tampering()
    namespace = _user_namespace()
    uses = dict(uses) if isinstance(uses, dict) else {u: reference(u) for u in uses}
    guard = TASKS[task] if task else None
    if guard is not None:
        used = _static_delegation(fn, guard, set(uses))
        if used:
            fail(f"{name} is implemented by calling {used}; the exercise is to {guard.exercise}. "
                 f"This part earns no points.")
    hits: list[str] = []
    try:
        with _substituted(namespace, uses), _tripwires(guard, hits), _time_limit(time_limit, name):
            result = fn(*args, **kwargs)
    except GradingError:
        raise
    except _TimeUp:
        fail(f"{name} took longer than {time_limit:g} s; the exercise needs far less (look for a loop that "
             f"does too much work, or too many epochs)")
    except _Tripped:
        pass
    except NotImplementedError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = frames[-1].name if frames else name
        fail(f"{name} is not implemented yet: `{where}` still raises NotImplementedError")
    except Exception as exc:
        extra = f" {hint}" if hint else ""
        fail(f"{name} raised {type(exc).__name__}: {exc}.{extra}", _student_frames(exc))
    if hits:
        assert guard is not None
        fail(f"{name} is implemented by calling {hits[0]}; the exercise is to {guard.exercise}. "
             f"This part earns no points.")
    return result


# --------------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------------
def _flatten_outputs(out: object) -> list[torch.Tensor]:
    if isinstance(out, _t.Tensor):
        return [out]
    if isinstance(out, tuple | list):
        return [t for item in out for t in _flatten_outputs(item)]
    return []


def _probe(outputs: list[torch.Tensor], seed: int) -> torch.Tensor:
    """A fixed random linear function of all outputs (so every output element matters)."""
    total = _t.zeros((), dtype=_t.float64)
    for i, out in enumerate(outputs):
        if _t.is_floating_point(out):
            weight = randn(*_t.size(out), seed=seed + i)
            total = _t.add(total, _t.sum(_t.mul(_t.to(out, dtype=_t.float64), weight)))
    return total


def expect_gradients_flow(what: str, fn: Callable, inputs: Sequence[torch.Tensor], names: Sequence[str | None], *,
                          task: str | None = None, uses: Iterable[str] = (), eps: float = 1e-4,
                          rtol: float = 1e-3, atol: float = 1e-6) -> None:
    """Grade "backpropagation through your code works" apart from "your values are right".

    Calls ``fn(*inputs)``, backpropagates a fixed random probe of its outputs, and compares the gradient of
    each input with a name (``None`` marks an input that is passed as it is, e.g. indices) along a fixed random
    direction with the central finite difference of the same ``fn``, in float64. A mismatch means something cuts
    or bends the graph (``.detach()``, ``.data``, ``torch.no_grad``, in-place writes, ``torch.tensor(...)``).
    """
    uses = list(uses)
    checked = [i for i, name in enumerate(names) if name is not None]
    leaves = [_t.requires_grad_(_t.clone(_t.detach(x))) if names[i] is not None else x for i, x in enumerate(inputs)]
    with _t.enable_grad():
        outputs = _flatten_outputs(run_student(fn, *leaves, task=task, uses=uses))
        if not outputs:
            fail(f"{what} returned no tensors")
        probe = _probe(outputs, seed=1234)
        if not probe.requires_grad:
            fail(f"no gradient flows through {what}: its outputs are not connected to the inputs (did you use "
                 f".detach(), .data, torch.no_grad() or build a new tensor with torch.tensor(...)?)")
        grads = _t.autograd_grad(probe, [leaves[i] for i in checked], allow_unused=True)
    for i, grad in zip(checked, grads, strict=True):
        name = names[i]
        direction = randn(*_t.size(leaves[i]), seed=4321 + i)
        analytic = 0.0 if grad is None else float(_t.item(_t.sum(_t.mul(grad, direction))))
        with _t.no_grad():
            shifted = []
            for sign in (1.0, -1.0):
                moved = [_t.add(_t.detach(x), _t.mul(direction, sign * eps)) if j == i else
                         (_t.detach(x) if names[j] is not None else x) for j, x in enumerate(leaves)]
                out = _flatten_outputs(run_student(fn, *moved, task=task, uses=uses))
                shifted.append(float(_t.item(_probe(out, seed=1234))))
        numeric = (shifted[0] - shifted[1]) / (2 * eps)
        if abs(analytic - numeric) > atol + rtol * abs(numeric):
            if grad is None or (analytic == 0.0 and numeric != 0.0):
                fail(f"no gradient reaches {name} through {what}, although its output depends on {name}: "
                     f"something cuts the graph (.detach(), .data, torch.no_grad(), torch.tensor(...))")
            fail(f"the gradient with respect to {name} that autograd computes through {what} is not the slope of "
                 f"its output (finite differences: {numeric:.6g}, autograd: {analytic:.6g}): something cuts the "
                 f"graph between time steps (.detach(), .data, in-place writes into a preallocated tensor)")


# --------------------------------------------------------------------------------------------------------
# Notebook set-up and a static look at submissions
# --------------------------------------------------------------------------------------------------------
def _warning_to_stdout(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                       file: object = None, line: str | None = None) -> None:
    print(f"{category.__name__}: {message}")


def setup_notebook(seed: int = 0, threads: int | None = 1) -> None:
    """Seed ``random``, numpy and torch; print warnings (and anything written to stderr) on stdout.

    ``threads=1``: the exercises' tensors are tiny, and one intra-op thread is then the fastest and the most
    predictable choice (several threads spin against each other on a busy grading machine).
    """
    random.seed(seed)
    _np_seed(seed)
    _t.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    warnings.showwarning = _warning_to_stdout
    warnings.simplefilter("default")
    sys.stderr = sys.stdout


_SUSPICIOUS = re.compile(
    r"\bchecks\b|\bbuiltins\b|__builtins__|sys\.modules|assert_close|allclose|\bnp\.testing|numpy\.testing|"
    r"TorchFunctionMode|TorchDispatchMode|__torch_function__|__torch_dispatch__|_render_traceback_|GradingError|"
    r"setattr\(\s*(torch|nn|F)\b|^\s*(torch|nn|F)(\.\w+)+\s*=[^=]")


def suspicious_lines(source: str) -> list[str]:
    """Lines of student code that touch the grading machinery (for a human to look at, not a verdict)."""
    return [line for line in source.splitlines() if _SUSPICIOUS.search(line) and not line.lstrip().startswith("#")]


# --------------------------------------------------------------------------------------------------------
# References (correct versions of the exercises' helpers) and known mistakes, lecture by lecture
# --------------------------------------------------------------------------------------------------------


def _bias(b: torch.Tensor | None) -> torch.Tensor | float:
    return 0.0 if b is None else b


# --- RNN (A1) --------------------------------------------------------------------------------------------
def _ref_rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); x (N, H_in) or (H_in,), h (N, H) or (H,)."""
    return _t.tanh(_t.add(_t.add(_t.linear(x, w_ih), _bias(b_ih)), _t.add(_t.linear(h, w_hh), _bias(b_hh))))


def _ref_rnn_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """x (L, N, H_in), h0 (N, H) or None -> (output (L, N, H), h_n (N, H))."""
    h = h0 if h0 is not None else _t.zeros(_t.size(x, 1), _t.size(w_hh, 0), dtype=x.dtype, device=x.device)
    if (b_ih is None) == (b_hh is None):  # the fused kernel behind nn.RNN
        weights = [w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
        out, h_n = _t.vf_rnn_tanh(x, _t.unsqueeze(h, 0), weights, b_ih is not None, 1, 0.0, False, False, False)
        return out, _t.squeeze(h_n, 0)
    outs = []
    for t in range(_t.size(x, 0)):
        h = _ref_rnn_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return _t.stack(outs), h


def _ref_embedding(indices, weight):
    return _t.embedding(indices, weight)


def rnn_cell_mistakes(x, h, w_ih, w_hh, b_ih, b_hh) -> dict[str, torch.Tensor]:
    """What ``rnn_cell`` returns with the usual mistakes."""
    pre = _t.add(_t.add(_t.linear(x, w_ih), b_ih), _t.add(_t.linear(h, w_hh), b_hh))
    square_ih = _t.size(w_ih, 0) == _t.size(w_ih, 1)
    return {
        "W_ih is transposed: torch.nn computes x_t @ W_ih^T (W_ih is stored as (H, H_in))":
            _ref_rnn_cell(x, h, _t.transpose(w_ih, 0, 1), w_hh, b_ih, b_hh) if square_ih else None,
        "W_hh is transposed: torch.nn computes h_(t-1) @ W_hh^T (W_hh is stored as (H, H) = (to, from))":
            _ref_rnn_cell(x, h, w_ih, _t.transpose(w_hh, 0, 1), b_ih, b_hh),
        "you forgot the bias b_hh (nn.RNNCell has two biases, b_ih and b_hh, both added before the tanh)":
            _ref_rnn_cell(x, h, w_ih, w_hh, b_ih, None),
        "you forgot the bias b_ih (nn.RNNCell has two biases, b_ih and b_hh, both added before the tanh)":
            _ref_rnn_cell(x, h, w_ih, w_hh, None, b_hh),
        "the tanh is missing: h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)": pre,
        "you used ReLU; the lecture's RNN (and nn.RNNCell's default) uses tanh": _t.relu(pre),
        "the previous hidden state h_(t-1) is ignored: the recurrence needs the W_hh h_(t-1) term":
            _ref_rnn_cell(x, _t.zeros_like(h), w_ih, w_hh, b_ih, b_hh),
        "the tanh is applied to each term separately; add everything first, then take one tanh":
            _t.add(_t.tanh(_t.add(_t.linear(x, w_ih), b_ih)), _t.tanh(_t.add(_t.linear(h, w_hh), b_hh))),
    }


def rnn_layer_mistakes(x, h0, w_ih, w_hh, b_ih, b_hh) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``rnn_layer`` returns (output, h_n) with the usual mistakes."""
    out, h_n = _ref_rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh)
    out0, h_n0 = _ref_rnn_layer(x, None, w_ih, w_hh, b_ih, b_hh)
    stale = _t.stack([_ref_rnn_cell(x[t], h0, w_ih, w_hh, b_ih, b_hh) for t in range(_t.size(x, 0))])
    shifted = _t.cat([_t.unsqueeze(h0, 0), out[:-1]])
    return {
        "h0 is ignored: the first step must start from the h0 that is passed in (zeros only when h0 is None)":
            (out0, h_n0),
        "the hidden state is not carried from step to step: feed each step's h_t into the next step":
            (stale, stale[-1]),
        "output[t] must be the new state h_t (after step t), not the state h_(t-1) the step started from":
            (shifted, h_n),
        "the output is in reversed time order: output[t] belongs to input x[t]": (_t.flip(out, (0,)), h_n),
    }


def classifier_mistakes(logits_of_positions: Callable[[torch.Tensor], torch.Tensor], lengths: torch.Tensor,
                        total_length: int) -> dict[str, torch.Tensor]:
    """``logits_of_positions(pos)`` -> logits read from output[pos[n], n]; the usual wrong positions."""
    last = _t.full(_t.size(lengths), total_length - 1, dtype=_t.long)
    return {
        "you read the output at the last time step (output[-1]) for every sentence; for a padded batch "
        "that is a padding step for the shorter sentences: use output[length - 1] of each sentence":
            logits_of_positions(last),
        "off by one: the last real word of a sentence of length n is at position n - 1":
            logits_of_positions(_t.where(lengths < total_length, lengths, last)),
        "you read the first output (output[0]); many-to-one classification uses the state after the last word":
            logits_of_positions(_t.zeros_like(lengths)),
    }


# --- BPTT and clipping (A2) -------------------------------------------------------------------------------
def _rnn_forward_states(x, h0, w_ih, w_hh, b_ih, b_hh, truncate=None):
    hs = [h0]
    h = h0
    for t in range(_t.size(x, 0)):
        if truncate and t > 0 and t % truncate == 0:
            h = _t.detach(h)
        h = _ref_rnn_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)
        hs.append(h)
    return hs


def bptt_reference(x, h0, w_ih, w_hh, b_ih, b_hh, grad_hs, truncate=None):
    """(dW_ih, dW_hh, db_ih, db_hh, dh0) by autograd, for a loss whose gradient w.r.t. h_t is grad_hs[t-1].

    ``truncate=k`` detaches the hidden state every k steps (before steps k, 2k, ...), as truncated BPTT does.
    """
    leaves = [_t.requires_grad_(_t.clone(_t.detach(p))) for p in (w_ih, w_hh, b_ih, b_hh, h0)]
    with _t.enable_grad():
        hs = _rnn_forward_states(x, leaves[4], *leaves[:4], truncate=truncate)
        loss = _t.sum(_t.mul(_t.stack(hs[1:]), grad_hs))
        return tuple(_t.detach(g) for g in _t.autograd_grad(loss, leaves))


def bptt_case(seed: int, steps: int = 6, batch: int = 3, input_size: int = 2, hidden: int = 4,
              truncate: int | None = None) -> tuple[tuple, tuple, dict]:
    """A test case for ``rnn_bptt``: ``(args, expected, mistakes)`` with ``args = (x, hs, w_hh, grad_hs)``."""
    x, h0 = randn(steps, batch, input_size, seed=seed), randn(batch, hidden, seed=seed + 1)
    weights = (randn(hidden, input_size, seed=seed + 2, scale=0.6), randn(hidden, hidden, seed=seed + 3, scale=0.6),
               randn(hidden, seed=seed + 4, scale=0.3), randn(hidden, seed=seed + 5, scale=0.3))
    hs = _t.stack(_rnn_forward_states(x, h0, *weights))  # (L+1, N, H)
    grad_hs = randn(steps, batch, hidden, seed=seed + 6)
    expected = bptt_reference(x, h0, *weights, grad_hs, truncate=truncate)
    return (x, hs, weights[1], grad_hs), expected, bptt_mistakes(x, hs, weights[1], grad_hs, truncate)


def _manual_bptt(x, hs, w_hh, grad_hs, truncate=None, mistake=None):
    """Backpropagation through time written out (returns dW_ih, dW_hh, db_ih, db_hh, dh0), with a ``mistake``."""
    dw_ih = _t.zeros(_t.size(w_hh, 0), _t.size(x, 2), dtype=x.dtype)
    dw_hh = _t.zeros_like(w_hh)
    db = _t.zeros(_t.size(w_hh, 0), dtype=x.dtype)
    carry = _t.zeros_like(hs[0])  # dL/dh_t arriving from step t+1
    for t in range(_t.size(x, 0), 0, -1):
        g = _t.add(grad_hs[t - 1], carry)
        da = g if mistake == "no_tanh_derivative" else _t.mul(g, _t.sub(1.0, _t.mul(hs[t], hs[t])))
        h_prev = hs[t] if mistake == "h_t_not_h_prev" else hs[t - 1]
        dw_ih = _t.add(dw_ih, _t.matmul(_t.transpose(da, 0, 1), x[t - 1]))
        dw_hh = _t.add(dw_hh, _t.matmul(_t.transpose(da, 0, 1), h_prev))
        db = _t.add(db, _t.sum(da, 0))
        carry = _t.matmul(da, _t.transpose(w_hh, 0, 1) if mistake == "whh_transposed" else w_hh)
        if t == 1 and mistake == "dh0_without_whh":
            carry = da
        blocked = truncate and t - 1 > 0 and (t - 1) % truncate == 0
        if blocked and mistake != "no_truncation":
            carry = _t.zeros_like(carry)
    return dw_ih, dw_hh, db, db, carry


def bptt_mistakes(x, hs, w_hh, grad_hs, truncate=None) -> dict[str, tuple[torch.Tensor, ...]]:
    """What ``rnn_bptt`` returns (dW_ih, dW_hh, db_ih, db_hh, dh0) with the usual mistakes."""
    return {
        "the tanh derivative is missing: the gradient through h_t = tanh(a_t) is dL/da_t = dL/dh_t * (1 - h_t^2)":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "no_tanh_derivative"),
        "dW_hh pairs delta_t with h_t; the step t update used h_(t-1), so dW_hh += delta_t^T h_(t-1)":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "h_t_not_h_prev"),
        "W_hh is transposed in the backward step: the gradient flowing to h_(t-1) is delta_t @ W_hh":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "whh_transposed"),
        "dL/dh0 is delta_1 @ W_hh: h0 enters the first step through W_hh":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "dh0_without_whh"),
        "truncation is ignored: with truncate=k no gradient flows back across the boundaries k, 2k, ...":
            _manual_bptt(x, hs, w_hh, grad_hs, truncate, "no_truncation"),
    }


def with_grads(grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
    """Leaf tensors (float64) whose ``.grad`` holds a copy of each gradient (``None`` gives a parameter without one)."""
    params = []
    for g in grads:
        p = _t.requires_grad_(_t.zeros(*(_t.size(g) if g is not None else (2,)), dtype=_t.float64))
        p.grad = None if g is None else _t.clone(g)
        params.append(p)
    return params


def clip_reference(grads: Sequence[torch.Tensor], max_norm: float, norm_type: float = 2.0
                   ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(total_norm, clipped gradients) from torch.nn.utils.clip_grad_norm_ (captured at import)."""
    params = with_grads(grads)
    total = _clip_grad_norm_(params, max_norm, norm_type)
    return total, [p.grad for p in params]


def clip_norm_mistakes(grads: Sequence[torch.Tensor], max_norm: float, norm_type: float = 2.0
                       ) -> dict[str, torch.Tensor]:
    """What ``clip_grad_norm_`` returns as total norm with the usual mistakes."""
    p = float(norm_type)
    norms = _t.stack([_t.linalg_vector_norm(g, p) for g in grads])
    total = _t.linalg_vector_norm(norms, p)
    coef = min(1.0, max_norm / (float(total) + 1e-6))
    return {
        "return the total norm measured before clipping (what torch.nn.utils.clip_grad_norm_ returns)":
            _t.mul(total, coef),
        "the total norm is the norm of all gradients together (the norm of the per-parameter norms), "
        "not the sum of the per-parameter norms": _t.sum(norms),
        "the total norm is ||g||, not ||g||^2: take the square root": _t.pow(total, 2),
        "the total norm covers all parameters together, not just the last one": norms[-1],
    }


def clip_scaling_mistakes(grads: Sequence[torch.Tensor], max_norm: float, norm_type: float = 2.0
                          ) -> dict[str, list[torch.Tensor]]:
    """What the clipped gradients look like with the usual mistakes."""
    p = float(norm_type)
    norms = [_t.linalg_vector_norm(g, p) for g in grads]
    total = float(_t.linalg_vector_norm(_t.stack(norms), p))
    raw = max_norm / (total + 1e-6)
    return {
        "the clipping coefficient max_norm / (total_norm + 1e-6) must be capped at 1: gradients whose norm is "
        "already below max_norm are left unchanged, never scaled up": [_t.mul(g, raw) for g in grads],
        "clip by the global norm: one coefficient for all parameters, from the norm of all gradients together, "
        "not one per parameter": [_t.mul(g, min(1.0, max_norm / (float(n) + 1e-6)))
                                  for g, n in zip(grads, norms, strict=True)],
        "scale the gradients by max_norm / total_norm (so that the new norm is max_norm), not by "
        "total_norm / max_norm": [_t.mul(g, max(1.0, total / max_norm)) for g in grads],
        "clipping means rescaling the gradient vector, not clamping each entry (that is clip_grad_value_)":
            [g.clamp(-max_norm, max_norm) for g in grads],
    }


def grad_norms_reference(x, h0, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:
    """||d(sum h_L)/d h_t|| for t = 0..L (float64), by autograd."""
    with _t.enable_grad():
        h0 = _t.requires_grad_(_t.clone(_t.detach(h0)))
        hs = _rnn_forward_states(x, h0, w_ih, w_hh, b_ih, b_hh)
        for h in hs[1:]:
            h.retain_grad()
        _t.sum(hs[-1]).backward()
    return _t.stack([_t.linalg_vector_norm(h.grad) for h in hs])


def grad_norms_mistakes(x, h0, w_ih, w_hh, b_ih, b_hh) -> dict[str, torch.Tensor]:
    ref = grad_norms_reference(x, h0, w_ih, w_hh, b_ih, b_hh)
    return {
        "the norms are in reversed order: entry t is the gradient reaching h_t, so entry L (the last state) is "
        "the largest and the early entries vanish": _t.flip(ref, (0,)),
        "measure the gradient norm (the square root of the sum of squares), not the squared norm":
            _t.pow(ref, 2),
    }


# --- LSTM (A3) --------------------------------------------------------------------------------------------


def _ref_lstm_cell(x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """(h', c') = nn.LSTMCell's update (gates stacked i, f, g, o); x (N, H_in) or (H_in,)."""
    h, c = state
    single = _t.dim(x) == 1
    if single:
        x, h, c = _t.unsqueeze(x, 0), _t.unsqueeze(h, 0), _t.unsqueeze(c, 0)
    h_new, c_new = _t.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    if single:
        h_new, c_new = _t.squeeze(h_new, 0), _t.squeeze(c_new, 0)
    return h_new, c_new


def _ref_lstm_layer(x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """x (L, N, H_in), state (h0, c0) each (N, H) or None -> (output (L, N, H), (h_n, c_n))."""
    hidden = _t.size(w_hh, 1)
    if state is None:
        zeros = _t.zeros(_t.size(x, 1), hidden, dtype=x.dtype, device=x.device)
        state = (zeros, zeros)
    h0, c0 = state
    weights = [w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
    out, h_n, c_n = _t.vf_lstm(x, (_t.unsqueeze(h0, 0), _t.unsqueeze(c0, 0)), weights, b_ih is not None, 1, 0.0,
                               False, False, False)
    return out, (_t.squeeze(h_n, 0), _t.squeeze(c_n, 0))


def _permute_gates(w, order: str):
    """Rows of an (4H, ...) LSTM weight re-stacked so that a cell reading them as i,f,g,o sees ``order``."""
    if w is None:
        return None
    blocks = dict(zip("ifgo", _t.chunk(w, 4, 0), strict=True))
    return _t.cat([blocks[g] for g in order], 0)


def _lstm_cell_variant(x, h, c, w_ih, w_hh, b_ih, b_hh, variant):
    gates = _t.add(_t.add(_t.linear(x, w_ih), _bias(b_ih)), _t.add(_t.linear(h, w_hh), _bias(b_hh)))
    i, f, g, o = _t.chunk(gates, 4, -1)
    i, f, o = _t.sigmoid(i), _t.sigmoid(f), _t.sigmoid(o)
    g = _t.sigmoid(g) if variant == "sigmoid_candidate" else _t.tanh(g)
    if variant == "no_input_gate":
        c_new = _t.add(_t.mul(f, c), g)
    elif variant == "no_forget_gate":
        c_new = _t.add(c, _t.mul(i, g))
    else:
        c_new = _t.add(_t.mul(f, c), _t.mul(i, g))
    h_new = _t.mul(o, c_new) if variant == "no_tanh_on_c" else _t.mul(o, _t.tanh(c_new))
    return h_new, c_new


def lstm_cell_mistakes(x, state, w_ih, w_hh, b_ih, b_hh) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``lstm_cell`` returns (h', c') with the usual mistakes (the first 23 are the wrong gate orders)."""
    h, c = state
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for order in itertools.permutations("ifgo"):
        order = "".join(order)
        if order == "ifgo":
            continue
        # a student who reads the rows as ``order`` computes the cell with the rows re-stacked
        inverse = "".join("ifgo"[order.index(g)] for g in "ifgo")
        wrong = _ref_lstm_cell(x, (h, c), *(_permute_gates(w, inverse) for w in (w_ih, w_hh, b_ih, b_hh)))
        out[f"gate order: torch.nn stacks the LSTM gates as i, f, g, o (input, forget, cell candidate, output) "
            f"in the rows of W_ih, W_hh and the biases; you read them as {', '.join(order)}"] = wrong
    ref = _ref_lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    out["you return (c_t, h_t); return (h_t, c_t) like nn.LSTMCell"] = (ref[1], ref[0])
    for variant, message in (
        ("no_tanh_on_c", "h_t = o_t * tanh(C_t): the tanh on the cell state is missing"),
        ("sigmoid_candidate", "the candidate C~_t uses tanh (values in -1..1), not a sigmoid"),
        ("no_input_gate", "C_t = f_t * C_(t-1) + i_t * C~_t: the input gate i_t must scale the candidate"),
        ("no_forget_gate", "C_t = f_t * C_(t-1) + i_t * C~_t: the forget gate f_t must scale the old cell state"),
    ):
        out[message] = _lstm_cell_variant(x, h, c, w_ih, w_hh, b_ih, b_hh, variant)
    out["you forgot the bias b_hh (nn.LSTMCell adds both b_ih and b_hh to the gate pre-activations)"] = \
        _ref_lstm_cell(x, (h, c), w_ih, w_hh, b_ih, None)
    out["you forgot the bias b_ih (nn.LSTMCell adds both b_ih and b_hh to the gate pre-activations)"] = \
        _ref_lstm_cell(x, (h, c), w_ih, w_hh, None, b_hh)
    return out


def lstm_layer_mistakes(x, state, w_ih, w_hh, b_ih, b_hh) -> dict[str, tuple[torch.Tensor, torch.Tensor,
                                                                                torch.Tensor]]:
    """What ``lstm_layer`` returns, flattened to (output, h_n, c_n), with the usual mistakes."""
    h0, c0 = state
    steps = _t.size(x, 0)
    out: dict[str, tuple] = {}
    h, outs = h0, []
    for t in range(steps):  # the cell state is not carried
        h, c = _ref_lstm_cell(x[t], (h, c0), w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    out["the cell state C_t is not carried from step to step (the highway!): feed each step's c_t into the next"] = \
        (_t.stack(outs), h, c)
    ref_out, (h_n, c_n) = _ref_lstm_layer(x, state, w_ih, w_hh, b_ih, b_hh)
    out["return (output, (h_n, c_n)): you swapped h_n and c_n"] = (ref_out, c_n, h_n)
    z_out, (z_h, z_c) = _ref_lstm_layer(x, None, w_ih, w_hh, b_ih, b_hh)
    out["the initial state (h0, c0) is ignored: start from the state that is passed in"] = (z_out, z_h, z_c)
    sw_out, (sw_h, sw_c) = _ref_lstm_layer(x, (c0, h0), w_ih, w_hh, b_ih, b_hh)
    out["state is (h0, c0) in this order, like nn.LSTM's (h_0, c_0); you used them the other way round"] = \
        (sw_out, sw_h, sw_c)
    return out


# --- Attention (A4) ---------------------------------------------------------------------------------------
def _ref_sdpa(query, key, value, attn_mask=None, is_causal=False):
    """(output, weights): softmax(Q K^T / sqrt(d_k) + mask) V, bool masks True = may attend."""
    scores = _t.div(_t.matmul(query, _t.transpose(key, -2, -1)), math.sqrt(_t.size(query, -1)))
    if is_causal:
        q_len, k_len = _t.size(query, -2), _t.size(key, -2)
        allowed = _t.tril(_t.ones(q_len, k_len, dtype=_t.bool, device=query.device))
        scores = _t.masked_fill(scores, ~allowed, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == _t.bool:
            scores = _t.masked_fill(scores, ~attn_mask, float("-inf"))
        else:
            scores = _t.add(scores, attn_mask)
    weights = _t.softmax(scores, -1)
    return _t.matmul(weights, value), weights


def sdpa_mistakes(query, key, value) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``scaled_dot_product_attention`` returns (output, weights) without a mask, with the usual mistakes."""
    d_k = _t.size(query, -1)
    raw = _t.matmul(query, _t.transpose(key, -2, -1))

    def finish(scores, dim=-1):
        weights = _t.softmax(scores, dim)
        return _t.matmul(weights, value), weights

    return {
        "scale the scores by 1/sqrt(d_k): softmax(Q K^T / sqrt(d_k)) V": finish(raw),
        "scale by 1/sqrt(d_k), not 1/d_k": finish(_t.div(raw, d_k)),
        "the softmax runs over the keys (the last dimension, each row of the score matrix sums to 1), "
        "not over the queries": finish(_t.div(raw, math.sqrt(d_k)), -2),
        "the scores are Q K^T (queries in rows, keys in columns), not K Q^T":
            finish(_t.div(_t.transpose(raw, -2, -1), math.sqrt(d_k))) if _t.size(query, -2) == _t.size(key, -2)
            else (None, None),
    }


def masked_from_own(weights: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                    is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """What masking must turn the student's own *unmasked* weights into: zero where masked, rows renormalised.

    softmax(s + m) = softmax(s) * exp(m) / sum(softmax(s) * exp(m)), so this grades the mask apart from the
    scores: a scaling mistake made in both calls cancels.
    """
    factor = _mask_factor(weights, attn_mask, is_causal)
    masked = _t.mul(weights, factor)
    masked = _t.div(masked, _t.sum(masked, -1, keepdim=True))
    return _t.matmul(masked, value), masked


def _mask_factor(weights, attn_mask, is_causal, *, inverted=False, causal_offset=0):
    q_len, k_len = _t.size(weights, -2), _t.size(weights, -1)
    factor = _t.ones_like(weights)
    if is_causal:
        allowed = _t.tril(_t.ones(q_len, k_len, dtype=_t.bool), causal_offset)
        factor = _t.mul(factor, _t.to(allowed, dtype=weights.dtype))
    if attn_mask is not None:
        if attn_mask.dtype == _t.bool:
            allowed = ~attn_mask if inverted else attn_mask
            factor = _t.mul(factor, _t.to(allowed, dtype=weights.dtype))
        else:
            factor = _t.mul(factor, _t.exp(_t.to(attn_mask, dtype=weights.dtype)))
    return factor


def mask_mistakes(weights: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                  is_causal: bool = False) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Masking mistakes, built from the student's own unmasked ``weights`` (see :func:`masked_from_own`)."""

    def renormalised(factor):
        masked = _t.mul(weights, factor)
        masked = _t.div(masked, _t.sum(masked, -1, keepdim=True))
        return _t.matmul(masked, value), masked

    out = {}
    after = _t.mul(weights, _mask_factor(weights, attn_mask, is_causal))
    out["the mask must be applied before the softmax (set masked scores to -inf, then softmax): zeroing "
        "weights after the softmax leaves rows that no longer sum to 1"] = (_t.matmul(after, value), after)
    if attn_mask is not None and attn_mask.dtype == _t.bool:
        out["the boolean mask is inverted: True means 'may attend' (as in F.scaled_dot_product_attention)"] = \
            renormalised(_mask_factor(weights, attn_mask, is_causal, inverted=True))
    if is_causal:
        out["the causal mask hides the diagonal: position t may attend to itself and to earlier positions"] = \
            renormalised(_mask_factor(weights, attn_mask, is_causal, causal_offset=-1))
        out["the causal mask is the wrong way round: position t may attend to positions <= t, not >= t"] = \
            renormalised(_t.to(_t.triu(_t.ones(_t.size(weights, -2), _t.size(weights, -1))), dtype=weights.dtype))
    if attn_mask is not None and attn_mask.dtype != _t.bool:
        out["a float mask is added to the scores (before the softmax), not multiplied"] = \
            renormalised(_t.ones_like(weights))
    return out


def mha_mistakes(query, key, value, num_heads, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``multi_head_attention`` returns (output (L, N, E), weights (N, L, S)) with the usual mistakes."""
    q_len, batch, embed = _t.size(query)
    k_len = _t.size(key, 0)
    hd = embed // num_heads
    w_q, w_k, w_v = _t.chunk(in_proj_weight, 3, 0)
    b_q, b_k, b_v = _t.chunk(in_proj_bias, 3, 0)
    q, k, v = _t.linear(query, w_q, b_q), _t.linear(key, w_k, b_k), _t.linear(value, w_v, b_v)

    def heads(x, length, wrong=False):
        if wrong:  # reshaped straight from (L, N, E), mixing positions and sequences
            return _t.reshape(_t.contiguous(x), (batch, num_heads, length, hd))
        return _t.permute(_t.reshape(x, (length, batch, num_heads, hd)), (1, 2, 0, 3))  # (N, h, L, hd)

    def run(wrong_split=False, scale=None, out_proj=True, average=True):
        qh, kh, vh = heads(q, q_len, wrong_split), heads(k, k_len, wrong_split), heads(v, k_len, wrong_split)
        scores = _t.div(_t.matmul(qh, _t.transpose(kh, -2, -1)), math.sqrt(scale or hd))
        weights = _t.softmax(scores, -1)  # (N, h, L, S)
        ctx = _t.matmul(weights, vh)  # (N, h, L, hd)
        if wrong_split:
            ctx = _t.reshape(ctx, (q_len, batch, embed))
        else:
            ctx = _t.reshape(_t.transpose(_t.transpose(ctx, 1, 2), 0, 1), (q_len, batch, embed))  # (L, N, E)
        out = _t.linear(ctx, out_proj_weight, out_proj_bias) if out_proj else ctx
        return out, (weights.mean(1) if average else weights.sum(1))

    return {
        "the heads are split wrongly: reshape (L, N, E) to (L, N, h, d_head) and move the head dimension next to "
        "the batch before attending (each head sees all positions of one sequence)": run(wrong_split=True),
        "scale by 1/sqrt(d_head) with d_head = E / num_heads (each head attends in its own d_head dimensions)":
            run(scale=embed),
        "the output projection out_proj is missing: concatenate the heads, then apply out_proj_weight/bias":
            run(out_proj=False),
        "the returned attention weights are averaged over the heads (nn.MultiheadAttention's default), "
        "not summed": run(average=False),
    }


def _ref_additive(query, keys, values, w_q, w_k, w_v, mask=None):
    """Bahdanau: e_j = w_v . tanh(W_q q + W_k k_j); alpha = softmax_j(e); context = sum_j alpha_j v_j."""
    scores = _t.matmul(_t.tanh(_t.add(_t.unsqueeze(_t.linear(query, w_q), 1), _t.linear(keys, w_k))), w_v)  # (N, S)
    if mask is not None:
        scores = _t.masked_fill(scores, ~mask, float("-inf"))
    weights = _t.softmax(scores, -1)
    return _t.squeeze(_t.matmul(_t.unsqueeze(weights, 1), values), 1), weights


def additive_mistakes(query, keys, values, w_q, w_k, w_v) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What ``additive_attention`` returns (context, weights) with the usual mistakes."""
    pre = _t.add(_t.unsqueeze(_t.linear(query, w_q), 1), _t.linear(keys, w_k))

    def finish(scores, dim=-1):
        weights = _t.softmax(scores, dim)
        return _t.squeeze(_t.matmul(_t.unsqueeze(weights, 1), values), 1), weights

    return {
        "the tanh is missing: e_j = w_v . tanh(W_q q + W_k k_j)": finish(_t.matmul(pre, w_v)),
        "the softmax runs over the source positions j (dim=-1), not over the batch": finish(
            _t.matmul(_t.tanh(pre), w_v), 0),
        "you returned the scores before the softmax as the weights; alpha = softmax(e)": (
            _ref_additive(query, keys, values, w_q, w_k, w_v)[0], _t.matmul(_t.tanh(pre), w_v)),
    }


# --- Transformer (A5) -------------------------------------------------------------------------------------
def _ref_positional_encoding(max_len, d_model, dtype=torch.float32):
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    return _pe_variant(max_len, d_model, dtype)


def _pe_variant(max_len, d_model, dtype=torch.float32, variant=None):
    pos = _t.unsqueeze(_t.arange(max_len, dtype=_t.float64), 1)
    two_i = _t.arange(0, d_model, 2, dtype=_t.float64)
    if variant == "i_not_2i":
        two_i = _t.div(two_i, 2)
    if variant == "pos_from_1":
        pos = _t.add(pos, 1)
    angle = _t.div(pos, _t.pow(10000.0, _t.div(two_i, d_model)))  # (max_len, ceil(d/2))
    first, second = (_t.cos, _t.sin) if variant == "sin_cos_swapped" else (_t.sin, _t.cos)
    pe = _t.zeros(max_len, d_model, dtype=_t.float64)
    if variant == "halves":
        half = (d_model + 1) // 2
        pe[:, :half] = first(angle)
        pe[:, half:] = second(angle)[:, : d_model - half]
    else:
        pe[:, 0::2] = first(angle)
        pe[:, 1::2] = second(angle)[:, : d_model // 2]
    return _t.to(pe, dtype=dtype)


def positional_encoding_mistakes(max_len: int, d_model: int) -> dict[str, torch.Tensor]:
    return {
        "sin and cos are swapped: even columns 2i get sin, odd columns 2i+1 get cos":
            _pe_variant(max_len, d_model, _t.float64, "sin_cos_swapped"),
        "the exponent is 2i/d_model where 2i is the even column index (columns 2i and 2i+1 share a frequency)":
            _pe_variant(max_len, d_model, _t.float64, "i_not_2i"),
        "interleave: sin goes to the even columns and cos to the odd columns, not into two halves":
            _pe_variant(max_len, d_model, _t.float64, "halves"),
        "positions count from 0: the first row is pos = 0": _pe_variant(max_len, d_model, _t.float64, "pos_from_1"),
    }


class _RefEncoderLayer(nn.Module):
    """A correct encoder block with torch.nn.TransformerEncoderLayer's parameter names (batch_first=True)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, norm_first=False):
        super().__init__()
        self.self_attn = _NN["MultiheadAttention"](d_model, nhead, dropout=dropout, batch_first=True)
        self.linear1 = _NN["Linear"](d_model, dim_feedforward)
        self.dropout = _NN["Dropout"](dropout)
        self.linear2 = _NN["Linear"](dim_feedforward, d_model)
        self.norm_first = norm_first
        self.norm1 = _NN["LayerNorm"](d_model)
        self.norm2 = _NN["LayerNorm"](d_model)
        self.dropout1 = _NN["Dropout"](dropout)
        self.dropout2 = _NN["Dropout"](dropout)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        return _encoder_variant(self, src, src_mask, src_key_padding_mask)


def _encoder_variant(layer, x, mask=None, padding=None, variant=None):
    def sa(y):  # masks in nn.TransformerEncoderLayer's convention: bool True = blocked, float = added
        out = _FORWARD[_NN["MultiheadAttention"]](layer.self_attn, y, y, y, attn_mask=mask,
                                                    key_padding_mask=padding, need_weights=False)[0]
        return _FORWARD[_NN["Dropout"]](layer.dropout1, out)

    def ff(y):
        hidden = _t.linear(y, layer.linear1.weight, layer.linear1.bias)
        if variant != "no_relu":
            hidden = _t.relu(hidden)
        hidden = _FORWARD[_NN["Dropout"]](layer.dropout, hidden)
        return _FORWARD[_NN["Dropout"]](layer.dropout2, _t.linear(hidden, layer.linear2.weight, layer.linear2.bias))

    def norm(module, y):
        return _t.layer_norm(y, module.normalized_shape, module.weight, module.bias, module.eps)

    def residual(y, out, keep):
        return _t.add(y, out) if keep else out

    norm_first = layer.norm_first if variant not in ("pre_norm", "post_norm") else variant == "pre_norm"
    keep_attn, keep_ff = variant != "no_residual_attn", variant != "no_residual_ff"
    if norm_first:
        x = residual(x, sa(norm(layer.norm1, x)), keep_attn)
        return residual(x, ff(norm(layer.norm2, x)), keep_ff)
    x = norm(layer.norm1, residual(x, sa(x), keep_attn))
    return norm(layer.norm2, residual(x, ff(x), keep_ff))


def encoder_layer_mistakes(layer: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What an encoder layer with ``layer``'s parameters returns for ``x`` with the usual mistakes (no mask)."""
    with _t.no_grad():
        return {
            "the residual connection around self-attention is missing (add & norm: add the block's input to "
            "the attention output)":
                _encoder_variant(layer, x, variant="no_residual_attn"),
            "the residual connection around the feed-forward block is missing (add & norm: add its input to "
            "its output)":
                _encoder_variant(layer, x, variant="no_residual_ff"),
            "the feed-forward block is linear2(dropout(relu(linear1(x)))): the ReLU is missing":
                _encoder_variant(layer, x, variant="no_relu"),
            "norm_first=False is the original post-norm block (add, then norm): x = norm1(x + sa(x)); "
            "you normalised before the sublayer": _encoder_variant(layer, x, variant="pre_norm"),
            "norm_first=True is the pre-norm block: x = x + sa(norm1(x)); x = x + ff(norm2(x))":
                _encoder_variant(layer, x, variant="post_norm"),
        }


def reference_encoder_layer(layer: nn.Module) -> nn.Module:
    """torch.nn.TransformerEncoderLayer (float64, batch_first, training mode) with ``layer``'s weights."""
    d_model = layer.linear1.in_features
    ref = _NN["TransformerEncoderLayer"](d_model, layer.self_attn.num_heads, layer.linear1.out_features, dropout=0.0,
                                         batch_first=True, norm_first=bool(layer.norm_first)).to(_t.float64)
    ref.load_state_dict({k: _t.to(_t.detach(v), dtype=_t.float64) for k, v in layer.state_dict().items()})
    return ref


def _ref_next_token_distribution(logits, temperature=1.0, top_k=None):
    """softmax(logits / T) restricted to the top_k largest logits (others get probability 0)."""
    scaled = _t.div(logits, temperature)
    if top_k is not None:
        kth = _t.topk(scaled, min(top_k, _t.size(scaled, -1)), -1).values[..., -1:]
        scaled = _t.masked_fill(scaled, scaled < kth, float("-inf"))
    return _t.softmax(scaled, -1)


def next_token_mistakes(logits, temperature=1.0, top_k=None) -> dict[str, torch.Tensor]:
    ref = _ref_next_token_distribution
    out = {
        "divide the logits by the temperature (T < 1 sharpens, T > 1 flattens), do not multiply":
            ref(_t.mul(logits, temperature * temperature), temperature, top_k),
        "the softmax runs over the vocabulary (the last dimension)": _t.softmax(_t.div(logits, temperature), 0),
    }
    if top_k is not None:
        k = min(top_k, _t.size(logits, -1))
        scaled = _t.div(logits, temperature)
        low = _t.topk(scaled, k, -1, largest=False).values[..., -1:]
        out["top-k keeps the k *largest* logits"] = _t.softmax(
            _t.masked_fill(scaled, scaled > low, float("-inf")), -1)
        kth = _t.topk(scaled, k, -1).values[..., -1:]
        out["set the logits outside the top k to -inf before the softmax (a logit of 0 still gets probability)"] = \
            _t.softmax(_t.masked_fill(scaled, scaled < kth, 0.0), -1)
        p = _t.softmax(scaled, -1)
        kept = _t.masked_fill(p, scaled < kth, 0.0)
        out["after removing the tokens outside the top k the probabilities must sum to 1 again (mask the logits "
            "with -inf before the softmax)"] = kept
    return out


def reference_lm_logits(model: nn.Module, idx: torch.Tensor, variant: str | None = None) -> torch.Tensor:
    """Logits (B, T, V) of a decoder-only LM with ``model``'s parameters, built from torch.nn references.

    Expects the attribute names given in A5's ``DecoderOnlyLM``: ``tok_emb``, ``layers``, ``lm_head``.
    """
    with _t.no_grad():
        emb = _t.embedding(idx, _t.to(_t.detach(model.tok_emb.weight), dtype=_t.float64))
        steps, d_model = _t.size(idx, 1), _t.size(emb, -1)
        if variant == "scaled_embedding":
            emb = _t.mul(emb, math.sqrt(d_model))
        x = emb if variant == "no_pe" else _t.add(emb, _ref_positional_encoding(steps, d_model, _t.float64))
        causal = _t.triu(_t.full((steps, steps), float("-inf"), dtype=_t.float64), 1)
        for layer in model.layers:
            x = call(reference_encoder_layer(layer), x, src_mask=causal)
        head = model.lm_head
        return _t.linear(x, _t.to(_t.detach(head.weight), dtype=_t.float64),
                         None if head.bias is None else _t.to(_t.detach(head.bias), dtype=_t.float64))


def lm_mistakes(model: nn.Module, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the LM's logits look like with the usual mistakes."""
    return {
        "the positional encoding is missing: x = tok_emb(idx) + pe[:T] (attention alone does not know the order)":
            reference_lm_logits(model, idx, "no_pe"),
        "here the token embedding is not scaled: x = tok_emb(idx) + pe[:T]":
            reference_lm_logits(model, idx, "scaled_embedding"),
    }


class _FakeLM(nn.Module):
    """A stand-in language model for testing ``generate``: it predicts ``(last token + 1) % V`` ("counting"),
    or puts equal logits on tokens 0 and 1 ("coin"); it fails if given more than ``context_length`` tokens."""

    def __init__(self, kind: str, vocab_size: int, context_length: int):
        super().__init__()
        self.kind, self.vocab_size, self.context_length = kind, vocab_size, context_length
        self.longest_input = 0

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if not isinstance(idx, _t.Tensor) or idx.dtype != _t.long or _t.dim(idx) != 2:
            raise TypeError(f"the model takes idx as an int64 tensor (B, T); got {idx!r:.80}")
        steps = _t.size(idx, 1)
        self.longest_input = max(self.longest_input, steps)
        if steps > self.context_length:
            raise ValueError(f"the model sees at most context_length = {self.context_length} tokens, but idx has "
                             f"T = {steps}: crop idx to its last context_length tokens before calling the model")
        logits = _t.zeros(_t.size(idx, 0), steps, self.vocab_size, dtype=_t.float64)
        if self.kind == "counting":
            nxt = _t.unsqueeze(_t.remainder(_t.add(idx, 1), self.vocab_size), -1)
            logits.scatter_(-1, nxt, 20.0)
        else:
            logits[..., 2:] = float("-inf")
        return logits


def fake_lm(kind: str, vocab_size: int, context_length: int) -> nn.Module:
    """A stand-in model for ``generate`` tests (``"counting"`` or ``"coin"``, see ``_FakeLM``)."""
    return _FakeLM(kind, vocab_size, context_length)


REFERENCES: dict[str, Any] = {
    "rnn_cell": _ref_rnn_cell,
    "rnn_layer": _ref_rnn_layer,
    "embedding": _ref_embedding,
    "lstm_cell": _ref_lstm_cell,
    "lstm_layer": _ref_lstm_layer,
    "scaled_dot_product_attention": _ref_sdpa,
    "additive_attention": _ref_additive,
    "positional_encoding": _ref_positional_encoding,
    "EncoderLayer": _RefEncoderLayer,
    "next_token_distribution": _ref_next_token_distribution,
}


def reference(name: str) -> Any:
    """The correct implementation of the exercise helper ``name`` (see ``REFERENCES``)."""
    if name not in REFERENCES:
        raise KeyError(f"no reference for {name!r}; known: {', '.join(sorted(REFERENCES))}")
    return REFERENCES[name]


# Student cells cannot rebind this module's names (``checks.expect_close = ...`` raises); putting back the
# original object is allowed, so that a grader can repair a module whose ``__dict__`` was written to directly.
class _ReadOnlyModule(types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        if _PRISTINE.get(name, _MISSING) is not value:
            raise AttributeError(f"seqlib.grading.checks is read-only (cannot set {name!r})")
        types.ModuleType.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"seqlib.grading.checks is read-only (cannot delete {name!r})")


_PRISTINE = dict(globals())
sys.modules[__name__].__class__ = _ReadOnlyModule
