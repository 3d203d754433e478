"""Live demos for the lectures (ipywidgets 8 + matplotlib).

Each function returns an ipywidgets widget; the maths lives in seqlib, the widget only drives it.
Importing this package imports ipywidgets and matplotlib, which ``import seqlib`` never does.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "rnn_unroll_demo": "recurrent",
    "gradient_flow_demo": "recurrent",
    "lstm_gates_demo": "recurrent",
    "attention_demo": "attention",
    "multihead_demo": "attention",
    "positional_encoding_demo": "attention",
    "sampling_demo": "attention",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'seqlib.widgets' has no attribute {name!r}")
