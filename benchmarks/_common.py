"""What the benchmarks share: the timer and the mean ± sd of a figure over seeds (imported by bench_*.py, not run)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fns: dict[str, Callable[[], object]], warmup: int = 3, repeats: int = 15) -> dict[str, float]:
    """Median wall time in ms of each function over ``repeats`` timed calls after ``warmup`` untimed ones; the
    functions take turns call by call, so that a change in the machine's load hits them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(repeats):
        for label, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - start)
    return {label: 1000 * statistics.median(t) for label, t in times.items()}


def mean_sd(values: list[float], fmt: str = "{:.1f}", scale: float = 1.0) -> str:
    """``"mean ± sd"`` of ``values`` times ``scale``, each written with ``fmt`` (just the mean for one value)."""
    mean = statistics.mean(values) * scale
    if len(values) == 1:
        return fmt.format(mean)
    return f"{fmt.format(mean)} ± {fmt.format(statistics.stdev(values) * scale)}"
