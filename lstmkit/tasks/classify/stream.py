"""Sessions of a sequence classifier: the class probabilities of the sequence so far after each
step record, from one recurrent step per new step (see :mod:`lstmkit.runs.stream`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import Tensor

from ...models import SequenceClassifier
from ...models.pooling import RUNNING, pool_step, pooled_so_far
from ...runs.records import Number
from ...runs.stream import filled, forward_only, gather, initial_state, plain, scatter

__all__ = ["SequenceStream", "SequenceState", "SequenceStart", "SequenceStep"]


@dataclass
class SequenceState:
    """A classifier session: the network's state, the pooled outputs so far (the last, their
    sum, or their maximum) and how many steps it has read."""

    rnn: Any
    pooled: Tensor | None
    seen: int


class SequenceStart(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    x: list[list[Number]] = Field(default_factory=list, description="steps the session starts with, features each")


class SequenceStep(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    x: list[list[Number]] = Field(min_length=1, description="new steps, one list of features each")


class SequenceStream:
    """Sessions of a ``classify`` run whose network reads forward only and pools ``last``,
    ``mean`` or ``max``: the class probabilities of the sequence so far after each step record,
    as ``lstmkit predict`` gives them for the whole prefix, from one recurrent step per new step
    (batched across sessions). ``supported`` says why another model has no sessions."""

    start_input = SequenceStart
    step_input = SequenceStep

    @staticmethod
    def supported(model) -> bool:
        return (isinstance(model, SequenceClassifier) and model.embedding is None and model.pooling in RUNNING
                and forward_only(model.rnn))

    def __init__(self, run, lock):
        self.lock, self.fitted, self.model = lock, run.fitted, run.model

    def _zero(self) -> Any:
        return initial_state(self.model.rnn)

    @torch.no_grad()
    def advance(self, states: list, steps: list[Tensor]) -> list[tuple[Tensor, Any]]:
        """One step for each session, as one batch: ``(output (O,), new network state)``."""
        with self.lock:
            y, new = self.model.rnn.step(torch.stack(steps), gather(states))               # (N, O)
        return [(y[i].clone(), scatter(new, i)) for i in range(len(steps))]

    async def _read(self, state: SequenceState, x: list[list[float]], submit) -> tuple[SequenceState, dict]:
        F = self.fitted.features
        if any(len(step) != F for step in x):
            raise ValueError(f"x: expected steps of {F} features, got {sorted({len(step) for step in x})}")
        scaled = self.fitted.scaled(np.asarray(x, dtype=np.float64).reshape(-1, F), "x")             # (T, F)
        rnn, pooled, seen = state.rnn, state.pooled, state.seen
        for step in scaled:
            y, rnn = await submit(rnn, step)
            pooled = pool_step(pooled, y, self.model.pooling)
            seen += 1
        state = SequenceState(rnn, pooled, seen)
        if pooled is None:
            return state, {"label": None, "probabilities": None}
        vector = pooled_so_far(pooled, seen, self.model.pooling)
        with torch.no_grad():
            probabilities = torch.softmax(self.model.head(vector[None]), -1)[0]
        classes = self.fitted.classes
        return state, {"label": classes[int(probabilities.argmax())],
                       "probabilities": dict(zip(classes, map(float, probabilities)))}

    async def start(self, record: SequenceStart, submit) -> tuple[SequenceState, dict]:
        return await self._read(SequenceState(self._zero(), None, 0), record.x, submit)

    async def update(self, state: SequenceState, record: SequenceStep, submit) -> tuple[SequenceState, dict]:
        return await self._read(state, record.x, submit)

    def export(self, state: SequenceState) -> dict:
        return {"rnn": plain(state.rnn), "pooled": None if state.pooled is None else state.pooled.tolist(),
                "seen": state.seen}

    def restore(self, exported: dict) -> SequenceState:
        """A state from :meth:`export`; ``ValueError`` naming what does not fit this model."""
        try:
            rnn = filled(self._zero(), exported["rnn"])
            seen = int(exported["seen"])
            pooled = None if exported["pooled"] is None else torch.tensor(exported["pooled"], dtype=torch.float32)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"state: expected {{'rnn', 'pooled', 'seen'}} from GET /v1/sessions/ID/state that fits "
                             f"this model: {type(error).__name__}: {error}") from None
        if (pooled is None) != (seen == 0) or (pooled is not None and pooled.shape != (self.model.rnn.output_size,)):
            raise ValueError(f"state: expected 'pooled' of {self.model.rnn.output_size} numbers after {seen} steps")
        return SequenceState(rnn, pooled, seen)
