"""Pooling: one vector per sequence from a recurrent network's outputs over the valid steps."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import fail
from ..layers import Bidirectional, Stack, valid_steps

__all__ = ["POOLINGS", "pool", "Pooling", "concat_split", "RUNNING", "pool_step", "pooled_so_far"]

POOLINGS = ("last", "mean", "max", "attention")


def concat_split(rnn: nn.Module) -> int | None:
    """Where the backward half starts in the outputs of ``rnn`` when its top layer is
    bidirectional with concatenated directions (None otherwise)."""
    top = rnn.layers[-1] if isinstance(rnn, Stack) else rnn
    if isinstance(top, Bidirectional) and top.merge == "concat":
        return rnn.output_size // 2
    return None


def pool(y: Tensor, lengths: Tensor, how: str, *, split: int | None = None, scores: Tensor | None = None) -> Tensor:
    """One vector per sequence from the outputs ``y`` (B, T, O) of the valid steps.

    ``last``: the output at each sequence's last valid step; with ``split`` (a bidirectional,
    concatenated output whose backward half starts at feature ``split``) the backward half is
    taken at step 0, where the backward direction has read the whole sequence. ``mean``/``max``
    over the valid steps; ``attention``: softmax of ``scores`` (B, T) over the valid steps.
    """
    B, T, O = y.shape
    valid = valid_steps(lengths.to(y.device), T)                       # (B, T) bool
    if how == "last":
        last = y[torch.arange(B, device=y.device), lengths.to(y.device) - 1]    # (B, O)
        if split is None:
            return last
        return torch.cat([last[:, :split], y[:, 0, split:]], dim=1)
    if how == "mean":
        mask = valid.unsqueeze(-1).to(y.dtype)                         # (B, T, 1)
        return (y * mask).sum(1) / lengths.to(y.device, y.dtype).unsqueeze(-1)
    if how == "max":
        return y.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)
    if how == "attention":
        weights = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=1)   # (B, T)
        return torch.einsum("bt,bto->bo", weights, y)
    fail("pool", "how", f"one of {POOLINGS}", repr(how))


#: the poolings that have a step form: one output at a time, from a running summary
RUNNING = ("last", "mean", "max")


def pool_step(summary: Tensor | None, y_t: Tensor, how: str) -> Tensor:
    """The running summary of a sequence's outputs after one more output ``y_t`` (B, O): the
    step form of :func:`pool` (``how`` in :data:`RUNNING`; ``summary`` None before the first).
    With :func:`pooled_so_far` it gives :func:`pool` of every prefix:

    >>> y = torch.randn(1, 4, 3)
    >>> summary = None
    >>> for t in range(4):
    ...     summary = pool_step(summary, y[:, t], "mean")
    >>> torch.allclose(pooled_so_far(summary, 4, "mean"), pool(y, torch.tensor([4]), "mean"))
    True
    """
    if how not in RUNNING:
        fail("pool_step", "how", f"one of {RUNNING}", repr(how))
    if summary is None or how == "last":
        return y_t
    return summary + y_t if how == "mean" else torch.maximum(summary, y_t)


def pooled_so_far(summary: Tensor, steps: int, how: str) -> Tensor:
    """The pooled vector of the ``steps`` outputs that :func:`pool_step` summarised."""
    return summary / steps if how == "mean" else summary


class Pooling(nn.Module):
    """:func:`pool` as a module: ``how`` is one of :data:`POOLINGS`; ``attention`` owns its
    scoring layer (one linear unit over the O features of each step).

    >>> pooling = Pooling("attention", 6)
    >>> pooling(torch.randn(2, 5, 6), torch.tensor([5, 3])).shape
    torch.Size([2, 6])
    """

    def __init__(self, how: str, features: int, *, split: int | None = None):
        super().__init__()
        if how not in POOLINGS:
            fail("Pooling", "how", f"one of {POOLINGS}", repr(how))
        self.how, self.split = how, split
        self.attention = nn.Linear(features, 1) if how == "attention" else None

    def forward(self, y: Tensor, lengths: Tensor) -> Tensor:
        scores = self.attention(y).squeeze(-1) if self.attention is not None else None   # (B, T)
        return pool(y, lengths, self.how, split=self.split, scores=scores)

    def extra_repr(self) -> str:
        return f"how={self.how!r}, split={self.split}"
