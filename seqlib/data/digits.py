"""The 8x8 handwritten digits that scikit-learn ships inside its package (no download): 1,797 images, ten classes.

The images are the UCI "optical recognition of handwritten digits" test set as scikit-learn bundles it (the file
behind ``sklearn.datasets.load_digits``): 8x8 pixels, each an integer count 0-16 of the ink in a 4x4 block of the
32x32 original. The STDP lecture shows them to a spiking network as spike trains.

:func:`digits_8x8` reads that file straight from the installed scikit-learn (``sklearn/datasets/data/digits.csv.gz``)
with numpy: scikit-learn must be installed, but it is never imported (importing it would also import scipy and take
seconds), and ``import seqlib`` or ``import seqlib.data`` does not look for it at all. The tests check the result
against ``load_digits()``. The functions of :mod:`seqlib.stdp` take plain tensors, so any other source of images
works as well.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from .synthetic import PairDataset

__all__ = ["digits_8x8"]


def _digits_file() -> Path:
    spec = importlib.util.find_spec("sklearn")  # finds the installed package without importing it
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    raise ImportError("digits_8x8 reads the 8x8 digits that scikit-learn ships in its package "
                      "(sklearn/datasets/data/digits.csv.gz), but " +
                      ("scikit-learn is not installed: `pip install scikit-learn`" if spec is None else
                       f"no such file is in {folders}") + "; nothing is downloaded at run time")


@functools.lru_cache(maxsize=1)
def _load() -> tuple[torch.Tensor, torch.Tensor]:
    table = np.loadtxt(_digits_file(), delimiter=",", dtype=np.float64)  # (1797, 65): 64 pixels, then the label
    images = torch.from_numpy(table[:, :64]).float().reshape(-1, 8, 8) / 16.0  # (n, 8, 8) in [0, 1]
    return images, torch.from_numpy(table[:, 64]).long()


def digits_8x8() -> PairDataset:
    """The 8x8 digits as a dataset of ``(image, label)``: ``inputs`` ``(1797, 8, 8)`` float32 in [0, 1] (ink / 16),
    ``targets`` ``(1797,)`` int64 in 0..9, in scikit-learn's order (the classes are interleaved, about 180 each).
    """
    images, labels = _load()
    return PairDataset(images.clone(), labels.clone())
