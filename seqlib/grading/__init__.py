"""The instructor's pipeline: building the course, releasing and grading assignments.

This package is the only part of seqlib allowed to use torch.nn's recurrent and attention layers,
as references against which student work is checked.
"""
