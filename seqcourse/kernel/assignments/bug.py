"""A demo-class mistake: a text replacement in one solution cell, and what it must cost."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bug:
    """One mistake: ``old`` -> ``new`` in the solution cell ``cell`` of ``assignment``.

    ``breaks``: the graded cells that lose their points; ``says``: a phrase the feedback of the first of them
    must contain (the curated message for this mistake).
    """

    assignment: str
    cell: str
    old: str
    new: str
    breaks: tuple[str, ...]
    says: str
