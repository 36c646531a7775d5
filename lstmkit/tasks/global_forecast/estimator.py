"""The global forecaster on long-format DataFrames, in the manner of statsforecast and
neuralforecast: ``fit(df)``, ``predict(df=..., futr_df=...)``, ``cross_validation(df, ...)``."""

from __future__ import annotations

import numpy as np

from ...data.panels import ID, TARGET, TIME, to_panel
from ...train.estimator import RunEstimator
from .task import forecast_frame

__all__ = ["GlobalForecastEstimator"]


class GlobalForecastEstimator(RunEstimator):
    """One model over every series of a long frame (``unique_id, ds, y`` and the covariates
    declared in ``hist_exog``, ``futr_exog`` and ``static``), forecasting ``h`` steps with the
    quantile levels of ``quantiles`` (the ``global_forecast`` task on the user's data).
    ``distribution`` (``normal``, ``student_t``, or ``negative_binomial`` for counts, with
    ``scaling="mean"``) trains a distribution's parameters on its likelihood instead.
    ``context="whole"`` reads whole histories, scaled by their first ``anchor`` steps (the
    ``global_forecast`` task's ``data.context``).

    ``predict`` and ``cross_validation`` return long frames with the median (column ``lstmkit``),
    every quantile (``lstmkit-q-0.1``...) and the 80% and 95% intervals (``lstmkit-lo-80``,
    ``lstmkit-hi-80``...) where the quantile set has their ends.
    """

    task = "global_forecast"

    def __init__(self, h: int = 12, season: int = 1, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, window: int | None = None,
                 quantiles: tuple[float, ...] = (0.025, 0.1, 0.5, 0.9, 0.975), scaling: str = "log",
                 distribution: str | None = None, context: str = "window", anchor: int | None = None,
                 hist_exog: tuple[str, ...] = (), futr_exog: tuple[str, ...] = (), static: tuple[str, ...] = (),
                 freq: str | None = None, epochs: int = 30, batch_size: int = 256, lr: float = 3e-3,
                 optimizer: str = "adam", seed: int = 0, run_dir: str | None = None, config: dict | None = None,
                 verbose: bool = True):
        self.h, self.season, self.cell, self.hidden_size, self.num_layers = h, season, cell, hidden_size, num_layers
        self.bidirectional, self.dropout, self.window, self.quantiles = bidirectional, dropout, window, quantiles
        self.scaling, self.distribution, self.context, self.anchor = scaling, distribution, context, anchor
        self.hist_exog, self.futr_exog, self.static = hist_exog, futr_exog, static
        self.freq, self.epochs, self.batch_size, self.lr, self.optimizer = freq, epochs, batch_size, lr, optimizer
        self.seed, self.run_dir, self.config, self.verbose = seed, run_dir, config, verbose

    def _task_params(self):
        return {"h": ("data", "horizon"), "season": ("data", "season"), "window": ("data", "window"),
                "quantiles": ("data", "quantiles"), "scaling": ("data", "scaling"),
                "distribution": ("model", "distribution"), "context": ("data", "context"),
                "anchor": ("data", "anchor"),
                "hist_exog": ("data", "hist_exog"), "futr_exog": ("data", "futr_exog"),
                "static": ("data", "static"), "freq": ("data", "freq")}

    def _config(self, data):
        config = super()._config(data)
        for key in ("quantiles", "hist_exog", "futr_exog", "static"):
            setattr(config.data, key, list(getattr(config.data, key)))
        return config

    def _columns(self) -> dict:
        return dict(hist_exog=tuple(self.hist_exog), futr_exog=tuple(self.futr_exog), static=tuple(self.static),
                    freq=self.freq)

    def fit(self, df, static_df=None):
        """Train on every step of every series of ``df`` (the last ``h`` steps of each validate).
        ``static_df``: one row per ``unique_id`` with the static columns, joined to ``df``."""
        df = self._with_static(df, static_df)
        to_panel(df, where=f"{self._owner()}.fit: df", **self._columns())     # every error before training
        run_dir = self._new_run_dir()
        (run_dir / "data").mkdir(parents=True, exist_ok=True)
        path = run_dir / "data" / "train.parquet"
        df.to_parquet(path, index=False)
        self.df_ = df
        return self._train({"dataset": "files", "train_file": path, "test_size": 0}, run_dir)

    def _with_static(self, df, static_df):
        if static_df is None:
            return df
        return df.merge(static_df, on=ID, how="left", validate="many_to_one")

    def _records(self, df, futr_df) -> tuple[list[dict], object]:
        fitted = self.fitted_
        history = to_panel(df, where=f"{self._owner()}.predict: df", **self._columns())
        futr = None
        if fitted.futr_exog:
            if futr_df is None:
                raise ValueError(f"{self._owner()}.predict: futr_df expected the known-future covariates "
                                 f"{fitted.futr_exog} over the next {fitted.horizon} steps of every series, got None")
            futr = to_panel(futr_df, where=f"{self._owner()}.predict: futr_df", futr_exog=tuple(fitted.futr_exog),
                            freq=history.freq, target=False)
        later = futr.index() if futr is not None else {}
        records = []
        for i, uid in enumerate(history.ids):
            record = {"history": history.y[i].tolist(), "start": int(history.steps[i][0]),
                      "static": history.statics(i),
                      "hist_exog": {n: history.hist[i][:, k].tolist() for k, n in enumerate(fitted.hist_exog)}}
            if futr is not None:
                j = later.get(uid)
                if j is None or len(futr.y[j]) < fitted.horizon or futr.steps[j][0] != history.steps[i][-1] + 1:
                    raise ValueError(f"{self._owner()}.predict: futr_df expected series {uid!r}'s covariates over "
                                     f"the {fitted.horizon} steps after its last {TIME}, got "
                                     f"{0 if j is None else len(futr.y[j])} steps")
                ahead = futr.futr[j][:fitted.horizon]
                record["futr_exog"] = {n: np.concatenate([history.futr[i][:, k], ahead[:, k]]).tolist()
                                       for k, n in enumerate(fitted.futr_exog)}
            records.append(record)
        return records, history

    def _future_ds(self, last, n: int):
        import pandas as pd
        if isinstance(last, (int, np.integer)):
            return np.arange(last + 1, last + n + 1)
        return pd.date_range(last, periods=n + 1, freq=self.fitted_.freq)[1:].to_numpy()

    def predict(self, df=None, futr_df=None, h: int | None = None):
        """Forecasts of the next ``h`` (at most the trained horizon) steps after each series of
        ``df`` (the training frame when None); ``futr_df`` the known-future covariates over them."""
        self._check_fitted()
        horizon = self.fitted_.horizon
        h = horizon if h is None else h
        if not isinstance(h, (int, np.integer)) or not 0 < h <= horizon:
            raise ValueError(f"{self._owner()}.predict: h expected an integer from 1 to {horizon} (the trained "
                             f"horizon), got {h!r}")
        df = getattr(self, "df_", None) if df is None else df
        if df is None:
            raise ValueError(f"{self._owner()}.predict: df expected the series' histories (this estimator was loaded "
                             "from a run, which keeps no frame in memory), got None")
        records, history = self._records(df, futr_df)
        out = self.run_.predict(records)
        levels = self.fitted_.quantiles
        q = [np.asarray([o["quantiles"][f"{level:g}"] for level in levels]).T[:h] for o in out]
        steps = [self._future_ds(history.ds[i][-1], h) for i in range(len(history))]
        frame = forecast_frame(history.ids, [d[-1] for d in history.ds], steps, [np.full(h, np.nan)] * len(q), q,
                               levels)
        return frame.drop(columns=["cutoff", TARGET])

    def cross_validation(self, df, n_windows: int = 1, step_size: int | None = None, refit: bool = False,
                         static_df=None):
        """A rolling-origin backtest: forecasts from ``n_windows`` cut-offs ``step_size`` (default
        ``h``) steps apart, the last leaving ``h`` steps of each series; columns ``unique_id, ds,
        cutoff, y`` and the forecasts. The model is fitted on the data up to the first cut-off
        (``refit``: again up to each one, one run per fit: with a ``run_dir``, give a pattern such as
        ``"runs/cv-{n}"``); each forecast reads only the history up to its cut-off."""
        import pandas as pd
        if not isinstance(n_windows, (int, np.integer)) or n_windows < 1:
            raise ValueError(f"{self._owner()}.cross_validation: n_windows expected a positive integer, got "
                             f"{n_windows!r}")
        step = self.h if step_size is None else step_size
        df = self._with_static(df, static_df).sort_values([ID, TIME]).reset_index(drop=True)
        position = df.groupby(ID).cumcount(ascending=False)            # steps after each row in its series
        frames = []
        for k in range(n_windows):
            after = self.h + (n_windows - 1 - k) * step                 # steps of each series after this cut-off
            if k == 0 or refit:
                self.fit(df[position >= after])
            known = df[position >= after]
            upcoming = df[(position < after) & (position >= after - self.h)]
            futr = upcoming.drop(columns=[TARGET] + list(self.hist_exog) + list(self.static)) if self.futr_exog else None
            forecast = self.predict(known, futr_df=futr)
            cutoffs = known.groupby(ID)[TIME].max().rename("cutoff")
            truth = upcoming[[ID, TIME, TARGET]]
            frames.append(forecast.merge(truth, on=[ID, TIME], how="left").merge(cutoffs, on=ID))
        columns = [ID, TIME, "cutoff", TARGET]
        out = pd.concat(frames, ignore_index=True)
        return out[columns + [c for c in out.columns if c not in columns]]
