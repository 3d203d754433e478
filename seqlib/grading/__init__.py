"""The instructor's pipeline: building the course, releasing and grading assignments.

This package is the only part of seqlib allowed to use torch.nn's recurrent and attention layers,
as references against which student work is checked.

``seqcourse`` (:mod:`seqlib.grading.cli`) drives nbgrader through these modules:

==============  ============================================================================================
``course``      the course root, its ``nbgrader_config.py``, assignments, grading templates
``pipeline``    ``release`` (generate + validate both ways) and ``autograde`` (a class, in parallel)
``collect``     hand-ins from a folder or a zip into ``course/submitted``
``sanitize``    rebuilding a hand-in on its template; hidden-test lines and the leak scanner
``execute``     running a notebook cell by cell, surviving time-outs and dying kernels
``guard``       runs inside the grading kernel: undoes tampering, seeds the random generators
``outputs``     scoring rules for test cells: stderr, partial credit, curated tracebacks
``worker``      grading one hand-in / validating one notebook in a worker process
``runner``      running jobs N at a time with progress bars
``gradebook``   the single writer: one transaction per submission, consistency checks
``feedback``    feedback pages without hidden tests, checked for leaks
``report``      ``grades.csv``, the grade table and the per-assignment report
``checks``      runs inside the kernel: pristine comparisons, curated messages, the delegation guard
==============  ============================================================================================
"""
