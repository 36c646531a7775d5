"""Exp. 2 of H&S97: long time lags with local symbols (2a, 2b) and without local regularities (2c).

2a/2b (spec §2.2): symbols a_1 … a_{p−1}, x = a_p, y = a_{p+1}, one-hot over p+1 units (inputs and
outputs). A sequence is ``(c, a_1, …, a_{p−1}, c)`` with c ∈ {x, y}; in 2b the middle symbols are
drawn i.i.d. from {a_1 … a_{p−1}}. Every step predicts the next symbol; only the last one needs
the first, p steps back.

2c (spec §2.3): p+4 input units (distractors a_1 … a_p, then e = trigger, b = begin, x, y) and 2
outputs (x, y). ``b, c, q distractors, then more distractors each with probability 0.9 until e,
then c``; the only target is c, predicted when the trigger e arrives: the lag is at least q+1.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_positive_int, fail
from ._batch import SequenceBatch, last_step_mask, one_hot, pack, rng_from

__all__ = ["long_lag", "very_long_lag"]


def long_lag(batch: int, p: int = 100, *, noisy: bool = False, seed: int | np.random.Generator = 0,
             dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """Task 2a (``noisy=False``: two fixed sequences) or 2b (``noisy=True``: random middle symbols).

    ``x`` (B, p, p+1) is the sequence without its last symbol; ``target`` (B, p, p+1) is the next
    symbol at every step; ``labels`` is 0 for x, 1 for y.
    """
    check_positive_int("long_lag", "batch", batch)
    if check_positive_int("long_lag", "p", p) < 2:
        fail("long_lag", "p", "an int >= 2", p)
    return pack("long_lag", batch, *long_lag_items(rng_from("long_lag", seed), batch, p, noisy), dtype=dtype)


def long_lag_items(rng: np.random.Generator, batch: int, p: int, noisy: bool):
    """The sequences of :func:`long_lag` as ``(items, labels)``, unpadded."""
    items, labels = [], []
    for _ in range(batch):
        label = int(rng.integers(2))
        c = p - 1 + label                                                   # x = a_p (index p-1), y = index p
        middle = rng.integers(0, p - 1, size=p - 1) if noisy else np.arange(p - 1)
        symbols = np.concatenate([[c], middle, [c]])                        # (p+1,)
        items.append((one_hot(symbols[:-1], p + 1), one_hot(symbols[1:], p + 1), np.ones(p, dtype=bool)))
        labels.append(label)
    return items, labels


def very_long_lag(batch: int, q: int = 50, p: int = 50, *, seed: int | np.random.Generator = 0,
                  dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """Task 2c: ``x`` (B, T, p+4) one-hot, one target (B, T, 2) at each sequence's last step.

    Lengths are q+k+3 input steps (k ≥ 0 extra distractors, geometric with continuation 0.9);
    ``labels`` is 0 for x, 1 for y.
    """
    check_positive_int("very_long_lag", "batch", batch)
    check_positive_int("very_long_lag", "q", q)
    check_positive_int("very_long_lag", "p", p)
    return pack("very_long_lag", batch, *very_long_lag_items(rng_from("very_long_lag", seed), batch, q, p),
                dtype=dtype)


def very_long_lag_items(rng: np.random.Generator, batch: int, q: int, p: int):
    """The sequences of :func:`very_long_lag` as ``(items, labels)``, unpadded."""
    e, b = p, p + 1
    items, labels = [], []
    for _ in range(batch):
        label = int(rng.integers(2))
        k = int(rng.geometric(0.1)) - 1                                     # extra distractors before e
        inputs = np.concatenate([[b, p + 2 + label], rng.integers(0, p, size=q + k), [e]])
        target = np.zeros((len(inputs), 2))
        target[-1, label] = 1.0
        items.append((one_hot(inputs, p + 4), target, last_step_mask(len(inputs))))
        labels.append(label)
    return items, labels
