"""Sessions of a global forecaster, one per series: open with the series' history (or nothing),
send each new observation (with its covariates), get the forecast quantiles of the next steps
(see :mod:`lstmkit.runs.stream`). The forecast after each update is ``predict``'s on the whole
history sent so far.

A run that reads a window of each history (``data.context: window``) scales the window within
itself, so each update reads the last ``window`` steps again (:class:`WindowSeriesStream`). A run
that reads whole histories scaled by their first ``anchor`` steps (``data.context: whole``)
carries the network's state instead: once the anchor is complete an update is one recurrent step
per new observation and the head (:class:`CarriedSeriesStream`). Forecasts of concurrent
sessions run as one batch either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import Tensor

from ...models import GlobalForecaster
from ...runs.records import Number
from ...runs.stream import filled, gather, initial_state, plain, scatter
from .records import GlobalForecastInput

__all__ = ["GlobalSeriesStream", "WindowSeriesStream", "CarriedSeriesStream", "GlobalSeriesStart",
           "GlobalSeriesStep"]


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
    """The sessions of a global forecasting run: :class:`CarriedSeriesStream` where the run reads
    whole histories with one network (an ensemble's members each carry their own state, which
    this does not do), else :class:`WindowSeriesStream`."""

    start_input = GlobalSeriesStart
    step_input = GlobalSeriesStep

    def __new__(cls, run, lock):
        carried = run.fitted.context == "whole" and isinstance(run.model, GlobalForecaster)
        return (CarriedSeriesStream if carried else WindowSeriesStream)(run, lock)


class _Sessions:
    start_input = GlobalSeriesStart
    step_input = GlobalSeriesStep

    def __init__(self, run, lock):
        self.lock, self.task, self.fitted, self.model = lock, run.task, run.fitted, run.model

    def _answer(self, q: np.ndarray, h: int) -> dict:
        """The output of one forecast from its quantiles ``q`` (K, Q) in the series' values."""
        centre = self.fitted.quantiles.index(0.5)
        return {"forecast": q[:h, centre].tolist(),
                "quantiles": {f"{level:g}": q[:h, j].tolist() for j, level in enumerate(self.fitted.quantiles)}}

    @staticmethod
    def _merged(record: dict, step: GlobalSeriesStep) -> dict:
        """The record with a step's observations and covariates appended (their counts checked)."""
        n = len(step.values)
        for name, values in step.hist_exog.items():
            if len(values) != n:
                raise ValueError(f"hist_exog {name!r}: expected {n} numbers (one per new value), got {len(values)}")
        unknown = sorted((set(step.hist_exog) - set(record["hist_exog"])) |
                         (set(step.futr_exog) - set(record["futr_exog"])))
        if unknown and (record["history"] or record.get("opened")):
            raise ValueError(f"covariates {unknown} were not sent when the session opened")
        return {**record, "history": record["history"] + list(step.values),
                "hist_exog": {k: record["hist_exog"].get(k, []) + list(step.hist_exog.get(k, []))
                              for k in set(record["hist_exog"]) | set(step.hist_exog)},
                "futr_exog": {k: record["futr_exog"].get(k, []) + list(step.futr_exog.get(k, []))
                              for k in set(record["futr_exog"]) | set(step.futr_exog)}}

    @staticmethod
    def _dropped(record: dict, n: int) -> dict:
        """The record without its first ``n`` steps (values and covariates; ``start`` moved on)."""
        return {**record, "history": record["history"][n:], "start": record["start"] + n,
                "hist_exog": {k: v[n:] for k, v in record["hist_exog"].items()},
                "futr_exog": {k: v[n:] for k, v in record["futr_exog"].items()}}

    def _item(self, record: dict) -> tuple[tuple, int]:
        """``predict``'s model inputs for a record (every problem refused before a state changes)."""
        parsed = self.task.records([{k: v for k, v in record.items() if k != "opened"}])[0]
        return self.task.record_item(self.fitted, parsed, 0)


