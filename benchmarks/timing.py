"""Timing shared by the benchmarks that set one call against its peer's, run from this folder
(``python benchmarks/bench_step.py``: the folder is on the import path)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_call(call: Callable[[], object], calls: int, *, warmup: int) -> float:
    """Seconds per call of ``call`` over ``calls`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def interleaved_medians(ours: Callable[[], object], theirs: Callable[[], object], *, reps: int, calls: int,
                        warmup: int) -> tuple[float, float]:
    """The median seconds per call of each side over ``reps`` repetitions that alternate between
    them, so that a noisy machine's slow spells fall on both."""
    a, b = [], []
    for _ in range(reps):
        a.append(per_call(ours, calls, warmup=warmup))
        b.append(per_call(theirs, calls, warmup=warmup))
    return statistics.median(a), statistics.median(b)
