r"""Real time series that ship with matplotlib (its sample data), windowed for forecasting.

``time_series(name)`` reads one of matplotlib's sample-data files through
``matplotlib.cbook.get_sample_data`` (so nothing is downloaded), applies a fixed transform, normalises each
feature with the mean and standard deviation of the *training* part only, and cuts the series into
(window, next ``horizon`` steps) pairs. ``available_time_series()`` lists the names whose file the installed
matplotlib actually has.

============  =======================================================================================
``stocks``    ``Stocks.csv``: monthly prices 1990-2022 of the 7 tickers with a complete history (IBM, AAPL,
              MSFT, XRX, ADBE, ^GSPC, ^IXIC); transform: natural log. F = 7.
``goog``      ``goog.npz``: Google's daily adjusted close 2004-2008; transform: natural log. F = 1.
``msft``      ``msft.csv``: Microsoft's daily close for 65 trading days of 2003 (tiny); transform: natural
              log. F = 1.
``eeg``       ``eeg.dat``: 800 samples of 4 EEG channels (float64, as in matplotlib's MRI-with-EEG example);
              transform: none. F = 4.
``membrane``  ``membrane.dat``: 12000 samples of a membrane potential (float32); transform: none. F = 1.
============  =======================================================================================

Normalisation: with :math:`N_{train} = \lfloor (1 - \text{val\_fraction}) N \rfloor` leading time steps,
:math:`\mu_f` and :math:`\sigma_f` (population standard deviation) are computed per feature on the
transformed values of steps :math:`0..N_{train}-1` and every step becomes :math:`(v_{t,f} - \mu_f) / \sigma_f`.
The validation part never leaks into the statistics.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_choice, check_positive_int

__all__ = ["TIME_SERIES", "available_time_series", "load_series", "time_series", "TimeSeriesDataset"]

_MONTH_ABBR = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


def _sample_path(fname: str) -> Path:
    from matplotlib import cbook  # imported on use: ``import seqlib`` stays light

    return Path(cbook.get_sample_data(fname, asfileobj=False))


def _read_stocks(path: Path) -> tuple[np.ndarray, list[str]]:
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    header, body = rows[0], rows[1:]
    body = [r for r in body if any(cell.strip() for cell in r[1:])]  # drop the rows without any price
    table = np.array([[float(c) if c.strip() else math.nan for c in r[1:]] for r in body])  # (N, 10)
    complete = [j for j in range(table.shape[1]) if not np.isnan(table[:, j]).any()]
    return np.log(table[:, complete]), [header[1 + j] for j in complete]


def _read_goog(path: Path) -> tuple[np.ndarray, list[str]]:
    with np.load(path) as npz:
        data = npz["price_data"]
    return np.log(data["adj_close"].astype(np.float64))[:, None], ["log_adj_close"]


def _read_msft(path: Path) -> tuple[np.ndarray, list[str]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))

    def key(row: dict[str, str]) -> tuple[int, int, int]:
        day, month, year = row["Date"].split("-")
        return int(year), _MONTH_ABBR[month.lower()], int(day)

    rows.sort(key=key)  # the file lists the newest day first
    return np.log(np.array([[float(r["Close"])] for r in rows])), ["log_close"]


def _read_eeg(path: Path) -> tuple[np.ndarray, list[str]]:
    return np.fromfile(path, dtype=np.float64).reshape(800, 4), [f"channel_{i}" for i in range(4)]  # (N, F)


def _read_membrane(path: Path) -> tuple[np.ndarray, list[str]]:
    return np.fromfile(path, dtype=np.float32).astype(np.float64)[:, None], ["potential"]  # (N, 1)


#: name -> (sample-data file, reader returning (values (N, F) float64, feature names))
TIME_SERIES: dict[str, tuple[str, Callable[[Path], tuple[np.ndarray, list[str]]]]] = {
    "stocks": ("Stocks.csv", _read_stocks),
    "goog": ("goog.npz", _read_goog),
    "msft": ("msft.csv", _read_msft),
    "eeg": ("eeg.dat", _read_eeg),
    "membrane": ("membrane.dat", _read_membrane),
}


def available_time_series() -> list[str]:
    """The names of ``TIME_SERIES`` whose file the installed matplotlib ships."""
    out = []
    for name, (fname, _) in TIME_SERIES.items():
        try:
            if _sample_path(fname).is_file():
                out.append(name)
        except (OSError, ValueError):  # pragma: no cover - a matplotlib without this sample file
            continue
    return out


def _check_name(name: object) -> None:
    valid = available_time_series()
    if name not in valid:
        raise ValueError(f"name must be one of {', '.join(repr(v) for v in valid)}, but got {name!r}")


def load_series(name: str) -> tuple[torch.Tensor, list[str]]:
    """The transformed, *un-normalised* series: ``(values (N, F) float64, feature names)``."""
    _check_name(name)
    fname, reader = TIME_SERIES[name]
    values, features = reader(_sample_path(fname))
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)), features


class TimeSeriesDataset(Dataset):
    """Forecasting windows of one normalised series.

    Item :math:`i` starts at step :math:`s_i` and is ``(series[s_i : s_i + W], series[s_i + W : s_i + W + H])``.

    Outputs:
        - window: :math:`(W, F)` float32
        - target: :math:`(H, F)` float32

    Attributes:
        series: :math:`(N, F)` float32, the whole normalised series (both splits).
        mean, std: :math:`(F)` float64, the training-part statistics used to normalise.
        feature_names: one name per feature.
        starts: the start step of every window.
        train_steps: :math:`N_{train}`, the number of leading steps in the training part.
    """

    def __init__(self, name: str, series: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 feature_names: list[str], window: int, horizon: int, starts: list[int], train_steps: int) -> None:
        self.name, self.series, self.mean, self.std = name, series, mean, std
        self.feature_names, self.window, self.horizon = feature_names, window, horizon
        self.starts, self.train_steps = starts, train_steps

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.starts[index]
        return self.series[s : s + self.window], self.series[s + self.window : s + self.window + self.horizon]

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation (not the log transform): ``x * std + mean`` over the last dim :math:`F`."""
        return x * self.std.to(x.device, x.dtype) + self.mean.to(x.device, x.dtype)


