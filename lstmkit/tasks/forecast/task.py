"""Multi-step forecasting of one series (direct strategy), judged against seasonal-naive and ETS.

The series is cut into train | validation | test (the last ``test_size`` steps). An optional
variance-stabilising ``transform`` (``sqrt`` or ``log1p``, e.g. for counts whose spread grows with
their level) comes first; then scaling (mean, standard deviation) fitted on the training part only.
Forecasts are mapped back through both before they are scored. The model reads ``window`` past
steps (the scaled value, plus sin/cos phase features of ``periods``) and outputs the next ``horizon``
values at once. The test is a rolling-origin evaluation: a forecast from every ``eval_stride``-th
step of the test window, each compared with the truth and with two baselines made from the same
history: the seasonal-naive forecast (the value one ``season`` earlier) and statsmodels' ETS
(additive error, additive season of period ``season``; parameters fitted once on all steps
before the test window, then applied to the history at each origin). The score is MASE: the
mean absolute error divided by the in-sample mean absolute error of the seasonal-naive
forecast on the training part.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import Tensor

from ...data import datasets
from ...data.readers import read_series
from ...models import Forecaster
from ...runs import plots
from ...runs.config import DataConfig, ModelConfig, RunConfig, rnn_options
from ...runs.batches import ListDataset
from ...runs.records import Number, Record, finite_float32
from ...runs.task import Prepared, WindowTask
from .fitted import TRANSFORMS, ForecastFitted, transformed
from .tensors import ForecastTensors
from .stream import SeriesStream

__all__ = ["ForecastTask", "DEFAULTS", "TRANSFORMS", "seasonal_naive",
           "ets_forecasts", "mase_scale"]

# per dataset: window, horizon, season, test_size, valid_size, periods, eval_stride
DEFAULTS = {
    "taylor": dict(window=96, horizon=48, season=48, test_size=672, valid_size=672, periods=[48, 336],
                   eval_stride=48),
    "sunspots": dict(window=44, horizon=11, season=11, test_size=44, valid_size=33, periods=[], eval_stride=1),
    "files": dict(window=48, horizon=12, season=1, test_size=None, valid_size=None, periods=[], eval_stride=None),
}


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """ŷ[n + h] = y[n + h - season·k] for the smallest k ≥ 1 that lands in the history."""
    n = len(history)
    return np.asarray([history[n - season + (h % season)] for h in range(horizon)])


def mase_scale(train: np.ndarray, season: int) -> float:
    """In-sample mean absolute error of the seasonal-naive forecast (the MASE denominator)."""
    return float(np.mean(np.abs(train[season:] - train[:-season])))


def ets_forecasts(series: np.ndarray, fit_end: int, origins: list[int], horizon: int, season: int) -> np.ndarray:
    """ETS(A, N, A) (or ETS(A, N, N) for ``season`` 1) fitted on ``series[:fit_end]``, then
    applied with the same parameters to the history before each origin: (len(origins), horizon)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    spec = dict(error="add", trend=None, seasonal="add" if season > 1 else None,
                seasonal_periods=season if season > 1 else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = ETSModel(series[:fit_end], **spec).fit(disp=False).params
        return np.stack([np.asarray(ETSModel(series[:o], **spec).smooth(params).forecast(horizon)) for o in origins])


class ForecastData(DataConfig):
    needs = {"files": ("file",)}
    renamed = {"file": "files"}
    dataset: Literal["taylor", "sunspots", "files"] = Field(
        "taylor", description="pmdarima's half-hourly electricity demand, statsmodels' yearly sunspots, or 'files' (your own)")
    file: Path | None = Field(None, description="dataset 'files': CSV with one numeric column (a header is allowed)")
    window: int | None = Field(None, gt=0, description="past steps the model reads (null: the dataset's default)")
    horizon: int | None = Field(None, gt=0, description="future steps forecast at once (null: the dataset's default)")
    season: int | None = Field(None, gt=0, description="seasonal period for seasonal-naive/ETS/MASE (null: default)")
    test_size: int | None = Field(None, gt=0, description="last steps held out as the test window (null: default)")
    valid_size: int | None = Field(None, gt=0, description="steps before the test window used to validate")
    periods: list[int] | None = Field(None, description="add sin/cos phase features of these periods, e.g. "
                                      "[48, 336] for day and week of half-hourly data (null: the dataset's default)")
    transform: Literal["none", "sqrt", "log1p"] = Field(
        "none", description="variance-stabilising transform applied before scaling (inverted on the forecasts)")
    stride: int = Field(1, gt=0, description="steps between training windows")
    eval_stride: int | None = Field(None, gt=0, description="steps between forecast origins in the test window "
                                    "(null: the dataset's default)")


class ForecastConfig(RunConfig):
    task: Literal["forecast"] = Field("forecast", description="multi-step forecasting (direct strategy)")
    data: ForecastData = Field(default_factory=ForecastData)
    model: ModelConfig = Field(default_factory=ModelConfig)


class ForecastInput(Record):
    EXAMPLE = '{"history": [numbers...], "start": step of history[0]}'
    history: list[Number] = Field(description="the latest values, oldest first (at least the model's window)")
    start: int = Field(0, description="the step index of history[0], for the phase features")


class ForecastOutput(BaseModel):
    forecast: list[float] = Field(description="the next horizon values after the history")


class ForecastTask(WindowTask):
    """A window (B, W, 1 + 2·len(periods)) -> the next K values (B, K), scaled."""

    name = "forecast"
    config_class = ForecastConfig
    predict_input = ForecastInput
    predict_output = ForecastOutput
    fitted_class = ForecastFitted
    tensors = ForecastTensors
    stream = SeriesStream
    estimators = ("lstmkit.tasks.forecast.estimator:RecurrentForecaster",)
    formats = "data.file and evaluate --data: CSV with one numeric column; predict: JSON lines " + ForecastInput.EXAMPLE

    def settings(self) -> dict[str, Any]:
        """The data settings with the dataset's defaults filled in."""
        data = self.config.data
        out = dict(DEFAULTS[data.dataset])
        for key in out:
            if getattr(data, key) is not None:
                out[key] = getattr(data, key)
        return out

    def _series(self) -> np.ndarray:
        data = self.config.data
        if data.dataset == "files":
            return read_series(data.file)
        return datasets.load_taylor() if data.dataset == "taylor" else datasets.load_sunspots()

    def _bounds(self, n: int, s: dict) -> tuple[int, int]:
        test = s["test_size"] or max(s["horizon"], n // 5)
        valid = s["valid_size"] or max(s["horizon"], n // 5)
        train_end, test_start = n - test - valid, n - test
        if train_end < s["window"] + s["horizon"] + s["season"]:
            raise ValueError(f"forecast: the series has {n} steps, too few for window {s['window']}, horizon "
                             f"{s['horizon']}, validation {valid} and test {test} steps")
        return train_end, test_start

    def _windows(self, feats: Tensor, scaled: np.ndarray, origins, fitted: ForecastFitted) -> ListDataset:
        W, K = fitted.window, fitted.horizon
        return ListDataset([(feats[o - W:o], torch.tensor(scaled[o:o + K], dtype=torch.float32)) for o in origins])

    def prepare(self, fitted: ForecastFitted | None = None) -> Prepared:
        s = self.settings()
        series = self._series()
        train_end, test_start = self._bounds(len(series), s)
        if fitted is None:
            transform = self.config.data.transform
            base = transformed(series, transform)[:train_end]
            fitted = ForecastFitted(mean=float(base.mean()), std=float(max(base.std(), 1e-8)), **s,
                                    mase_scale=mase_scale(series[:train_end], s["season"]), transform=transform)
        W, K = fitted.window, fitted.horizon
        scaled = fitted.to_model(series)
        feats = fitted.features(scaled, 0)
        stride = self.config.data.stride
        test_origins = list(range(test_start, len(series) - K + 1, fitted.eval_stride or K))
        return Prepared(
            train=self._windows(feats, scaled, range(W, train_end - K + 1, stride), fitted),
            valid=self._windows(feats, scaled, range(max(W, train_end), test_start - K + 1), fitted),
            test=self._windows(feats, scaled, test_origins, fitted), fitted=fitted,
            extra={"series": series, "scaled": scaled, "features": feats, "train_end": train_end,
                   "test_start": test_start, "test_origins": test_origins})

    def refit_data(self, prepared: Prepared) -> ListDataset:
        """Every window whose targets end before the test window (also those across the train |
        validation boundary)."""
        x = prepared.extra
        W, K = prepared.fitted.window, prepared.fitted.horizon
        origins = range(W, x["test_start"] - K + 1, self.config.data.stride)
        return self._windows(x["features"], x["scaled"], origins, prepared.fitted)

    def build_model(self, fitted: ForecastFitted):
        m = self.config.model
        return Forecaster(m.cell, 1 + 2 * len(fitted.periods), m.hidden_size, horizon=fitted.horizon,
                          **rnn_options(m))

    @torch.no_grad()
    def _forecast(self, model, dataset: ListDataset, fitted: ForecastFitted) -> np.ndarray:
        model.eval()
        x = torch.stack([x for x, _ in dataset.items])
        return fitted.from_model(model(x)[0].double().numpy())                # (origins, K)

    def _score(self, model, fitted: ForecastFitted, series: np.ndarray, dataset: ListDataset, origins: list[int],
               fit_end: int, out_dir: Path, title: str) -> dict[str, Any]:
        K, m = fitted.horizon, fitted.season
        truth = np.stack([series[o:o + K] for o in origins])
        methods = {"lstmkit": self._forecast(model, dataset, fitted),
                   "seasonal_naive": np.stack([seasonal_naive(series[:o], K, m) for o in origins]),
                   "ets": ets_forecasts(series, fit_end, origins, K, m)}
        scale = fitted.mase_scale
        results = {name: {"mase": float(np.mean(np.abs(f - truth)) / scale),
                          "mae": float(np.mean(np.abs(f - truth))),
                          "rmse": float(np.sqrt(np.mean((f - truth) ** 2)))} for name, f in methods.items()}
        shown = [i for i, o in enumerate(origins) if (o - origins[0]) % K == 0]   # non-overlapping forecasts
        start = origins[0]
        plots.forecast_plot(series[max(0, start - 3 * K):start], series[start:origins[shown[-1]] + K],
                            {n: f[shown].reshape(-1) for n, f in methods.items()}, start, out_dir,
                            title=title + ", ".join(f"{n} MASE {r['mase']:.3f}" for n, r in results.items()))
        return {"origins": len(origins), "horizon": K, "season": m, **results}

    def evaluate(self, model, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        e, fitted = prepared.extra, prepared.fitted
        K = fitted.horizon
        if split == "test":
            origins, fit_end, dataset = e["test_origins"], e["test_start"], prepared.test
        else:   # non-overlapping forecasts over the split; ETS fitted on the training part
            first, last = ((max(fitted.window, 2 * fitted.season), e["train_end"]) if split == "train"
                           else (e["train_end"], e["test_start"]))
            origins, fit_end = list(range(first, last - K + 1, K)), e["train_end"]
            dataset = self._windows(e["features"], e["scaled"], origins, fitted)
        return {"split": split, **self._score(model, fitted, e["series"], dataset, origins, fit_end,
                                              out_dir / f"forecast_{split}.png", f"{split}: ")}

    def evaluate_file(self, model, fitted: ForecastFitted, path: Path, out_dir: Path) -> dict[str, Any]:
        """Rolling-origin test on the last ``test_size`` steps of a one-column CSV series."""
        series = read_series(path)
        W, K = fitted.window, fitted.horizon
        test = fitted.test_size or max(K, len(series) // 5)
        test_start = len(series) - test
        if test_start < max(W, fitted.season * 2):
            raise ValueError(f"evaluate: {str(path)!r} has {len(series)} steps, too few for window {W} "
                             f"and a test window of {test}")
        origins = list(range(test_start, len(series) - K + 1, fitted.eval_stride or K))
        scaled = fitted.to_model(series, f"series file {str(path)!r}")
        dataset = self._windows(fitted.features(scaled, 0), scaled, origins, fitted)
        return {"file": str(path), **self._score(model, fitted, series, dataset, origins, test_start,
                                                 out_dir / "forecast_file.png", f"{path.name}: ")}

    def export_graph(self, g, model, fitted: ForecastFitted) -> dict[str, str]:
        from .export import forecast_graph
        return forecast_graph(g, model, fitted)

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        r = results
        return (f"  {split:5s} MASE: lstmkit {r['lstmkit']['mase']:.3f}, "
                f"seasonal naive {r['seasonal_naive']['mase']:.3f}, "
                f"ETS {r['ets']['mase']:.3f} ({r['origins']} forecasts of {r['horizon']} steps)")

    @torch.no_grad()
    def predict(self, model, fitted: ForecastFitted, records: list[dict]) -> list[dict]:
        """``{"history": [values...], "start": step index of history[0] (for phase features, default 0)}``
        -> ``{"forecast": [horizon values]}`` for the steps after the history."""
        W, xs = fitted.window, []
        for i, r in enumerate(self.records(records)):
            history = np.asarray(r.history, dtype=np.float64)
            if len(history) < W:
                self.record_error(i, f'"history" of at least {W} numbers', f"shape {history.shape}")
            start = r.start + len(history) - W
            scaled = fitted.to_model(history[-W:], f"input record {i} history")
            finite_float32(scaled, f"predict: input record {i} history (its last {W} values)")
            xs.append(fitted.features(scaled, start))
        if not xs:
            return []
        model.eval()
        out = fitted.from_model(model(torch.stack(xs))[0].double().numpy())
        return [{"forecast": row.tolist()} for row in out]
