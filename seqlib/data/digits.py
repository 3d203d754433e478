"""The 8x8 handwritten digits that scikit-learn ships with its package (no download): 1,797 images, ten classes.

The images are the UCI "optical recognition of handwritten digits" test set as scikit-learn bundles it
(``sklearn.datasets.load_digits``): 8x8 pixels, each an integer count 0-16 of the ink in a 4x4 block of the
32x32 original. The STDP lecture shows them to a spiking network as spike trains.

scikit-learn is an optional dependency, imported only when :func:`digits_8x8` is first called (never by
``import seqlib`` or ``import seqlib.data``). The functions of :mod:`seqlib.stdp` take plain tensors, so any other
source of images works as well.
"""

from __future__ import annotations

import functools

import torch

from .synthetic import PairDataset

__all__ = ["digits_8x8"]


@functools.lru_cache(maxsize=1)
def _load() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError("digits_8x8 reads the digits bundled with scikit-learn; install it with "
                          "`pip install scikit-learn` (nothing is downloaded at run time)") from error
    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float() / 16.0  # (1797, 8, 8) in [0, 1]
    return images, torch.from_numpy(bunch.target).long()


def digits_8x8() -> PairDataset:
    """The 8x8 digits as a dataset of ``(image, label)``: ``inputs`` ``(1797, 8, 8)`` float32 in [0, 1] (ink / 16),
    ``targets`` ``(1797,)`` int64 in 0..9, in scikit-learn's order (the classes are interleaved, about 180 each).
    """
    images, labels = _load()
    return PairDataset(images.clone(), labels.clone())
