"""Exp. 3 of H&S97: the two-sequence problem of Bengio et al. (1994), signal and noise on one line.

One real input. A sequence of length L ~ U{T, …, T + T/10} starts with N values +1 (class 1) or −1
(class 2), followed by Gaussian noise of variance 0.2. The class is asked for at the end only
(docs/classic_tasks.md §2.4):

- ``"a"``: target 1.0 (class 1) or 0.0 (class 2); correct if |error| < 0.2;
- ``"b"``: as a, with N(0, 0.2) noise added to the first N values too;
- ``"c"``: targets 0.2 (class 1) / 0.8 (class 2) with target noise of variance 0.1; misclassified
  if |output − noise-free target| > 0.1.
"""

from __future__ import annotations

import numpy as np
import torch

from ..._checks import check_positive_int, fail
from ._batch import Flat, SequenceBatch, check_batch, end_mask, rng_from, starts_of

__all__ = ["two_sequence", "two_sequence_flat"]

_NOISE_STD = np.sqrt(0.2)
_TARGET_NOISE_STD = np.sqrt(0.1)


def two_sequence(batch: int, T: int = 100, N: int = 3, *, variant: str = "a",
                 seed: int | np.random.Generator = 0, dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """A batch of task 3a/3b/3c: ``x`` (B, L, 1), target (B, L, 1) at the last step; ``labels`` is
    0 for class 1 (+1 signal) and 1 for class 2 (−1 signal); ``clean_target`` is set for 3c."""
    check_batch("two_sequence", batch)
    check_positive_int("two_sequence", "T", T)
    if check_positive_int("two_sequence", "N", N) > T:
        fail("two_sequence", "N", f"at most T={T} signal steps", N)
    if variant not in ("a", "b", "c"):
        fail("two_sequence", "variant", "'a', 'b' or 'c'", repr(variant))
    return two_sequence_flat(rng_from("two_sequence", seed), batch, T, N, variant).batch(dtype)


def two_sequence_flat(rng: np.random.Generator, n: int, T: int, N: int, variant: str) -> Flat:
    labels = rng.integers(2, size=n)
    lengths = rng.integers(T, T + T // 10 + 1, size=n)
    x = rng.normal(0.0, _NOISE_STD, size=int(lengths.sum()))
    signal = (starts_of(lengths)[:, None] + np.arange(N)).ravel()           # (n*N,) the first N steps
    x[signal] = np.repeat(1.0 - 2.0 * labels, N) + (rng.normal(0.0, _NOISE_STD, size=n * N) if variant == "b" else 0)
    mask = end_mask(lengths)
    target = np.zeros((len(x), 1))
    clean = None
    if variant == "c":
        target[mask, 0] = np.where(labels == 0, 0.2, 0.8)
        clean = target.copy()
        target[mask, 0] += rng.normal(0.0, _TARGET_NOISE_STD, size=n)
    else:
        target[mask, 0] = np.where(labels == 0, 1.0, 0.0)
    return Flat(1, target, mask, lengths, inputs=x[:, None], labels=labels, clean=clean)
