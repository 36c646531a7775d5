"""Variable-length batches: the mask of valid steps and the reversal within each length.

A batch of sequences of different lengths is padded to (B, T, ...); ``lengths`` (B,) says how
many leading steps of each row are real. Every layer, loss and pooling that takes ``lengths``
uses these two helpers, so "valid" means one thing everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["valid_steps", "reverse_padded"]


def valid_steps(lengths: Tensor, time: int) -> Tensor:
    """(B, T) bool mask: True where step t lies within sequence b's length."""
    return torch.arange(time, device=lengths.device) < lengths[:, None]


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x`` (B, T, ...) within its own length; padding stays in place.

    The permutation is its own inverse, so applying it twice gives ``x`` back.
    """
    if lengths is None:
        return x.flip(1)
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device).expand(B, T)                      # (B, T)
    idx = torch.where(valid_steps(lengths, T), lengths[:, None] - 1 - t, t)   # (B, T)
    idx = idx.view(B, T, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)
