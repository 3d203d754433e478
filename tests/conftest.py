"""Test-wide settings: Jupyter, IPython and matplotlib write into build/, never into $HOME; one torch thread."""

from __future__ import annotations

import os

import torch

from seqlib.grading.paths import jupyter_env

jupyter_env()
os.environ.setdefault("MPLBACKEND", "Agg")
# Small tensors on a shared 2-core machine: one thread per process avoids oversubscription.
torch.set_num_threads(1)
