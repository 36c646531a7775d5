"""Exp. 6 of H&S97: temporal order (spec §2.7).

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

from .._checks import check_positive_int, fail
from ._batch import SequenceBatch, last_step_mask, one_hot, pack, rng_from

__all__ = ["TEMPORAL_SYMBOLS", "RELEVANT_WINDOWS", "CLASS_NAMES", "temporal_order"]

TEMPORAL_SYMBOLS = "EBabcdXY"
RELEVANT_WINDOWS = {"a": ((10, 20), (50, 60)), "b": ((10, 20), (33, 43), (66, 76))}
CLASS_NAMES = {"a": "QRSU", "b": "QRSUVABC"}


def temporal_order(batch: int, *, variant: str = "a", seed: int | np.random.Generator = 0,
                   dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """A batch of 6a (4 classes) or 6b (8 classes): ``x`` (B, L, 8), target (B, L, classes) at the end."""
    check_positive_int("temporal_order", "batch", batch)
    if variant not in RELEVANT_WINDOWS:
        fail("temporal_order", "variant", "'a' or 'b'", repr(variant))
    return pack("temporal_order", batch, *temporal_order_items(rng_from("temporal_order", seed), batch, variant),
                dtype=dtype)


def temporal_order_items(rng: np.random.Generator, batch: int, variant: str):
    """The sequences of :func:`temporal_order` as ``(items, labels)``, unpadded."""
    windows = RELEVANT_WINDOWS[variant]
    n_classes = 2 ** len(windows)
    items, labels = [], []
    for _ in range(batch):
        L = int(rng.integers(100, 111))
        symbols = rng.integers(2, 6, size=L)                                # a, b, c, d
        symbols[0], symbols[-1] = 0, 1                                      # E first, trigger B last
        bits = rng.integers(2, size=len(windows))
        for (lo, hi), bit in zip(windows, bits):
            symbols[int(rng.integers(lo, hi + 1)) - 1] = 6 + bit            # X or Y at a 1-based position
        label = int(sum(int(b) << (len(bits) - 1 - k) for k, b in enumerate(bits)))
        target = np.zeros((L, n_classes))
        target[-1, label] = 1.0
        items.append((one_hot(symbols, 8), target, last_step_mask(L)))
        labels.append(label)
    return items, labels
