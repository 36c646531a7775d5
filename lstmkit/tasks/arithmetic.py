"""Exps. 4 and 5 of H&S97: the adding and multiplication problems (spec §2.5, §2.6).

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

from .._checks import check_positive_int, fail
from ._batch import SequenceBatch, last_step_mask, pack, rng_from

__all__ = ["adding_hs97", "multiplication_hs97", "marker_positions"]


def marker_positions(L: int, T: int, rng: np.random.Generator) -> tuple[int, int]:
    """The two marked positions: i1 uniform over the first 10, i2 uniform over the first T/2 − 1
    positions of [0, L) other than i1."""
    i1 = int(rng.integers(10))
    k = int(rng.integers(T // 2 - 1))                                       # k-th position of [0, L) without i1
    return i1, k + (k >= i1)


def _arithmetic(owner: str, batch: int, T: int, seed, dtype) -> SequenceBatch:
    check_positive_int(owner, "batch", batch)
    if check_positive_int(owner, "T", T) < 22:
        fail(owner, "T", "an int >= 22 (markers need the first 10 and T/2 - 1 positions)", T)
    return pack(owner, batch, arithmetic_items(rng_from(owner, seed), batch, T, multiply=owner.startswith("mult")),
                dtype=dtype)


def arithmetic_items(rng: np.random.Generator, batch: int, T: int, *, multiply: bool):
    """The sequences of :func:`adding_hs97` (or, with ``multiply``, :func:`multiplication_hs97`), unpadded."""
    low, fill = (0.0, 1.0) if multiply else (-1.0, 0.0)
    items = []
    for _ in range(batch):
        L = int(rng.integers(T, T + T // 10 + 1))
        values = rng.uniform(low, 1.0, size=L)
        markers = np.zeros(L)
        markers[0] = markers[-1] = -1.0
        i1, i2 = marker_positions(L, T, rng)
        markers[[i1, i2]] = 1.0
        if 0 in (i1, i2):
            values[0] = fill
        target = np.zeros((L, 1))
        target[-1] = values[i1] * values[i2] if multiply else 0.5 + (values[i1] + values[i2]) / 4
        items.append((np.stack([values, markers], axis=1), target, last_step_mask(L)))
    return items


def adding_hs97(batch: int, T: int = 100, *, seed: int | np.random.Generator = 0,
                dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """The adding problem: ``x`` (B, L, 2) = (value, marker), target ``0.5 + (X1 + X2)/4`` at the end."""
    return _arithmetic("adding_hs97", batch, T, seed, dtype)


def multiplication_hs97(batch: int, T: int = 100, *, seed: int | np.random.Generator = 0,
                        dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """The multiplication problem: values U[0, 1], target ``X1·X2`` at the end."""
    return _arithmetic("multiplication_hs97", batch, T, seed, dtype)
