"""Exp. 3 of H&S97: the two-sequence problem of Bengio et al. (1994), signal and noise on one line.

One real input. A sequence of length L ~ U{T, …, T + T/10} starts with N values +1 (class 1) or −1
(class 2), followed by Gaussian noise of variance 0.2. The class is asked for at the end only
(spec §2.4):

- ``"a"``: target 1.0 (class 1) or 0.0 (class 2); correct if |error| < 0.2;
- ``"b"``: as a, with N(0, 0.2) noise added to the first N values too;
- ``"c"``: targets 0.2 (class 1) / 0.8 (class 2) with target noise of variance 0.1; misclassified
  if |output − noise-free target| > 0.1.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_positive_int, fail
from ._batch import SequenceBatch, last_step_mask, pack, rng_from

__all__ = ["two_sequence"]

_NOISE_STD = np.sqrt(0.2)
_TARGET_NOISE_STD = np.sqrt(0.1)


def two_sequence(batch: int, T: int = 100, N: int = 3, *, variant: str = "a",
                 seed: int | np.random.Generator = 0, dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """A batch of task 3a/3b/3c: ``x`` (B, L, 1), target (B, L, 1) at the last step; ``labels`` is
    0 for class 1 (+1 signal) and 1 for class 2 (−1 signal); ``clean_target`` is set for 3c."""
    check_positive_int("two_sequence", "batch", batch)
    check_positive_int("two_sequence", "T", T)
    if check_positive_int("two_sequence", "N", N) > T:
        fail("two_sequence", "N", f"at most T={T} signal steps", N)
    if variant not in ("a", "b", "c"):
        fail("two_sequence", "variant", "'a', 'b' or 'c'", repr(variant))
    items, labels, clean = two_sequence_items(rng_from("two_sequence", seed), batch, T, N, variant)
    return pack("two_sequence", batch, items, labels, clean, dtype=dtype)


def two_sequence_items(rng: np.random.Generator, batch: int, T: int, N: int, variant: str):
    """The sequences of :func:`two_sequence` as ``(items, labels, clean targets or None)``, unpadded."""
    items, labels, clean = [], [], []
    for _ in range(batch):
        label = int(rng.integers(2))
        L = int(rng.integers(T, T + T // 10 + 1))
        x = rng.normal(0.0, _NOISE_STD, size=L)
        x[:N] = 1.0 if label == 0 else -1.0
        if variant == "b":
            x[:N] += rng.normal(0.0, _NOISE_STD, size=N)
        target = np.zeros((L, 1))
        if variant == "c":
            target[-1] = 0.2 if label == 0 else 0.8
            clean.append(target.copy())
            target[-1] += rng.normal(0.0, _TARGET_NOISE_STD)
        else:
            target[-1] = 1.0 if label == 0 else 0.0
        items.append((x[:, None], target, last_step_mask(L)))
        labels.append(label)
    return items, labels, clean if variant == "c" else None
