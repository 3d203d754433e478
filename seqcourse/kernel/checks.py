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
Per-exercise references and known mistakes (each ``*_mistakes`` returns ``{message: wrong_output}``), one
module per assignment in :mod:`seqcourse.kernel.assignments`:
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

from ._pristine import ATOL, RTOL, seal
from .assignments import REFERENCES, reference
from .assignments.a1_rnn import classifier_mistakes, rnn_cell_mistakes, rnn_layer_mistakes
from .assignments.a2_bptt import (
    bptt_case,
    bptt_mistakes,
    bptt_reference,
    clip_norm_mistakes,
    clip_reference,
    clip_scaling_mistakes,
    grad_norms_mistakes,
    grad_norms_reference,
    with_grads,
)
from .assignments.a3_lstm import lstm_cell_mistakes, lstm_layer_mistakes
from .assignments.a4_attention import additive_mistakes, mask_mistakes, masked_from_own, mha_mistakes, sdpa_mistakes
from .assignments.a5_transformer import (
    encoder_layer_mistakes,
    fake_lm,
    lm_mistakes,
    next_token_mistakes,
    positional_encoding_mistakes,
    reference_encoder_layer,
    reference_lm_logits,
)
from .delegation import TASKS, run_student
from .expect import (
    GradingError,
    accuracy,
    expect,
    expect_close,
    expect_equal,
    expect_shape,
    expect_tensor,
    fail,
    flat,
    unpack,
)
from .gradients import expect_gradients_flow
from .inputs import call, copy_weights, params, randint, randn, torch_module
from .notebook import setup_notebook, suspicious_lines

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

seal(__name__)
