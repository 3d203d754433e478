"""Checks that run inside an assignment's kernel: pristine references, feedback in the lecture's words, a guard.

Every assignment's first, read-only cell runs ``from seqcourse.kernel import checks`` before any student code,
then ``checks.setup_notebook()``. The graded test cells call only the functions below, so a student cell that
monkeypatches ``torch.allclose``, ``torch.testing.assert_close``, ``numpy.testing``, builtins such as
``isinstance`` or ``abs``, or rebinds ``torch.nn.LSTM``, cannot turn a wrong answer into a pass: everything
the helpers use was captured when they were imported (:mod:`seqcourse.kernel._pristine`; their functions even
see a private copy of ``builtins``), and every helper module is read-only.

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
``expect_close(what, actual, expected, *, rtol=RTOL, atol=ATOL, hint="")``
    ``what``/``actual``/``expected`` may be tuples of several outputs. On a mismatch the feedback gives the largest
    error, where, the tolerance and ``hint``.
``diagnosis(name)`` -> a :class:`Diagnosis` of the graded function ``name`` (``"rnn_cell"``, ``"EncoderLayer.forward"``
    ...), used as ``with checks.diagnosis("rnn_cell") as d:``: ``d.run(fn, *args, task=..., uses=..., **kwargs)``
    calls the student's code like ``run_student`` and records the call; ``d.expect_close(...)`` and
    ``d.expect(condition, message)`` check, with the verdict at the end of the block. When a check failed, the
    function's catalogue of mutations (``CATALOGUES``, one per graded function, generated from its reference by the
    operators of :mod:`seqcourse.kernel.mutations`) is run on the inputs of every recorded call, and the mutations
    that reproduce the student's results on all of them are the feedback, in the lecture's words; otherwise the
    first failed check's message is. A student error is explained the same way (``Likely cause: ...``).
``expect_equal(what, actual, expected)`` (integer tensors), ``expect_dtype(what, actual, dtype)``,
``accuracy(what, logits_batches, label_batches)``
``unpack(what, value, ("output", ("h_n", "c_n")))`` -> leaves, checking the returned structure;
``flat(what, tensors)`` -> one float64 vector
``expect_gradients_flow(what, fn, inputs, names, task=None, uses=())``
    Backpropagates through the student's ``fn`` and compares each named input's gradient with finite differences
    of the same ``fn`` (float64): grades "gradients flow" apart from "values are right".
``expect_training(d, name, run, steps=, lr=)``: the behaviour every training loop must show (Adam over the model's
    parameters with the given learning rate, the number of updates, a backward pass and fresh gradients before every
    ``optimizer.step()``), for a ``run`` observed by a training catalogue (:mod:`seqcourse.kernel.training`).
``randn(*shape, seed, scale=1.0)``, ``randint(high, shape, seed, low=0)``: inputs from a private generator, so
    grading never depends on the global random stream.
``torch_module(name, *args, seed, **kwargs)``, ``call(module, *args)``, ``params(module)``,
``copy_weights(module, {name: tensor})``, ``randomise(module, seed)``: torch.nn references (float64, reproducible
    weights) built from classes captured at import and run through their captured ``forward``; copying weights
    into a student's module, or drawing all of them (LayerNorms included) so that no two are alike.
``reference(name)`` / ``REFERENCES``: correct versions of the exercises' helpers (for ``uses=``).
Per-exercise references, one module per assignment in :mod:`seqcourse.kernel.assignments` (with its catalogues):
    A2 ``bptt_case``, ``bptt_reference``, ``with_grads``, ``clip_reference``, ``grad_norms_reference``;
    A4 ``masked_from_own``; A5 ``reference_encoder_layer``, ``reference_lm_logits``, ``fake_lm``.
Self-consistency: some edge cases are graded against the student's *own* function (masking against their own
unmasked weights, padding against the unpadded sequence, one sample against a batch of one), so that they grade
the edge case alone.

The guard and the captured references defend against casual tampering from student cells, not against an
attacker with arbitrary code execution in the same process; ``suspicious_lines(source)`` lists student lines
that touch the grading machinery, for the pipeline to flag for a human.
"""

from __future__ import annotations

from ._pristine import ATOL, RTOL, seal
from .assignments import CATALOGUES, REFERENCES, reference
from .assignments.a2_bptt import bptt_case, bptt_reference, clip_reference, grad_norms_reference, with_grads
from .assignments.a4_attention import masked_from_own
from .assignments.a5_transformer import fake_lm, reference_encoder_layer, reference_lm_logits
from .delegation import TASKS, run_student
from .diagnose import Diagnosis, diagnosis
from .expect import (
    GradingError,
    accuracy,
    expect,
    expect_close,
    expect_dtype,
    expect_equal,
    expect_shape,
    expect_tensor,
    fail,
    flat,
    unpack,
)
from .gradients import expect_gradients_flow
from .inputs import call, copy_weights, params, randint, randn, randomise, torch_module
from .notebook import setup_notebook, suspicious_lines
from .training import expect_training

__all__ = [
    "ATOL", "CATALOGUES", "Diagnosis", "GradingError", "REFERENCES", "RTOL", "TASKS", "accuracy", "bptt_case",
    "bptt_reference", "call", "clip_reference", "copy_weights", "diagnosis", "expect", "expect_close", "expect_dtype",
    "expect_equal", "expect_gradients_flow", "expect_shape", "expect_tensor", "expect_training", "fail", "fake_lm",
    "flat", "grad_norms_reference", "masked_from_own", "params", "randint", "randn", "randomise", "reference",
    "reference_encoder_layer", "reference_lm_logits", "run_student", "setup_notebook", "suspicious_lines",
    "torch_module", "unpack", "with_grads",
]

seal(__name__)
