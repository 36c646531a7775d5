"""Sessions of a forecaster: after the values sent so far, the next ``horizon`` values (see
:mod:`lstmkit.runs.stream`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import Tensor

from ...runs.records import Number, finite_float32

__all__ = ["SeriesStream", "SeriesState", "SeriesStart", "SeriesStep"]


@dataclass
class SeriesState:
    """A forecast session: the last ``window`` values (as sent) and the step index after them."""

    history: list[float]
    step: int


class SeriesStart(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    values: list[Number] = Field(default_factory=list, description="the latest values, oldest first")
    start: int = Field(0, description="the step index of values[0], for the phase features")


class SeriesStep(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    values: list[Number] = Field(min_length=1, description="new values, in order")


class SeriesStream:
    """Sessions of a ``forecast`` run: after the values sent so far, the next ``horizon`` values,
    as ``lstmkit predict`` forecasts them from the same history (None until ``window`` values
    arrived). The model reads its window from a zero state, as it was trained, so a session
    keeps the last window; forecasts of concurrent sessions run as one batch."""

    start_input = SeriesStart
    step_input = SeriesStep

    def __init__(self, run, lock):
        self.lock, self.task, self.fitted, self.model = lock, run.task, run.fitted, run.model
        self.W = self.fitted.window

    @torch.no_grad()
    def advance(self, states: list, windows: list[Tensor]) -> list[tuple[list[float], None]]:
        with self.lock:
            scaled = self.model(torch.stack(windows))[0].double().numpy()                 # (N, K)
        return [(row.tolist(), None) for row in self.fitted.from_model(scaled)]

    async def _read(self, state: SeriesState, values: list[float], submit) -> tuple[SeriesState, dict]:
        history = (state.history + values)[-self.W:]
        if len(history) < self.W:
            return SeriesState(history, state.step + len(values)), {"forecast": None}
        scaled = self.fitted.to_model(np.asarray(history), "values")       # refused before any change
        finite_float32(scaled, "values")
        first = state.step + len(values) - self.W
        forecast, _ = await submit(None, self.fitted.features(scaled, first))
        return SeriesState(history, state.step + len(values)), {"forecast": forecast}

    async def start(self, record: SeriesStart, submit) -> tuple[SeriesState, dict]:
        return await self._read(SeriesState([], record.start), record.values, submit)

    async def update(self, state: SeriesState, record: SeriesStep, submit) -> tuple[SeriesState, dict]:
        return await self._read(state, record.values, submit)

    def export(self, state: SeriesState) -> dict:
        return {"history": state.history, "step": state.step}

    def restore(self, exported: dict) -> SeriesState:
        try:
            state = SeriesState([float(v) for v in exported["history"]], int(exported["step"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"state: expected {{'history': [...], 'step': n}} from GET /v1/sessions/ID/state, got "
                             f"{type(error).__name__}: {error}") from None
        if len(state.history) > self.W or not all(math.isfinite(v) for v in state.history):
            raise ValueError(f"state: expected at most {self.W} finite values, got {len(state.history)}")
        return state
