"""The batch every classic-task generator returns, and the flat form the generators build."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..._checks import check_positive_int, fail

__all__ = ["SequenceBatch", "Flat", "rng_from"]


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


@dataclass(frozen=True)
class Flat:
    """Sequences one after another, unpadded (the form the generators build and the paper-mode
    learner reads). ``symbols`` (steps,) holds one-hot inputs as indices into ``size`` units,
    else ``inputs`` (steps, size) holds real ones; ``target`` (steps, O), ``mask`` (steps,) bool,
    ``lengths`` (n,), ``labels`` (n,) or None, ``clean`` (steps, O) or None."""

    size: int
    target: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    symbols: np.ndarray | None = None
    inputs: np.ndarray | None = None
    labels: np.ndarray | None = None
    clean: np.ndarray | None = None

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    @property
    def ends(self) -> np.ndarray:
        """Index of each sequence's last step."""
        return np.cumsum(self.lengths).astype(np.int64) - 1

    def dense_inputs(self) -> np.ndarray:
        return self.inputs if self.inputs is not None else one_hot_rows(self.symbols, self.size)

    def batch(self, dtype: torch.dtype = torch.float32) -> SequenceBatch:
        """Pad into a :class:`SequenceBatch`."""
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            fail("SequenceBatch", "dtype", "a floating-point torch.dtype", dtype, kind=TypeError)
        B, T = len(self.lengths), int(self.lengths.max())
        b = np.repeat(np.arange(B), self.lengths)                           # (steps,) sequence of each step
        t = np.arange(len(b)) - self.offsets[b]                             # (steps,) time within it

        def pad(a):
            out = np.zeros((B, T) + a.shape[1:], dtype=a.dtype)
            out[b, t] = a
            return out

        as_tensor = lambda a: torch.from_numpy(pad(a)).to(dtype)  # noqa: E731
        return SequenceBatch(as_tensor(self.dense_inputs()), as_tensor(self.target), torch.from_numpy(pad(self.mask)),
                             torch.from_numpy(self.lengths.astype(np.int64)),
                             None if self.labels is None else torch.from_numpy(self.labels.astype(np.int64)),
                             None if self.clean is None else as_tensor(self.clean))


def rng_from(owner: str, seed: int | np.random.Generator) -> np.random.Generator:
    """A NumPy generator from an int seed, or the generator itself (to draw a stream of batches)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        fail(owner, "seed", "an int or a numpy.random.Generator", f"{type(seed).__name__} {seed!r}", kind=TypeError)
    return np.random.default_rng(int(seed))


def check_batch(owner: str, batch: object) -> int:
    return check_positive_int(owner, "batch", batch)


def starts_of(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def end_mask(lengths: np.ndarray) -> np.ndarray:
    """(steps,) True at each sequence's last step."""
    mask = np.zeros(int(lengths.sum()), dtype=bool)
    mask[np.cumsum(lengths) - 1] = True
    return mask


def one_hot_rows(indices: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((len(indices), size))
    out[np.arange(len(indices)), indices] = 1.0
    return out
