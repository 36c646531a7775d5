"""The forecaster as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from ...train.estimator import SeriesEstimator, collection

__all__ = ["RecurrentForecaster"]


class RecurrentForecaster(RegressorMixin, SeriesEstimator):
    """Direct multi-step forecasting of one series (the ``forecast`` task).

    ``fit(y)`` trains on the series ``y`` (its last ``valid_size`` steps before the last
    ``test_size`` validate, the last ``test_size`` test: ``results_`` has the MASE against the
    seasonal-naive and ETS forecasts); ``predict(histories)`` gives the next ``horizon`` values
    after each history (at least ``window`` values); ``score(histories, futures)`` is the R² of
    those forecasts. With phase features (``config={"data.periods": [...]}``) a history's first
    step is taken as step 0; :meth:`predict_records` takes the step of each history.
    """

    task = "forecast"

    def __init__(self, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, window: int = 48, horizon: int = 12, season: int = 1,
                 test_size: int | None = None, valid_size: int | None = None, epochs: int = 30,
                 batch_size: int = 32, lr: float = 3e-3, optimizer: str = "adam", seed: int = 0,
                 run_dir: str | None = None, config: dict | None = None, verbose: bool = True):
        self.cell, self.hidden_size, self.num_layers, self.bidirectional = cell, hidden_size, num_layers, bidirectional
        self.dropout, self.window, self.horizon, self.season = dropout, window, horizon, season
        self.test_size, self.valid_size = test_size, valid_size
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.seed, self.run_dir, self.config, self.verbose = seed, run_dir, config, verbose

    def _task_params(self):
        return {name: ("data", name) for name in ("window", "horizon", "season", "test_size", "valid_size")}

    def fit(self, y, X=None):
        """Train on the series ``y`` (``X`` is ignored: the model reads the series' own past)."""
        series = self._series(y, "y")
        run_dir = self._new_run_dir()
        file = self._write_series(run_dir / "data" / "series.csv", [series])
        return self._train({"dataset": "files", "file": file}, run_dir)

    def predict_records(self, records: list[dict]) -> list[dict]:
        """Forecasts of JSON records ``{"history": [...], "start": step}`` (as ``lstmkit predict``)."""
        return self._predict_records(records)

    def predict(self, X) -> np.ndarray:
        """(N, horizon) forecasts, one row per history in ``X``."""
        histories = [self._series(h, "X") for h in collection(self._owner(), "X", X, "histories")]
        return np.asarray([o["forecast"] for o in self._predict_records([{"history": h.tolist()}
                                                                          for h in histories])])

    def score(self, X, y, sample_weight=None) -> float:
        """R² of the forecasts of the histories ``X`` against the futures ``y`` (N, horizon)."""
        return float(r2_score(np.asarray(y, dtype=np.float64).ravel(), self.predict(X).ravel(),
                              sample_weight=sample_weight))
