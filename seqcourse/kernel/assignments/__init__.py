"""One module per assignment: its references, its catalogues of mutations and its demo-class bugs.

==================  ======================================================================================
``a1_rnn``          the RNN cell, the layer over time, the embedding, the many-to-one classifier
``a2_bptt``         BPTT by hand (truncated too), gradient clipping by norm, gradient norms through time
``a3_lstm``         the LSTM cell and layer (gate order i, f, g, o), the long-range classifier
``a4_attention``    scaled dot-product attention and masks, multi-head attention, additive attention
``a5_transformer``  positional encoding, the encoder block, a decoder-only LM, temperature/top-k sampling
==================  ======================================================================================

``REFERENCES`` maps the name of a notebook helper to its correct version (for ``run_student(..., uses=[...])``);
``CATALOGUES`` maps each graded function to its catalogue of mutations (:mod:`seqcourse.kernel.diagnose`);
``DEMO_BUGS`` maps a demo student to the mistake they hand in (``seqcourse.demo`` builds the demo class).
"""

from __future__ import annotations

from typing import Any

from ..catalogue import Catalogue
from . import a1_rnn, a2_bptt, a3_lstm, a4_attention, a5_transformer
from .bug import Bug

ASSIGNMENTS = {m.__name__.rsplit(".", 1)[1]: m for m in (a1_rnn, a2_bptt, a3_lstm, a4_attention, a5_transformer)}
REFERENCES: dict[str, Any] = {name: fn for m in ASSIGNMENTS.values() for name, fn in m.REFERENCES.items()}
DEMO_BUGS: dict[str, Bug] = {student: bug for m in ASSIGNMENTS.values() for student, bug in m.DEMO_BUGS.items()}
#: the catalogue of mutations of every graded function, by the name it grades (``"rnn_cell"``,
#: ``"EncoderLayer.forward"``); ``checks.diagnosis(name)`` searches it
CATALOGUES: dict[str, Catalogue] = {name: c for m in ASSIGNMENTS.values() for name, c in m.CATALOGUES.items()}


def reference(name: str) -> Any:
    """The correct implementation of the exercise helper ``name`` (see ``REFERENCES``)."""
    if name not in REFERENCES:
        raise KeyError(f"no reference for {name!r}; known: {', '.join(sorted(REFERENCES))}")
    return REFERENCES[name]


__all__ = ["ASSIGNMENTS", "Bug", "CATALOGUES", "DEMO_BUGS", "REFERENCES", "reference"]
