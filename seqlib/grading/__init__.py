"""Deprecated: the instructor's pipeline moved to the package ``seqcourse``, its in-kernel helpers to
``seqcourse.kernel``.

``from seqlib.grading import checks`` (the first cell of notebooks released before the move) still works for
this release, with a warning; new notebooks import ``from seqcourse.kernel import checks``. seqlib itself never
imports seqcourse: this alias loads it only when an old notebook asks for it.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

_KERNEL = {"checks", "guard"}


def __getattr__(name: str) -> ModuleType:
    if name.startswith("__"):
        raise AttributeError(name)
    target = f"seqcourse.kernel.{name}" if name in _KERNEL else f"seqcourse.{name}"
    warnings.warn(f"seqlib.grading.{name} has moved to {target}; seqlib.grading will be removed in the next release",
                  FutureWarning, stacklevel=2)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise AttributeError(f"module 'seqlib.grading' has no attribute {name!r} ({exc})") from None
