"""Exps. 4 and 5 of H&S97: the adding and multiplication problems (docs/classic_tasks.md §2.5, §2.6).

Each step is a pair (value, marker); the length L ~ U{T, …, T + T/10}. One of the first 10
positions is marked (its value is X1), and one among the first T/2 − 1 other positions (X2).
Markers are 0 elsewhere, except −1 at the first and last positions; a marked position 0 has
marker +1 and its value replaced (0 for adding, 1 for multiplication). The target comes at the
end only: adding ``0.5 + (X1 + X2)/4`` with values U[−1, 1]; multiplication ``X1·X2`` with values
U[0, 1]. A sequence is correct if |error| < 0.04. These are the paper's versions (``_hs97``), not
the fixed-length, raw-sum variants found elsewhere.
"""

from __future__ import annotations

import numpy as np
import torch

from ..._checks import check_positive_int, fail
from ._batch import Flat, SequenceBatch, check_batch, end_mask, rng_from, starts_of

__all__ = ["adding_hs97", "multiplication_hs97", "arithmetic_flat"]


def _checked(owner: str, batch: int, T: int) -> None:
    check_batch(owner, batch)
    if check_positive_int(owner, "T", T) < 22:
        fail(owner, "T", "an int >= 22 (markers need the first 10 and T/2 - 1 positions)", T)


def adding_hs97(batch: int, T: int = 100, *, seed: int | np.random.Generator = 0,
                dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """The adding problem: ``x`` (B, L, 2) = (value, marker), target ``0.5 + (X1 + X2)/4`` at the end."""
    _checked("adding_hs97", batch, T)
    return arithmetic_flat(rng_from("adding_hs97", seed), batch, T, multiply=False).batch(dtype)


def multiplication_hs97(batch: int, T: int = 100, *, seed: int | np.random.Generator = 0,
                        dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """The multiplication problem: values U[0, 1], target ``X1·X2`` at the end."""
    _checked("multiplication_hs97", batch, T)
    return arithmetic_flat(rng_from("multiplication_hs97", seed), batch, T, multiply=True).batch(dtype)


def arithmetic_flat(rng: np.random.Generator, n: int, T: int, *, multiply: bool) -> Flat:
    lengths = rng.integers(T, T + T // 10 + 1, size=n)
    values = rng.uniform(0.0 if multiply else -1.0, 1.0, size=int(lengths.sum()))
    markers = np.zeros_like(values)
    starts = starts_of(lengths)
    mask = end_mask(lengths)
    markers[starts], markers[mask] = -1.0, -1.0
    i1 = rng.integers(10, size=n)                                           # one of the first 10 positions
    k = rng.integers(T // 2 - 1, size=n)                                    # k-th of the first T/2 - 1 others
    i2 = k + (k >= i1)
    markers[starts + i1], markers[starts + i2] = 1.0, 1.0
    first_marked = (i1 == 0) | (i2 == 0)
    values[starts[first_marked]] = 1.0 if multiply else 0.0
    x1, x2 = values[starts + i1], values[starts + i2]
    target = np.zeros((len(values), 1))
    target[mask, 0] = x1 * x2 if multiply else 0.5 + (x1 + x2) / 4
    return Flat(2, target, mask, lengths, inputs=np.stack([values, markers], axis=1))
