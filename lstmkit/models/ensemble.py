"""Seed ensembles: several models of one kind trained side by side, predictions averaged."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._checks import fail

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """Several models of the same kind trained side by side on the same batches, each on its own
    loss, whose predictions are averaged (seed ensembles: the cheapest reliable gain on small data).

    ``combine="probabilities"`` (classifiers): the output is the log of the members' mean class
    probabilities, so its softmax and argmax are those of the averaged probabilities and its cross
    entropy is the mixture's. ``combine="mean"`` (forecasters): the mean prediction. The loss is the
    mean of the members' losses, so each member's gradient is that of its own loss (scaled by 1/N).
    Members are built by the caller; different initial weights make them differ.

    >>> from lstmkit.models import SequenceClassifier
    >>> model = Ensemble([SequenceClassifier("lstm", 12, 16, 3) for _ in range(4)], combine="probabilities")
    >>> logits, loss = model(torch.randn(2, 5, 12), targets=torch.tensor([0, 2]))
    >>> logits.shape, torch.allclose(logits.exp().sum(-1), torch.ones(2))
    (torch.Size([2, 3]), True)
    """

    COMBINES = ("probabilities", "mean")

    def __init__(self, members: list[nn.Module], *, combine: str):
        super().__init__()
        if combine not in self.COMBINES:
            fail("Ensemble", "combine", f"one of {self.COMBINES}", repr(combine))
        members = list(members)
        if not members or not all(isinstance(m, nn.Module) for m in members):
            fail("Ensemble", "members", "a non-empty list of nn.Module", repr(members)[:80])
        self.members = nn.ModuleList(members)
        self.combine = combine

    def forward(self, x: Tensor, *, targets: Tensor | None = None, **kwargs):
        outputs = [member(x, targets=targets, **kwargs) for member in self.members]
        predictions = torch.stack([out for out, _ in outputs])            # (N, B, ...)
        if self.combine == "probabilities":
            combined = torch.logsumexp(torch.log_softmax(predictions, -1), 0) - math.log(len(outputs))
        else:
            combined = predictions.mean(0)
        loss = torch.stack([loss for _, loss in outputs]).mean() if targets is not None else None
        return combined, loss
