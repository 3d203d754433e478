"""The part of seqcourse that runs inside a student's kernel: test helpers, the delegation guard, references.

It needs nothing but torch and numpy (no nbgrader, no Jupyter server), so the same package serves the
student who runs the visible tests on a laptop and the grader's sandboxed kernel. An assignment's first cell
imports :mod:`seqcourse.kernel.checks`, the only module a notebook names.

================  ==============================================================================================
``checks``        the test-cell API (one read-only module that gathers the names below)
``expect``        ``GradingError`` and the comparisons whose failure message is the feedback
``inputs``        reproducible inputs, torch.nn reference modules built from captured classes
``delegation``    ``run_student``: the delegation guard (``TASKS``), tripwires, time limits, ``uses=``
``gradients``     ``expect_gradients_flow``: autograd through the student's code against finite differences
``diagnose``      ``diagnosis(name)``: records a test's calls; on a failure, names the mutation that reproduces them
``catalogue``     ``Catalogue``: a graded function's reference with mutation sites, and what each mutation means
``mutations``     the mutation sites and operators (activation swapped, operand transposed, term dropped, ...)
``training``      what a training loop did (optimizer, steps, fresh gradients, batches, losses), for its checks
``notebook``      ``setup_notebook`` (seeds, one thread, stderr to stdout), ``suspicious_lines``
``assignments``   one module per assignment: references, catalogues of mutations, the demo class's bugs
``guard``         called by the grader around every cell: undoes tampering, seeds from the grade id
``_pristine``     the torch functions, classes and builtins captured at import; ``seal`` (read-only modules)
================  ==============================================================================================
"""
