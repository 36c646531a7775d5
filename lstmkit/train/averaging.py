"""Non-monotonically triggered averaging of the weights: the "NT" of NT-ASGD (Merity et al. 2018).

Training runs as configured until a validation loss is worse than the best of the losses
measured more than ``n`` evaluations before it. From then on the weights after every optimiser
step are averaged (each step weighs the same, as ``torch.optim.ASGD(t0=0, lambd=0)`` averages),
and validation, checkpoints and the final model use the average, while training goes on from
the un-averaged weights. With plain SGD this is NT-ASGD.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["TriggeredAverage"]


class TriggeredAverage:
    """The trigger and the running average of a list of parameters. :meth:`swap` exchanges the
    parameters' values with the average's in place (twice restores them)."""

    def __init__(self, nonmono: int):
        if nonmono < 1:
            raise ValueError(f"nonmono: expected a number of evaluations >= 1, got {nonmono}")
        self.nonmono = nonmono
        self.losses: list[float] = []
        self.started: int | None = None         # the evaluation (0-based) after which averaging started
        self.count = 0                           # steps averaged
        self.average: list[Tensor] | None = None
        self.swapped = False

    @property
    def active(self) -> bool:
        return self.count > 0

    def observe(self, loss: float, params: Iterable[Tensor]) -> bool:
        """Record a validation loss; start averaging if it is worse than the best of the losses
        more than ``nonmono`` evaluations old. Whether it started now."""
        start = (self.average is None and len(self.losses) > self.nonmono
                 and loss > min(self.losses[:-self.nonmono]))
        if start:
            self.average = [torch.zeros_like(p) for p in params]
            self.started = len(self.losses)
        self.losses.append(float(loss))
        return start

    @torch.no_grad()
    def update(self, params: Iterable[Tensor]) -> None:
        """Add the weights after an optimiser step to the average (once it started)."""
        if self.average is None:
            return
        if self.swapped:
            raise RuntimeError("TriggeredAverage.update: the parameters hold the average; swap back first")
        self.count += 1
        for a, p in zip(self.average, params):
            a.add_(p.detach() - a, alpha=1.0 / self.count)

    @torch.no_grad()
    def swap(self, params: Iterable[Tensor]) -> None:
        """Exchange the parameters' values with the average's."""
        for a, p in zip(self.average, params):
            kept = p.detach().clone()
            p.copy_(a)
            a.copy_(kept)
        self.swapped = not self.swapped

    def state_dict(self) -> dict:
        return {"nonmono": self.nonmono, "losses": list(self.losses), "started": self.started, "count": self.count,
                "average": self.average, "swapped": self.swapped}

    def load_state_dict(self, state: dict) -> None:
        self.nonmono, self.losses, self.started = state["nonmono"], list(state["losses"]), state["started"]
        self.count, self.swapped = state["count"], state["swapped"]
        self.average = [t.clone() for t in state["average"]] if state["average"] is not None else None
