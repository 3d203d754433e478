"""Test-wide settings: Jupyter, IPython and matplotlib write into build/, never into $HOME."""

from __future__ import annotations

import os

from seqlib.grading.paths import jupyter_env

jupyter_env()
os.environ.setdefault("MPLBACKEND", "Agg")
