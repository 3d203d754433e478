"""Offline datasets for sequence models: real text and time series already on the machine, synthetic tasks.

Nothing here downloads anything, and every dataset is deterministic: the synthetic tasks draw from a local
``torch.Generator`` seeded with ``seed``; the real data comes from the Python standard library's source
(``text_corpus``) and from matplotlib's sample data (``time_series``). ``python -m seqlib.data`` lists them all
with their sizes and an example.

Real data:
    ``text_corpus("python-docs")``, ``train_val_split``, ``CharDataset`` (module ``text``);
    ``time_series(name, window, horizon)``, ``available_time_series`` (module ``timeseries``).
Synthetic tasks (module ``synthetic``):
    ``adding_problem``, ``copy_task``, ``reversal_task``, ``sorting_task``, ``noisy_sine``,
    ``negation_sentiment``, ``date_translation``.
Sensor time series (module ``sensor``):
    ``sensor_activity`` (simulated 3-axis accelerometer windows of six activities; balanced or long-tailed),
    ``ACTIVITIES``, ``SensorDataset``.
Images (module ``digits``):
    ``digits_8x8`` (the 8x8 handwritten digits that scikit-learn ships; read from its package, never imported).
Long-tailed sensor task (module ``imbalanced``):
    ``sensor_long_tailed`` (an imbalanced training set and a balanced test set), ``long_tailed_counts``.
Batching (module ``collate``):
    ``collate_padded``, ``collate_packed``, ``collate_seq2seq``, ``TokenizedDataset``, ``encode_dataset``.
"""

from __future__ import annotations

from .collate import TokenizedDataset, collate_packed, collate_padded, collate_seq2seq, encode_dataset
from .digits import digits_8x8
from .imbalanced import LONG_TAILED_CLASSES, long_tailed_counts, sensor_long_tailed
from .sensor import ACTIVITIES, SensorDataset, sensor_activity
from .synthetic import (
    DATE_FORMATS,
    DateDataset,
    PairDataset,
    SentimentDataset,
    adding_problem,
    copy_task,
    date_translation,
    negation_sentiment,
    noisy_sine,
    reversal_task,
    sorting_task,
)
from .text import CORPORA, CharDataset, cache_dir, text_corpus, train_val_split
from .timeseries import TIME_SERIES, TimeSeriesDataset, available_time_series, load_series, time_series

__all__ = [
    "CORPORA", "CharDataset", "cache_dir", "text_corpus", "train_val_split",
    "TIME_SERIES", "TimeSeriesDataset", "available_time_series", "load_series", "time_series",
    "DATE_FORMATS", "DateDataset", "PairDataset", "SentimentDataset", "adding_problem", "copy_task",
    "date_translation", "negation_sentiment", "noisy_sine", "reversal_task", "sorting_task",
    "ACTIVITIES", "SensorDataset", "sensor_activity", "digits_8x8", "LONG_TAILED_CLASSES", "long_tailed_counts",
    "sensor_long_tailed",
    "TokenizedDataset", "collate_packed", "collate_padded", "collate_seq2seq", "encode_dataset",
]
