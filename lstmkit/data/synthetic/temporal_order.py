"""Exp. 6 of H&S97: temporal order (docs/classic_tasks.md §2.7).

Alphabet ``E B a b c d X Y`` (one-hot, this order). A sequence of length L ~ U{100, …, 110} starts
with E and ends with the trigger B; the other positions are uniform over {a, b, c, d} except the
relevant ones (1-based, E at position 1), uniform over {X, Y}: 6a t1 ∈ [10, 20], t2 ∈ [50, 60];
6b t1 ∈ [10, 20], t2 ∈ [33, 43], t3 ∈ [66, 76]. The class is the order of the X/Y symbols
(6a: XX, XY, YX, YY → Q, R, S, U; 6b: 8 classes, X = 0 and Y = 1 read as a binary number, first
position most significant), one-hot at the last step only; correct if every output's |error| < 0.3.
"""

from __future__ import annotations

import numpy as np
import torch

from ..._checks import fail
from ._batch import Flat, SequenceBatch, check_batch, end_mask, rng_from, starts_of

__all__ = ["TEMPORAL_SYMBOLS", "RELEVANT_WINDOWS", "CLASS_NAMES", "temporal_order", "temporal_order_flat"]

TEMPORAL_SYMBOLS = "EBabcdXY"
RELEVANT_WINDOWS = {"a": ((10, 20), (50, 60)), "b": ((10, 20), (33, 43), (66, 76))}
CLASS_NAMES = {"a": "QRSU", "b": "QRSUVABC"}


def temporal_order(batch: int, *, variant: str = "a", seed: int | np.random.Generator = 0,
                   dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """A batch of 6a (4 classes) or 6b (8 classes): ``x`` (B, L, 8), target (B, L, classes) at the end."""
    check_batch("temporal_order", batch)
    if variant not in RELEVANT_WINDOWS:
        fail("temporal_order", "variant", "'a' or 'b'", repr(variant))
    return temporal_order_flat(rng_from("temporal_order", seed), batch, variant).batch(dtype)


def temporal_order_flat(rng: np.random.Generator, n: int, variant: str) -> Flat:
    windows = RELEVANT_WINDOWS[variant]
    lengths = rng.integers(100, 111, size=n)
    symbols = rng.integers(2, 6, size=int(lengths.sum()))                   # a, b, c, d
    starts = starts_of(lengths)
    mask = end_mask(lengths)
    symbols[starts], symbols[mask] = 0, 1                                   # E first, trigger B last
    bits = rng.integers(2, size=(n, len(windows)))
    for w, (lo, hi) in enumerate(windows):
        symbols[starts + rng.integers(lo, hi + 1, size=n) - 1] = 6 + bits[:, w]   # X or Y, 1-based position
    labels = (bits * (1 << np.arange(len(windows))[::-1])).sum(1)         # first position most significant
    target = np.zeros((len(symbols), 2 ** len(windows)))
    target[mask, labels] = 1.0
    return Flat(8, target, mask, lengths, symbols=symbols, labels=labels)
