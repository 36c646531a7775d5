"""The anomaly detector as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np
from sklearn.base import OutlierMixin

from ...train.estimator import SeriesEstimator

__all__ = ["AnomalyDetector"]


class AnomalyDetector(OutlierMixin, SeriesEstimator):
    """Anomaly detection by one-step prediction error (the ``anomaly`` task).

    ``fit(X)`` trains on a normal series (its last ``valid_fraction`` sets the threshold, the
    ``threshold_quantile`` of its scores); ``score_samples(series)`` gives each point's score
    (higher: more anomalous; 0 for the first ``window`` points) and ``predict(series)`` -1 for the
    points above the threshold and 1 for the others, as scikit-learn's outlier detectors do.
    """

    task = "anomaly"

    def __init__(self, cell: str = "lstm", hidden_size: int = 32, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, window: int = 64, smooth: int = 16, threshold_quantile: float = 0.999,
                 valid_fraction: float = 0.2, epochs: int = 30, batch_size: int = 32, lr: float = 3e-3,
                 optimizer: str = "adam", seed: int = 0, run_dir: str | None = None, config: dict | None = None,
                 verbose: bool = True):
        self.cell, self.hidden_size, self.num_layers, self.bidirectional = cell, hidden_size, num_layers, bidirectional
        self.dropout, self.window, self.smooth, self.threshold_quantile = dropout, window, smooth, threshold_quantile
        self.valid_fraction = valid_fraction
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.seed, self.run_dir, self.config, self.verbose = seed, run_dir, config, verbose

    def _task_params(self):
        return {name: ("data", name) for name in ("window", "smooth", "threshold_quantile", "valid_fraction")}

    def fit(self, X, y=None):
        """Train on the normal series ``X`` (``y`` is ignored: the data are assumed normal)."""
        series = self._series(X, "X")
        run_dir = self._new_run_dir()
        file = self._write_series(run_dir / "data" / "normal.csv", [series])
        return self._train({"dataset": "files", "train_file": file}, run_dir)

    def _outputs(self, X) -> dict:
        series = self._series(X, "X")
        return self._predict_records([{"values": series.tolist()}])[0]

    def score_samples(self, X) -> np.ndarray:
        return np.asarray(self._outputs(X)["scores"])

    def decision_function(self, X) -> np.ndarray:
        """Threshold minus score: negative for the anomalies."""
        out = self._outputs(X)
        return out["threshold"] - np.asarray(out["scores"])

    def predict(self, X) -> np.ndarray:
        return np.where(self.decision_function(X) < 0, -1, 1)

    @property
    def threshold_(self) -> float:
        self._check_fitted()
        return self.fitted_.threshold
