"""The global forecaster's ``predict`` records, in and out (a session's start is a record too)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ...runs.records import Number, Record

__all__ = ["GlobalForecastInput", "GlobalForecastOutput"]


class GlobalForecastInput(Record):
    EXAMPLE = ('{"history": [numbers...], "start": step of history[0], "group": "monthly", "static": {...}, '
               '"hist_exog": {name: [...]}, "futr_exog": {name: [... and the horizon\'s]}}')
    history: list[Number] = Field(description="the series' latest values, oldest first")
    start: int = Field(1, description="the step of history[0] (for the phase features)")
    group: str | None = Field(None, description="the series' group (null: the only one)")
    static: dict[str, str] = Field(default_factory=dict, description="the series' static categories")
    hist_exog: dict[str, list[Number]] = Field(default_factory=dict, description="past-only covariates over the "
                                               "history")
    futr_exog: dict[str, list[Number]] = Field(default_factory=dict, description="known-future covariates over "
                                               "the history and the horizon's steps")


class GlobalForecastOutput(BaseModel):
    forecast: list[float] = Field(description="the median of each of the next horizon steps")
    quantiles: dict[str, list[float]] = Field(description="each quantile level -> its values over the horizon")