class WindowSeriesStream(_Sessions):
    """A session's state is a ``predict`` record of the series' steps the model reads (with the
    known-future covariates sent beyond them); its output is ``predict``'s answer for it, None
    while the history is empty."""

    def advance(self, states: list, items: list) -> list[tuple[dict, None]]:
        with self.lock:
            q = self.task.quantiles(self.model, [item for item, _ in items], self.fitted)
        return [(self._answer(q[k], h), None) for k, (_, h) in enumerate(items)]

    async def _forecast(self, record: dict, submit) -> tuple[dict, dict]:
        record = self._dropped(record, self.fitted.read(len(record["history"])).start)   # the steps it reads
        if not record["history"]:
            return record, {"forecast": None, "quantiles": None}
        item = self._item(record)
        output, _ = await submit(None, item)
        return record, output

    async def start(self, record: GlobalSeriesStart, submit) -> tuple[dict, dict]:
        return await self._forecast(record.model_dump(), submit)

    async def update(self, state: dict, record: GlobalSeriesStep, submit) -> tuple[dict, dict]:
        return await self._forecast(self._merged(state, record), submit)

    def export(self, state: dict) -> dict:
        return state

    def restore(self, exported: dict) -> dict[str, Any]:
        try:
            record = GlobalSeriesStart.model_validate(exported).model_dump()
        except ValueError as error:
            raise ValueError(f"state: expected the record from GET /v1/sessions/ID/state, got {error}") from None
        n = len(record["history"])
        most = n - self.fitted.read(n).start                  # the steps the model reads of n
        if n > most or not all(math.isfinite(v) for v in record["history"]):
            raise ValueError(f"state: expected at most {most} finite values, got {len(record['history'])}")
        return record


@dataclass
class CarriedSeries:
    """A carried session. Until the series has its ``anchor`` steps, ``record`` is its whole
    ``predict`` record and each forecast reads it all (its scale is not fixed yet). After,
    ``record`` keeps only what later steps need: ``start`` is the step of the next observation,
    ``futr_exog`` the known-future covariates from that step on, the history empty; ``rnn`` is
    the network's state after every step so far, ``last`` its last output (O,), ``(s, l)`` the
    fixed scale."""

    record: dict
    rnn: Any = None
    last: Tensor | None = None
    s: float = 1.0
    l: float = 0.0

    @property
    def anchored(self) -> bool:
        return self.rnn is not None


