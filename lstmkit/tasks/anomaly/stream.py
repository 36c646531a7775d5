"""Sessions of an anomaly detector: each new point scored as the batch path scores it inside the
whole series (see :mod:`lstmkit.runs.stream`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pydantic import BaseModel, Field

from ...runs.records import Number, finite_float32

__all__ = ["PointStream", "PointState", "PointStart", "PointStep"]


@dataclass
class PointState:
    """An anomaly session: the last ``window`` scaled values, the last ``smooth`` squared
    prediction errors (the score is their mean), and how many points it has read."""

    window: list[float]
    errors: list[float]
    seen: int


class PointStart(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    values: list[Number] = Field(default_factory=list, description="points the session starts with (scored too)")


class PointStep(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    values: list[Number] = Field(min_length=1, description="new points, in order")


class PointStream:
    """Sessions of an ``anomaly`` run: each new point is scored as ``lstmkit predict`` scores it
    inside the whole series (the squared error of the model's one-step prediction from the
    ``window`` points before it, averaged over the last ``smooth`` points; 0 for the first
    ``window``). The model reads fixed windows from a zero state, as it was trained, so a
    session keeps the last window, not a recurrent state; windows of concurrent sessions run
    as one batch."""

    start_input = PointStart
    step_input = PointStep

    def __init__(self, run, lock):
        self.lock, self.fitted, self.model = lock, run.fitted, run.model
        self.W, self.smooth = self.fitted.window, self.fitted.smooth

    @torch.no_grad()
    def advance(self, states: list, windows: list[list[float]]) -> list[tuple[float, None]]:
        """The one-step prediction after each window, as one batch."""
        x = torch.tensor(windows, dtype=torch.float32)[..., None]                        # (N, W, 1)
        with self.lock:
            pred = self.model(x)[0][:, 0]
        return [(float(p), None) for p in pred.double()]

    def _scaled(self, values: list[float]) -> list[float]:
        scaled = self.fitted.scaled(values)
        finite_float32(scaled, "values")
        return scaled.tolist()

    async def _read(self, state: PointState, values: list[float], submit) -> tuple[PointState, dict]:
        scores, first = [], state.seen
        for x in self._scaled(values):
            error = 0.0
            if state.seen >= self.W:
                prediction, _ = await submit(None, state.window)
                error = (prediction - x) ** 2
            state.errors = (state.errors + [error])[-self.smooth:]
            scores.append(float(self.fitted.smoothed(state.errors, state.seen + 1 - len(state.errors))[-1]))
            state.window = (state.window + [x])[-self.W:]
            state.seen += 1
        return state, {"scores": scores, "threshold": self.fitted.threshold,
                       "anomalies": [first + i for i in self.fitted.flagged(scores)]}

    async def start(self, record: PointStart, submit) -> tuple[PointState, dict]:
        """A new session, having read the start's points (their scores are the output)."""
        return await self._read(PointState([], [], 0), record.values, submit)

    async def update(self, state: PointState, record: PointStep, submit) -> tuple[PointState, dict]:
        return await self._read(state, record.values, submit)

    def export(self, state: PointState) -> dict:
        return {"window": state.window, "errors": state.errors, "seen": state.seen}

    def restore(self, exported: dict) -> PointState:
        try:
            state = PointState([float(v) for v in exported["window"]], [float(v) for v in exported["errors"]],
                               int(exported["seen"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"state: expected {{'window': [...], 'errors': [...], 'seen': n}} from "
                             f"GET /v1/sessions/ID/state, got {type(error).__name__}: {error}") from None
        if (len(state.window) != min(state.seen, self.W) or len(state.errors) > self.smooth
                or not all(math.isfinite(v) for v in state.window + state.errors)):
            raise ValueError(f"state: expected a window of min(seen, {self.W}) finite values and at most "
                             f"{self.smooth} errors, got {len(state.window)} values, {len(state.errors)} errors, "
                             f"seen {state.seen}")
        return state
