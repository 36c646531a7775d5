"""Exp. 2 of H&S97: long time lags with local symbols (2a, 2b) and without local regularities (2c).

2a/2b (docs/classic_tasks.md §2.2): symbols a_1 … a_{p−1}, x = a_p, y = a_{p+1}, one-hot over p+1 units (inputs and
outputs). A sequence is ``(c, a_1, …, a_{p−1}, c)`` with c ∈ {x, y}; in 2b the middle symbols are
drawn i.i.d. from {a_1 … a_{p−1}}. Every step predicts the next symbol; only the last one needs
the first, p steps back.

2c (docs/classic_tasks.md §2.3): p+4 input units (distractors a_1 … a_p, then e = trigger, b = begin, x, y) and 2
outputs (x, y). ``b, c, q distractors, then more distractors each with probability 0.9 until e,
then c``; the only target is c, predicted when the trigger e arrives: the lag is at least q+1.
"""

from __future__ import annotations

import numpy as np
import torch

from ..._checks import check_positive_int, fail
from ._batch import Flat, SequenceBatch, check_batch, end_mask, one_hot_rows, rng_from, starts_of

__all__ = ["long_lag", "very_long_lag", "long_lag_flat", "very_long_lag_flat"]


def long_lag(batch: int, p: int = 100, *, noisy: bool = False, seed: int | np.random.Generator = 0,
             dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """Task 2a (``noisy=False``: two fixed sequences) or 2b (``noisy=True``: random middle symbols).

    ``x`` (B, p, p+1) is the sequence without its last symbol; ``target`` (B, p, p+1) is the next
    symbol at every step; ``labels`` is 0 for x, 1 for y.
    """
    check_batch("long_lag", batch)
    if check_positive_int("long_lag", "p", p) < 2:
        fail("long_lag", "p", "an int >= 2", p)
    return long_lag_flat(rng_from("long_lag", seed), batch, p, bool(noisy)).batch(dtype)


def long_lag_flat(rng: np.random.Generator, n: int, p: int, noisy: bool) -> Flat:
    labels = rng.integers(2, size=n)
    middle = rng.integers(0, p - 1, size=(n, p - 1)) if noisy else np.broadcast_to(np.arange(p - 1), (n, p - 1))
    c = (p - 1 + labels)[:, None]                                           # x = a_p (index p-1), y = index p
    symbols = np.concatenate([c, middle, c], axis=1)                        # (n, p+1)
    return Flat(p + 1, one_hot_rows(symbols[:, 1:].ravel(), p + 1), np.ones(n * p, dtype=bool),
                np.full(n, p), symbols=symbols[:, :-1].ravel(), labels=labels)


def very_long_lag(batch: int, q: int = 50, p: int = 50, *, seed: int | np.random.Generator = 0,
                  dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """Task 2c: ``x`` (B, T, p+4) one-hot, one target (B, T, 2) at each sequence's last step.

    Lengths are q+k+3 input steps (k ≥ 0 extra distractors, geometric with continuation 0.9);
    ``labels`` is 0 for x, 1 for y.
    """
    check_batch("very_long_lag", batch)
    check_positive_int("very_long_lag", "q", q)
    check_positive_int("very_long_lag", "p", p)
    return very_long_lag_flat(rng_from("very_long_lag", seed), batch, q, p).batch(dtype)


def very_long_lag_flat(rng: np.random.Generator, n: int, q: int, p: int) -> Flat:
    labels = rng.integers(2, size=n)
    extra = rng.geometric(0.1, size=n) - 1                                  # distractors after the first q
    lengths = q + extra + 3                                                 # b, c, q + k distractors, e
    symbols = rng.integers(0, p, size=int(lengths.sum()))
    starts = starts_of(lengths)
    symbols[starts] = p + 1                                                 # b
    symbols[starts + 1] = p + 2 + labels                                    # c = x or y
    symbols[starts + lengths - 1] = p                                       # e, the trigger
    mask = end_mask(lengths)
    target = np.zeros((len(symbols), 2))
    target[mask, labels] = 1.0
    return Flat(p + 4, target, mask, lengths, symbols=symbols, labels=labels)