class CarriedSeriesStream(_Sessions):
    """Sessions of a run that reads whole histories: one recurrent step per new observation from
    the carried state (module docstring). ``advance`` reads each session's new rows (padded to a
    batch, from each one's state), then the head forecasts from each one's last output."""

    def __init__(self, run, lock):
        super().__init__(run, lock)
        self.model.eval()

    @torch.no_grad()
    def advance(self, states: list, inputs: list) -> list[tuple[tuple[np.ndarray, Tensor], Any]]:
        rnn = gather([initial_state(self.model.rnn) if state is None else state for state in states])
        rows = [x for x, *_ in inputs]
        static = torch.stack([item[1] for item in inputs])
        future = torch.stack([item[2] for item in inputs])
        scale = torch.tensor([item[3] for item in inputs], dtype=torch.float64)
        with self.lock:
            if all(len(x) == 1 for x in rows):                   # one observation each: the network's step
                last, new, codes = self.model.step(torch.cat(rows), static, rnn)
            else:
                lengths = torch.tensor([len(x) for x in rows])
                y, new, codes = self.model.encode(torch.nn.utils.rnn.pad_sequence(rows, batch_first=True), lengths,
                                                  static, rnn)
                last = y[torch.arange(len(rows)), lengths - 1]                             # (N, O)
            q = self.model.forecast(last, new, static, codes, future, scale)              # (N, K, Q)
        return [((q[i].double().numpy(), last[i].clone()), scatter(new, i)) for i in range(len(rows))]

    async def _read(self, state: CarriedSeries, submit) -> tuple[CarriedSeries, dict]:
        """Forecast after the whole record (and fix its state once the anchor is complete)."""
        record = state.record
        n = len(record["history"])
        if n == 0:
            return state, {"forecast": None, "quantiles": None}
        (x, future, static, _, _, (s, l)), h = self._item(record)
        (q, last), rnn = await submit(None, (x, static, future, s))
        answer = self._answer(self.fitted.from_model(q, s, l), h)
        if n < self.fitted.anchor:
            return state, answer
        return CarriedSeries({**self._dropped(record, n), "opened": True}, rnn, last, s, l), answer

    async def start(self, record: GlobalSeriesStart, submit) -> tuple[CarriedSeries, dict]:
        return await self._read(CarriedSeries(record.model_dump()), submit)

    async def update(self, state: CarriedSeries, step: GlobalSeriesStep, submit) -> tuple[CarriedSeries, dict]:
        record = self._merged(state.record, step)
        if not state.anchored:
            return await self._read(CarriedSeries(record), submit)
        f, m, K = self.fitted, len(step.values), self.fitted.horizon
        group = record["group"] if record["group"] is not None else next(iter(f.groups))
        missing = [name for name in f.hist_exog if len(record["hist_exog"].get(name, [])) != m]
        if missing:
            raise ValueError(f"hist_exog {missing[0]!r}: expected {m} numbers (one per new value), got "
                             f"{len(record['hist_exog'].get(missing[0], []))}")
        futr = {name: record["futr_exog"].get(name, []) for name in f.futr_exog}
        short = [name for name, v in futr.items() if len(v) < m + K]
        if short:
            raise ValueError(f"futr_exog {short[0]!r}: expected {m + K} values from the step of the first new "
                             f"observation (its own and the horizon's), got {len(futr[short[0]])}")
        columns = lambda given, names, a, b: np.asarray(  # noqa: E731
            [given[name][a:b] for name in names], dtype=np.float64).T.reshape(b - a, len(names))
        steps = record["start"] + np.arange(m + K)
        values = np.asarray(step.values, dtype=np.float64)
        rows = f.inputs(values, steps[:m], columns(record["hist_exog"], f.hist_exog, 0, m),
                        columns(futr, f.futr_exog, 0, m), group, state.s, state.l, "values")
        ahead = f.ahead(steps[m:], columns(futr, f.futr_exog, m, m + K), group)
        static = f.codes({**record["static"], "group": group} if "group" in f.static else record["static"])
        (q, last), rnn = await submit(state.rnn, (torch.tensor(rows, dtype=torch.float32), torch.tensor(static),
                                                  torch.tensor(ahead, dtype=torch.float32), state.s))
        answer = self._answer(f.from_model(q, state.s, state.l), f.groups[group][0])
        return CarriedSeries(self._dropped(record, m), rnn, last, state.s, state.l), answer

    def export(self, state: CarriedSeries) -> dict:
        if not state.anchored:
            return {"record": state.record}
        return {"record": state.record, "rnn": plain(state.rnn), "last": state.last.tolist(), "s": state.s,
                "l": state.l}

    def restore(self, exported: dict) -> CarriedSeries:
        """A state from :meth:`export`; ``ValueError`` naming what does not fit this model."""
        try:
            record = exported["record"]
            opened = bool(record.get("opened", False)) if isinstance(record, dict) else False
            parsed = GlobalSeriesStart.model_validate({k: v for k, v in record.items() if k != "opened"})
            record = {**parsed.model_dump(), **({"opened": True} if opened else {})}
            if "rnn" not in exported:
                return CarriedSeries(record)
            rnn = filled(initial_state(self.model.rnn), exported["rnn"])
            last = torch.tensor(exported["last"], dtype=torch.float32)
            s, l = float(exported["s"]), float(exported["l"])
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"state: expected {{'record', 'rnn', 'last', 's', 'l'}} from GET /v1/sessions/ID/state "
                             f"that fits this model: {type(error).__name__}: {error}") from None
        if last.shape != (self.model.rnn.output_size,) or not (math.isfinite(s) and s > 0 and math.isfinite(l)):
            raise ValueError(f"state: expected 'last' of {self.model.rnn.output_size} numbers and a finite scale")
        return CarriedSeries(record, rnn, last, s, l)
