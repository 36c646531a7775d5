"""The batch every classic-task generator returns, and the helpers they share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_positive_int, fail

__all__ = ["SequenceBatch", "rng_from", "pack"]


@dataclass(frozen=True)
class SequenceBatch:
    """A padded batch of a classic task (B batch, T longest length, I inputs, O outputs).

    - ``x`` (B, T, I): inputs, zero past each sequence's length;
    - ``target`` (B, T, O): the paper's target vector at each step (one-hot, multi-hot legal set,
      or a real value), zero where there is none;
    - ``mask`` (B, T) bool: the steps that carry a target;
    - ``lengths`` (B,) int64;
    - ``labels`` (B,) int64: the class of each sequence where the task has classes, else None;
    - ``clean_target`` (B, T, O): the noise-free target where the task adds target noise (3c), else None.
    """

    x: Tensor
    target: Tensor
    mask: Tensor
    lengths: Tensor
    labels: Tensor | None = None
    clean_target: Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def sequences(self):
        """Yield ``(x, target, mask)`` of each sequence as NumPy arrays cut to its own length."""
        for b, n in enumerate(self.lengths.tolist()):
            yield self.x[b, :n].numpy(), self.target[b, :n].numpy(), self.mask[b, :n].numpy()


def rng_from(owner: str, seed: int | np.random.Generator) -> np.random.Generator:
    """A NumPy generator from an int seed, or the generator itself (to draw a stream of batches)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        fail(owner, "seed", "an int or a numpy.random.Generator", f"{type(seed).__name__} {seed!r}", kind=TypeError)
    return np.random.default_rng(int(seed))


def pack(owner: str, batch: int, items: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
         labels: list[int] | None = None, clean: list[np.ndarray] | None = None,
         dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """Pad per-sequence ``(x (L, I), target (L, O), mask (L,))`` arrays into a :class:`SequenceBatch`."""
    check_positive_int(owner, "batch", batch)
    if not dtype.is_floating_point:
        fail(owner, "dtype", "a floating-point torch.dtype", dtype, kind=TypeError)
    lengths = np.array([len(x) for x, _, _ in items], dtype=np.int64)
    B, T = len(items), int(lengths.max())
    I, O = items[0][0].shape[1], items[0][1].shape[1]
    x = np.zeros((B, T, I))
    target = np.zeros((B, T, O))
    mask = np.zeros((B, T), dtype=bool)
    clean_target = np.zeros((B, T, O)) if clean is not None else None
    for b, (xs, ts, ms) in enumerate(items):
        n = len(xs)
        x[b, :n], target[b, :n], mask[b, :n] = xs, ts, ms
        if clean is not None:
            clean_target[b, :n] = clean[b]
    as_tensor = lambda a: torch.from_numpy(a).to(dtype)  # noqa: E731
    return SequenceBatch(as_tensor(x), as_tensor(target), torch.from_numpy(mask), torch.from_numpy(lengths),
                         None if labels is None else torch.tensor(labels, dtype=torch.int64),
                         None if clean is None else as_tensor(clean_target))


def one_hot(indices, size: int) -> np.ndarray:
    """(L, size) one-hot rows of ``indices``."""
    out = np.zeros((len(indices), size))
    out[np.arange(len(indices)), indices] = 1.0
    return out


def last_step_mask(length: int) -> np.ndarray:
    mask = np.zeros(length, dtype=bool)
    mask[-1] = True
    return mask