def time_series(name: str, window: int = 32, horizon: int = 1, split: str = "train", val_fraction: float = 0.2,
                stride: int = 1) -> TimeSeriesDataset:
    r"""A real time series from matplotlib's sample data, normalised and windowed for forecasting.

    Args:
        name: one of ``available_time_series()`` (see the module docstring for each series).
        window: :math:`W`, input steps per item.
        horizon: :math:`H`, steps to forecast after the window.
        split: ``"train"``: windows and targets inside the leading :math:`N_{train}` steps; ``"val"``: windows
            whose targets lie in the trailing part (their inputs may reach back into the training part).
        val_fraction: share of the steps in the validation part, in (0, 1).
        stride: steps between the starts of consecutive windows.

    Outputs:
        - window: :math:`(W, F)` float32
        - target: :math:`(H, F)` float32
    """
    _check_name(name)
    check_positive_int("window", window)
    check_positive_int("horizon", horizon)
    check_positive_int("stride", stride)
    check_choice("split", split, ("train", "val"))
    if not isinstance(val_fraction, int | float) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), but got {val_fraction!r}")
    values, features = load_series(name)  # (N, F) float64
    n = values.shape[0]
    train_steps = int(math.floor((1.0 - val_fraction) * n))
    mean = values[:train_steps].mean(dim=0)  # (F,)
    std = values[:train_steps].std(dim=0, correction=0).clamp_min(1e-12)
    series = ((values - mean) / std).to(torch.float32)  # (N, F)
    if split == "train":
        starts = list(range(0, train_steps - window - horizon + 1, stride))
    else:
        starts = list(range(max(train_steps - window, 0), n - window - horizon + 1, stride))
    if not starts:
        raise ValueError(
            f"window + horizon = {window + horizon} is longer than the {split} part of {name!r} "
            f"({train_steps if split == 'train' else n - train_steps} of {n} steps); use a shorter window"
        )
    return TimeSeriesDataset(name, series, mean, std, features, window, horizon, starts, train_steps)
