"""Sessions of a global forecaster, one per series: open with the series' history (or nothing),
send each new observation (with its covariates), get the forecast quantiles of the next steps
(see :mod:`lstmkit.runs.stream`). The forecast after each update is ``predict``'s on the whole
history sent so far: the model reads the last ``window`` steps (scaled within them), so that is
what a session keeps, however long it runs; forecasts of concurrent sessions run as one batch."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from ...runs.records import Number
from .records import GlobalForecastInput

__all__ = ["GlobalSeriesStream", "GlobalSeriesStart", "GlobalSeriesStep"]


class GlobalSeriesStart(GlobalForecastInput):
    """A session's start: a ``predict`` record whose history may be empty, nothing else accepted."""

    model_config = {"extra": "forbid", "allow_inf_nan": False}
    history: list[Number] = Field(default_factory=list, description="the series' values so far, oldest first")
    futr_exog: dict[str, list[Number]] = Field(default_factory=dict, description="known-future covariates over the "
                                               "history and as far ahead as known (at least the horizon)")


class GlobalSeriesStep(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    values: list[Number] = Field(min_length=1, description="new observations, in order")
    hist_exog: dict[str, list[Number]] = Field(default_factory=dict, description="past-only covariates of the new "
                                               "observations")
    futr_exog: dict[str, list[Number]] = Field(default_factory=dict, description="known-future covariates of the "
                                               "steps after those already sent")


class GlobalSeriesStream:
    """A session's state is a ``predict`` record of the series' last ``window`` steps (with the
    known-future covariates sent beyond them); its output is ``predict``'s answer for it, None
    while the history is empty."""

    start_input = GlobalSeriesStart
    step_input = GlobalSeriesStep

    def __init__(self, run, lock):
        self.lock, self.task, self.fitted, self.model = lock, run.task, run.fitted, run.model

    def advance(self, states: list, items: list) -> list[tuple[dict, None]]:
        with self.lock:
            q = self.task.quantiles(self.model, [item for item, _ in items], self.fitted)
        centre = self.fitted.quantiles.index(0.5)
        return [({"forecast": q[k, :h, centre].tolist(),
                  "quantiles": {f"{level:g}": q[k, :h, j].tolist() for j, level in enumerate(self.fitted.quantiles)}},
                 None) for k, (_, h) in enumerate(items)]

    def _kept(self, record: dict) -> dict:
        """The record cut to its last ``window`` steps (the known-future covariates ahead kept)."""
        cut = max(0, len(record["history"]) - self.fitted.window)
        return {**record, "history": record["history"][cut:], "start": record["start"] + cut,
                "hist_exog": {k: v[cut:] for k, v in record["hist_exog"].items()},
                "futr_exog": {k: v[cut:] for k, v in record["futr_exog"].items()}}

    async def _forecast(self, record: dict, submit) -> tuple[dict, dict]:
        record = self._kept(record)
        if not record["history"]:
            return record, {"forecast": None, "quantiles": None}
        parsed = self.task.records([record])[0]
        item = self.task.record_item(self.fitted, parsed, 0)          # refused before the state changes
        output, _ = await submit(None, item)
        return record, output

    async def start(self, record: GlobalSeriesStart, submit) -> tuple[dict, dict]:
        return await self._forecast(record.model_dump(), submit)

    async def update(self, state: dict, record: GlobalSeriesStep, submit) -> tuple[dict, dict]:
        n = len(record.values)
        for name, values in record.hist_exog.items():
            if len(values) != n:
                raise ValueError(f"hist_exog {name!r}: expected {n} numbers (one per new value), got {len(values)}")
        unknown = sorted((set(record.hist_exog) - set(state["hist_exog"])) | (set(record.futr_exog) -
                                                                              set(state["futr_exog"])))
        if unknown and state["history"]:
            raise ValueError(f"covariates {unknown} were not sent when the session opened")
        merged = {**state, "history": state["history"] + list(record.values),
                  "hist_exog": {k: state["hist_exog"].get(k, []) + list(record.hist_exog.get(k, []))
                                for k in set(state["hist_exog"]) | set(record.hist_exog)},
                  "futr_exog": {k: state["futr_exog"].get(k, []) + list(record.futr_exog.get(k, []))
                                for k in set(state["futr_exog"]) | set(record.futr_exog)}}
        return await self._forecast(merged, submit)

    def export(self, state: dict) -> dict:
        return state

    def restore(self, exported: dict) -> dict[str, Any]:
        try:
            record = GlobalSeriesStart.model_validate(exported).model_dump()
        except ValueError as error:
            raise ValueError(f"state: expected the record from GET /v1/sessions/ID/state, got {error}") from None
        if len(record["history"]) > self.fitted.window or not all(math.isfinite(v) for v in record["history"]):
            raise ValueError(f"state: expected at most {self.fitted.window} finite values, got "
                             f"{len(record['history'])}")
        return record

