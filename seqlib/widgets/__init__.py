"""Live demos for the lectures (ipywidgets 8 + matplotlib).

Each demo function returns a :class:`~seqlib.widgets.shell.DemoWidget`: controls above a figure. The numbers come
from seqlib, the figures from :mod:`seqlib.viz`, the trained models from :mod:`seqlib.models`, the example data
(sentences, tables) from the lecture that calls the demo; a widget only turns its controls into arguments.

=============  ===================================================================================================
``shell``      ``DemoWidget``: the one widget shell (controls, ``draw(values) -> (figure, data)``, ``last_data``,
               ``png``, ``hold()``, ``refresh()``, error messages, one-thread drawing)
``recurrent``  ``rnn_unroll_demo``, ``gradient_flow_demo``, ``lstm_gates_demo`` (lectures 01-03)
``attention``  ``attention_demo``, ``multihead_demo``, ``positional_encoding_demo``, ``sampling_demo``
               (lectures 04-05)
=============  ===================================================================================================

Importing this package imports ipywidgets and matplotlib only when a demo is first used; ``import seqlib`` never
does.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

# public name -> module of seqlib.widgets that defines it
_EXPORTS: dict[str, str] = {
    "DemoWidget": "shell",
    "rnn_unroll_demo": "recurrent",
    "gradient_flow_demo": "recurrent",
    "lstm_gates_demo": "recurrent",
    "attention_demo": "attention",
    "multihead_demo": "attention",
    "positional_encoding_demo": "attention",
    "sampling_demo": "attention",
}
_SUBMODULES = {"shell", "recurrent", "attention"}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS, _SUBMODULES)
