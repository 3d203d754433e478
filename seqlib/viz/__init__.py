"""Figures for the lectures: data in, a matplotlib ``Figure`` out.

Every function takes plain data (tensors, arrays or lists), draws it on a new :class:`matplotlib.figure.Figure`
and returns the figure. Nothing here calls ``plt.show()`` or touches pyplot's list of open figures, so the
functions work the same in a notebook (the figure displays when it is the value of a cell), in a script
(``fig.savefig(...)``), on a headless server and inside a widget. The maths that produces the data lives in the
rest of seqlib; the widgets of :mod:`seqlib.widgets` draw with these functions.

=================  ==========================================================================================
``gradients``      gradient norms through time, Jacobian heatmaps, the clipping landscape, loss curves (C07-C12)
``distillation``   softened distributions at several temperatures, student accuracy over seeds (C36-C37)
=================  ==========================================================================================

Importing ``seqlib.viz`` imports matplotlib only when a function is first used; ``import seqlib`` never does.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module of seqlib.viz that defines it
_EXPORTS: dict[str, str] = {
    "plot_gradient_norms": "gradients",
    "plot_jacobian_heatmap": "gradients",
    "plot_clipping_landscape": "gradients",
    "plot_loss_curves": "gradients",
    "plot_softened_distributions": "distillation",
    "plot_accuracy_bars": "distillation",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seqlib.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
