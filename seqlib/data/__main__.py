"""``python -m seqlib.data``: list every dataset with its size and one example."""

from __future__ import annotations

import time
from typing import Any

import torch

from . import (
    CharDataset,
    adding_problem,
    available_time_series,
    cache_dir,
    copy_task,
    date_translation,
    negation_sentiment,
    noisy_sine,
    reversal_task,
    sensor_activity,
    sorting_task,
    text_corpus,
    time_series,
    train_val_split,
)


def _show(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return f"{value.item():.4g} ({str(value.dtype).removeprefix('torch.')})"
        dtype = str(value.dtype).removeprefix("torch.")
        flat = value.flatten()
        if value.is_floating_point():
            head = ", ".join(f"{v:.2f}" for v in flat[:6].tolist())
        else:
            head = ", ".join(str(v) for v in flat[:16].tolist())
        more = ", ..." if flat.numel() > (6 if value.is_floating_point() else 16) else ""
        return f"{tuple(value.shape)} {dtype} [{head}{more}]"
    return repr(value)


def main() -> None:
    start = time.perf_counter()
    print("seqlib.data: offline datasets (nothing is downloaded; every one is deterministic)\n")

    text = text_corpus("python-docs")
    train, val = train_val_split(text, val_fraction=0.1)
    print(f"text_corpus('python-docs'): {len(text):,} characters, {len(set(text))} distinct, "
          f"{text.count(chr(10)):,} paragraphs; cached in {cache_dir()}")
    print(f"    {text[:100]!r}...")
    ds = CharDataset(train, context_length=64)
    x, y = ds[0]
    print(f"CharDataset(train 90%, context_length=64): {len(ds):,} items, vocab {ds.vocab_size}; "
          f"validation {len(val):,} characters")
    print(f"    context {_show(x)}\n    target  {_show(y)}")

    print("\ntime_series(name, window=32, horizon=1): matplotlib sample data, z-scored with train statistics")
    for name in available_time_series():
        tr, va = time_series(name), time_series(name, split="val")
        w, t = tr[0]
        print(f"    {name:<9} {tr.series.shape[0]:>6} steps x {tr.series.shape[1]} features "
              f"({', '.join(tr.feature_names)}): {len(tr)} train / {len(va)} val windows, "
              f"window {tuple(w.shape)}, target {tuple(t.shape)}")

    synthetic = [
        ("adding_problem(1000, seq_len=100)", adding_problem(1000, 100)),
        ("copy_task(1000, seq_len=5, delay=10)", copy_task(1000, 5, 10)),
        ("reversal_task(1000, seq_len=8, min_len=3)", reversal_task(1000, 8, min_len=3)),
        ("sorting_task(1000, seq_len=8)", sorting_task(1000, 8)),
        ("noisy_sine(1000, seq_len=50)", noisy_sine(1000, 50)),
        ("negation_sentiment(1000)", negation_sentiment(1000)),
        ("date_translation(1000)", date_translation(1000)),
        ("sensor_activity(1000)", sensor_activity(1000)),
    ]
    print("\nsynthetic tasks (seed=0):")
    for label, dataset in synthetic:
        a, b = dataset[0]
        print(f"{label}: {len(dataset):,} items\n    input  {_show(a)}\n    target {_show(b)}")
    print(f"\n({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
